package sqlengine

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseWrite(t *testing.T) {
	for _, tc := range []struct {
		in      string
		kind    WriteKind
		target  string
		cols    []string
		query   string
		state   string // error SQLSTATE
		isQuery bool   // not a write
	}{
		{in: "CREATE TABLE bank.s.t AS SELECT 1", kind: WriteCreate, target: "bank.s.t", query: "SELECT 1"},
		{in: "  create /* c */ table\n\"Bank\".s.\"t x\" as -- x\n with a as (select 1) select * from a ; ", kind: WriteCreate, target: "Bank.s.t x", query: "with a as (select 1) select * from a"},
		{in: "INSERT INTO a.b (x, \"Y\") VALUES (1, 2);", kind: WriteInsert, target: "a.b", cols: []string{"x", "Y"}, query: "VALUES (1, 2)"},
		{in: "insert into a.b (select 1)", kind: WriteInsert, target: "a.b", query: "(select 1)"},
		{in: "INSERT INTO a.b SELECT ';' -- ;", kind: WriteInsert, target: "a.b", query: "SELECT ';'"},
		{in: "INSERT INTO a.b SELECT $$;$$;", kind: WriteInsert, target: "a.b", query: "SELECT $$;$$"},
		{in: "INSERT INTO a.b SELECT 1; SELECT 2", kind: WriteInsert, target: "a.b", query: "SELECT 1; SELECT 2"},
		{in: "INSERT INTO a.b SELECT 1 /* unterminated ;", kind: WriteInsert, target: "a.b", query: "SELECT 1 /* unterminated ;"},
		{in: "SELECT 1", isQuery: true},
		{in: "WITH x AS (SELECT 1) SELECT * FROM x", isQuery: true},
		{in: "CREATE OR REPLACE TABLE a.b AS SELECT 1", state: StateFeature},
		{in: "CREATE TEMP TABLE a.b AS SELECT 1", state: StateFeature},
		{in: "CREATE TABLE a.b (x INT)", state: StateFeature},
		{in: "CREATE TABLE a.b AS DELETE FROM x", state: StateFeature},
		{in: "INSERT INTO a.b BY NAME SELECT 1", state: StateFeature},
		{in: "INSERT OR REPLACE INTO a.b SELECT 1", state: StateFeature},
		{in: "INSERT INTO a.b (x, ) SELECT 1", state: StateSyntax},
		{in: "INSERT INTO a.b (x SELECT 1", state: StateSyntax},
		{in: "CREATE TABLE \"\" AS SELECT 1", state: StateSyntax},
		{in: "CREATE TABLE \"a AS SELECT 1", state: StateSyntax},
		{in: "CREATE TABLE AS SELECT 1", state: StateFeature},
	} {
		t.Run(tc.in, func(t *testing.T) {
			ws, err := ParseWrite(tc.in)
			if tc.state != "" {
				if SQLState(err) != tc.state {
					t.Fatalf("err %v (%s), want %s", err, SQLState(err), tc.state)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.isQuery {
				if ws != nil {
					t.Fatalf("a query parsed as %+v", ws)
				}
				return
			}
			if ws == nil || ws.Kind != tc.kind || strings.Join(ws.Target, ".") != tc.target || !slices.Equal(ws.Columns, tc.cols) || ws.Query != tc.query {
				t.Fatalf("got %+v", ws)
			}
		})
	}
}

// FuzzParseWrite: any text parses or fails cleanly; a parsed write's
// query is a suffix of the input less trailing blanks, comments and ";".
func FuzzParseWrite(f *testing.F) {
	for _, s := range []string{"CREATE TABLE a.b AS SELECT 1", "INSERT INTO a.b (x) VALUES (1);", "insert into \"a\"\"b\".c select '", "CREATE TABLE a.b AS SELECT 1 /*", "INSERT INTO a.b SELECT $x$ $x", "SELECT 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ws, err := ParseWrite(s)
		if err != nil || ws == nil {
			return
		}
		if len(ws.Target) == 0 || ws.Query == "" || !strings.Contains(s, ws.Query) {
			t.Fatalf("%q -> %+v", s, ws)
		}
	})
}

func TestGroupLimits(t *testing.T) {
	def := Limits{Timeout: time.Minute, MaxRows: 1000, Memory: "1GB", Threads: 2}
	by := map[string]Limits{
		"analysts": {Timeout: 5 * time.Minute, MaxRows: 100},
		"quants":   {MaxRows: 1_000_000, Memory: "8GB"},
		"interns":  {Timeout: 10 * time.Second, MaxRows: 10, Memory: "256MB"},
	}
	for _, tc := range []struct {
		name   string
		groups []string
		want   Limits
	}{
		{"no group", []string{"public"}, def},
		{"one group, defaults fill in", []string{"analysts"}, Limits{Timeout: 5 * time.Minute, MaxRows: 100, Memory: "1GB", Threads: 2}},
		{"most generous per field", []string{"analysts", "quants"}, Limits{Timeout: 5 * time.Minute, MaxRows: 1_000_000, Memory: "8GB", Threads: 2}},
		{"lower than the defaults", []string{"interns"}, Limits{Timeout: 10 * time.Second, MaxRows: 10, Memory: "256MB", Threads: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := GroupLimits(by, tc.groups, def); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1GB", 1e9, true}, {"512 MB", 512e6, true}, {"2GiB", 2 << 30, true}, {"1.5gb", 15e8, true}, {"100", 100, true},
		{"", 0, false}, {"GB", 0, false}, {"1 parsec", 0, false}, {"-1GB", 0, false}, {"1e30TB", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSize(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("got %d, %v", got, err)
			}
		})
	}
}
