package duckdb

import (
	"strings"
	"testing"
)

// FuzzCatalogRewrite feeds the text rewriting of catalog queries
// (untrusted SQL from any client): it must not panic, must keep every
// literal and quoted name it does not rewrite, and segments must cover the
// input exactly.
func FuzzCatalogRewrite(f *testing.F) {
	for _, s := range []string{
		`SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(people)$' COLLATE pg_catalog.default`,
		`SELECT 'pg_class'::pg_catalog.regclass, E'a\'b', "pg_catalog".pg_type, x::pg_catalog.text -- pg_catalog.x`,
		`SELECT * FROM pg_catalog.generate_series(0, pg_catalog.array_upper(a::pg_catalog.int2[], 1)) s, pg_attribute WHERE attnum = a[s]`,
		`SELECT /* 'x */ 1 FROM information_schema.tables WHERE "a""b" = 'c''d'`,
		`'unterminated`, `"unterminated`, `/* unterminated`, `E'\`, `FROM generate_series(`,
		`SELECT 'a'::regclass`, ``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		var b strings.Builder
		for _, s := range segments(sql) {
			b.WriteString(s.text)
		}
		if b.String() != sql {
			t.Fatalf("segments lose text: %q -> %q", sql, b.String())
		}
		out := unqualify(pgSyntax(sql), func(string) int64 { return 1 })
		for _, s := range segments(sql) {
			if !s.code && strings.HasPrefix(s.text, "'") && len(s.text) > 2 && !strings.Contains(sql, "regclass") &&
				!strings.Contains(strings.ToLower(sql), "collate") && !strings.Contains(out, s.text) {
				t.Fatalf("literal %q lost: %q -> %q", s.text, sql, out)
			}
		}
	})
}

func TestUnqualify(t *testing.T) {
	rel := func(name string) int64 {
		if name == "pg_class" {
			return 1259
		}
		return 0
	}
	for _, tc := range []struct{ in, want string }{
		{`SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(a)$' COLLATE pg_catalog.default`,
			`SELECT c.relname FROM pg_class c WHERE c.relname  ~  '^(a)$' `},
		{`SELECT d.classoid = 'pg_class'::regclass, 'x'::pg_catalog.regclass, x::pg_catalog.text`, `SELECT d.classoid = 1259, 0, x::text`},
		{`SELECT 'pg_catalog.x' FROM "pg_catalog".pg_type, information_schema.tables`, `SELECT 'pg_catalog.x' FROM pg_type, tables`},
		{`SELECT 1 FROM pg_catalog.generate_series(0, array_upper(a, 1)) s, t WHERE a[s] = 1`, `SELECT 1 FROM generate_series(0, array_upper(a, 1)) s(s), t WHERE a[s] = 1`},
		{`SELECT 1 FROM generate_series(1, 2) AS g(i) WHERE true`, `SELECT 1 FROM generate_series(1, 2) AS g(i) WHERE true`},
		{`SELECT 1 FROM generate_series(1, 2) WHERE true`, `SELECT 1 FROM generate_series(1, 2) WHERE true`},
	} {
		if got := unqualify(pgSyntax(tc.in), rel); got != tc.want {
			t.Errorf("%s\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}
