package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stewardhq/steward"
)

func TestPrintTable(t *testing.T) {
	in := `{"columns":[{"name":"id","type":"INTEGER"},{"name":"name","type":"VARCHAR"},{"name":"amount","type":"DECIMAL(10,2)"}]}
[1,"Anna",12.5]
[22,"Bartholomew",null]
{"complete":{"rows":2}}
`
	var out bytes.Buffer
	if err := printTable(&out, strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	want := ` id |    name     | amount
----+-------------+--------
  1 | Anna        |   12.5
 22 | Bartholomew |
(2 rows)
`
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
	t.Run("error mid-stream", func(t *testing.T) {
		err := printTable(&out, strings.NewReader(`{"columns":[{"name":"a","type":"INTEGER"}]}
{"error":{"code":"invalid","sqlstate":"54000","message":"too many rows"}}
`))
		if err == nil || !strings.Contains(err.Error(), "54000") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestSQLLoop(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ran      []string
		failed   bool
	}{
		{"multi-line statements", "SELECT 1\n  , 2;\n\n-- a comment\nSELECT 3;\n", []string{"SELECT 1\n  , 2;\n", "SELECT 3;\n"}, false},
		{"last statement without semicolon", "SELECT 1;\nSELECT 2", []string{"SELECT 1;\n", "SELECT 2\n"}, false},
		{"quit", "SELECT 1;\n\\q\nSELECT 2;\n", []string{"SELECT 1;\n"}, false},
		{"list tables", "\\dt\n", []string{"SHOW TABLES"}, false},
		{"errors go on", "SELECT bad;\nSELECT 2;\n", []string{"SELECT bad;\n", "SELECT 2;\n"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ran []string
			run := func(_ context.Context, s string) error {
				ran = append(ran, s)
				if strings.Contains(s, "bad") {
					return &steward.Error{Kind: steward.EInvalid, Message: "syntax error (SQLSTATE 42601)"}
				}
				return nil
			}
			var out, errb bytes.Buffer
			err := sqlLoop(context.Background(), IO{Out: &out, Err: &errb}, newScanReader(strings.NewReader(tc.in)), run, false)
			if strings.Join(ran, "|") != strings.Join(tc.ran, "|") {
				t.Errorf("ran %q, want %q", ran, tc.ran)
			}
			var ee *exitError
			if tc.failed != errors.As(err, &ee) {
				t.Errorf("err %v", err)
			}
			if tc.failed && !strings.Contains(errb.String(), "ERROR: syntax error (SQLSTATE 42601)") {
				t.Errorf("stderr %q", errb.String())
			}
		})
	}
}

func TestHistory(t *testing.T) {
	home := t.TempDir()
	getenv := func(k string) string {
		if k == "STEWARD_HOME" {
			return filepath.Join(home, "steward")
		}
		return ""
	}
	p, err := historyFile(getenv)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 || filepath.Base(p) != "sql_history" {
		t.Fatalf("history file %s: %v %v", p, fi.Mode(), err)
	}
	tok := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
	for _, tc := range []struct {
		stmt string
		keep bool
	}{
		{"SELECT * FROM bank.crm.customers;", true},
		{"SELECT '" + tok + "';", false},
		{"SELECT 'opaque-token-123';", false},
	} {
		if got := keepInHistory(tc.stmt, "opaque-token-123"); got != tc.keep {
			t.Errorf("keepInHistory(%q) = %v", tc.stmt, got)
		}
	}
}

// TestTerminalHistory runs the interactive reader (fed from a pipe) and
// checks what reaches the history file.
func TestTerminalHistory(t *testing.T) {
	dir := t.TempDir()
	getenv := func(k string) string {
		if k == "STEWARD_HOME" {
			return dir
		}
		return ""
	}
	var out, errb bytes.Buffer
	stdio := IO{In: strings.NewReader("SELECT 1\n  + 1;\nSELECT 'tok-secret';\n\\q\n"), Out: &out, Err: &errb, Getenv: getenv}
	lr, err := newTerminalReader(stdio, "tok-secret")
	if err != nil {
		t.Fatal(err)
	}
	var ran []string
	err = sqlLoop(context.Background(), stdio, lr, func(_ context.Context, s string) error { ran = append(ran, s); return nil }, true)
	lr.Close()
	if err != nil || len(ran) != 2 {
		t.Fatalf("ran %q, %v", ran, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "sql_history"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); !strings.Contains(got, "SELECT 1 + 1;") || strings.Contains(got, "tok-secret") {
		t.Fatalf("history %q", got)
	}
}
