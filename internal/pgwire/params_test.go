package pgwire

import (
	"encoding/binary"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPlaceholders(t *testing.T) {
	for _, tc := range []struct{ sql, want string }{
		{"SELECT $1, $2::int", "SELECT <1>, <2>::int"},
		{"SELECT '$1', \"$2\", $$ $3 $$, $tag$ $4 $tag$, E'\\' $5', $6", "SELECT '$1', \"$2\", $$ $3 $$, $tag$ $4 $tag$, E'\\' $5', <6>"},
		{"SELECT a$1, $1 -- $2\n, /* $3 /* $4 */ */ $10", "SELECT a$1, <1> -- $2\n, /* $3 /* $4 */ */ <10>"},
		{"SELECT 'it''s $1', $1", "SELECT 'it''s $1', <1>"},
	} {
		t.Run(tc.sql, func(t *testing.T) {
			phs, err := placeholders(tc.sql)
			if err != nil {
				t.Fatal(err)
			}
			got := bindSQL(tc.sql, phs, func(n int) string { return "<" + string(rune('0'+n%10)) + ">" })
			got = strings.ReplaceAll(got, "<0>", "<10>")
			if got != tc.want {
				t.Fatalf("got %q", got)
			}
		})
	}
	for _, bad := range []string{"SELECT 'open", "SELECT \"open", "SELECT $x$ open", "SELECT /* open", "SELECT $99999999999"} {
		if _, err := placeholders(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestInferTypes(t *testing.T) {
	sql := "SELECT $1::int, CAST($2 AS double precision), $3::timestamp with time zone, $4, $5 :: text"
	phs, _ := placeholders(sql)
	got := inferTypes(sql, phs, []uint32{0, 0, 0, oidInt8}, 5)
	want := []uint32{oidInt4, oidFloat8, oidTimestamptz, oidInt8, oidText}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("$%d: %d, want %d", i+1, got[i], want[i])
		}
	}
}

func TestLiteral(t *testing.T) {
	be32 := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	num, _ := encodeNumeric("-1234.5600")
	for _, tc := range []struct {
		v    []byte
		oid  uint32
		f    int16
		want string
	}{
		{nil, oidInt4, 0, "CAST(NULL AS INTEGER)"},
		{[]byte("x' OR '1'='1"), oidUnknown, 0, `'x'' OR ''1''=''1'`},
		{[]byte("42"), oidInt4, 0, "CAST('42' AS INTEGER)"},
		{be32(42), oidInt4, 1, "CAST(42 AS INTEGER)"},
		{[]byte("12.50"), oidNumeric, 0, "(12.50)"},
		{num, oidNumeric, 1, "(-1234.5600)"},
		{[]byte(`\x00ff27`), oidBytea, 0, `CAST('\x00\xFF\x27' AS BLOB)`},
		{[]byte{0, 0, 0, 0}, oidDate, 1, "CAST('2000-01-01' AS DATE)"},
		{[]byte{1}, oidBool, 1, "true"},
	} {
		got, err := literal(tc.v, tc.oid, tc.f)
		if err != nil || got != tc.want {
			t.Errorf("literal(%q, %d, %d) = %q, %v; want %q", tc.v, tc.oid, tc.f, got, err, tc.want)
		}
	}
	for _, bad := range []struct {
		v   []byte
		oid uint32
		f   int16
	}{{[]byte("a\x00b"), oidText, 0}, {[]byte{0xff}, oidText, 0}, {[]byte{1, 2}, oidInt4, 1}, {[]byte("x"), 1007, 0}, {[]byte("x"), oidText, 7}} {
		if _, err := literal(bad.v, bad.oid, bad.f); err == nil {
			t.Errorf("literal(%q, %d, %d): no error", bad.v, bad.oid, bad.f)
		}
	}
}

func TestNumericRoundTrip(t *testing.T) {
	for _, s := range []string{"0", "1", "-1", "10000", "123456789012345678901234567890", "0.0001", "-0.00012300", "9999.9999", "NaN"} {
		b, err := encodeNumeric(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeNumeric(b)
		if err != nil || got != s {
			t.Errorf("%s -> %q, %v", s, got, err)
		}
	}
}

// FuzzLiteral: any parameter bytes of any type render as one closed SQL
// expression or an error, never a panic.
func FuzzLiteral(f *testing.F) {
	f.Add([]byte("x'y"), uint32(oidText), int16(0))
	f.Add([]byte{0, 2, 0, 0, 0, 0, 0, 2, 0, 1, 0, 2}, uint32(oidNumeric), int16(1))
	f.Add([]byte(`\x41`), uint32(oidBytea), int16(0))
	f.Add([]byte(`\101\\`), uint32(oidBytea), int16(0))
	f.Fuzz(func(t *testing.T, v []byte, oid uint32, format int16) {
		got, err := literal(v, oid, format)
		if err != nil {
			return
		}
		if !utf8.ValidString(got) || strings.IndexByte(got, 0) >= 0 {
			t.Fatalf("literal %q", got)
		}
		// The literal is one token sequence with its quotes balanced: no
		// value can end the string and continue as SQL.
		if _, semis, err := lexSQL(got); err != nil || len(semis) > 0 {
			t.Fatalf("literal %q: %v %v", got, semis, err)
		}
	})
}

// FuzzLexSQL: the statement scanner never panics and never reports a
// placeholder or semicolon outside the text.
func FuzzLexSQL(f *testing.F) {
	for _, s := range []string{"SELECT $1", "SELECT '$1';", "$a$ $1 $a$", "/* /* */ */ $2", "E'\\'' $3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		phs, semis, err := lexSQL(sql)
		if err != nil {
			return
		}
		for _, p := range phs {
			if p.start < 0 || p.end > len(sql) || sql[p.start] != '$' {
				t.Fatalf("bad placeholder %+v", p)
			}
		}
		for _, i := range semis {
			if sql[i] != ';' {
				t.Fatalf("bad semicolon at %d", i)
			}
		}
		splitStatements(sql)
	})
}
