package metastore

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestRebind(t *testing.T) {
	cases := []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"a = ? AND b = ?", "a = $1 AND b = $2"},
		{"'?' ?", "'?' $1"},
		{`"a?" ?`, `"a?" $1`},
		{"'it''s?' ?", "'it''s?' $1"},
		{"? -- ?\n?", "$1 -- ?\n$2"},
		{"? -- ? no newline", "$1 -- ? no newline"},
		{"? /* ? */ ?", "$1 /* ? */ $2"},
		{"? /*/ ? */ ?", "$1 /*/ ? */ $2"},
		{"? 'unterminated ?", "$1 'unterminated ?"},
		{"? /* unterminated ?", "$1 /* unterminated ?"},
		{"a-?-b", "a-$1-b"},
		{"a/?/b", "a/$1/b"},
		{"??", "$1$2"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			if got := rebind(Postgres, tc.in); got != tc.want {
				t.Fatalf("rebind(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if got := rebind(SQLite, tc.in); got != tc.in {
				t.Fatalf("rebind for SQLite changed %q to %q", tc.in, got)
			}
		})
	}
}

// quotedOrComment matches, leftmost first, the spans in which rebind leaves
// '?' alone.
var quotedOrComment = regexp.MustCompile(`'[^']*'|"[^"]*"|--[^\n]*|/\*(?s:.*?)\*/`)

// refRebind is an independent formulation of rebind: spans matched by the
// regular expression are kept; in the text between them the first opener
// that did not match starts an unterminated span that runs to the end.
func refRebind(q string) (string, int) {
	var b strings.Builder
	n := 0
	plain := func(s string) {
		for _, c := range []byte(s) {
			if c == '?' {
				n++
				b.WriteString("$" + strconv.Itoa(n))
			} else {
				b.WriteByte(c)
			}
		}
	}
	pos := 0
	spans := append(quotedOrComment.FindAllStringIndex(q, -1), []int{len(q), len(q)})
	for _, m := range spans {
		gap := q[pos:m[0]]
		cut := -1
		for _, opener := range []string{"'", `"`, "/*", "--"} {
			if i := strings.Index(gap, opener); i >= 0 && (cut < 0 || i < cut) {
				cut = i
			}
		}
		if cut >= 0 {
			plain(gap[:cut])
			b.WriteString(q[pos+cut:])
			return b.String(), n
		}
		plain(gap)
		b.WriteString(q[m[0]:m[1]])
		pos = m[1]
	}
	return b.String(), n
}

func FuzzRebind(f *testing.F) {
	for _, s := range []string{
		"SELECT ?", "'?' ?", `"?" ?`, "'it''s' ?", "-- ?\n?", "/* ? */ ?", "/*/ ? */?",
		"? 'open", "? /* open", "a-?-b", "a/?/b", "/'x'*?*/", "-'x'-?", "$1 ?", "",
		"INSERT INTO t (a, b) VALUES (?, ?) ON CONFLICT (a) DO UPDATE SET b = excluded.b WHERE t.b <> '?'",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		if got := rebind(SQLite, q); got != q {
			t.Fatalf("rebind for SQLite changed %q to %q", q, got)
		}
		got := rebind(Postgres, q)
		want, n := refRebind(q)
		if got != want {
			t.Fatalf("rebind(%q) = %q, want %q", q, got, want)
		}
		if c := strings.Count(got, "?"); c != strings.Count(q, "?")-n {
			t.Fatalf("rebind(%q) left %d '?', want %d", q, c, strings.Count(q, "?")-n)
		}
		if n > 0 && !strings.Contains(got, "$"+strconv.Itoa(n)) {
			t.Fatalf("rebind(%q) = %q has no $%d", q, got, n)
		}
	})
}
