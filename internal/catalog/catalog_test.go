package catalog

import (
	"context"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/metastore"
	"github.com/stewardhq/steward/internal/policy"
	"github.com/stewardhq/steward/internal/testutil/pgtest"
)

func newTestService(t *testing.T, dec Decider) *Service {
	t.Helper()
	return newTestServiceOn(t, "", dec)
}

// backends are the metastore DSNs the persistence tests run on: SQLite
// and PostgreSQL (a fresh database on the test server).
var backends = []struct {
	name string
	dsn  func(t *testing.T) string
}{
	{"sqlite", func(*testing.T) string { return "" }},
	{"postgres", func(t *testing.T) string { return pgtest.Start(t) }},
}

func newTestServiceOn(t *testing.T, dsn string, dec Decider) *Service {
	t.Helper()
	db, err := metastore.Open(context.Background(), dsn, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := NewService(NewStore(db), dec, nil, nil)
	if err := s.Index.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

var admin = Viewer{User: "root", Admin: true}

func register(t *testing.T, s *Service, d Dataset) *Dataset {
	t.Helper()
	out, err := s.Register(context.Background(), admin, &d)
	if err != nil {
		t.Fatalf("register %s: %v", d.Name, err)
	}
	return out
}

func TestDatasetOf(t *testing.T) {
	for _, tc := range []struct {
		key, name string
		ok        bool
	}{
		{"a/b/c.parquet", "a/b", true},
		{"a/b/year=2024/month=01/c.parquet", "a/b", true},
		{"sales/x.csv", "sales", true},
		{"top.csv", "", false},
		{"year=2024/x.parquet", "", false},
		{"a/b/_SUCCESS", "", false},
		{"a/.hidden/x.csv", "", false},
		{"a//x.csv", "", false},
	} {
		t.Run(tc.key, func(t *testing.T) {
			ns, name, ok := DatasetOf("bank", tc.key)
			if ok != tc.ok || name != tc.name || (ok && ns != "s3://bank") {
				t.Errorf("DatasetOf(bank, %q) = %q, %q, %v; want %q, %v", tc.key, ns, name, ok, tc.name, tc.ok)
			}
		})
	}
}

func TestIDRoundTrip(t *testing.T) {
	for _, ref := range []string{"s3://bank/sales/mortgages", "postgres://db:5432/public.t"} {
		ns, name, err := ParseRef(ref)
		if err != nil {
			t.Fatal(err)
		}
		ns2, name2, err := ParseRef(ID(ns, name))
		if err != nil || ns2 != ns || name2 != name {
			t.Errorf("%s: id round trip gave %q %q %v", ref, ns2, name2, err)
		}
	}
	if got := PolicyName("s3://bank", "sales/mortgages"); got != "bank.sales.mortgages" {
		t.Errorf("PolicyName = %q", got)
	}
	if _, _, err := ParseID("!!"); steward.KindOf(err) != steward.EInvalid {
		t.Errorf("bad id: %v", err)
	}
}

func TestCRUD(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { testCRUD(t, newTestServiceOn(t, b.dsn(t), nil)) })
	}
}

func testCRUD(t *testing.T, s *Service) {
	ctx := context.Background()
	d := register(t, s, Dataset{Namespace: "s3://bank", Name: "sales/mortgages", Description: "Mortgages by country", Owners: []string{"bob"}, Classification: "C3"})
	if d.ID == "" || d.Bucket != "bank" || d.Prefix != "sales/mortgages/" || d.Version != 1 {
		t.Fatalf("registered: %+v", d)
	}
	if _, err := s.Register(ctx, admin, &Dataset{Namespace: "s3://bank", Name: "sales/mortgages"}); steward.KindOf(err) != steward.EConflict {
		t.Errorf("second register: %v", err)
	}
	if _, err := s.Register(ctx, Viewer{User: "bob"}, &Dataset{Namespace: "s3://bank", Name: "x"}); steward.KindOf(err) != steward.EPermission {
		t.Errorf("register by non-admin: %v", err)
	}
	for _, bad := range []Dataset{
		{Namespace: "bank", Name: "x"},
		{Namespace: "s3://bank", Name: "/x"},
		{Namespace: "s3://bank", Name: "x", Classification: "C9"},
		{Namespace: "s3://bank", Name: "x", Owners: []string{"a b"}},
	} {
		if _, err := s.Register(ctx, admin, &bad); steward.KindOf(err) != steward.EInvalid {
			t.Errorf("register %+v: %v", bad, err)
		}
	}

	desc := "Belgian mortgages"
	bob, alice := Viewer{User: "bob"}, Viewer{User: "alice"}
	p := DatasetPatch{Description: &desc, AddTags: []Tag{{Name: "finance"}}}
	if _, err := s.Edit(ctx, alice, "s3://bank", "sales/mortgages", 0, p.Apply); steward.KindOf(err) != steward.EPermission {
		t.Errorf("alice edits bob's dataset: %v", err)
	}
	d, err := s.Edit(ctx, bob, "s3://bank", "sales/mortgages", 1, p.Apply)
	if err != nil || d.Description != desc || !HasTag(d.Tags, "finance") || d.Version != 2 {
		t.Fatalf("bob edits: %+v %v", d, err)
	}
	if _, err := s.Edit(ctx, bob, "s3://bank", "sales/mortgages", 1, p.Apply); steward.KindOf(err) != steward.EConflict {
		t.Errorf("stale version: %v", err)
	}
	if err := s.Delete(ctx, alice, "s3://bank", "sales/mortgages", nil); steward.KindOf(err) != steward.EPermission {
		t.Errorf("alice deletes: %v", err)
	}
	if err := s.Delete(ctx, bob, "s3://bank", "sales/mortgages", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, bob, "s3://bank", "sales/mortgages"); steward.KindOf(err) != steward.ENotFound {
		t.Errorf("get after delete: %v", err)
	}
	if r := s.Search(admin, Query{}); r.Total != 0 {
		t.Errorf("index still has %d", r.Total)
	}
}

// denyDecider denies discover of names listed, allows those in allow.
type fakeDecider struct{ allow, deny map[string]bool }

func (f fakeDecider) Decide(r *policy.Request, d *policy.Decision) {
	switch {
	case f.deny[r.Resource.Name]:
		d.Allowed, d.PolicyID = false, "deny"
	case f.allow[r.User+"@"+r.Resource.Name]:
		d.Allowed, d.PolicyID = true, "allow"
	}
}

func TestDiscover(t *testing.T) {
	ctx := context.Background()
	dec := fakeDecider{allow: map[string]bool{"carol@bank.secret.salaries": true}, deny: map[string]bool{"bank.hidden": true}}
	s := newTestService(t, dec)
	register(t, s, Dataset{Namespace: "s3://bank", Name: "secret/salaries", Owners: []string{"bob"}, Classification: "C4", Description: "salaries"})
	register(t, s, Dataset{Namespace: "s3://bank", Name: "open", Classification: "C1", Description: "salaries open"})
	register(t, s, Dataset{Namespace: "s3://bank", Name: "hidden", Classification: "C2", Description: "salaries hidden"})
	register(t, s, Dataset{Namespace: "s3://bank", Name: "team", Classification: "C4", Owners: []string{"group:hr"}, Description: "salaries team"})
	for _, tc := range []struct {
		v    Viewer
		want []string
	}{
		{Viewer{User: "alice"}, []string{"open"}},
		{Viewer{User: "bob"}, []string{"open", "secret/salaries"}},
		{Viewer{User: "carol"}, []string{"open", "secret/salaries"}},
		{Viewer{User: "dave", Groups: []string{"hr"}}, []string{"open", "team"}},
		{admin, []string{"hidden", "open", "secret/salaries", "team"}},
	} {
		t.Run(tc.v.User, func(t *testing.T) {
			r := s.Search(tc.v, Query{Text: "salaries", Limit: 10})
			var got []string
			for _, h := range r.Hits {
				got = append(got, h.Dataset.Name)
			}
			if !sameSet(got, tc.want) {
				t.Errorf("sees %v, want %v", got, tc.want)
			}
			_, err := s.Get(ctx, tc.v, "s3://bank", "secret/salaries")
			visible := contains(tc.want, "secret/salaries")
			if (err == nil) != visible {
				t.Errorf("Get secret: %v, visible %v", err, visible)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !contains(b, x) {
			return false
		}
	}
	return true
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func TestSearchRanking(t *testing.T) {
	s := newTestService(t, nil)
	register(t, s, Dataset{Namespace: "s3://bank", Name: "risk/mortgages", Description: "Mortgage portfolio by country: Belgium, Netherlands, France. Rates and terms.", Owners: []string{"bob"}, Format: FormatParquet, Classification: "C2",
		Schema: []Column{{Name: "country", Type: "VARCHAR"}, {Name: "rate", Type: "DOUBLE"}}})
	register(t, s, Dataset{Namespace: "s3://bank", Name: "retail/customers", Description: "Customers of the bank in Belgium with their mortgage flag", Owners: []string{"alice"}, Format: FormatCSV, Classification: "C3",
		Schema: []Column{{Name: "email", Type: "VARCHAR", Tags: []Tag{{Name: "PII"}}}}})
	register(t, s, Dataset{Namespace: "s3://bank", Name: "retail/branches", Description: "Branch offices", Format: FormatCSV, Classification: "C1"})
	register(t, s, Dataset{Namespace: "s3://bank", Name: "payments/transactions", Description: "Card and transfer transactions", Format: FormatParquet, Classification: "C3"})
	for _, tc := range []struct {
		q     Query
		first string
		total int
	}{
		{Query{Text: "mortgage belgium"}, "risk/mortgages", 2},
		{Query{Text: "mortage"}, "risk/mortgages", 2},
		{Query{Text: "mortgages belgum"}, "risk/mortgages", 2},
		{Query{Text: "transact"}, "payments/transactions", 1},
		{Query{Text: "email"}, "retail/customers", 1},
		{Query{Text: "bob"}, "risk/mortgages", 1},
		{Query{Text: "pii"}, "retail/customers", 1},
		{Query{Format: FormatCSV}, "retail/branches", 2},
		{Query{Tags: []string{"PII"}}, "retail/customers", 1},
		{Query{Owner: "bob"}, "risk/mortgages", 1},
		{Query{Classification: "C1"}, "retail/branches", 1},
		{Query{Text: "\x00'; DROP TABLE x; --"}, "", 0},
		{Query{Text: "zzzzzzzz"}, "", 0},
	} {
		t.Run(tc.q.Text, func(t *testing.T) {
			r := s.Search(admin, tc.q)
			if r.Total != tc.total {
				t.Errorf("total %d, want %d: %v", r.Total, tc.total, names(r))
			}
			if tc.first != "" && (len(r.Hits) == 0 || r.Hits[0].Dataset.Name != tc.first) {
				t.Errorf("first hit: %v, want %s", names(r), tc.first)
			}
		})
	}
	r := s.Search(admin, Query{})
	if f := r.Facets["format"]; len(f) != 2 || f[0].Count != 2 {
		t.Errorf("format facets %+v", f)
	}
}

func names(r SearchResult) []string {
	var out []string
	for _, h := range r.Hits {
		out = append(out, h.Dataset.Name)
	}
	return out
}

// A second replica's index sees changes made through another by polling
// the catalog version.
func TestIndexAcrossReplicas(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { testIndexAcrossReplicas(t, newTestServiceOn(t, b.dsn(t), nil)) })
	}
}

func testIndexAcrossReplicas(t *testing.T, s *Service) {
	ctx := context.Background()
	other := NewIndex(s.Store, nil)
	if err := other.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	register(t, s, Dataset{Namespace: "s3://bank", Name: "a", Description: "alpha"})
	register(t, s, Dataset{Namespace: "s3://bank", Name: "b", Description: "beta"})
	if err := other.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if r := other.Search(nil, admin, Query{Text: "alpha"}); r.Total != 1 {
		t.Fatalf("other replica: %v", names(r))
	}
	if err := s.Delete(ctx, admin, "s3://bank", "a", nil); err != nil {
		t.Fatal(err)
	}
	desc := "gamma"
	if _, err := s.Edit(ctx, admin, "s3://bank", "b", 0, (&DatasetPatch{Description: &desc}).Apply); err != nil {
		t.Fatal(err)
	}
	if err := other.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]int{"alpha": 0, "beta": 0, "gamma": 1} {
		if r := other.Search(nil, admin, Query{Text: q}); r.Total != want {
			t.Errorf("%s: %d hits, want %d", q, r.Total, want)
		}
	}
}

func TestChangeMarks(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { testChangeMarks(t, newTestServiceOn(t, b.dsn(t), nil)) })
	}
}

func testChangeMarks(t *testing.T, s *Service) {
	ctx := context.Background()
	s.ObjectChanged("bank", "a/b/c.csv")
	s.ObjectChanged("bank", "a/b/year=2024/d.csv")
	s.ObjectChanged("bank", "top.csv")
	s.ObjectChanged("bank", "logs/2024/app.bin") // not a data file: no crawl
	s.ObjectChanged("bank", "raw/00/00000001")
	s.flushMarks(ctx)
	cs, err := s.Store.Pending(ctx, time.Now().Add(time.Hour), 10)
	if err != nil || len(cs) != 1 || cs[0].Name != "a/b" {
		t.Fatalf("pending %+v %v", cs, err)
	}
	if err := s.Store.MarkChanged(ctx, cs[0].Namespace, cs[0].Name, cs[0].At.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.Store.Done(ctx, cs[0]); err != nil {
		t.Fatal(err)
	}
	if cs2, _ := s.Store.Pending(ctx, time.Now().Add(time.Hour), 10); len(cs2) != 1 {
		t.Errorf("a newer mark was cleared: %+v", cs2)
	}
	// A batch: an older mark never replaces a newer one; new ones are added.
	newer := cs[0].At.Add(time.Second)
	if err := s.Store.MarkChangedAll(ctx, map[Key]time.Time{
		{cs[0].Namespace, cs[0].Name}: cs[0].At.Add(-time.Hour),
		{"s3://bank", "x/y"}:          newer,
	}); err != nil {
		t.Fatal(err)
	}
	cs3, err := s.Store.Pending(ctx, time.Now().Add(time.Hour), 10)
	if err != nil || len(cs3) != 2 {
		t.Fatalf("pending after a batch: %+v %v", cs3, err)
	}
	for _, c := range cs3 {
		if !c.At.Equal(newer) {
			t.Errorf("%s marked at %v, want %v", c.Name, c.At, newer)
		}
	}
}
