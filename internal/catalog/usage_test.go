package catalog

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward"
)

var usageNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func newTestUsage(t *testing.T, s *Service) *Usage {
	t.Helper()
	u := NewUsage(s.Store.db, s, nil)
	u.now = func() time.Time { return usageNow }
	return u
}

// memAuditor records events in memory, or fails with err.
type memAuditor struct {
	mu  sync.Mutex
	evs []steward.AuditEvent
	err error
}

func (m *memAuditor) Record(_ context.Context, ev steward.AuditEvent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.evs = append(m.evs, ev)
	return nil
}

func s3Get(user, object string, daysAgo int) steward.AuditEvent {
	return steward.AuditEvent{Time: usageNow.AddDate(0, 0, -daysAgo), Actor: user, ActorKind: "user", Action: "s3:GetObject",
		Resource: "s3://" + object, Decision: "allow", Outcome: "success", Details: map[string]any{"status": 200}}
}

func sqlQuery(user string, daysAgo int, tables ...string) steward.AuditEvent {
	return steward.AuditEvent{Time: usageNow.AddDate(0, 0, -daysAgo), Actor: user, ActorKind: "user", Action: "sql.query",
		Decision: "allow", Outcome: "success", Details: map[string]any{"tables": tables}}
}

// read records ev through a UsageAuditor with user (in groups) as the
// principal of the request.
func read(t *testing.T, u *Usage, ev steward.AuditEvent, groups ...string) {
	t.Helper()
	ctx := steward.WithPrincipal(context.Background(), &steward.Principal{Kind: steward.KindUser, Username: ev.Actor, Groups: groups})
	if err := (UsageAuditor{Next: &memAuditor{}, Usage: u}).Record(ctx, ev); err != nil {
		t.Fatal(err)
	}
}

func TestReadsOf(t *testing.T) {
	mortgages := Key{"s3://bank", "risk/mortgages"}
	with := func(ev steward.AuditEvent, f func(*steward.AuditEvent)) steward.AuditEvent { f(&ev); return ev }
	for _, tc := range []struct {
		name string
		ev   steward.AuditEvent
		want []Key
	}{
		{"get", s3Get("alice", "bank/risk/mortgages/part-0.parquet", 0), []Key{mortgages}},
		{"get partition", s3Get("alice", "bank/risk/mortgages/year=2024/x.parquet", 0), []Key{mortgages}},
		{"partial content", with(s3Get("alice", "bank/risk/mortgages/x.csv", 0), func(e *steward.AuditEvent) { e.Details["status"] = 206 }), []Key{mortgages}},
		{"status from JSON", with(s3Get("alice", "bank/risk/mortgages/x.csv", 0), func(e *steward.AuditEvent) { e.Details["status"] = float64(200) }), []Key{mortgages}},
		{"not modified", with(s3Get("alice", "bank/risk/mortgages/x.csv", 0), func(e *steward.AuditEvent) { e.Details["status"] = 304 }), nil},
		{"failed", with(s3Get("alice", "bank/risk/mortgages/x.csv", 0), func(e *steward.AuditEvent) { e.Outcome = "failure" }), nil},
		{"denied", with(s3Get("alice", "bank/risk/mortgages/x.csv", 0), func(e *steward.AuditEvent) { e.Decision = "deny" }), nil},
		{"write", with(s3Get("alice", "bank/risk/mortgages/x.csv", 0), func(e *steward.AuditEvent) { e.Action = "s3:PutObject" }), nil},
		{"head", with(s3Get("alice", "bank/risk/mortgages/x.csv", 0), func(e *steward.AuditEvent) { e.Action = "s3:HeadObject" }), nil},
		{"top of bucket", s3Get("alice", "bank/x.csv", 0), nil},
		{"marker file", s3Get("alice", "bank/risk/mortgages/_SUCCESS", 0), nil},
		{"no key", s3Get("alice", "bank", 0), nil},
		{"no actor", s3Get("", "bank/risk/mortgages/x.csv", 0), nil},
		{"sql", sqlQuery("alice", 0, "bank.risk.mortgages", "bank.branches", "bank.risk.mortgages"), []Key{mortgages, {"s3://bank", "branches"}}},
		{"sql from JSON", with(sqlQuery("alice", 0), func(e *steward.AuditEvent) { e.Details["tables"] = []any{"bank.risk.mortgages", 7} }), []Key{mortgages}},
		{"sql resource", with(sqlQuery("alice", 0), func(e *steward.AuditEvent) { e.Details = nil; e.Resource = "bank.risk.mortgages" }), []Key{mortgages}},
		{"sql bad table", sqlQuery("alice", 0, "nodots", ".x", "x."), nil},
		{"sql failed", with(sqlQuery("alice", 0, "bank.risk.mortgages"), func(e *steward.AuditEvent) { e.Outcome = "failure" }), nil},
		{"sql authorize", with(sqlQuery("alice", 0, "bank.risk.mortgages"), func(e *steward.AuditEvent) { e.Action = "sql.authorize" }), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ReadsOf(tc.ev)
			if len(got) != len(tc.want) {
				t.Fatalf("ReadsOf = %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("ReadsOf = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// FuzzReadsOf: audit resources carry user-chosen object keys and table
// names; mapping them never panics and yields only valid dataset keys.
func FuzzReadsOf(f *testing.F) {
	for _, s := range []string{"s3://bank/a/b.csv", "s3://bank", "s3:///x", "s3://b/year=1/x", "bank.a.b", ".", "a..b", "s3://b/a//c.csv"} {
		f.Add("s3:GetObject", s)
		f.Add("sql.query", s)
	}
	f.Fuzz(func(t *testing.T, action, resource string) {
		ev := steward.AuditEvent{Actor: "alice", Action: action, Resource: resource, Outcome: "success"}
		for _, k := range ReadsOf(ev) {
			if _, ok := BucketOf(k.Namespace); !ok || k.Name == "" {
				t.Fatalf("ReadsOf(%q, %q) gave %+v", action, resource, k)
			}
		}
	})
}

func TestDecay(t *testing.T) {
	u := &Usage{HalfLife: 14 * 24 * time.Hour}
	for _, tc := range []struct {
		age  int64
		want float64
	}{{0, 1}, {7, math.Sqrt(0.5)}, {14, 0.5}, {28, 0.25}, {-3, 1}} {
		if got := u.decay(tc.age); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("decay(%d) = %v, want %v", tc.age, got, tc.want)
		}
	}
	if dayScore(10, 10) <= dayScore(1, 10000) {
		t.Error("one reader reading a lot outranks ten readers")
	}
}

func TestUsageAuditorFailsClosed(t *testing.T) {
	s := newTestService(t, nil)
	u := newTestUsage(t, s)
	next := &memAuditor{err: errors.New("disk full")}
	ev := s3Get("alice", "bank/risk/mortgages/x.csv", 0)
	if err := (UsageAuditor{Next: next, Usage: u}).Record(context.Background(), ev); err == nil {
		t.Fatal("Record succeeded although the audit log failed")
	}
	if len(u.reads) != 0 {
		t.Errorf("a read whose audit failed was counted: %v", u.reads)
	}
	next.err = nil
	if err := (UsageAuditor{Next: next, Usage: u}).Record(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if len(next.evs) != 1 || next.evs[0].Resource != ev.Resource || len(u.reads) != 1 {
		t.Errorf("forwarded %v, counted %v", next.evs, u.reads)
	}
}

func TestUsagePersistence(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { testUsagePersistence(t, newTestServiceOn(t, b.dsn(t), nil)) })
	}
}

func testUsagePersistence(t *testing.T, s *Service) {
	ctx := context.Background()
	register(t, s, Dataset{Namespace: "s3://bank", Name: "risk/mortgages", Classification: "C2"})
	register(t, s, Dataset{Namespace: "s3://bank", Name: "branches", Classification: "C1"})
	// Two replicas share the metastore; their counts add up.
	u1, u2 := newTestUsage(t, s), newTestUsage(t, s)
	for range 3 {
		read(t, u1, s3Get("alice", "bank/risk/mortgages/a.parquet", 0))
	}
	read(t, u2, s3Get("alice", "bank/risk/mortgages/b.parquet", 0))
	read(t, u2, sqlQuery("bob", 0, "bank.risk.mortgages", "bank.branches"))
	read(t, u1, s3Get("bob", "bank/risk/mortgages/a.parquet", 2))
	read(t, u1, s3Get("carol", "bank/risk/mortgages/a.parquet", 40))
	for _, u := range []*Usage{u1, u2} {
		if err := u.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	read(t, u1, s3Get("alice", "bank/risk/mortgages/a.parquet", 0))
	if err := u1.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	got, err := u1.DatasetUsage(ctx, Viewer{User: "dave"}, "s3://bank", "risk/mortgages", 7)
	if err != nil {
		t.Fatal(err)
	}
	if got.Reads != 7 || got.Readers != 2 || len(got.Daily) != 7 {
		t.Fatalf("usage: %+v", got)
	}
	today, twoAgo := got.Daily[6], got.Daily[4]
	if today.Day != "2026-11-26" || today.Reads != 6 || today.Readers != 2 || twoAgo.Reads != 1 || twoAgo.Readers != 1 {
		t.Errorf("daily: %+v", got.Daily)
	}
	if len(got.TopUsers) != 2 || got.TopUsers[0] != (UserReads{"alice", 5, 1}) || got.TopUsers[1] != (UserReads{"bob", 2, 2}) {
		t.Errorf("top users: %+v", got.TopUsers)
	}
	want := dayScore(2, 6) + dayScore(1, 1)*math.Pow(0.5, 2.0/14) + dayScore(1, 1)*math.Pow(0.5, 40.0/14)
	if math.Abs(got.Popularity-want) > 1e-9 {
		t.Errorf("popularity %v, want %v", got.Popularity, want)
	}
	wide, err := u1.DatasetUsage(ctx, Viewer{User: "dave"}, "s3://bank", "risk/mortgages", 0)
	if err != nil || wide.Days != 30 || wide.Readers != 2 {
		t.Errorf("default window: %+v %v", wide, err)
	}
	if _, err := u1.DatasetUsage(ctx, Viewer{User: "dave"}, "s3://bank", "risk/mortgages", 1000); steward.KindOf(err) != steward.EInvalid {
		t.Errorf("1000 days: %v", err)
	}
	if _, err := u1.DatasetUsage(ctx, Viewer{User: "dave"}, "s3://bank", "nope", 7); steward.KindOf(err) != steward.ENotFound {
		t.Errorf("unknown dataset: %v", err)
	}

	var pushed map[Key]float64
	u2.Popularity = func(p map[Key]float64) { pushed = p }
	u2.recompute(ctx)
	if math.Abs(pushed[Key{"s3://bank", "risk/mortgages"}]-want) > 1e-9 || pushed[Key{"s3://bank", "branches"}] != dayScore(1, 1) {
		t.Errorf("pushed popularity %v", pushed)
	}
}

func TestBookmarks(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, nil)
	u := newTestUsage(t, s)
	register(t, s, Dataset{Namespace: "s3://bank", Name: "risk/mortgages", Classification: "C2"})
	register(t, s, Dataset{Namespace: "s3://bank", Name: "branches", Classification: "C1"})
	register(t, s, Dataset{Namespace: "s3://bank", Name: "hr/salaries", Classification: "C4", Owners: []string{"bob"}})
	alice := Viewer{User: "alice"}
	names := func(v Viewer) []string {
		t.Helper()
		bs, err := u.Bookmarks(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, b := range bs {
			out = append(out, b.Dataset.Name)
		}
		return out
	}
	for _, step := range []struct {
		name string
		do   func() error
		kind steward.ErrorKind
	}{
		{"add", func() error { return u.AddBookmark(ctx, alice, "s3://bank", "risk/mortgages") }, ""},
		{"add again", func() error { return u.AddBookmark(ctx, alice, "s3://bank", "risk/mortgages") }, ""},
		{"add second", func() error { return u.AddBookmark(ctx, alice, "s3://bank", "branches") }, ""},
		{"add hidden C4", func() error { return u.AddBookmark(ctx, alice, "s3://bank", "hr/salaries") }, steward.ENotFound},
		{"add unknown", func() error { return u.AddBookmark(ctx, alice, "s3://bank", "nope") }, steward.ENotFound},
		{"anonymous", func() error { return u.AddBookmark(ctx, Viewer{}, "s3://bank", "branches") }, steward.EUnauthenticated},
		{"owner adds C4", func() error { return u.AddBookmark(ctx, Viewer{User: "bob"}, "s3://bank", "hr/salaries") }, ""},
		{"remove", func() error { return u.RemoveBookmark(ctx, alice, "s3://bank", "branches") }, ""},
		{"remove again", func() error { return u.RemoveBookmark(ctx, alice, "s3://bank", "branches") }, steward.ENotFound},
	} {
		t.Run(step.name, func(t *testing.T) {
			if err := step.do(); steward.KindOf(err) != step.kind || (step.kind == "" && err != nil) {
				t.Fatalf("err %v, want kind %q", err, step.kind)
			}
		})
	}
	if got := names(alice); !sameSet(got, []string{"risk/mortgages"}) {
		t.Errorf("alice's bookmarks: %v", got)
	}
	if got := names(Viewer{User: "bob"}); !sameSet(got, []string{"hr/salaries"}) {
		t.Errorf("bob's bookmarks: %v", got)
	}
	// Reclassified C4: alice's bookmark no longer shows it.
	c4 := "C4"
	if _, err := s.Edit(ctx, admin, "s3://bank", "risk/mortgages", 0, (&DatasetPatch{Classification: &c4}).Apply); err != nil {
		t.Fatal(err)
	}
	if got := names(alice); len(got) != 0 {
		t.Errorf("alice still sees a bookmarked dataset turned C4: %v", got)
	}
}

func TestRecommend(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		dec  Decider
		want []string
	}{
		// The C4 secret is used by alice's group and with what she uses,
		// but she may not discover it.
		{"C4 hidden", nil, []string{"risk/rates", "risk/branches"}},
		{"C4 discoverable", fakeDecider{allow: map[string]bool{"alice@bank.hr.secret": true}}, []string{"hr/secret", "risk/rates", "risk/branches"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestService(t, tc.dec)
			u := newTestUsage(t, s)
			for _, d := range []Dataset{
				{Namespace: "s3://bank", Name: "risk/mortgages", Classification: "C2"},
				{Namespace: "s3://bank", Name: "risk/rates", Classification: "C2"},
				{Namespace: "s3://bank", Name: "risk/branches", Classification: "C1"},
				{Namespace: "s3://bank", Name: "risk/owned", Classification: "C1", Owners: []string{"alice"}},
				{Namespace: "s3://bank", Name: "risk/bookmarked", Classification: "C1"},
				{Namespace: "s3://bank", Name: "hr/secret", Classification: "C4", Owners: []string{"bob"}},
				{Namespace: "s3://bank", Name: "hr/other", Classification: "C1"},
			} {
				register(t, s, d)
			}
			// alice (group risk) reads mortgages.
			read(t, u, s3Get("alice", "bank/risk/mortgages/x.parquet", 1), "risk")
			// Her group reads rates (two people), the secret (three), and
			// what she owns or bookmarked.
			read(t, u, s3Get("carol", "bank/risk/rates/x.parquet", 5), "risk")
			read(t, u, s3Get("dave", "bank/risk/rates/x.parquet", 6), "risk", "hr")
			for _, p := range []string{"carol", "dave", "erin"} {
				read(t, u, s3Get(p, "bank/hr/secret/x.parquet", 3), "risk")
			}
			read(t, u, s3Get("carol", "bank/risk/owned/x.parquet", 3), "risk")
			read(t, u, s3Get("carol", "bank/risk/bookmarked/x.parquet", 3), "risk")
			// frank (no group of alice's) reads branches with mortgages on
			// the same day; and hr/other on another day.
			read(t, u, s3Get("frank", "bank/risk/mortgages/x.parquet", 10), "ops")
			read(t, u, sqlQuery("frank", 10, "bank.risk.branches"), "ops")
			read(t, u, s3Get("frank", "bank/hr/other/x.parquet", 11), "ops")
			// Too old to count.
			read(t, u, s3Get("carol", "bank/hr/other/x.parquet", 200), "risk")
			if err := u.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			alice := Viewer{User: "alice", Groups: []string{"risk"}}
			if err := u.AddBookmark(ctx, alice, "s3://bank", "risk/bookmarked"); err != nil {
				t.Fatal(err)
			}
			recs, err := u.Recommend(ctx, alice, 0)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range recs {
				got = append(got, r.Dataset.Name)
				if len(r.Reasons) == 0 || r.Score <= 0 {
					t.Errorf("%s: score %v, reasons %v", r.Dataset.Name, r.Score, r.Reasons)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("recommended %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("recommended %v, want %v", got, tc.want)
				}
			}
			if _, err := u.Recommend(ctx, Viewer{}, 0); steward.KindOf(err) != steward.EUnauthenticated {
				t.Errorf("anonymous: %v", err)
			}
		})
	}
}

func TestUsageRun(t *testing.T) {
	s := newTestService(t, nil)
	register(t, s, Dataset{Namespace: "s3://bank", Name: "risk/mortgages"})
	u := newTestUsage(t, s)
	u.FlushEvery, u.RecomputeEvery = 5*time.Millisecond, 10*time.Millisecond
	pushed := make(chan map[Key]float64, 100)
	u.Popularity = func(p map[Key]float64) { pushed <- p }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); u.Run(ctx) }()
	read(t, u, s3Get("alice", "bank/risk/mortgages/a.parquet", 0))
	for p := range pushed {
		if p[Key{"s3://bank", "risk/mortgages"}] > 0 {
			break
		}
	}
	cancel()
	<-done
	// Counts still buffered when Run stops are flushed.
	u.FlushEvery, u.RecomputeEvery, u.Popularity = time.Hour, time.Hour, nil
	ctx, cancel = context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() { defer close(done); u.Run(ctx) }()
	read(t, u, s3Get("bob", "bank/risk/mortgages/a.parquet", 0))
	cancel()
	<-done
	got, err := u.DatasetUsage(context.Background(), admin, "s3://bank", "risk/mortgages", 1)
	if err != nil || got.Readers != 2 {
		t.Fatalf("after Run stopped: %+v %v", got, err)
	}
}
