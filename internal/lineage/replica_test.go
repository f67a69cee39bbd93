package lineage

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/policy"
)

// Two services on one metastore stand for two replicas: what one records
// reaches the other's effective tags after Refresh, and a writer on a
// stale graph catches up before computing its own change.
func TestReplicas(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := b.dsn(t)
			a := newService(t, openStore(t, dsn))
			r := newService(t, openStore(t, dsn))
			check := func(s *Service, name string, want policy.Classification, wantTags string) {
				t.Helper()
				tags, cls, err := s.InheritedTags(ctx, "dw", name)
				if err != nil || cls != want || names(tags) != wantTags {
					t.Fatalf("dw:%s inherits %q %v (%v), want %q %v", name, names(tags), cls, err, wantTags, want)
				}
			}
			refresh := func(s *Service) {
				t.Helper()
				if err := s.Refresh(ctx); err != nil {
					t.Fatal(err)
				}
			}

			if err := a.SetTags(ctx, "crm", "customers", "email", "catalog", []LineageTag{{Name: "PII", Classification: policy.C3, Propagate: true}}); err != nil {
				t.Fatal(err)
			}
			start := runEvent(t, "START", "r1", "load", t0, []map[string]any{ds("crm", "customers", nil)}, []map[string]any{ds("dw", "contacts", nil)})
			if _, err := a.Ingest(ctx, "svc", []*Event{start}); err != nil {
				t.Fatal(err)
			}
			check(a, "contacts", policy.C3, "PII")
			check(r, "contacts", policy.Unclassified, "") // not refreshed yet
			refresh(r)
			check(r, "contacts", policy.C3, "PII")
			if r.Version() != a.Version() || a.Version() != 2 {
				t.Fatalf("versions %d and %d, want 2", r.Version(), a.Version())
			}
			refresh(r) // nothing new: a no-op

			// r writes on a stale graph: its transaction catches up first,
			// so the new job's output inherits what a recorded.
			if err := a.SetTags(ctx, "crm", "customers", "iban", "catalog", []LineageTag{{Name: "PII", Value: "iban", Classification: policy.C4, Propagate: true}}); err != nil {
				t.Fatal(err)
			}
			copyEv := runEvent(t, "START", "r2", "copy", t0, []map[string]any{ds("dw", "contacts", nil)}, []map[string]any{ds("dw", "copy", nil)})
			if _, err := r.Ingest(ctx, "svc", []*Event{copyEv}); err != nil {
				t.Fatal(err)
			}
			check(r, "copy", policy.C4, "PII,PII")
			refresh(a)
			check(a, "copy", policy.C4, "PII,PII")

			// A job's new column lineage replaces its stored edges, here and
			// on the other replica, and in the store.
			crm := [2]string{"crm", "customers"}
			for i, mode := range []string{"", "masking"} {
				ev := runEvent(t, "START", fmt.Sprintf("m%d", i), "mask", t0.Add(time.Duration(i)*time.Hour), []map[string]any{ds("crm", "customers", nil)},
					[]map[string]any{ds("dw", "masked", map[string]any{"columnLineage": colLineage(crm, [3]string{"mail", "email", mode})})})
				if _, err := a.Ingest(ctx, "svc", []*Event{ev}); err != nil {
					t.Fatal(err)
				}
			}
			refresh(r)
			fresh := newService(t, openStore(t, dsn))
			for _, s := range []*Service{a, r, fresh} {
				if tags, cls, _ := s.ColumnInheritedTags(ctx, "dw", "masked", "mail"); len(tags) != 0 {
					t.Fatalf("masked column inherits %s %v", names(tags), cls)
				}
			}

			// Block lists and retractions travel too.
			if err := r.SetBlocks(ctx, JobKey{"etl", "load"}, []string{"PII"}); err != nil {
				t.Fatal(err)
			}
			refresh(a)
			check(a, "contacts", policy.Unclassified, "")
			check(a, "copy", policy.Unclassified, "")

			// A replica further behind than the feed keeps reloads.
			if err := a.SetBlocks(ctx, JobKey{"etl", "load"}, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := a.db.Exec(ctx, `DELETE FROM lineage_changes`); err != nil {
				t.Fatal(err)
			}
			refresh(r)
			check(r, "copy", policy.C4, "PII,PII")
			if r.Version() != a.Version() {
				t.Fatalf("versions %d and %d after reload", r.Version(), a.Version())
			}
		})
	}
}

// Run applies other replicas' changes without being asked.
func TestRunRefreshes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	dsn := backends[0].dsn(t)
	a := newService(t, openStore(t, dsn))
	r := newService(t, openStore(t, dsn))
	done := make(chan struct{})
	go func() { r.Run(ctx, 10*time.Millisecond); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	if err := a.SetTags(ctx, "dw", "d", "", "api", []LineageTag{{Name: "PII", Propagate: true}}); err != nil {
		t.Fatal(err)
	}
	for r.Version() != a.Version() {
		time.Sleep(5 * time.Millisecond) // the test's own timeout bounds this
	}
	if own := r.OwnTags(ctx, "dw", "d"); len(own) != 1 || own[0].Name != "PII" {
		t.Fatalf("own tags on the other replica: %+v", own)
	}
}

// Concurrent Ingest calls may share a transaction (group commit), but each
// keeps its own outcome: a call with a bad event fails alone, the others
// are recorded, and every caller learns its own counts.
func TestGroupCommitOutcomes(t *testing.T) {
	ctx := context.Background()
	s := newService(t, openStore(t, backends[0].dsn(t)))
	if _, err := s.Ingest(ctx, "svc", []*Event{runEvent(t, "START", "taken", "owner", t0, nil, nil)}); err != nil {
		t.Fatal(err)
	}
	const n = 40
	var wg sync.WaitGroup
	res := make([]IngestResult, n)
	errs := make([]error, n)
	calls := make([][]*Event, n)
	for i := range n {
		run, job, at := fmt.Sprintf("r%d", i), fmt.Sprintf("j%d", i), t0
		if i%10 == 3 {
			run, at = "taken", t0.Add(time.Hour) // belongs to job owner: a conflict
		}
		ev := runEvent(t, "START", run, job, at, []map[string]any{ds("crm", "src", nil)}, []map[string]any{ds("dw", fmt.Sprintf("out%d", i), nil)})
		calls[i] = []*Event{ev}
		if i%10 == 5 {
			calls[i] = append(calls[i], ev) // a repeat within the call
		}
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = s.Ingest(ctx, "svc", calls[i])
		}()
	}
	wg.Wait()
	for i := range n {
		switch {
		case i%10 == 3:
			if steward.KindOf(errs[i]) != steward.EConflict {
				t.Errorf("call %d: err %v, want a conflict", i, errs[i])
			}
		case errs[i] != nil:
			t.Errorf("call %d failed: %v", i, errs[i])
		case i%10 == 5 && (res[i].Accepted != 1 || res[i].Duplicates != 1):
			t.Errorf("call %d: %+v, want 1 accepted and 1 duplicate", i, res[i])
		case i%10 != 5 && (res[i].Accepted != 1 || res[i].Duplicates != 0):
			t.Errorf("call %d: %+v, want 1 accepted", i, res[i])
		}
	}
	var runs int
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM lineage_runs`).Scan(&runs); err != nil || runs != 1+n-n/10 {
		t.Fatalf("%d runs recorded (%v), want %d", runs, err, 1+n-n/10)
	}
	// The graph after a reload is the graph that was built in memory.
	r := newService(t, s.db)
	for i := range n {
		if i%10 == 3 {
			continue
		}
		if got, want := len(r.g.ds[DatasetKey{"dw", fmt.Sprintf("out%d", i)}].writers), 1; got != want {
			t.Fatalf("out%d has %d writers after reload", i, got)
		}
	}
}
