package ranger

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/policy"
)

// importFiles imports the testdata exports and compiles them together.
func importFiles(t *testing.T, names ...string) (*policy.Engine, []*Result) {
	t.Helper()
	var all []*policy.Policy
	var results []*Result
	for _, n := range names {
		f, err := os.Open(filepath.Join("testdata", n))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		res, err := Import(f, Options{})
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		all = append(all, res.Policies...)
		results = append(results, res)
	}
	e, err := policy.Compile(all, policy.Options{Version: 1})
	if err != nil {
		t.Fatalf("compile imported policies: %v", err)
	}
	return e, results
}

func obj(p string) policy.Resource { return policy.Resource{Kind: policy.ResourceObject, Path: p} }

func tbl(name, col string) policy.Resource {
	return policy.Resource{Kind: policy.ResourceTable, Name: name, Column: col}
}

// TestRangerDecisions imports the three testdata exports and checks that
// the compiled engine decides as Ranger would. Expected outcomes were
// written from Apache Ranger's documented policy-evaluation semantics
// (Ranger wiki "Deny-conditions and excludes in Ranger policies", "Policy
// priority", "Tag based policies", "Row-level filtering and column
// masking"), not by running Ranger.
func TestRangerDecisions(t *testing.T) {
	e, _ := importFiles(t, "s3_hdfs_export.json", "hive_trino_export.json", "tag_export.json")
	feb := time.Date(2025, 2, 1, 12, 0, 0, 0, time.UTC)
	office := netip.MustParseAddr("10.20.3.4")
	home := netip.MustParseAddr("172.16.0.9")
	cases := []struct {
		name     string
		user     string
		groups   []string
		access   policy.Access
		res      policy.Resource
		tags     []string
		at       time.Time
		ip       netip.Addr
		allow    bool
		mask     policy.MaskType // expected mask of the column ("" none)
		filter   string          // expected row filter ("" none)
		policyID string          // expected deciding policy ("" any)
		reason   string          // Ranger semantics behind the outcome
	}{
		// Path services.
		{name: "hdfs allow item", user: "ann", groups: []string{"analysts"}, access: policy.AccessRead, res: obj("datalake/sales/2024/jan.csv"),
			allow: true, policyID: "ranger-cm_hdfs-11", reason: "policyItems grant read to group analysts on a recursive path"},
		{name: "hdfs deny item beats allow item", user: "intern1", groups: []string{"data-engineers"}, access: policy.AccessWrite, res: obj("datalake/sales/x.csv"),
			allow: false, policyID: "ranger-cm_hdfs-11", reason: "denyPolicyItems are evaluated before policyItems; deny wins"},
		{name: "hdfs allow exception", user: "contractor7", groups: []string{"analysts"}, access: policy.AccessRead, res: obj("datalake/sales/x.csv"),
			allow: false, reason: "allowExceptions remove the user from the allow; nothing else allows: default deny"},
		{name: "hdfs USER macro own home", user: "alice", access: policy.AccessRead, res: obj("user/alice/notes.txt"),
			allow: true, policyID: "ranger-cm_hdfs-12", reason: "{USER} in path and users matches the requesting user"},
		{name: "hdfs USER macro other home", user: "alice", access: policy.AccessRead, res: obj("user/bob/notes.txt"),
			allow: false, reason: "/user/{USER} expands to /user/alice only"},
		{name: "override with ip condition allows", user: "fin", groups: []string{"finance"}, access: policy.AccessRead, res: obj("datalake/finance/q1.csv"), ip: office,
			allow: true, policyID: "ranger-cm_hdfs-13", reason: "ip-range condition 10.20.* holds"},
		{name: "deny all else outside the network", user: "fin", groups: []string{"finance"}, access: policy.AccessRead, res: obj("datalake/finance/q1.csv"), ip: home,
			allow: false, policyID: "ranger-cm_hdfs-13", reason: "isDenyAllElse denies every access the allow items do not grant"},
		{name: "override deny-all-else beats normal time-bound allow", user: "auditor", access: policy.AccessRead, res: obj("datalake/finance/q1.csv"), at: feb,
			allow: false, policyID: "ranger-cm_hdfs-13", reason: "override-priority policies are evaluated first and determine the result"},
		{name: "validity schedule active", user: "auditor", access: policy.AccessRead, res: obj("datalake/sales/q1.csv"), at: feb,
			allow: true, policyID: "ranger-cm_hdfs-14", reason: "validitySchedules 2025/01/01-2025/03/31 Europe/Amsterdam include the time"},
		{name: "validity schedule expired", user: "auditor", access: policy.AccessRead, res: obj("datalake/sales/q1.csv"), at: time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC),
			allow: false, reason: "a policy outside its validity schedule does not apply"},
		{name: "disabled policy", user: "bob", groups: []string{"staff"}, access: policy.AccessWrite, res: obj("tmp/x"),
			allow: false, reason: "isEnabled=false policies are not evaluated"},
		{name: "s3 deny item", user: "dana", groups: []string{"data-scientists"}, access: policy.AccessDelete, res: obj("ml-features/a.parquet"),
			allow: false, policyID: "ranger-ceph_s3-21", reason: "deny on delete for data-scientists"},
		{name: "s3 deny exception then another policy allows", user: "ml-lead", groups: []string{"data-scientists"}, access: policy.AccessDelete, res: obj("ml-features/scratch/tmp.parquet"),
			allow: true, policyID: "ranger-ceph_s3-22", reason: "denyExceptions cancel the deny; policy 22 allows delete under scratch/"},
		{name: "deny exception does not grant", user: "ml-lead", groups: []string{"data-scientists"}, access: policy.AccessDelete, res: obj("ml-features/a.parquet"),
			allow: false, reason: "a deny exception only cancels a deny; without an allow the default is deny"},
		{name: "s3 role grant", user: "rita", access: policy.AccessRead, res: obj("ml-features/f/part-0.parquet"),
			allow: false, reason: "roles are matched from the request; rita has none"},
		{name: "s3 isAllowed false is not granted", user: "feature-pipeline", access: policy.AccessDelete, res: obj("ml-features/a.parquet"),
			allow: false, reason: "an access with isAllowed=false grants nothing"},

		// SQL services.
		{name: "hive db wildcard table", user: "ann", groups: []string{"analysts"}, access: policy.AccessSelect, res: tbl("hive.crm.orders", "amount"),
			allow: true, policyID: "ranger-cm_hive-101", reason: "database crm, table *, column * matches every column"},
		{name: "hive table * matches database-level request", user: "ann", groups: []string{"analysts"}, access: policy.AccessSelect, res: tbl("hive.crm", ""),
			allow: true, policyID: "ranger-cm_hive-101", reason: "a request that stops at the database matches table=* column=* policies"},
		{name: "hive group deny", user: "ivan", groups: []string{"interns", "analysts"}, access: policy.AccessSelect, res: tbl("hive.crm.orders", "amount"),
			allow: false, policyID: "ranger-cm_hive-101", reason: "deny over allow"},
		{name: "hive deny exception", user: "intern-lead", groups: []string{"interns", "analysts"}, access: policy.AccessSelect, res: tbl("hive.crm.orders", "amount"),
			allow: true, policyID: "ranger-cm_hive-101", reason: "denyExceptions cancel the deny; the allow item applies"},
		{name: "hive column policy allows listed column", user: "sue", groups: []string{"support"}, access: policy.AccessSelect, res: tbl("hive.crm.payments", "status"),
			allow: true, policyID: "ranger-cm_hive-102", reason: "column in the policy's column list"},
		{name: "hive column policy other column", user: "sue", groups: []string{"support"}, access: policy.AccessSelect, res: tbl("hive.crm.payments", "card_number"),
			allow: false, reason: "column not in the policy's column list"},
		{name: "hive excludes: other database", user: "auditor", access: policy.AccessSelect, res: tbl("hive.sales.orders", "id"),
			allow: true, policyID: "ranger-cm_hive-103", reason: "isExcludes on database matches every database but hr and crm"},
		{name: "hive excludes: excluded database", user: "auditor", access: policy.AccessSelect, res: tbl("hive.hr.salaries", "amount"),
			allow: false, reason: "hr is excluded"},
		{name: "masking first matching item", user: "ann", groups: []string{"analysts"}, access: policy.AccessSelect, res: tbl("hive.crm.customers", "email"),
			allow: true, mask: policy.MaskHash, filter: "account_manager = 'ann'", reason: "first matching dataMaskPolicyItem (analysts: MASK_HASH); row filter ${{USER}}"},
		{name: "masking item order decides", user: "sam", groups: []string{"analysts", "support"}, access: policy.AccessSelect, res: tbl("hive.crm.customers", "email"),
			allow: true, mask: policy.MaskShowLast4, filter: "country = 'NL'", reason: "support's item comes before analysts' in both policies; the first match wins"},
		{name: "masking date show year", user: "ann", groups: []string{"analysts"}, access: policy.AccessSelect, res: tbl("hive.crm.customers", "birth_date"),
			allow: true, mask: policy.MaskDateShowYear, filter: "account_manager = 'ann'", reason: "MASK_DATE_SHOW_YEAR for analysts"},
		{name: "trino catalog schema table", user: "ann", groups: []string{"analysts"}, access: policy.AccessSelect, res: tbl("lakehouse.sales.orders", "amount"),
			allow: true, filter: "region IN (SELECT region FROM lakehouse.ref.user_regions WHERE user_name = current_user)", reason: "trino select on lakehouse.sales.*; row filter for analysts"},
		{name: "trino show on schema", user: "ann", groups: []string{"analysts"}, access: policy.AccessDiscover, res: tbl("lakehouse.sales", ""),
			allow: true, policyID: "ranger-starburst_trino-201", reason: "show on table=* matches the schema-level request"},
		{name: "trino insert", user: "etl", access: policy.AccessWrite, res: tbl("lakehouse.sales.customers", ""),
			allow: true, policyID: "ranger-starburst_trino-201", reason: "insert granted to etl"},
		{name: "trino deny exception does not grant", user: "dba", access: policy.AccessDelete, res: tbl("lakehouse.sales.orders", ""),
			allow: false, reason: "the deny exception for dba cancels the deny; nothing allows drop"},
		{name: "override allow beats normal deny", user: "oncall", access: policy.AccessDelete, res: tbl("lakehouse.sales.orders", ""), at: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
			allow: true, policyID: "ranger-starburst_trino-202", reason: "policyPriority 1 (override) determines before normal deny policies"},
		{name: "override expired", user: "oncall", access: policy.AccessDelete, res: tbl("lakehouse.sales.orders", ""), at: time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC),
			allow: false, policyID: "ranger-starburst_trino-203", reason: "outside validity the override does not apply; public deny on drop"},

		// Tag services.
		{name: "tag deny beats resource allow", user: "ann", groups: []string{"analysts"}, access: policy.AccessSelect, res: tbl("hive.crm.customers", "email"), tags: []string{"PII"},
			allow: false, policyID: "ranger-cm_tag-301", reason: "tag policies are evaluated first; a tag deny is final against normal resource policies"},
		{name: "tag deny exception falls through to resource policy", user: "sue", groups: []string{"support"}, access: policy.AccessSelect, res: tbl("hive.crm.payments", "status"), tags: []string{"PII"},
			allow: true, mask: policy.MaskShowFirst4, policyID: "ranger-cm_hive-102", reason: "tag policy excepts support and decides nothing; the resource policy allows; tag mask applies"},
		{name: "tag allow without resource policy", user: "pat", groups: []string{"privacy-officers"}, access: policy.AccessSelect, res: tbl("hive.crm.customers", "email"), tags: []string{"PII"},
			allow: true, policyID: "ranger-cm_tag-301", reason: "a tag allow grants access; tag masking MASK_NONE comes before resource masking"},
		{name: "tag s3 read", user: "ann", groups: []string{"analysts"}, access: policy.AccessRead, res: obj("datalake/sales/pii.csv"), tags: []string{"PII"},
			allow: false, policyID: "ranger-cm_tag-301", reason: "s3:read/hdfs:read in the tag deny apply to objects"},
		{name: "override tag deny", user: "carl", groups: []string{"contractors", "analysts"}, access: policy.AccessSelect, res: tbl("hive.crm.orders", "id"), tags: []string{"PCI"},
			allow: false, policyID: "ranger-cm_tag-304", reason: "override tag deny"},
		{name: "override tag deny vs override resource allow", user: "oncall", groups: []string{"contractors"}, access: policy.AccessSelect, res: tbl("lakehouse.sales.orders", "id"), tags: []string{"PCI"}, at: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
			allow: false, policyID: "ranger-cm_tag-304", reason: "a resource allow overturns a tag deny only at higher priority; both are override"},
		{name: "override tag allow, resource mask", user: "pci-auditor", access: policy.AccessSelect, res: tbl("hive.crm.customers", "email"), tags: []string{"PCI"},
			allow: true, mask: policy.MaskRedact, policyID: "ranger-cm_tag-304", reason: "tag allow; the resource masking policy's public item (MASK) applies"},
	}
	var d policy.Decision
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := &policy.Request{User: tc.user, Groups: tc.groups, Access: tc.access, Resource: tc.res, Time: tc.at, ClientIP: tc.ip}
			if req.Time.IsZero() {
				req.Time = feb
			}
			for _, n := range tc.tags {
				req.Tags = append(req.Tags, policy.Tag{Name: n})
			}
			e.Decide(req, &d)
			if d.Allowed != tc.allow {
				t.Fatalf("allowed = %v (%s, policy %q), want %v: %s\n%+v", d.Allowed, d.Reason, d.PolicyID, tc.allow, tc.reason, e.Explain(req))
			}
			if tc.policyID != "" && d.PolicyID != tc.policyID {
				t.Errorf("deciding policy = %q, want %q (%s)", d.PolicyID, tc.policyID, tc.reason)
			}
			var mask policy.MaskType
			if len(d.Masks) > 0 {
				mask = d.Masks[0].Type
			}
			if mask != tc.mask {
				t.Errorf("mask = %q, want %q (%s)", mask, tc.mask, tc.reason)
			}
			filter := ""
			if len(d.RowFilters) > 0 {
				filter = d.RowFilters[0]
			}
			if filter != tc.filter {
				t.Errorf("row filter = %q, want %q (%s)", filter, tc.filter, tc.reason)
			}
		})
	}
}
