package ranger

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/policy"
)

func TestImportReportsEveryApproximation(t *testing.T) {
	_, results := importFiles(t, "s3_hdfs_export.json", "hive_trino_export.json", "tag_export.json")
	var all []Issue
	imported := 0
	for _, r := range results {
		all = append(all, r.Report...)
		imported += len(r.Policies)
	}
	if imported != 21 {
		t.Errorf("imported %d policies, want 21", imported)
	}
	want := []struct {
		id, field, contains string
		sev                 Severity
	}{
		{"11", "policyItems[0]", `"execute": HDFS execute`, SeverityWarning},
		{"11", "policyItems[1]", "delegateAdmin", SeverityWarning},
		{"31", "policyItems[0]", `"read_acl"`, SeverityWarning},
		{"31", "policyItems[0]", "accessed-after-expiry", SeverityWarning},
		{"31", "policyItems", "no allow or deny items remain", SeverityError},
		{"32", "resources.volume", `no volume is the S3 volume "s3v"`, SeverityError},
		{"101", "policyItems[1]", `"index"`, SeverityWarning},
		{"101", "policyItems[1]", `"lock"`, SeverityWarning},
		{"107", "resources", "resource udf of a hive service", SeverityError},
		{"108", "resources", "resource url of a hive service", SeverityError},
		{"204", "resources", "resource trinouser of a trino service", SeverityError},
		{"302", "denyPolicyItems[0]", "applies without it (denies more)", SeverityWarning},
	}
	for _, w := range want {
		found := false
		for _, is := range all {
			if is.PolicyID == w.id && is.Field == w.field && is.Severity == w.sev && strings.Contains(is.Message, w.contains) {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s issue for policy %s %s containing %q; report:\n%s", w.sev, w.id, w.field, w.contains, reportString(all))
		}
	}
	if len(all) != len(want)+4 { // + three more HDFS execute warnings and the admin-vol warning
		t.Errorf("report has %d issues, want %d:\n%s", len(all), len(want)+4, reportString(all))
	}
	skipped := 0
	for _, r := range results {
		skipped += r.Skipped
		if len(r.Errors()) != r.Skipped {
			t.Errorf("Errors() = %d, Skipped = %d", len(r.Errors()), r.Skipped)
		}
	}
	if skipped != 5 {
		t.Errorf("skipped %d, want 5", skipped)
	}
}

func reportString(is []Issue) string {
	var b strings.Builder
	for _, i := range is {
		b.WriteString(i.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func TestImportMapping(t *testing.T) {
	cases := []struct {
		name  string
		json  string
		opts  Options
		check func(t *testing.T, p *policy.Policy)
		issue string // substring of the single expected issue ("" none)
	}{
		{name: "hdfs root recursive", json: `[{"id":1,"service":"h","serviceType":"hdfs","resources":{"path":{"values":["/"],"isRecursive":true}},"policyItems":[{"accesses":[{"type":"read","isAllowed":true}],"users":["a"]}]}]`,
			check: func(t *testing.T, p *policy.Policy) {
				eq(t, p.Resources.Paths, "s3://*")
				eqb(t, p.Resources.Recursive, true)
			}},
		{name: "hdfs path bucket", json: `[{"id":1,"service":"h","serviceType":"hdfs","resources":{"path":{"values":["/data/x*"]}},"policyItems":[{"accesses":[{"type":"read"}],"users":["a"]}]}]`,
			opts:  Options{PathBucket: "lake"},
			check: func(t *testing.T, p *policy.Policy) { eq(t, p.Resources.Paths, "s3://lake/data/x*/**") }},
		{name: "hdfs excludes", json: `[{"id":1,"service":"h","serviceType":"hdfs","resources":{"path":{"values":["/secret"],"isExcludes":true,"isRecursive":true}},"policyItems":[{"accesses":[{"type":"read"}],"users":["a"]}]}]`,
			check: func(t *testing.T, p *policy.Policy) {
				eq(t, p.Resources.Paths, "s3://*")
				eq(t, p.Resources.Excludes, "s3://secret/**")
			}},
		{name: "middle wildcard warns", json: `[{"id":1,"service":"h","serviceType":"hdfs","resources":{"path":{"values":["/a/*/c"]}},"policyItems":[{"accesses":[{"type":"read"}],"users":["a"]}]}]`,
			issue: "matches one path segment in Steward"},
		{name: "trino catalog only", json: `[{"id":1,"service":"t","serviceType":"trino","resources":{"catalog":{"values":["*"]},"schema":{"values":["*"]},"table":{"values":["*"]},"column":{"values":["*"]}},"policyItems":[{"accesses":[{"type":"all"}],"groups":["admins"]}]}]`,
			check: func(t *testing.T, p *policy.Policy) { eq(t, p.Resources.Tables, "**") }},
		{name: "hive table exclude", json: `[{"id":1,"service":"h","serviceType":"hive","resources":{"database":{"values":["crm"]},"table":{"values":["secrets"],"isExcludes":true},"column":{"values":["*"]}},"policyItems":[{"accesses":[{"type":"select"}],"groups":["g"]}]}]`,
			opts: Options{HiveCatalog: "hms"},
			check: func(t *testing.T, p *policy.Policy) {
				eq(t, p.Resources.Tables, "hms.crm.*")
				eq(t, p.Resources.Excludes, "hms.crm.secrets")
			}},
		{name: "no service type inferred", json: `[{"id":1,"service":"x","resources":{"database":{"values":["d"]},"table":{"values":["t"]}},"policyItems":[{"accesses":[{"type":"select"}],"groups":["g"]}]}]`,
			check: func(t *testing.T, p *policy.Policy) { eq(t, p.Resources.Tables, "hive.d.t") }},
		{name: "string id and owner macro", json: `[{"id":"abc","service":"x","serviceType":"hive","resources":{"database":{"values":["d"]}},"policyItems":[{"accesses":[{"type":"select"}],"users":["{OWNER}","bo"]}]}]`,
			check: func(t *testing.T, p *policy.Policy) {
				if p.ID != "ranger-x-abc" {
					t.Errorf("id %q", p.ID)
				}
				eq(t, p.Allow[0].Users, "bo")
			},
			issue: `user "{OWNER}"`},
		{name: "deny item with unknown condition kept", json: `[{"id":1,"service":"x","serviceType":"hive","resources":{"database":{"values":["d"]}},"denyPolicyItems":[{"accesses":[{"type":"select"}],"users":["bo"],"conditions":[{"type":"expression","values":["x"]}]}]}]`,
			check: func(t *testing.T, p *policy.Policy) { eq(t, p.Deny[0].Users, "bo") },
			issue: "denies more"},
		{name: "unknown row filter macro", json: `[{"id":1,"service":"x","serviceType":"hive","policyType":2,"resources":{"database":{"values":["d"]},"table":{"values":["t"]}},"rowFilterPolicyItems":[{"users":["bo"],"rowFilterInfo":{"filterExpr":"dept = ${{UGA.dept}}"}}]}]`,
			check: func(t *testing.T, p *policy.Policy) {
				if p.RowFilters[0].Filter != "1 = 0" {
					t.Errorf("filter %q", p.RowFilters[0].Filter)
				}
			},
			issue: "replaced by 1 = 0"},
		{name: "custom mask without col", json: `[{"id":1,"service":"x","serviceType":"hive","policyType":1,"resources":{"database":{"values":["d"]},"table":{"values":["t"]},"column":{"values":["c"]}},"dataMaskPolicyItems":[{"groups":["public"],"dataMaskInfo":{"dataMaskType":"CUSTOM","valueExpr":"'***'"}}]}]`,
			check: func(t *testing.T, p *policy.Policy) {
				if !strings.Contains(p.Masks[0].Expr, "{col}") {
					t.Errorf("expr %q", p.Masks[0].Expr)
				}
			},
			issue: "does not use {col}"},
		{name: "recurrence skipped", json: `[{"id":1,"service":"x","serviceType":"hive","resources":{"database":{"values":["d"]}},"policyItems":[{"accesses":[{"type":"select"}],"users":["a"]}],"validitySchedules":[{"startTime":"2025/01/01 00:00:00","recurrences":[{"schedule":{"hour":"9"}}]}]}]`,
			issue: "recurring validity schedules"},
		{name: "bad time", json: `[{"id":1,"service":"x","serviceType":"hive","resources":{"database":{"values":["d"]}},"policyItems":[{"accesses":[{"type":"select"}],"users":["a"]}],"validitySchedules":[{"startTime":"2025-01-01"}]}]`,
			issue: "yyyy/MM/dd HH:mm:ss"},
		{name: "wrong field type", json: `[{"id":1,"service":"x","policyType":"x"}]`, issue: `field "policyType"`},
		{name: "contradiction rejected by compile", json: `[{"id":1,"service":"x","serviceType":"hive","resources":{"database":{"values":["d"]}},"policyItems":[{"accesses":[{"type":"select"}],"users":["a"]}],"denyPolicyItems":[{"accesses":[{"type":"select"}],"users":["a"]}]}]`,
			issue: "not valid"},
		{name: "export object shape", json: `{"metaDataInfo":{},"policies":[{"id":1,"service":"x","serviceType":"tag","resources":{"tag":{"values":["PII"]}},"denyPolicyItems":[{"accesses":[{"type":"trino:select"}],"groups":["public"]}]}]}`,
			check: func(t *testing.T, p *policy.Policy) { eq(t, []string{p.Tags[0].Name}, "PII") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Import(strings.NewReader(tc.json), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if tc.issue == "" && len(res.Report) > 0 {
				t.Fatalf("unexpected issues:\n%s", reportString(res.Report))
			}
			if tc.issue != "" && (len(res.Report) != 1 || !strings.Contains(res.Report[0].Message, tc.issue)) {
				t.Fatalf("want one issue containing %q, got:\n%s", tc.issue, reportString(res.Report))
			}
			if tc.check != nil {
				if len(res.Policies) != 1 {
					t.Fatalf("imported %d policies", len(res.Policies))
				}
				tc.check(t, res.Policies[0])
			}
		})
	}
}

func eq(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("got %q, want %q", got, want)
	}
}

func eqb(t *testing.T, got, want bool) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestImportRejectsBadInput(t *testing.T) {
	cases := []struct {
		name, in, want string
		kind           steward.ErrorKind
	}{
		{"empty", "  ", "empty", steward.EInvalid},
		{"syntax", "[{\"id\": 1,\n \"name\": }]", "line 2, column 11", steward.EInvalid},
		{"scalar", "42", "must be a JSON array", steward.EInvalid},
		{"no policies", `{"services": []}`, `no "policies" list`, steward.EInvalid},
		{"policies not list", `{"policies": {"a": 1}}`, `"policies" is not a list`, steward.EInvalid},
		{"too large", "[" + strings.Repeat(" ", MaxInputSize) + "]", "larger than", steward.ETooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Import(strings.NewReader(tc.in), Options{})
			if err == nil || !strings.Contains(steward.MessageOf(err), tc.want) || steward.KindOf(err) != tc.kind {
				t.Fatalf("err = %v, want %s containing %q", err, tc.kind, tc.want)
			}
		})
	}
}

func FuzzImport(f *testing.F) {
	for _, n := range []string{"s3_hdfs_export.json", "hive_trino_export.json", "tag_export.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`[{"id":1,"resources":{"path":{"values":["/a/*/b*"],"isExcludes":true}},"policyItems":[{"accesses":[{"type":"read"}],"users":["{USER}"],"conditions":[{"type":"ip-range","values":["10.*","::1"]}]}]}]`))
	f.Add([]byte(`{"policies":[null, 1, "x", {"id":"a/b","policyType":1,"resources":{"catalog":{"values":["*"]},"schema":{"values":["s"],"isExcludes":true},"table":{"values":["*"]},"column":{"values":["c"]}},"dataMaskPolicyItems":[{"groups":["g"],"dataMaskInfo":{"dataMaskType":"tag:CUSTOM","valueExpr":"{col}{"}}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Import(bytes.NewReader(data), Options{})
		if err != nil {
			return
		}
		for _, p := range res.Policies {
			if _, err := policy.Compile([]*policy.Policy{p}, policy.Options{}); err != nil {
				t.Fatalf("imported policy %s does not compile: %v", p.ID, err)
			}
		}
		if _, err := policy.Compile(res.Policies, policy.Options{}); err != nil {
			t.Fatalf("imported policies do not compile together: %v", err)
		}
	})
}
