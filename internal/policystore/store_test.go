package policystore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/metastore"
	"github.com/stewardhq/steward/internal/policy"
	"github.com/stewardhq/steward/internal/policystore"
	"github.com/stewardhq/steward/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// backends runs fn against a fresh metastore on SQLite and on PostgreSQL.
func backends(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, "sqlite:"+filepath.Join(t.TempDir(), "steward.db")) })
	t.Run("postgres", func(t *testing.T) { fn(t, pgtest.Start(t)) })
}

func open(t *testing.T, dsn string) *metastore.Store {
	t.Helper()
	db, err := metastoreOpen(t, dsn)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func metastoreOpen(tb testing.TB, dsn string) (*metastore.Store, error) {
	db, err := metastore.Open(context.Background(), dsn, tb.TempDir())
	if err == nil {
		tb.Cleanup(func() { db.Close() })
	}
	return db, err
}

func newStore(t *testing.T, dsn string) *policystore.Store {
	t.Helper()
	return policystore.New(open(t, dsn))
}

const basic = `policies:
  - id: sales-read
    resources:
      paths: ["s3://data/sales/**"]
    allow:
      - groups: [sales]
        accesses: [read, list]
  - id: pii-deny
    tags:
      - name: PII
    deny:
      - groups: [public]
        accesses: [read, select]
`

func apply(t *testing.T, s *policystore.Store, file, content string, opts policystore.ApplyOptions) *policystore.Result {
	t.Helper()
	if opts.Actor == "" {
		opts.Actor = "carol"
	}
	r, err := s.ApplyFile(context.Background(), file, []byte(content), opts)
	if err != nil {
		t.Fatalf("apply %s: %v", file, err)
	}
	return r
}

func TestApply(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := newStore(t, dsn)

		// Dry run on an empty set changes nothing.
		r := apply(t, s, "p.yaml", basic, policystore.ApplyOptions{DryRun: true})
		if r.Changed || len(r.Changes) != 2 || r.SetVersion != 0 {
			t.Fatalf("dry run: %+v", r)
		}
		if v, _ := s.Version(ctx); v != 0 {
			t.Fatalf("dry run bumped the version to %d", v)
		}
		if ps, _ := s.List(ctx); len(ps) != 0 {
			t.Fatalf("dry run stored %d policies", len(ps))
		}

		r = apply(t, s, "p.yaml", basic, policystore.ApplyOptions{})
		if !r.Changed || r.SetVersion != 1 || len(r.Changes) != 2 || r.Changes[0].Op != policystore.OpCreate {
			t.Fatalf("first apply: %+v", r)
		}

		// Idempotent: the same file again is no change and the same version.
		r = apply(t, s, "p.yaml", basic, policystore.ApplyOptions{})
		if r.Changed || len(r.Changes) != 0 || r.Unchanged != 2 || r.SetVersion != 1 {
			t.Fatalf("second apply: %+v", r)
		}
		if v, _ := s.Version(ctx); v != 1 {
			t.Fatalf("version after idempotent apply = %d", v)
		}

		// An update bumps that policy's version and records the field diff.
		changed := strings.Replace(basic, "groups: [sales]", "groups: [sales, finance]", 1)
		r = apply(t, s, "p.yaml", changed, policystore.ApplyOptions{Actor: "dave"})
		if r.SetVersion != 2 || len(r.Changes) != 1 {
			t.Fatalf("update: %+v", r)
		}
		c := r.Changes[0]
		if c.ID != "sales-read" || c.Op != policystore.OpUpdate || c.FromVersion != 1 || c.ToVersion != 2 ||
			len(c.Fields) != 1 || c.Fields[0].Path != "allow[0].groups" || string(c.Fields[0].New) != `["sales","finance"]` {
			t.Fatalf("update change: %+v", c)
		}
		if !strings.Contains(r.Text(), `allow[0].groups: ["sales"] -> ["sales","finance"]`) {
			t.Errorf("text diff:\n%s", r.Text())
		}
		rec, err := s.Get(ctx, "sales-read")
		if err != nil || rec.Policy.Version != 2 || rec.UpdatedBy != "dave" {
			t.Fatalf("get: %+v %v", rec, err)
		}

		// History keeps every version with who and the difference.
		h, err := s.History(ctx, "sales-read")
		if err != nil || len(h) != 2 {
			t.Fatalf("history: %v %v", h, err)
		}
		if h[0].Op != policystore.OpCreate || h[0].Actor != "carol" || h[0].Version != 1 || h[0].SetVersion != 1 ||
			h[1].Op != policystore.OpUpdate || h[1].Actor != "dave" || h[1].Version != 2 || len(h[1].Diff) != 1 || h[1].Time.IsZero() {
			t.Fatalf("history entries: %+v %+v", h[0], h[1])
		}
		if h[1].Policy == nil || len(h[1].Policy.Allow[0].Groups) != 2 {
			t.Fatalf("history body: %+v", h[1].Policy)
		}

		// Prune deletes policies the file no longer names.
		only := "policies:\n  - id: pii-deny\n    tags:\n      - name: PII\n    deny:\n      - groups: [public]\n        accesses: [read, select]\n"
		r = apply(t, s, "p.yaml", only, policystore.ApplyOptions{Prune: true})
		if r.SetVersion != 3 || len(r.Changes) != 1 || r.Changes[0].Op != policystore.OpDelete || r.Changes[0].ID != "sales-read" {
			t.Fatalf("prune: %+v", r)
		}
		if _, err := s.Get(ctx, "sales-read"); steward.KindOf(err) != steward.ENotFound {
			t.Fatalf("pruned policy still there: %v", err)
		}

		// Delete.
		if _, err := s.Delete(ctx, "nope", "carol", false, nil); steward.KindOf(err) != steward.ENotFound {
			t.Fatalf("delete missing: %v", err)
		}
		r, err = s.Delete(ctx, "pii-deny", "carol", true, nil)
		if err != nil || r.Changed || len(r.Changes) != 1 {
			t.Fatalf("delete dry run: %+v %v", r, err)
		}
		r, err = s.Delete(ctx, "pii-deny", "carol", false, nil)
		if err != nil || !r.Changed || r.SetVersion != 4 {
			t.Fatalf("delete: %+v %v", r, err)
		}
		h, _ = s.History(ctx, "pii-deny")
		if len(h) != 2 || h[1].Op != policystore.OpDelete || h[1].Policy != nil {
			t.Fatalf("history after delete: %+v", h)
		}
	})
}

func TestApplyBadBatchChangesNothing(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := newStore(t, dsn)
		apply(t, s, "p.yaml", basic, policystore.ApplyOptions{})
		cases := []struct {
			name, content, want string
			kind                steward.ErrorKind
		}{
			{"bad access", strings.Replace(basic, "accesses: [read, list]", "accesses: [read, raed]", 1), `bad.yaml: policy "sales-read": allow[0].accesses[1]: unknown access type "raed"`, steward.EInvalid},
			{"unknown field", strings.Replace(basic, "    allow:", "    alow:", 1), `bad.yaml: policy "sales-read"`, steward.EInvalid},
			{"bad expression", strings.Replace(basic, "accesses: [read, list]", "accesses: [read]\n        conditions: {expr: 'user =='}", 1), `bad.yaml: policy "sales-read": allow[0].conditions`, steward.EInvalid},
			{"duplicate id", basic + "  - id: sales-read\n    resources: {paths: [\"s3://x\"]}\n    allow: [{users: [a], accesses: [read]}]\n", `duplicate`, steward.EInvalid},
			{"reserved id", basic + "  - id: \"grant:x\"\n    resources: {paths: [\"s3://x\"]}\n    allow: [{users: [a], accesses: [read]}]\n", `reserved`, steward.EInvalid},
			{"id shadowed by an endpoint", basic + "  - id: export\n    resources: {paths: [\"s3://x\"]}\n    allow: [{users: [a], accesses: [read]}]\n", `reserved`, steward.EInvalid},
			{"not yaml", "policies: [", "bad.yaml", steward.EInvalid},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				_, err := s.ApplyFile(ctx, "bad.yaml", []byte(tc.content), policystore.ApplyOptions{Actor: "carol"})
				if steward.KindOf(err) != tc.kind || !strings.Contains(steward.MessageOf(err), tc.want) {
					t.Fatalf("error = %v, want %s containing %q", err, tc.kind, tc.want)
				}
				if v, _ := s.Version(ctx); v != 1 {
					t.Fatalf("version = %d after a bad batch", v)
				}
				rec, err := s.Get(ctx, "sales-read")
				if err != nil || rec.Policy.Version != 1 || rec.Policy.Allow[0].Groups[0] != "sales" {
					t.Fatalf("policy changed: %+v %v", rec, err)
				}
			})
		}
		// A batch where one of many policies is invalid (model API).
		good := &policy.Policy{ID: "new-one", Kind: policy.KindAccess, Enabled: true, Resources: policy.ResourceSpec{Paths: []string{"s3://n"}},
			Allow: []policy.Item{{Users: []string{"a"}, Accesses: []policy.Access{policy.AccessRead}}}}
		bad := &policy.Policy{ID: "broken", Kind: policy.KindAccess, Enabled: true, Resources: policy.ResourceSpec{Paths: []string{"no-scheme"}},
			Allow: []policy.Item{{Users: []string{"a"}, Accesses: []policy.Access{policy.AccessRead}}}}
		_, err := s.Apply(ctx, []*policy.Policy{good, bad}, policystore.ApplyOptions{Actor: "carol"})
		if steward.KindOf(err) != steward.EInvalid || !strings.Contains(steward.MessageOf(err), `policy "broken"`) {
			t.Fatalf("mixed batch: %v", err)
		}
		if _, err := s.Get(ctx, "new-one"); steward.KindOf(err) != steward.ENotFound {
			t.Fatalf("good half of a bad batch was applied: %v", err)
		}
		// A failing BeforeCommit (the audit trail) rolls the change back.
		_, err = s.Apply(ctx, []*policy.Policy{good}, policystore.ApplyOptions{Actor: "carol", BeforeCommit: func(context.Context, *policystore.Result) error {
			return errors.New("audit down")
		}})
		if err == nil {
			t.Fatal("apply succeeded although BeforeCommit failed")
		}
		if _, err := s.Get(ctx, "new-one"); steward.KindOf(err) != steward.ENotFound {
			t.Fatalf("change committed without its audit record: %v", err)
		}
		if v, _ := s.Version(ctx); v != 1 {
			t.Fatalf("version = %d", v)
		}
	})
}

func TestExportRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, "sqlite:"+filepath.Join(t.TempDir(), "s.db"))
	data, err := os.ReadFile("testdata/every_kind.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := apply(t, s, "every_kind.yaml", string(data), policystore.ApplyOptions{})
	if !r.Changed {
		t.Fatal("nothing applied")
	}
	recs, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ps []*policy.Policy
	for _, rec := range recs {
		ps = append(ps, rec.Policy)
	}
	out, err := policystore.FormatFile(ps)
	if err != nil {
		t.Fatal(err)
	}
	// Applying the export changes nothing.
	r = apply(t, s, "export.yaml", string(out), policystore.ApplyOptions{Prune: true})
	if r.Changed || len(r.Changes) != 0 || r.Unchanged != len(ps) {
		t.Fatalf("re-applying the export: %+v\n%s\n%s", r, r.Text(), out)
	}
}

func TestHoldersSeeChanges(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// Two replicas: two connections to the same database.
		writer := newStore(t, dsn)
		h1 := policystore.NewHolder(newStore(t, dsn), nil)
		h2 := policystore.NewHolder(newStore(t, dsn), nil)
		for _, h := range []*policystore.Holder{h1, h2} {
			if _, err := h.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			if h.Version() != 0 || h.Engine() == nil {
				t.Fatalf("initial engine: version %d", h.Version())
			}
			done := make(chan struct{})
			go func() { defer close(done); h.Run(ctx, 50*time.Millisecond) }()
			t.Cleanup(func() { cancel(); <-done })
		}
		req := &policy.Request{User: "ann", Groups: []string{"sales"}, Access: policy.AccessRead,
			Resource: policy.Resource{Kind: policy.ResourceObject, Path: "data/sales/q1.csv"}, Time: time.Now()}
		var d policy.Decision
		h1.Decide(req, &d)
		if d.Allowed {
			t.Fatal("allowed before any policy")
		}
		r := apply(t, writer, "p.yaml", basic, policystore.ApplyOptions{})
		for name, h := range map[string]*policystore.Holder{"h1": h1, "h2": h2} {
			waitVersion(t, h, r.SetVersion)
			h.Decide(req, &d)
			if !d.Allowed || d.PolicyID != "sales-read" || d.PolicyVersion != 1 {
				t.Fatalf("%s: decision after apply: %+v", name, d)
			}
		}
		r, err := writer.Delete(ctx, "sales-read", "carol", false, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range []*policystore.Holder{h1, h2} {
			waitVersion(t, h, r.SetVersion)
			h.Decide(req, &d)
			if d.Allowed {
				t.Fatalf("still allowed after delete: %+v", d)
			}
		}
	})
}

// waitVersion waits (up to a generous deadline) until h holds version v.
func waitVersion(t *testing.T, h *policystore.Holder, v int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.Version() < v {
		if time.Now().After(deadline) {
			t.Fatalf("holder at version %d, want %d", h.Version(), v)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
