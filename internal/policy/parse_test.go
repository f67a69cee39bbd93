package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward"
)

func TestParseExamples(t *testing.T) {
	for _, name := range []string{"example.yaml", "example.json"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			ps, err := ParseFile(name, data)
			if err != nil {
				t.Fatalf("ParseFile: %v", err)
			}
			if _, err := Compile(ps, Options{Version: 1}); err != nil {
				t.Fatalf("Compile: %v", err)
			}
		})
	}
}

// TestExampleSemantics checks that the documented example means what
// FORMAT.md says it means.
func TestExampleSemantics(t *testing.T) {
	data, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := ParseFile("example.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	e := mustCompile(t, ps...)
	wed := time.Date(2025, 6, 4, 10, 0, 0, 0, time.UTC)
	sat := time.Date(2025, 6, 7, 10, 0, 0, 0, time.UTC)
	tbl := func(user string, groups []string, col string, tags ...Tag) *Request {
		return &Request{User: user, Groups: groups, Access: AccessSelect, Time: wed, Tags: tags,
			Resource: Resource{Kind: ResourceTable, Name: "bank.core.customers", Column: col}}
	}
	tests := []struct {
		name    string
		req     *Request
		allowed bool
		policy  string
		mask    MaskType
		filter  string
	}{
		{"analyst reads sales", obj("ann", []string{"sales-analysts"}, AccessRead, "data/sales/2025/a.csv"), true, "sales-read", "", ""},
		{"excluded prefix", obj("ann", []string{"sales-analysts"}, AccessRead, "data/sales/restricted/a.csv"), false, "", "", ""},
		{"intern excepted", obj("intern-bob", []string{"sales-analysts"}, AccessRead, "data/sales/a.csv"), false, "", "", ""},
		{"own home", obj("ann", nil, AccessDelete, "home/ann/x"), true, "home", "", ""},
		{"treasury outside network", withIP(obj("tom", []string{"treasury"}, AccessRead, "treasury/a"), "192.168.0.1"), false, "treasury-lockdown", "", ""},
		{"treasury inside network on a weekday", withIP(obj("tom", []string{"treasury"}, AccessRead, "treasury/a"), "10.20.1.1"), true, "treasury-lockdown", "", ""},
		{"PII denied", tagged(obj("ann", []string{"sales-analysts"}, AccessRead, "data/sales/a.csv"), Tag{Name: "PII"}), false, "pii-deny", "", ""},
		{"PII allowed to the privacy office", tagged(obj("pia", []string{"sales-analysts", "privacy-office"}, AccessRead, "data/sales/a.csv"), Tag{Name: "PII"}), true, "sales-read", "", ""},
		{"time-bound grant inside", tbl("dave", nil, "ssn"), true, "grant-1234", MaskHash, "region IN (NULL) OR owner = 'dave'"},
		{"time-bound grant table level has row filter", tbl("dave", []string{"emea"}, ""), true, "grant-1234", "", "region IN ('emea') OR owner = 'dave'"},
		{"etl on the weekend", &Request{User: "job", Roles: []string{"etl"}, Access: AccessWrite, Time: sat, Resource: Resource{Kind: ResourceDataset, Name: "finance.gl"}}, true, "batch-window", "", ""},
		{"etl on a weekday", &Request{User: "job", Roles: []string{"etl"}, Access: AccessWrite, Time: wed, Resource: Resource{Kind: ResourceDataset, Name: "finance.gl"}}, false, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.req.Time.IsZero() {
				tc.req.Time = wed
			}
			var d Decision
			e.Decide(tc.req, &d)
			var mask MaskType
			if len(d.Masks) > 0 {
				mask = d.Masks[0].Type
			}
			if d.Allowed != tc.allowed || d.PolicyID != tc.policy || mask != tc.mask || strings.Join(d.RowFilters, " AND ") != tc.filter {
				t.Errorf("got %v %q mask %q filters %q; want %v %q %q %q\n%s", d.Allowed, d.PolicyID, mask, d.RowFilters, tc.allowed, tc.policy, tc.mask, tc.filter, explainText(e.Explain(tc.req)))
			}
		})
	}
}

func TestParseBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".err")
			if err != nil {
				t.Fatal(err)
			}
			ps, err := ParseFile("policies.yaml", data)
			if err == nil {
				t.Fatalf("ParseFile accepted it")
			}
			if ps != nil {
				t.Errorf("ParseFile returned policies with an error")
			}
			if steward.KindOf(err) != steward.EInvalid {
				t.Errorf("kind = %s", steward.KindOf(err))
			}
			msg := steward.MessageOf(err)
			if w := strings.TrimSpace(string(want)); !strings.HasPrefix(msg, w) {
				t.Errorf("message:\n got %s\nwant %s...", msg, w)
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	_, err := ParseFile("big.yaml", make([]byte, MaxFileSize+1))
	if steward.KindOf(err) != steward.ETooLarge || !strings.Contains(steward.MessageOf(err), "big.yaml") {
		t.Fatalf("err = %v", err)
	}
}

// TestParseDeepNesting: deeply nested files are refused before the YAML
// parser, whose time grows much faster than the nesting, sees them.
func TestParseDeepNesting(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
	}{
		{"open brackets", strings.Repeat("[", 100_000), "brackets nested more than 64 deep"},
		{"balanced brackets", "policies: " + strings.Repeat("[", 65) + strings.Repeat("]", 65), "brackets nested more than 64 deep"},
		{"flow mappings", strings.Repeat("{a: ", 100_000), "brackets nested more than 64 deep"},
		{"compact sequences", "policies:\n" + strings.Repeat("- ", 100_000) + "x", "line 2: indented or nested more than 256 columns"},
		{"indentation", "policies:\n" + strings.Repeat(" ", 300) + "- x", "line 2: indented or nested more than 256 columns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFile("deep.yaml", []byte(tc.data))
			if steward.KindOf(err) != steward.EInvalid || !strings.Contains(steward.MessageOf(err), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	// Nesting within the limits is left to the parser.
	ok := "policies:\n  - id: p\n    resources: {paths: [\"s3://a/**\"]}\n    allow: [{groups: [g], accesses: [read]}]\n"
	if _, err := ParseFile("ok.yaml", []byte(ok)); err != nil {
		t.Fatalf("flow style within the limits: %v", err)
	}
}

func FuzzParseFile(f *testing.F) {
	for _, g := range []string{"testdata/example.yaml", "testdata/example.json", "testdata/bad/*.yaml"} {
		files, _ := filepath.Glob(g)
		for _, name := range files {
			data, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte("policies: []"))
	// Deep nesting, refused before parsing (see TestParseDeepNesting).
	f.Add([]byte("policies: " + strings.Repeat("[", 70)))
	f.Add([]byte("policies:\n" + strings.Repeat("- ", 130) + "x"))
	f.Add([]byte("policies:\n  - id: x\n    tags: [{classification: '>= C3'}]\n    deny: [{groups: [public], accesses: [all]}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := ParseFile("fuzz.yaml", data)
		if err != nil {
			if ps != nil {
				t.Fatal("policies returned with an error")
			}
			var se *steward.Error
			if !asError(err, &se) {
				t.Fatalf("not a *steward.Error: %v", err)
			}
			return
		}
		e, err := Compile(ps, Options{})
		if err != nil {
			t.Fatalf("ParseFile accepted what Compile rejects: %v", err)
		}
		var d Decision
		for _, r := range []*Request{
			obj("alice", []string{"a"}, AccessRead, "a/b/c"),
			{User: "bob", Access: AccessSelect, Resource: Resource{Kind: ResourceTable, Name: "a.b.c", Column: "x"}, Tags: []Tag{{Name: "PII"}}, Classification: C4},
		} {
			e.Decide(r, &d)
			_ = e.Explain(r)
		}
	})
}
