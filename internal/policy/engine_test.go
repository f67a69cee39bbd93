package policy

import (
	"errors"

	"github.com/stewardhq/steward"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func items(users []string, groups []string, acc ...Access) []Item {
	return []Item{{Users: users, Groups: groups, Accesses: acc}}
}

func pathPolicy(id string, paths []string, mod func(*Policy)) *Policy {
	p := &Policy{ID: id, Version: 1, Kind: KindAccess, Priority: PriorityNormal, Enabled: true, Audit: true,
		Resources: ResourceSpec{Paths: paths}}
	if mod != nil {
		mod(p)
	}
	return p
}

func tablePolicy(id string, tables, cols []string, mod func(*Policy)) *Policy {
	p := &Policy{ID: id, Version: 1, Kind: KindAccess, Priority: PriorityNormal, Enabled: true,
		Resources: ResourceSpec{Tables: tables, Columns: cols}}
	if mod != nil {
		mod(p)
	}
	return p
}

func tagPolicy(id string, tags []TagMatch, mod func(*Policy)) *Policy {
	p := &Policy{ID: id, Version: 1, Kind: KindAccess, Priority: PriorityNormal, Enabled: true, Tags: tags}
	if mod != nil {
		mod(p)
	}
	return p
}

func obj(user string, groups []string, a Access, path string) *Request {
	return &Request{User: user, Groups: groups, Access: a, Resource: Resource{Kind: ResourceObject, Path: path},
		Time: time.Date(2025, 6, 4, 10, 0, 0, 0, time.UTC)} // a Wednesday
}

func override(p *Policy) { p.Priority = PriorityOverride }

func mustCompile(t testing.TB, ps ...*Policy) *Engine {
	t.Helper()
	e, err := Compile(ps, Options{Version: 1})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return e
}

var (
	alice   = "alice"
	anyone  = []string{}
	analyst = []string{"analysts"}
	t2025   = func(m time.Month, d, h int) time.Time { return time.Date(2025, m, d, h, 0, 0, 0, time.UTC) }
)

func TestRangerSemantics(t *testing.T) {
	allowAliceRead := func(p *Policy) { p.Allow = items([]string{alice}, nil, AccessRead, AccessList) }
	denyAnalysts := func(p *Policy) { p.Deny = items(nil, analyst, AccessRead) }
	tests := []struct {
		name     string
		policies []*Policy
		req      *Request
		allowed  bool
		policy   string
		reason   string
	}{
		{"allow item", []*Policy{pathPolicy("p1", []string{"s3://data/sales/**"}, allowAliceRead)},
			obj(alice, nil, AccessRead, "data/sales/2024/q1.parquet"), true, "p1", ReasonAllow},
		{"no policy matches: deny by default", []*Policy{pathPolicy("p1", []string{"s3://data/sales/**"}, allowAliceRead)},
			obj(alice, nil, AccessRead, "data/hr/x"), false, "", ReasonDefaultDeny},
		{"access not granted", []*Policy{pathPolicy("p1", []string{"s3://data/**"}, allowAliceRead)},
			obj(alice, nil, AccessWrite, "data/x"), false, "", ReasonDefaultDeny},
		{"deny item beats allow item in one policy", []*Policy{pathPolicy("p1", []string{"s3://data/**"}, func(p *Policy) { allowAliceRead(p); denyAnalysts(p) })},
			obj(alice, analyst, AccessRead, "data/x"), false, "p1", ReasonDeny},
		{"deny beats allow across policies of equal priority", []*Policy{
			pathPolicy("a", []string{"s3://data/**"}, allowAliceRead),
			pathPolicy("d", []string{"s3://data/x/**"}, denyAnalysts)},
			obj(alice, analyst, AccessRead, "data/x/y"), false, "d", ReasonDeny},
		{"deny exception lets the allow through", []*Policy{pathPolicy("p1", []string{"s3://data/**"}, func(p *Policy) {
			allowAliceRead(p)
			denyAnalysts(p)
			p.DenyExceptions = items([]string{alice}, nil, AccessRead)
		})}, obj(alice, analyst, AccessRead, "data/x"), true, "p1", ReasonAllow},
		{"allow exception removes the grant", []*Policy{pathPolicy("p1", []string{"s3://data/**"}, func(p *Policy) {
			p.Allow = items(nil, analyst, AccessRead)
			p.AllowExceptions = items([]string{alice}, nil, AccessRead)
		})}, obj(alice, analyst, AccessRead, "data/x"), false, "", ReasonDefaultDeny},
		{"allow exception does not stop another policy's allow", []*Policy{
			pathPolicy("p1", []string{"s3://data/**"}, func(p *Policy) {
				p.Allow = items(nil, analyst, AccessRead)
				p.AllowExceptions = items([]string{alice}, nil, AccessRead)
			}),
			pathPolicy("p2", []string{"s3://data/**"}, allowAliceRead)}, obj(alice, analyst, AccessRead, "data/x"), true, "p2", ReasonAllow},
		{"override allow beats normal deny", []*Policy{
			pathPolicy("d", []string{"s3://data/**"}, denyAnalysts),
			pathPolicy("o", []string{"s3://data/**"}, func(p *Policy) { allowAliceRead(p); override(p) })},
			obj(alice, analyst, AccessRead, "data/x"), true, "o", ReasonAllow},
		{"normal allow does not beat override deny", []*Policy{
			pathPolicy("a", []string{"s3://data/**"}, allowAliceRead),
			pathPolicy("od", []string{"s3://data/**"}, func(p *Policy) { denyAnalysts(p); override(p) })},
			obj(alice, analyst, AccessRead, "data/x"), false, "od", ReasonDeny},
		{"deny all else denies users not allowed", []*Policy{
			pathPolicy("open", []string{"s3://data/**"}, func(p *Policy) { p.Allow = items(nil, []string{Public}, AccessRead) }),
			pathPolicy("dae", []string{"s3://data/secret/**"}, func(p *Policy) { allowAliceRead(p); p.DenyAllElse = true })},
			obj("bob", nil, AccessRead, "data/secret/x"), false, "dae", ReasonDenyAllElse},
		{"deny all else keeps its own allows", []*Policy{
			pathPolicy("dae", []string{"s3://data/secret/**"}, func(p *Policy) { allowAliceRead(p); p.DenyAllElse = true })},
			obj(alice, nil, AccessRead, "data/secret/x"), true, "dae", ReasonAllow},
		{"public group", []*Policy{pathPolicy("pub", []string{"s3://open/**"}, func(p *Policy) { p.Allow = items(nil, []string{Public}, AccessRead) })},
			obj("anyone", nil, AccessRead, "open/a"), true, "pub", ReasonAllow},
		{"role grant", []*Policy{pathPolicy("r", []string{"s3://data/**"}, func(p *Policy) { p.Allow = []Item{{Roles: []string{"auditor"}, Accesses: []Access{AccessList}}} })},
			func() *Request { r := obj("x", nil, AccessList, "data"); r.Roles = []string{"auditor"}; return r }(), true, "r", ReasonAllow},
		{"disabled policy is ignored", []*Policy{pathPolicy("p1", []string{"s3://data/**"}, func(p *Policy) { allowAliceRead(p); p.Enabled = false })},
			obj(alice, nil, AccessRead, "data/x"), false, "", ReasonDefaultDeny},
		{"equal allows: first in order is reported", []*Policy{
			pathPolicy("first", []string{"s3://data/**"}, allowAliceRead),
			pathPolicy("second", []string{"s3://data/x"}, allowAliceRead)},
			obj(alice, nil, AccessRead, "data/x"), true, "first", ReasonAllow},

		// Resources and macros.
		{"home macro: own home", []*Policy{pathPolicy("home", []string{"s3://home/{USER}/**"}, func(p *Policy) { p.Allow = items([]string{"{USER}"}, nil, AccessRead, AccessWrite) })},
			obj(alice, nil, AccessWrite, "home/alice/notes.txt"), true, "home", ReasonAllow},
		{"home macro: someone else's home", []*Policy{pathPolicy("home", []string{"s3://home/{USER}/**"}, func(p *Policy) { p.Allow = items([]string{"{USER}"}, nil, AccessRead) })},
			obj(alice, nil, AccessRead, "home/bob/notes.txt"), false, "", ReasonDefaultDeny},
		{"macro inside a segment", []*Policy{pathPolicy("m", []string{"s3://scratch/u-{USER}-*/**"}, allowAliceRead)},
			obj(alice, nil, AccessRead, "scratch/u-alice-tmp/f"), true, "m", ReasonAllow},
		{"single star stays in one segment", []*Policy{pathPolicy("s", []string{"s3://data/*/file"}, allowAliceRead)},
			obj(alice, nil, AccessRead, "data/a/b/file"), false, "", ReasonDefaultDeny},
		{"non recursive path", []*Policy{pathPolicy("s", []string{"s3://data/p"}, allowAliceRead)},
			obj(alice, nil, AccessRead, "data/p/x"), false, "", ReasonDefaultDeny},
		{"recursive flag", []*Policy{pathPolicy("s", []string{"s3://data/p"}, func(p *Policy) { allowAliceRead(p); p.Resources.Recursive = true })},
			obj(alice, nil, AccessRead, "data/p/x/y"), true, "s", ReasonAllow},
		{"recursive covers the bucket itself", []*Policy{pathPolicy("s", []string{"s3://data/**"}, allowAliceRead)},
			obj(alice, nil, AccessList, "data"), true, "s", ReasonAllow},
		{"excludes", []*Policy{pathPolicy("s", []string{"s3://data/**"}, func(p *Policy) { allowAliceRead(p); p.Resources.Excludes = []string{"s3://data/private/**"} })},
			obj(alice, nil, AccessRead, "data/private/x"), false, "", ReasonDefaultDeny},
		{"question mark", []*Policy{pathPolicy("s", []string{"s3://logs/2025-0?/**"}, allowAliceRead)},
			obj(alice, nil, AccessRead, "logs/2025-06/a"), true, "s", ReasonAllow},
		{"table wildcard", []*Policy{tablePolicy("t", []string{"sales.*.orders"}, nil, func(p *Policy) { p.Allow = items(nil, analyst, AccessSelect) })},
			&Request{User: "bob", Groups: analyst, Access: AccessSelect, Resource: Resource{Kind: ResourceTable, Name: "sales.emea.orders"}}, true, "t", ReasonAllow},
		{"column policy does not cover the table", []*Policy{tablePolicy("t", []string{"sales.emea.orders"}, []string{"amount"}, func(p *Policy) { p.Allow = items(nil, analyst, AccessSelect) })},
			&Request{User: "bob", Groups: analyst, Access: AccessSelect, Resource: Resource{Kind: ResourceTable, Name: "sales.emea.orders"}}, false, "", ReasonDefaultDeny},
		{"column deny", []*Policy{
			tablePolicy("t", []string{"sales.**"}, nil, func(p *Policy) { p.Allow = items(nil, analyst, AccessSelect) }),
			tablePolicy("c", []string{"sales.emea.orders"}, []string{"ssn", "tax_*"}, func(p *Policy) { p.Deny = items(nil, analyst, AccessSelect) })},
			&Request{User: "bob", Groups: analyst, Access: AccessSelect, Resource: Resource{Kind: ResourceTable, Name: "sales.emea.orders", Column: "tax_id"}}, false, "c", ReasonDeny},
		{"dataset", []*Policy{{ID: "ds", Enabled: true, Resources: ResourceSpec{Datasets: []string{"finance.loans"}}, Allow: items(nil, analyst, AccessDiscover)}},
			&Request{User: "bob", Groups: analyst, Access: AccessDiscover, Resource: Resource{Kind: ResourceDataset, Name: "finance.loans"}}, true, "ds", ReasonAllow},
		{"object policy does not cover a table of the same name", []*Policy{pathPolicy("s", []string{"s3://a/**"}, allowAliceRead)},
			&Request{User: alice, Access: AccessRead, Resource: Resource{Kind: ResourceTable, Name: "a"}}, false, "", ReasonDefaultDeny},

		// Tags versus resources.
		{"tag deny beats normal resource allow", []*Policy{
			pathPolicy("a", []string{"s3://data/**"}, allowAliceRead),
			tagPolicy("pii", []TagMatch{{Name: "PII"}}, func(p *Policy) { p.Deny = items(nil, []string{Public}, AccessRead) })},
			tagged(obj(alice, nil, AccessRead, "data/x"), Tag{Name: "PII"}), false, "pii", ReasonTagDeny},
		{"tag deny overturned by override resource allow", []*Policy{
			pathPolicy("a", []string{"s3://data/**"}, func(p *Policy) { allowAliceRead(p); override(p) }),
			tagPolicy("pii", []TagMatch{{Name: "PII"}}, func(p *Policy) { p.Deny = items(nil, []string{Public}, AccessRead) })},
			tagged(obj(alice, nil, AccessRead, "data/x"), Tag{Name: "PII"}), true, "a", ReasonAllowOverTagDeny},
		{"override tag deny not overturned by override resource allow", []*Policy{
			pathPolicy("a", []string{"s3://data/**"}, func(p *Policy) { allowAliceRead(p); override(p) }),
			tagPolicy("pii", []TagMatch{{Name: "PII"}}, func(p *Policy) { p.Deny = items(nil, []string{Public}, AccessRead); override(p) })},
			tagged(obj(alice, nil, AccessRead, "data/x"), Tag{Name: "PII"}), false, "pii", ReasonTagDeny},
		{"tag allow overturned by resource deny of equal priority", []*Policy{
			pathPolicy("d", []string{"s3://data/**"}, func(p *Policy) { p.Deny = items([]string{alice}, nil, AccessRead) }),
			tagPolicy("open", []TagMatch{{Name: "OPEN"}}, func(p *Policy) { p.Allow = items(nil, []string{Public}, AccessRead) })},
			tagged(obj(alice, nil, AccessRead, "data/x"), Tag{Name: "OPEN"}), false, "d", ReasonDenyOverTagAllow},
		{"override tag allow stands against normal resource deny", []*Policy{
			pathPolicy("d", []string{"s3://data/**"}, func(p *Policy) { p.Deny = items([]string{alice}, nil, AccessRead) }),
			tagPolicy("open", []TagMatch{{Name: "OPEN"}}, func(p *Policy) { p.Allow = items(nil, []string{Public}, AccessRead); override(p) })},
			tagged(obj(alice, nil, AccessRead, "data/x"), Tag{Name: "OPEN"}), true, "open", ReasonTagAllow},
		{"tag allow alone", []*Policy{tagPolicy("open", []TagMatch{{Name: "OPEN"}}, func(p *Policy) { p.Allow = items(nil, []string{Public}, AccessRead) })},
			tagged(obj(alice, nil, AccessRead, "data/x"), Tag{Name: "OPEN"}), true, "open", ReasonTagAllow},
		{"tag attributes must match", []*Policy{tagPolicy("pii-email", []TagMatch{{Name: "PII", Attrs: map[string]string{"type": "email"}}}, func(p *Policy) { p.Deny = items(nil, []string{Public}, AccessRead) }),
			pathPolicy("a", []string{"s3://data/**"}, allowAliceRead)},
			tagged(obj(alice, nil, AccessRead, "data/x"), Tag{Name: "PII", Attrs: map[string]string{"type": "phone"}}), true, "a", ReasonAllow},
		{"classification at or above C3", []*Policy{
			pathPolicy("a", []string{"s3://data/**"}, allowAliceRead),
			tagPolicy("c3", []TagMatch{{MinClassification: C3}}, func(p *Policy) {
				p.Deny = items(nil, []string{Public}, AccessRead)
				p.DenyExceptions = items(nil, []string{"cleared"}, AccessRead)
			})},
			classified(obj(alice, nil, AccessRead, "data/x"), C4), false, "c3", ReasonTagDeny},
		{"classification below C3", []*Policy{
			pathPolicy("a", []string{"s3://data/**"}, allowAliceRead),
			tagPolicy("c3", []TagMatch{{MinClassification: C3}}, func(p *Policy) { p.Deny = items(nil, []string{Public}, AccessRead) })},
			classified(obj(alice, nil, AccessRead, "data/x"), C2), true, "a", ReasonAllow},
		{"tag policy with deny exception for cleared group", []*Policy{
			pathPolicy("a", []string{"s3://data/**"}, func(p *Policy) { p.Allow = items(nil, []string{"cleared"}, AccessRead) }),
			tagPolicy("c3", []TagMatch{{MinClassification: C3}}, func(p *Policy) {
				p.Deny = items(nil, []string{Public}, AccessRead)
				p.DenyExceptions = items(nil, []string{"cleared"}, AccessRead)
			})},
			classified(obj("carol", []string{"cleared"}, AccessRead, "data/x"), C4), true, "a", ReasonAllow},

		// Conditions and validity.
		{"inside validity window", []*Policy{pathPolicy("tb", []string{"s3://data/**"}, func(p *Policy) {
			allowAliceRead(p)
			p.Validity = []Schedule{{Start: t2025(6, 1, 0), End: t2025(6, 8, 0)}}
		})}, obj(alice, nil, AccessRead, "data/x"), true, "tb", ReasonAllow},
		{"after validity window the grant has ended", []*Policy{pathPolicy("tb", []string{"s3://data/**"}, func(p *Policy) {
			allowAliceRead(p)
			p.Validity = []Schedule{{Start: t2025(5, 1, 0), End: t2025(6, 4, 10)}} // end is exclusive
		})}, obj(alice, nil, AccessRead, "data/x"), false, "", ReasonDefaultDeny},
		{"recurrence in time zone: working hours Zurich", []*Policy{pathPolicy("wh", []string{"s3://data/**"}, func(p *Policy) {
			allowAliceRead(p)
			p.Validity = []Schedule{{TimeZone: "Europe/Zurich", Recurrence: &Recurrence{Weekdays: []time.Weekday{time.Wednesday}, From: 11 * 60, To: 13 * 60}}}
		})}, obj(alice, nil, AccessRead, "data/x"), true, "wh", ReasonAllow}, // 10:00 UTC = 12:00 CEST
		{"recurrence on another weekday", []*Policy{pathPolicy("wh", []string{"s3://data/**"}, func(p *Policy) {
			allowAliceRead(p)
			p.Validity = []Schedule{{Recurrence: &Recurrence{Weekdays: []time.Weekday{time.Monday}, From: 0, To: 24 * 60}}}
		})}, obj(alice, nil, AccessRead, "data/x"), false, "", ReasonDefaultDeny},
		{"item validity", []*Policy{pathPolicy("iv", []string{"s3://data/**"}, func(p *Policy) {
			p.Allow = []Item{{Users: []string{alice}, Accesses: []Access{AccessRead}, Conditions: Conditions{Validity: []Schedule{{End: t2025(1, 1, 0)}}}}}
		})}, obj(alice, nil, AccessRead, "data/x"), false, "", ReasonDefaultDeny},
		{"ip range inside", []*Policy{pathPolicy("ip", []string{"s3://data/**"}, func(p *Policy) {
			p.Allow = []Item{{Users: []string{alice}, Accesses: []Access{AccessRead}, Conditions: Conditions{IPRanges: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}}
		})}, withIP(obj(alice, nil, AccessRead, "data/x"), "10.1.2.3"), true, "ip", ReasonAllow},
		{"ip range outside", []*Policy{pathPolicy("ip", []string{"s3://data/**"}, func(p *Policy) {
			p.Allow = []Item{{Users: []string{alice}, Accesses: []Access{AccessRead}, Conditions: Conditions{IPRanges: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}}
		})}, withIP(obj(alice, nil, AccessRead, "data/x"), "192.168.1.1"), false, "", ReasonDefaultDeny},
		{"CEL condition true", []*Policy{pathPolicy("cel", []string{"s3://data/**"}, func(p *Policy) {
			p.Allow = []Item{{Users: []string{alice}, Accesses: []Access{AccessRead}, Conditions: Conditions{Expr: `"analysts" in groups && time.getHours() < 18`}}}
		})}, obj(alice, analyst, AccessRead, "data/x"), true, "cel", ReasonAllow},
		{"CEL condition false", []*Policy{pathPolicy("cel", []string{"s3://data/**"}, func(p *Policy) {
			p.Allow = []Item{{Users: []string{alice}, Accesses: []Access{AccessRead}, Conditions: Conditions{Expr: `"admins" in groups`}}}
		})}, obj(alice, analyst, AccessRead, "data/x"), false, "", ReasonDefaultDeny},
		{"CEL runtime error fails closed on deny", []*Policy{pathPolicy("cel", []string{"s3://data/**"}, func(p *Policy) {
			allowAliceRead(p)
			p.Deny = []Item{{Groups: []string{Public}, Accesses: []Access{AccessRead}, Conditions: Conditions{Expr: `tags["missing"]["x"] == "y"`}}}
		})}, obj(alice, nil, AccessRead, "data/x"), false, "cel", ReasonDeny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := mustCompile(t, tc.policies...)
			var d Decision
			e.Decide(tc.req, &d)
			if d.Allowed != tc.allowed || d.PolicyID != tc.policy || d.Reason != tc.reason {
				t.Errorf("got allowed=%v policy=%q reason=%q; want %v %q %q\n%s", d.Allowed, d.PolicyID, d.Reason, tc.allowed, tc.policy, tc.reason, explainText(e.Explain(tc.req)))
			}
			// Explain agrees with Decide.
			ex := e.Explain(tc.req)
			if ex.Allowed != d.Allowed || ex.PolicyID != d.PolicyID || ex.Reason != d.Reason {
				t.Errorf("Explain disagrees: %+v vs %+v", ex, d)
			}
			if len(ex.Steps) == 0 && d.PolicyID != "" {
				t.Errorf("Explain lists no steps")
			}
		})
	}
}

func tagged(r *Request, tags ...Tag) *Request { r.Tags = tags; return r }
func classified(r *Request, c Classification) *Request {
	r.Classification = c
	return r
}
func withIP(r *Request, ip string) *Request { r.ClientIP = netip.MustParseAddr(ip); return r }

func explainText(ex Explanation) string {
	var b strings.Builder
	b.WriteString(ex.Resolution + "\n")
	for _, s := range ex.Steps {
		b.WriteString("  " + s.PolicyID + " [" + s.Source + "," + s.Priority + "] " + s.Outcome + ": " + s.Why + "\n")
	}
	return b.String()
}

func TestMasksAndRowFilters(t *testing.T) {
	grant := tablePolicy("grant", []string{"bank.**"}, nil, func(p *Policy) { p.Allow = items(nil, []string{Public}, AccessSelect) })
	mask := func(id string, prio Priority, cols []string, typ MaskType, groups ...string) *Policy {
		return &Policy{ID: id, Version: 2, Kind: KindMasking, Priority: prio, Enabled: true,
			Resources: ResourceSpec{Tables: []string{"bank.core.customers"}, Columns: cols},
			Masks:     []MaskItem{{Groups: groups, Type: typ}}}
	}
	tagMask := &Policy{ID: "pii-mask", Kind: KindMasking, Enabled: true, Tags: []TagMatch{{Name: "PII"}},
		Masks: []MaskItem{{Groups: []string{"support"}, Type: MaskShowLast4}, {Groups: []string{Public}, Type: MaskHash}}}
	rows := &Policy{ID: "rf", Kind: KindRowFilter, Enabled: true, Resources: ResourceSpec{Tables: []string{"bank.core.*"}},
		RowFilters: []RowFilterItem{
			{Groups: []string{"admins"}, Filter: ""},
			{Users: []string{"{USER}"}, Filter: "owner = {USER} OR region IN {GROUPS}"},
		}}
	col := func(user string, groups []string, c string, tags ...Tag) *Request {
		return &Request{User: user, Groups: groups, Access: AccessSelect, Tags: tags,
			Resource: Resource{Kind: ResourceTable, Name: "bank.core.customers", Column: c}}
	}
	tests := []struct {
		name     string
		policies []*Policy
		req      *Request
		mask     MaskType // "" = none
		maskPol  string
		filters  []string
	}{
		{"resource mask", []*Policy{grant, mask("m1", PriorityNormal, []string{"ssn"}, MaskShowLast4, "analysts")},
			col("bob", []string{"analysts"}, "ssn"), MaskShowLast4, "m1", []string{}},
		{"first masking policy in order wins", []*Policy{grant, mask("m1", PriorityNormal, []string{"ssn"}, MaskNull, Public), mask("m2", PriorityNormal, []string{"*"}, MaskHash, Public)},
			col("bob", nil, "ssn"), MaskNull, "m1", []string{}},
		{"override masking policy wins over earlier normal one", []*Policy{grant, mask("m1", PriorityNormal, []string{"ssn"}, MaskNull, Public), mask("m2", PriorityOverride, []string{"*"}, MaskHash, Public)},
			col("bob", nil, "ssn"), MaskHash, "m2", []string{}},
		{"unmasked exemption", []*Policy{grant, mask("m0", PriorityNormal, []string{"ssn"}, MaskNone, "auditors"), mask("m1", PriorityNormal, []string{"ssn"}, MaskNull, Public)},
			col("eve", []string{"auditors"}, "ssn"), "", "", []string{}},
		{"other column unmasked", []*Policy{grant, mask("m1", PriorityNormal, []string{"ssn"}, MaskNull, Public)},
			col("bob", nil, "name"), "", "", []string{}},
		{"tag mask first matching item", []*Policy{grant, tagMask},
			col("sam", []string{"support"}, "phone", Tag{Name: "PII"}), MaskShowLast4, "pii-mask", []string{}},
		{"tag mask before resource mask at equal priority", []*Policy{grant, mask("m1", PriorityNormal, []string{"phone"}, MaskNull, Public), tagMask},
			col("bob", nil, "phone", Tag{Name: "PII"}), MaskHash, "pii-mask", []string{}},
		{"row filter with macros", []*Policy{grant, rows},
			col("o'neil", []string{"emea", "apac"}, ""), "", "", []string{"owner = 'o''neil' OR region IN ('emea', 'apac')"}},
		{"row filter exemption", []*Policy{grant, rows},
			col("root", []string{"admins"}, ""), "", "", []string{}},
		{"no masks without access", []*Policy{mask("m1", PriorityNormal, []string{"ssn"}, MaskNull, Public)},
			col("bob", nil, "ssn"), "", "", []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := mustCompile(t, tc.policies...)
			var d Decision
			e.Decide(tc.req, &d)
			var gotType MaskType
			var gotPol string
			if len(d.Masks) > 0 {
				gotType, gotPol = d.Masks[0].Type, d.Masks[0].PolicyID
				if d.Masks[0].Column != tc.req.Resource.Column {
					t.Errorf("mask column %q", d.Masks[0].Column)
				}
			}
			if gotType != tc.mask || gotPol != tc.maskPol {
				t.Errorf("mask = %q by %q, want %q by %q\n%s", gotType, gotPol, tc.mask, tc.maskPol, explainText(e.Explain(tc.req)))
			}
			if strings.Join(d.RowFilters, "|") != strings.Join(tc.filters, "|") {
				t.Errorf("row filters = %q, want %q", d.RowFilters, tc.filters)
			}
		})
	}
}

func TestMaskSQL(t *testing.T) {
	for _, m := range []Mask{{Type: MaskRedact}, {Type: MaskShowLast4}, {Type: MaskShowFirst4}, {Type: MaskHash}, {Type: MaskNull}, {Type: MaskDateShowYear}, {Type: MaskCustom, Expr: "upper({col})"}} {
		t.Run(string(m.Type), func(t *testing.T) {
			s := m.SQL(`"c"`)
			if m.Type != MaskNull && !strings.Contains(s, `"c"`) {
				t.Errorf("%s does not use the column: %s", m.Type, s)
			}
		})
	}
}

func TestDecideAllocatesNothing(t *testing.T) {
	e := mustCompile(t,
		pathPolicy("a", []string{"s3://data/**"}, func(p *Policy) { p.Allow = items(nil, analyst, AccessRead) }),
		pathPolicy("home", []string{"s3://home/{USER}/**"}, func(p *Policy) { p.Allow = items([]string{"{USER}"}, nil, AccessRead) }),
		tagPolicy("pii", []TagMatch{{Name: "PII"}}, func(p *Policy) { p.Deny = items(nil, []string{"contractors"}, AccessRead) }),
		tagPolicy("c4", []TagMatch{{MinClassification: C4}}, func(p *Policy) { p.Deny = items(nil, []string{Public}, AccessRead) }),
	)
	reqs := []*Request{
		tagged(obj(alice, analyst, AccessRead, "data/x/y"), Tag{Name: "PII"}),
		obj(alice, nil, AccessRead, "home/alice/a"),
		classified(obj(alice, analyst, AccessRead, "data/z"), C4),
	}
	var d Decision
	for _, r := range reqs {
		e.Decide(r, &d) // warm the scratch buffers
	}
	for i, r := range reqs {
		if n := testing.AllocsPerRun(100, func() { e.Decide(r, &d) }); n != 0 {
			t.Errorf("request %d: %v allocations per Decide", i, n)
		}
	}
}

func TestAtomic(t *testing.T) {
	var a Atomic
	var d Decision
	a.Load().Decide(obj(alice, nil, AccessRead, "x"), &d)
	if d.Allowed || d.Reason != ReasonNoEngine {
		t.Fatalf("nil engine: %+v", d)
	}
	e1, _ := Compile(nil, Options{Version: 1})
	e2, _ := Compile(nil, Options{Version: 2})
	if !a.Store(e2) || a.Store(e1) || a.Load() != e2 {
		t.Fatal("Atomic must keep the newest version")
	}
}

func TestCompileErrors(t *testing.T) {
	ok := func(p *Policy) { p.Allow = items([]string{alice}, nil, AccessRead) }
	tests := []struct {
		name string
		ps   []*Policy
		want string
	}{
		{"duplicate id", []*Policy{pathPolicy("p", []string{"s3://a/**"}, ok), pathPolicy("p", []string{"s3://b/**"}, ok)}, `policy "p": id: duplicate policy id`},
		{"no scheme", []*Policy{pathPolicy("p", []string{"a/**"}, ok)}, `policy "p": resources.paths[0]: path "a/**" must start with s3://`},
		{"unknown macro", []*Policy{pathPolicy("p", []string{"s3://a/{USERNAME}"}, ok)}, `resources.paths[0]: pattern "s3://a/{USERNAME}": unknown macro {USERNAME}`},
		{"both paths and tables", []*Policy{pathPolicy("p", []string{"s3://a/**"}, func(p *Policy) { ok(p); p.Resources.Tables = []string{"x"} })}, `resources: set only one of`},
		{"no items", []*Policy{pathPolicy("p", []string{"s3://a/**"}, nil)}, `allow: an access policy needs allow or deny items`},
		{"no accesses", []*Policy{pathPolicy("p", []string{"s3://a/**"}, func(p *Policy) { p.Allow = []Item{{Users: []string{"x"}}} })}, `allow[0].accesses: missing`},
		{"no principals", []*Policy{pathPolicy("p", []string{"s3://a/**"}, func(p *Policy) { p.Allow = []Item{{Accesses: []Access{AccessRead}}} })}, `allow[0]: names no users`},
		{"contradiction", []*Policy{pathPolicy("p", []string{"s3://a/**"}, func(p *Policy) {
			ok(p)
			p.Deny = items([]string{alice}, nil, AccessRead, AccessWrite)
		})}, `allow[0]: contradicts deny[0]: user "alice" is both allowed and denied for read`},
		{"bad CEL", []*Policy{pathPolicy("p", []string{"s3://a/**"}, func(p *Policy) {
			p.Allow = []Item{{Users: []string{"x"}, Accesses: []Access{AccessRead}, Conditions: Conditions{Expr: "user +"}}}
		})}, `allow[0].conditions: expr: invalid CEL expression`},
		{"CEL not bool", []*Policy{pathPolicy("p", []string{"s3://a/**"}, func(p *Policy) {
			p.Allow = []Item{{Users: []string{"x"}, Accesses: []Access{AccessRead}, Conditions: Conditions{Expr: "user"}}}
		})}, `CEL expression must be bool, not string`},
		{"CEL unknown variable", []*Policy{pathPolicy("p", []string{"s3://a/**"}, func(p *Policy) {
			p.Allow = []Item{{Users: []string{"x"}, Accesses: []Access{AccessRead}, Conditions: Conditions{Expr: "env == 'x'"}}}
		})}, `undeclared reference to 'env'`},
		{"schedule end before start", []*Policy{pathPolicy("p", []string{"s3://a/**"}, func(p *Policy) {
			ok(p)
			p.Validity = []Schedule{{Start: t2025(2, 1, 0), End: t2025(1, 1, 0)}}
		})}, `validity[0]: end 2025-01-01T00:00:00Z is not after start`},
		{"bad zone", []*Policy{pathPolicy("p", []string{"s3://a/**"}, func(p *Policy) { ok(p); p.Validity = []Schedule{{TimeZone: "Mars/Olympus"}} })}, `unknown time zone "Mars/Olympus"`},
		{"mask on paths", []*Policy{{ID: "m", Kind: KindMasking, Resources: ResourceSpec{Paths: []string{"s3://a"}}, Masks: []MaskItem{{Groups: []string{"g"}, Type: MaskNull}}}}, `resources: masking policies apply to tables`},
		{"custom mask without col", []*Policy{{ID: "m", Kind: KindMasking, Resources: ResourceSpec{Tables: []string{"a"}}, Masks: []MaskItem{{Groups: []string{"g"}, Type: MaskCustom, Expr: "'x'"}}}}, `masks[0].expr: a custom mask needs an expression using {col}`},
		{"unknown row filter macro", []*Policy{{ID: "r", Kind: KindRowFilter, Resources: ResourceSpec{Tables: []string{"a"}}, RowFilters: []RowFilterItem{{Groups: []string{"g"}, Filter: "x = {TENANT}"}}}}, `row_filters[0].filter: unknown macro {TENANT}`},
		{"tag name and classification", []*Policy{tagPolicy("t", []TagMatch{{Name: "x", MinClassification: C2}}, ok)}, `tags[0]: set either name or classification`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.ps, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func asError(err error, target **steward.Error) bool { return errors.As(err, target) }
