// Package bench measures Steward's policy engine against cedar-go on one
// generated policy set: object-path, table, column, tag and classification
// policies with realistic fan-out, and 1,000,000 tagged resources.
//
//	go test ./internal/policy/bench -run '^$' -bench Decide -benchtime 3s -cpu 1
//
// Each benchmark reports ns/op, allocs/op and the p50 and p99 of the
// individual decisions (timed one by one into a preallocated slice).
package bench

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cedar-policy/cedar-go"
	"github.com/stewardhq/steward/internal/policy"
)

const (
	nBuckets   = 1000
	nUsers     = 20_000
	nGroups    = 2_000
	nRoles     = 50
	nTags      = 1000
	nResources = 1_000_000
	nRequests  = 1 << 16
)

type resource struct {
	res  policy.Resource
	tags []policy.Tag
	cls  policy.Classification
}

type user struct {
	name   string
	groups []string
	roles  []string
}

type world struct {
	policies []*policy.Policy
	engine   *policy.Engine
	cedar    *cedar.PolicySet
	cedarN   int
	reqs     []policy.Request
	creqs    []cedar.Request
	entities cedar.EntityMap
}

func pick(r *rand.Rand, n int) int { return r.IntN(n) }

// zipf-ish skew: small indexes are much more common.
func skew(r *rand.Rand, n int) int {
	f := r.Float64()
	return int(f * f * f * float64(n))
}

func objPath(r *rand.Rand) (bucket, team, proj int) {
	return skew(r, nBuckets), pick(r, 20), pick(r, 10)
}

func names(prefix string, r *rand.Rand, max, n int) []string {
	out := make([]string, 0, n)
	for range n {
		out = append(out, fmt.Sprintf("%s%d", prefix, skew(r, max)))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

var accessSets = [][]policy.Access{
	{policy.AccessRead, policy.AccessList},
	{policy.AccessRead, policy.AccessList, policy.AccessWrite},
	{policy.AccessRead, policy.AccessWrite, policy.AccessCreate, policy.AccessDelete, policy.AccessList},
	{policy.AccessSelect, policy.AccessDiscover},
	{policy.AccessAdmin},
}

func item(r *rand.Rand, tableish bool) policy.Item {
	it := policy.Item{Groups: names("g", r, nGroups, 1+r.IntN(5))}
	if r.IntN(3) == 0 {
		it.Users = names("u", r, nUsers, 1+r.IntN(3))
	}
	if r.IntN(10) == 0 {
		it.Roles = names("r", r, nRoles, 1)
	}
	if tableish {
		it.Accesses = accessSets[3]
	} else {
		it.Accesses = accessSets[r.IntN(3)]
	}
	return it
}

// disjoint drops from deny the principals allow names, so that the
// generated policies are not contradictory.
func disjoint(deny, allow policy.Item) policy.Item {
	deny.Users = nil
	deny.Roles = nil
	deny.Groups = slices.DeleteFunc(deny.Groups, func(g string) bool { return slices.Contains(allow.Groups, g) })
	if len(deny.Groups) == 0 {
		deny.Groups = []string{"g-nobody"}
	}
	return deny
}

// generate builds n policies, spread evenly over buckets and namespaces
// (requests, below, are skewed towards hot data): ~80% object paths, ~17% tables and columns,
// 1% tag, 8 classification, 1% masking and row filters.
func generate(n int, seed uint64) []*policy.Policy {
	r := rand.New(rand.NewPCG(seed, 1))
	ps := make([]*policy.Policy, 0, n)
	for i := 0; len(ps) < n; i++ {
		p := &policy.Policy{ID: fmt.Sprintf("p%d", i), Version: 1, Enabled: true, Audit: r.IntN(4) == 0,
			Kind: policy.KindAccess, Priority: policy.PriorityNormal}
		if r.IntN(20) == 0 {
			p.Priority = policy.PriorityOverride
		}
		k := r.IntN(1000)
		switch {
		case i < 8: // classification policies
			p.Tags = []policy.TagMatch{{MinClassification: policy.Classification(1 + i%4)}}
			p.Deny = []policy.Item{{Groups: []string{policy.Public}, Accesses: accessSets[2]}}
			p.DenyExceptions = []policy.Item{{Groups: names("g", r, nGroups, 3), Accesses: accessSets[2]}}
			if i%4 < 2 {
				continue // only C3 and C4 restrict
			}
		case k < 10: // tag policies
			p.Tags = []policy.TagMatch{{Name: fmt.Sprintf("tag%d", r.IntN(nTags))}}
			if r.IntN(2) == 0 {
				p.Deny = []policy.Item{item(r, false)}
			} else {
				p.Allow = []policy.Item{item(r, false)}
			}
		case k < 15: // masking
			p.Kind = policy.KindMasking
			p.Resources = policy.ResourceSpec{Tables: []string{fmt.Sprintf("ns%d.s%d.t%d", r.IntN(200), r.IntN(10), r.IntN(50))}, Columns: []string{fmt.Sprintf("c%d", r.IntN(30))}}
			p.Masks = []policy.MaskItem{{Groups: names("g", r, nGroups, 2), Type: policy.MaskNone}, {Groups: []string{policy.Public}, Type: policy.MaskHash}}
		case k < 20: // row filters
			p.Kind = policy.KindRowFilter
			p.Resources = policy.ResourceSpec{Tables: []string{fmt.Sprintf("ns%d.s%d.t%d", r.IntN(200), r.IntN(10), r.IntN(50))}}
			p.RowFilters = []policy.RowFilterItem{{Groups: []string{policy.Public}, Filter: "region IN {GROUPS}"}}
		case k < 190: // tables and columns
			p.Resources = policy.ResourceSpec{Tables: []string{fmt.Sprintf("ns%d.s%d.*", r.IntN(200), r.IntN(10))}}
			if r.IntN(2) == 0 {
				p.Resources.Tables[0] = fmt.Sprintf("ns%d.s%d.t%d", r.IntN(200), r.IntN(10), r.IntN(50))
			}
			if r.IntN(5) == 0 {
				p.Resources.Columns = []string{fmt.Sprintf("c%d", r.IntN(30)), fmt.Sprintf("c%d*", r.IntN(30))}
			}
			p.Allow = []policy.Item{item(r, true)}
			if r.IntN(10) == 0 {
				p.Deny = []policy.Item{disjoint(item(r, true), p.Allow[0])}
			}
		default: // object paths
			b, t, pr := r.IntN(nBuckets), r.IntN(20), r.IntN(10) // policies spread evenly
			switch r.IntN(3) {
			case 0:
				p.Resources.Paths = []string{fmt.Sprintf("s3://bkt%d/team%d/**", b, t)}
			case 1:
				p.Resources.Paths = []string{fmt.Sprintf("s3://bkt%d/team%d/proj%d/**", b, t, pr)}
			default:
				p.Resources.Paths = []string{fmt.Sprintf("s3://bkt%d/team%d/proj%d/*.parquet", b, t, pr)}
			}
			p.Allow = []policy.Item{item(r, false)}
			if r.IntN(3) == 0 {
				p.Allow = append(p.Allow, item(r, false))
			}
			if r.IntN(10) == 0 {
				p.Deny = []policy.Item{item(r, false)}
				for _, a := range p.Allow {
					p.Deny[0] = disjoint(p.Deny[0], a)
				}
			}
			if r.IntN(20) == 0 {
				p.AllowExceptions = []policy.Item{{Users: names("x", r, nUsers, 2), Accesses: accessSets[2]}}
			}
		}
		ps = append(ps, p)
	}
	return ps
}

// resources builds the tagged resources: 80% objects, 20% table columns;
// 70% carry no tag, 20% one, 10% two to five; classification C1 50%,
// C2 30%, C3 15%, C4 5%.
func resources(seed uint64) []resource {
	r := rand.New(rand.NewPCG(seed, 2))
	out := make([]resource, nResources)
	var tagAttrs = []map[string]string{nil, {"type": "email"}, {"type": "phone"}}
	for i := range out {
		res := &out[i]
		if r.IntN(5) > 0 {
			b, t, p := objPath(r)
			res.res = policy.Resource{Kind: policy.ResourceObject, Path: fmt.Sprintf("bkt%d/team%d/proj%d/part-%d.parquet", b, t, p, i)}
		} else {
			res.res = policy.Resource{Kind: policy.ResourceTable, Name: fmt.Sprintf("ns%d.s%d.t%d", skew(r, 200), r.IntN(10), r.IntN(50)), Column: fmt.Sprintf("c%d", r.IntN(30))}
		}
		nt := 0
		switch x := r.IntN(10); {
		case x < 7:
		case x < 9:
			nt = 1
		default:
			nt = 2 + r.IntN(4)
		}
		for range nt {
			res.tags = append(res.tags, policy.Tag{Name: fmt.Sprintf("tag%d", skew(r, nTags)), Attrs: tagAttrs[r.IntN(3)]})
		}
		switch x := r.IntN(100); {
		case x < 50:
			res.cls = policy.C1
		case x < 80:
			res.cls = policy.C2
		case x < 95:
			res.cls = policy.C3
		default:
			res.cls = policy.C4
		}
	}
	return out
}

func users(seed uint64) []user {
	r := rand.New(rand.NewPCG(seed, 3))
	out := make([]user, 1000)
	for i := range out {
		out[i] = user{name: fmt.Sprintf("u%d", skew(r, nUsers)), groups: names("g", r, nGroups, 5+r.IntN(16))}
		if r.IntN(5) == 0 {
			out[i].roles = names("r", r, nRoles, 1)
		}
	}
	return out
}

var (
	resOnce sync.Once
	allRes  []resource
	worlds  sync.Map // int -> *world
)

func getWorld(tb testing.TB, n int, withCedar bool) *world {
	tb.Helper()
	resOnce.Do(func() { allRes = resources(7) })
	if w, ok := worlds.Load(n); ok {
		w := w.(*world)
		if !withCedar || w.cedar != nil {
			return w
		}
	}
	w := &world{policies: generate(n, 42)}
	start := time.Now()
	e, err := policy.Compile(w.policies, policy.Options{Version: 1})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Logf("compiled %d policies in %v", n, time.Since(start))
	w.engine = e
	us := users(9)
	r := rand.New(rand.NewPCG(11, 4))
	accessFor := func(k policy.ResourceKind) policy.Access {
		if k == policy.ResourceTable {
			return policy.AccessSelect
		}
		return []policy.Access{policy.AccessRead, policy.AccessRead, policy.AccessList, policy.AccessWrite}[r.IntN(4)]
	}
	now := time.Date(2025, 6, 4, 10, 0, 0, 0, time.UTC)
	w.reqs = make([]policy.Request, nRequests)
	for i := range w.reqs {
		u := us[r.IntN(len(us))]
		res := allRes[r.IntN(len(allRes))]
		w.reqs[i] = policy.Request{User: u.name, Groups: u.groups, Roles: u.roles, Access: accessFor(res.res.Kind),
			Resource: res.res, Tags: res.tags, Classification: res.cls, Time: now}
	}
	if withCedar {
		start := time.Now()
		text, count := toCedar(w.policies)
		ps, err := cedar.NewPolicySetFromBytes("bench.cedar", []byte(text))
		if err != nil {
			tb.Fatal(err)
		}
		w.cedar, w.cedarN = ps, count
		tb.Logf("cedar: %d policies from %d, parsed in %v", count, n, time.Since(start))
		w.entities = cedar.EntityMap{}
		for _, u := range us {
			uid := cedar.NewEntityUID("User", cedar.String(u.name))
			var parents []cedar.EntityUID
			for _, g := range u.groups {
				parents = append(parents, cedar.NewEntityUID("Group", cedar.String(g)))
			}
			for _, ro := range u.roles {
				parents = append(parents, cedar.NewEntityUID("Role", cedar.String(ro)))
			}
			w.entities[uid] = cedar.Entity{UID: uid, Parents: cedar.NewEntityUIDSet(parents...)}
		}
		w.creqs = make([]cedar.Request, len(w.reqs))
		for i := range w.reqs {
			q := &w.reqs[i]
			tags := make([]cedar.Value, 0, len(q.Tags))
			for _, t := range q.Tags {
				tags = append(tags, cedar.String(t.Name))
			}
			kind, name := "object", q.Resource.Path
			if q.Resource.Kind == policy.ResourceTable {
				kind, name = "table", q.Resource.Name
			}
			w.creqs[i] = cedar.Request{
				Principal: cedar.NewEntityUID("User", cedar.String(q.User)),
				Action:    cedar.NewEntityUID("Action", cedar.String(q.Access.String())),
				Resource:  cedar.NewEntityUID("Resource", cedar.String(name)),
				Context: cedar.NewRecord(cedar.RecordMap{
					"kind": cedar.String(kind), "name": cedar.String(name), "column": cedar.String(q.Resource.Column),
					"tags": cedar.NewSet(tags...), "cls": cedar.Long(q.Classification),
				}),
			}
		}
	}
	worlds.Store(n, w)
	return w
}

// toCedar expresses the access policies in Cedar: each allow item a permit,
// each deny item a forbid, exceptions as unless clauses, path patterns as
// `like`. Cedar has no priorities (forbid always wins) and no masks or row
// filters, so those are left out; decisions differ only where an override
// allow would beat a deny.
func toCedar(ps []*policy.Policy) (string, int) {
	var b strings.Builder
	count := 0
	principals := func(it policy.Item) string {
		var ents []string
		for _, u := range it.Users {
			ents = append(ents, fmt.Sprintf("User::%q", u))
		}
		for _, g := range it.Groups {
			if g == policy.Public {
				return "true"
			}
			ents = append(ents, fmt.Sprintf("Group::%q", g))
		}
		for _, r := range it.Roles {
			ents = append(ents, fmt.Sprintf("Role::%q", r))
		}
		return "principal in [" + strings.Join(ents, ", ") + "]"
	}
	actions := func(it policy.Item) string {
		var as []string
		for _, a := range it.Accesses {
			as = append(as, fmt.Sprintf("Action::%q", a.String()))
		}
		return "action in [" + strings.Join(as, ", ") + "]"
	}
	for _, p := range ps {
		if p.Kind != policy.KindAccess {
			continue
		}
		var cond []string
		rs := p.Resources
		switch {
		case len(rs.Paths) > 0:
			pat := strings.TrimPrefix(rs.Paths[0], "s3://")
			pat = strings.ReplaceAll(pat, "/**", "/*")
			cond = append(cond, `context.kind == "object"`, fmt.Sprintf("context.name like %q", pat))
		case len(rs.Tables) > 0:
			cond = append(cond, `context.kind == "table"`, fmt.Sprintf("context.name like %q", rs.Tables[0]))
			if len(rs.Columns) > 0 {
				var cs []string
				for _, c := range rs.Columns {
					cs = append(cs, fmt.Sprintf("context.column like %q", c))
				}
				cond = append(cond, "("+strings.Join(cs, " || ")+")")
			}
		}
		for _, t := range p.Tags {
			if t.Name != "" {
				cond = append(cond, fmt.Sprintf("context.tags.contains(%q)", t.Name))
			} else {
				cond = append(cond, fmt.Sprintf("context.cls >= %d", t.MinClassification))
			}
		}
		emit := func(effect string, it policy.Item, exc []policy.Item) {
			count++
			fmt.Fprintf(&b, "%s(principal, action, resource) when { %s && %s && %s }", effect, principals(it), actions(it), strings.Join(cond, " && "))
			for _, e := range exc {
				fmt.Fprintf(&b, " unless { %s && %s }", principals(e), actions(e))
			}
			b.WriteString(";\n")
		}
		for _, it := range p.Deny {
			emit("forbid", it, p.DenyExceptions)
		}
		for _, it := range p.Allow {
			emit("permit", it, p.AllowExceptions)
		}
	}
	return b.String(), count
}

// timed runs decide b.N times over the requests, timing each call, and
// reports p50 and p99.
func timed(b *testing.B, n int, decide func(i int)) {
	lat := make([]int64, b.N)
	for i := range min(b.N, n) { // warm up
		decide(i)
	}
	runtime.GC() // collect the setup's garbage before timing
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		decide(i % n)
		lat[i] = int64(time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2]), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100]), "p99-ns")
}

func BenchmarkDecide(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("steward/policies=%d", n), func(b *testing.B) {
			w := getWorld(b, n, false)
			var d policy.Decision
			allowed := 0
			timed(b, len(w.reqs), func(i int) {
				w.engine.Decide(&w.reqs[i], &d)
				if d.Allowed {
					allowed++
				}
			})
			b.ReportMetric(float64(allowed)/float64(b.N), "allowed/op")
		})
	}
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("cedar/policies=%d", n), func(b *testing.B) {
			w := getWorld(b, n, true)
			allowed := 0
			timed(b, len(w.creqs), func(i int) {
				dec, _ := cedar.Authorize(w.cedar, w.entities, w.creqs[i])
				if dec == cedar.Allow {
					allowed++
				}
			})
			b.ReportMetric(float64(allowed)/float64(b.N), "allowed/op")
		})
	}
}

// TestGeneratedSetCompiles keeps the generator honest in normal test runs
// (at a small size).
func TestGeneratedSetCompiles(t *testing.T) {
	ps := generate(2000, 1)
	e, err := policy.Compile(ps, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	text, n := toCedar(ps)
	if _, err := cedar.NewPolicySetFromBytes("t.cedar", []byte(text)); err != nil {
		t.Fatalf("cedar: %v", err)
	}
	if n == 0 || e.Len() != len(ps) {
		t.Fatalf("cedar %d, engine %d", n, e.Len())
	}
}

// slowest returns the indexes of the slowest 1% of requests (by the
// median of three timed passes).
func slowest(w *world) []int {
	var d policy.Decision
	n := len(w.reqs)
	lat := make([][3]int64, n)
	for pass := range 3 {
		for i := range w.reqs {
			t0 := time.Now()
			w.engine.Decide(&w.reqs[i], &d)
			lat[i][pass] = int64(time.Since(t0))
		}
	}
	idx := make([]int, n)
	med := make([]int64, n)
	for i := range idx {
		idx[i] = i
		l := lat[i]
		slices.Sort(l[:])
		med[i] = l[1]
	}
	slices.SortFunc(idx, func(a, b int) int { return int(med[b] - med[a]) })
	return idx[:n/100]
}

// BenchmarkSlowestRequests replays only the slowest 1% of the requests, to
// profile the tail.
func BenchmarkSlowestRequests(b *testing.B) {
	w := getWorld(b, 100_000, false)
	idx := slowest(w)
	var d policy.Decision
	timed(b, len(idx), func(i int) { w.engine.Decide(&w.reqs[idx[i]], &d) })
}
