package policy

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// The differential test checks the optimized decision path (index, hot
// records, principal signatures, early exit, touch passes) against a
// reference evaluation that considers every policy in evaluation order,
// matches resources with the full pattern matcher and principals by plain
// string comparison, over random policy sets and requests in a small
// universe of names, so that matches, overlaps and conflicts are common.

// refDecide is the specification of Decide.
func refDecide(e *Engine, req *Request) Decision {
	var d Decision
	type verdict struct {
		cp  *cpolicy
		out outcome
	}
	offer := func(v *verdict, cp *cpolicy, out outcome) {
		switch {
		case v.cp == nil:
			*v = verdict{cp, out}
		case cp.level == v.cp.level && v.out == outAllow && out != outAllow:
			*v = verdict{cp, out}
		}
	}
	var tagV, resV verdict
	for _, cp := range e.pols {
		p := cp.p
		if !p.Enabled || (p.Kind != KindAccess && p.Kind != "") {
			continue
		}
		if tagV.cp != nil && resV.cp != nil && cp.level < tagV.cp.level && cp.level < resV.cp.level {
			break
		}
		if !refApplies(cp, req, false) {
			continue
		}
		if p.Audit {
			d.Audit = true
		}
		out := outNoItem
		if i := refItem(cp.deny, p.Deny, req, true); i >= 0 && refItem(cp.denyEx, p.DenyExceptions, req, false) < 0 {
			out = outDeny
		} else if i := refItem(cp.allow, p.Allow, req, false); i >= 0 && refItem(cp.allowEx, p.AllowExceptions, req, true) < 0 {
			out = outAllow
		} else if p.DenyAllElse {
			out = outDenyAllElse
		}
		if out == outNoItem {
			continue
		}
		if p.IsTagBased() {
			offer(&tagV, cp, out)
		} else {
			offer(&resV, cp, out)
		}
	}
	var win *verdict
	switch {
	case tagV.cp != nil && tagV.out != outAllow:
		win, d.Reason = &tagV, ReasonTagDeny
		if tagV.out == outDenyAllElse {
			d.Reason = ReasonTagDenyAllElse
		}
		if resV.cp != nil && resV.out == outAllow && resV.cp.level > tagV.cp.level {
			win, d.Reason = &resV, ReasonAllowOverTagDeny
		}
	case tagV.cp != nil:
		win, d.Reason = &tagV, ReasonTagAllow
		if resV.cp != nil && resV.out != outAllow && resV.cp.level >= tagV.cp.level {
			win, d.Reason = &resV, ReasonDenyOverTagAllow
		}
	case resV.cp != nil:
		win = &resV
		d.Reason = map[outcome]string{outAllow: ReasonAllow, outDeny: ReasonDeny, outDenyAllElse: ReasonDenyAllElse}[resV.out]
	default:
		d.Reason, d.Audit = ReasonDefaultDeny, true
	}
	if win != nil {
		d.Allowed = win.out == outAllow
		d.PolicyID, d.PolicyVersion = win.cp.p.ID, win.cp.p.Version
	}
	if !d.Allowed || req.Access != AccessSelect || req.Resource.Kind != ResourceTable {
		return d
	}
	if req.Resource.Column != "" {
	masks:
		for _, cp := range e.pols {
			if !cp.p.Enabled || cp.p.Kind != KindMasking || !refApplies(cp, req, false) {
				continue
			}
			for i, m := range cp.p.Masks {
				if refPrincipals(m.Users, m.Groups, m.Roles, req) && (cp.masks[i].cond.empty() || cp.masks[i].cond.holds(req, true)) {
					if m.Type != MaskNone {
						d.Masks = append(d.Masks, Mask{Column: req.Resource.Column, Type: m.Type, Expr: m.Expr, PolicyID: cp.p.ID, PolicyVersion: cp.p.Version})
					}
					d.Audit = d.Audit || cp.p.Audit
					break masks
				}
			}
		}
	}
rows:
	for _, cp := range e.pols {
		if !cp.p.Enabled || cp.p.Kind != KindRowFilter || !refApplies(cp, req, true) {
			continue
		}
		for i, r := range cp.p.RowFilters {
			if refPrincipals(r.Users, r.Groups, r.Roles, req) && (cp.rows[i].cond.empty() || cp.rows[i].cond.holds(req, true)) {
				if r.Filter != "" {
					d.RowFilters = append(d.RowFilters, refExpand(r.Filter, req))
				}
				d.Audit = d.Audit || cp.p.Audit
				break rows
			}
		}
	}
	return d
}

// refExpand replaces the row-filter macros the obvious way.
func refExpand(f string, req *Request) string {
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	list := func(l []string) string {
		if len(l) == 0 {
			return "(NULL)"
		}
		var q []string
		for _, s := range l {
			q = append(q, quote(s))
		}
		return "(" + strings.Join(q, ", ") + ")"
	}
	f = strings.ReplaceAll(f, macroUser, quote(req.User))
	f = strings.ReplaceAll(f, macroGroups, list(req.Groups))
	return strings.ReplaceAll(f, macroRoles, list(req.Roles))
}

// refApplies matches the policy's resource with the full pattern matcher,
// its tags and its validity.
func refApplies(cp *cpolicy, req *Request, ignoreColumn bool) bool {
	if !cp.res.match(req, ignoreColumn) {
		return false
	}
	if cp.p.IsTagBased() {
		ok := false
		for _, tm := range cp.p.Tags {
			if tm.MinClassification != Unclassified {
				ok = ok || req.Classification >= tm.MinClassification && req.Classification <= C4
				continue
			}
			for _, t := range req.Tags {
				ok = ok || t.Name == tm.Name && attrsMatch(tm.Attrs, t.Attrs)
			}
		}
		if !ok {
			return false
		}
	}
	return len(cp.validity) == 0 || activeAny(cp.validity, req.Time)
}

// refItem returns the index of the first item that grants the request's
// access to one of its principals and whose conditions hold, or -1.
func refItem(compiled []citem, items []Item, req *Request, onError bool) int {
	for i, it := range items {
		if !slices.Contains(it.Accesses, req.Access) || !refPrincipals(it.Users, it.Groups, it.Roles, req) {
			continue
		}
		if c := compiled[i].cond; !c.empty() && !c.holds(req, onError) {
			continue
		}
		return i
	}
	return -1
}

func refPrincipals(users, groups, roles []string, req *Request) bool {
	if slices.Contains(groups, Public) || slices.Contains(users, macroUser) {
		return true
	}
	if req.User != "" && slices.Contains(users, req.User) {
		return true
	}
	for _, g := range req.Groups {
		if slices.Contains(groups, g) {
			return true
		}
	}
	for _, r := range req.Roles {
		if slices.Contains(roles, r) {
			return true
		}
	}
	return false
}

// randPolicies generates n policies in a small universe; each compiles on
// its own (those that do not, e.g. contradictory ones, are dropped).
func randPolicies(r *rand.Rand, n int) []*Policy {
	pick := func(l ...string) string { return l[r.IntN(len(l))] }
	some := func(max int, gen func() string) []string {
		var out []string
		for range 1 + r.IntN(max) {
			out = append(out, gen())
		}
		return out
	}
	user := func() string { return pick("u0", "u1", "u2", "u3", "u4", "u5") }
	group := func() string { return pick("g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7") }
	role := func() string { return pick("r0", "r1", "r2") }
	accesses := func() []Access {
		var out []Access
		for _, a := range Accesses() {
			if r.IntN(3) == 0 {
				out = append(out, a)
			}
		}
		if len(out) == 0 {
			out = append(out, pick2(r, AccessRead, AccessSelect, AccessList, AccessWrite))
		}
		return out
	}
	conds := func() Conditions {
		var c Conditions
		if r.IntN(8) == 0 {
			c.IPRanges = []netip.Prefix{netip.MustParsePrefix(pick("10.0.0.0/8", "192.168.1.0/24"))}
		}
		if r.IntN(10) == 0 {
			c.Validity = []Schedule{{Recurrence: &Recurrence{From: 9 * 60, To: 17 * 60}}}
		}
		return c
	}
	principalsOf := func() (us, gs, rs []string) {
		switch r.IntN(12) {
		case 0:
			return nil, []string{Public}, nil
		case 1:
			return []string{macroUser}, nil, nil
		}
		if r.IntN(2) == 0 {
			us = some(2, user)
		}
		if r.IntN(3) > 0 || len(us) == 0 {
			gs = some(3, group)
		}
		if r.IntN(4) == 0 {
			rs = some(1, role)
		}
		return us, gs, rs
	}
	item := func() Item {
		us, gs, rs := principalsOf()
		return Item{Users: us, Groups: gs, Roles: rs, Accesses: accesses(), Conditions: conds()}
	}
	items := func(max int) []Item {
		var out []Item
		for range r.IntN(max + 1) {
			out = append(out, item())
		}
		return out
	}
	paths := func() []string {
		return some(2, func() string {
			return pick("s3://b1/**", "s3://b1/d1/**", "s3://b1/d1/*", "s3://b1/d1/*.parquet", "s3://b1/*/f0.parquet",
				"s3://b*/d2/**", "s3://b1/{USER}/**", "s3://b1/{USER}", "s3://b2/d1/f?.csv", "s3://**", "s3://b1/d1/f0.parquet",
				"s3://b2/**/x.parquet", "s3://b2/d1", "s3://b1/d1/f*", "s3://b2/*/*")
		})
	}
	tables := func() []string {
		return some(2, func() string {
			return pick("ns1.s0.*", "ns1.s0.t1", "ns1.*.t2", "ns*.s1.t0", "ns1.**", "ns2.s1.t*", "ns1.s0.t1x", "*.*.t1")
		})
	}
	var ps []*Policy
	for i := 0; len(ps) < n; i++ {
		p := &Policy{ID: fmt.Sprintf("p%03d", i), Version: int64(1 + r.IntN(3)), Enabled: r.IntN(12) > 0, Audit: r.IntN(3) == 0,
			Kind: KindAccess, Priority: PriorityNormal}
		if r.IntN(6) == 0 {
			p.Priority = PriorityOverride
		}
		if r.IntN(10) == 0 {
			p.Validity = []Schedule{{Recurrence: &Recurrence{Weekdays: []time.Weekday{time.Wednesday}, From: 0, To: 12 * 60}}}
		}
		switch k := r.IntN(20); {
		case k < 3: // tags
			p.Tags = []TagMatch{{Name: pick("t0", "t1", "t2")}}
			switch r.IntN(4) {
			case 0:
				p.Tags[0].Attrs = map[string]string{"type": pick("email", "*")}
			case 1:
				p.Tags = []TagMatch{{MinClassification: Classification(1 + r.IntN(4))}}
			case 2:
				p.Tags = append(p.Tags, TagMatch{Name: "t3"})
			}
		case k < 5:
			p.Kind = KindMasking
			p.Resources = ResourceSpec{Tables: tables()}
			if r.IntN(3) > 0 {
				p.Resources.Columns = some(2, func() string { return pick("c0", "c1", "c2*", "*") })
			}
			for range 1 + r.IntN(2) {
				us, gs, rs := principalsOf()
				p.Masks = append(p.Masks, MaskItem{Users: us, Groups: gs, Roles: rs, Type: pick2(r, MaskHash, MaskNone, MaskNull, MaskShowLast4), Conditions: conds()})
			}
		case k < 7:
			p.Kind = KindRowFilter
			p.Resources = ResourceSpec{Tables: tables()}
			for range 1 + r.IntN(2) {
				us, gs, rs := principalsOf()
				p.RowFilters = append(p.RowFilters, RowFilterItem{Users: us, Groups: gs, Roles: rs,
					Filter: pick("region IN {GROUPS}", "owner = {USER}", "", "x > 1"), Conditions: conds()})
			}
		case k < 11:
			p.Resources = ResourceSpec{Tables: tables()}
			if r.IntN(3) == 0 {
				p.Resources.Columns = some(2, func() string { return pick("c0", "c1", "c2*", "*") })
			}
			if r.IntN(6) == 0 {
				p.Resources.Excludes = []string{pick("ns1.s0.t1", "ns1.*.t9")}
			}
		case k < 13:
			p.Resources = ResourceSpec{Datasets: some(2, func() string { return pick("d1.**", "d1.x", "d1.*", "d2.{USER}.**") })}
		default:
			p.Resources = ResourceSpec{Paths: paths(), Recursive: r.IntN(5) == 0}
			if r.IntN(6) == 0 {
				p.Resources.Excludes = []string{pick("s3://b1/d1/secret/**", "s3://b1/*/f0.parquet")}
			}
		}
		if p.Kind == KindAccess {
			p.Allow, p.Deny = items(2), items(1)
			if r.IntN(4) == 0 {
				p.AllowExceptions = items(1)
			}
			if r.IntN(4) == 0 {
				p.DenyExceptions = items(1)
			}
			p.DenyAllElse = r.IntN(10) == 0
			if len(p.Allow)+len(p.Deny) == 0 {
				p.Allow = []Item{item()}
			}
		}
		if _, err := Compile([]*Policy{p}, Options{}); err != nil {
			continue
		}
		ps = append(ps, p)
	}
	return ps
}

func pick2[T any](r *rand.Rand, l ...T) T { return l[r.IntN(len(l))] }

func randRequest(r *rand.Rand) *Request {
	pick := func(l ...string) string { return l[r.IntN(len(l))] }
	req := &Request{User: pick("u0", "u1", "u2", "u3", "", "d1", "o'brien"),
		Access:         Accesses()[r.IntN(len(Accesses()))],
		Classification: Classification(r.IntN(5)),
		Time:           time.Date(2025, 6, 3+r.IntN(2), r.IntN(24), 0, 0, 0, time.UTC),
	}
	if r.IntN(2) == 0 {
		req.ClientIP = netip.MustParseAddr(pick("10.1.2.3", "192.168.1.7", "8.8.8.8"))
	}
	for range r.IntN(5) {
		req.Groups = append(req.Groups, pick("g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7", "gx", "it's"))
	}
	if r.IntN(3) == 0 {
		req.Roles = []string{pick("r0", "r1", "r2")}
	}
	for range r.IntN(3) {
		t := Tag{Name: pick("t0", "t1", "t2", "t3")}
		if r.IntN(2) == 0 {
			t.Attrs = map[string]string{"type": pick("email", "phone")}
		}
		req.Tags = append(req.Tags, t)
	}
	switch r.IntN(3) {
	case 0:
		req.Resource = Resource{Kind: ResourceObject, Path: pick("b1", "b2", "b3") + pick("", "/d1", "/d2", "/u0", "/u1", "/d1/secret") +
			pick("", "/f0.parquet", "/f1.csv", "/x.parquet", "/d1/x.parquet", "/")}
	case 1:
		req.Resource = Resource{Kind: ResourceTable, Name: pick("ns1", "ns2", "ns3") + pick(".s0", ".s1") + pick(".t0", ".t1", ".t2", ".t1x", ".t9", ""),
			Column: pick("", "c0", "c1", "c2", "c22", "c3")}
		if r.IntN(2) == 0 {
			req.Access = AccessSelect
		}
	default:
		req.Resource = Resource{Kind: ResourceDataset, Name: pick("d1", "d2") + pick("", ".x", ".u0", ".u1.y", ".x.y")}
	}
	return req
}

func TestDecideMatchesReference(t *testing.T) {
	var allowed, denied, masked, filtered, tagDecided int
	t.Cleanup(func() {
		// The universe must exercise every outcome, or the test proves little.
		if allowed == 0 || denied == 0 || masked == 0 || filtered == 0 || tagDecided == 0 {
			t.Errorf("too few outcomes: %d allowed, %d denied by a policy, %d masked, %d row-filtered, %d decided by tag policies",
				allowed, denied, masked, filtered, tagDecided)
		}
	})
	for seed := range uint64(40) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 99))
			e := mustCompile(t, randPolicies(r, 20+r.IntN(200))...)
			var d Decision
			for i := range 2000 {
				req := randRequest(r)
				want := refDecide(e, req)
				switch {
				case want.Allowed:
					allowed++
				case want.PolicyID != "":
					denied++
				}
				if len(want.Masks) > 0 {
					masked++
				}
				if len(want.RowFilters) > 0 {
					filtered++
				}
				if want.Reason == ReasonTagAllow || want.Reason == ReasonTagDeny {
					tagDecided++
				}
				e.Decide(req, &d)
				// Explain evaluates every candidate (no early exit), so
				// its Audit may include lower-priority policies; the rest
				// must agree.
				ex := e.Explain(req)
				for _, got := range []struct {
					name string
					d    *Decision
				}{{"Decide", &d}, {"Explain", &ex.Decision}} {
					g := got.d
					if g.Allowed != want.Allowed || g.PolicyID != want.PolicyID || g.PolicyVersion != want.PolicyVersion ||
						g.Reason != want.Reason || (got.name == "Decide" && g.Audit != want.Audit) ||
						!slices.Equal(g.Masks, want.Masks) || !slices.Equal(g.RowFilters, want.RowFilters) {
						t.Fatalf("request %d %+v:\n%s: allowed=%v policy=%s@%d reason=%q audit=%v masks=%v rows=%q\nreference: allowed=%v policy=%s@%d reason=%q audit=%v masks=%v rows=%q",
							i, *req, got.name, g.Allowed, g.PolicyID, g.PolicyVersion, g.Reason, g.Audit, g.Masks, g.RowFilters,
							want.Allowed, want.PolicyID, want.PolicyVersion, want.Reason, want.Audit, want.Masks, want.RowFilters)
					}
				}
			}
		})
	}
}

// TestExpandFilter: expanding row-filter macros writes into the
// Decision's text block, allocating only when a block is full, and never
// changes a string it returned before.
func TestExpandFilter(t *testing.T) {
	req := &Request{User: "o'brien", Groups: []string{"g1", "it's", "g3", "g4", "g5", "g6", "g7", "g8", "g9"}, Roles: []string{"r"}}
	f := "owner = {USER} AND region IN {GROUPS} AND role IN {ROLES} AND {x"
	want := refExpand(f, req)
	var sc scratch
	got := make([]string, 0, 1000)
	allocs := testing.AllocsPerRun(200, func() { got = append(got, expandFilter(f, req, &sc)) })
	if allocs != 0 { // AllocsPerRun truncates: fewer than one per call
		t.Errorf("expandFilter allocates %v times per call", allocs)
	}
	if len(got) < 2*textBlock/len(want) {
		t.Fatalf("only %d expansions: the test must fill more than one block", len(got))
	}
	for i, g := range got {
		if g != want {
			t.Fatalf("expansion %d = %q, want %q", i, g, want)
		}
	}
	if g := expandFilter("a = 1", &Request{}, &sc); g != "a = 1" {
		t.Errorf("no macros: %q", g)
	}
	long := strings.Repeat("{USER},", textBlock)
	if g := expandFilter(long, req, &sc); g != refExpand(long, req) {
		t.Error("a filter longer than a block is expanded wrongly")
	}
}
