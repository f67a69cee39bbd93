package lineage

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stewardhq/steward"
)

// FuzzDecodeBatch: a batch body is accepted whole or refused with an
// invalid (or too large) error, never a crash.
func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"eventTime":"2024-01-01T00:00:00Z","producer":"p","schemaURL":"u","dataset":{"namespace":"ns","name":"d"}}]`))
	f.Add([]byte(`[1, "x", null]`))
	f.Add([]byte(`{"not":"an array"}`))
	for _, p := range fixtureGlob(f, "events/*.json") {
		f.Add(append(append([]byte("["), readFixture(f, "events/"+filepath.Base(p))...), ']'))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := DecodeBatch(b, 50)
		if err != nil {
			if k := steward.KindOf(err); k != steward.EInvalid && k != steward.ETooLarge {
				t.Fatalf("error of kind %s: %v", k, err)
			}
			return
		}
		if len(evs) > 50 {
			t.Fatalf("%d events past the limit", len(evs))
		}
		for _, ev := range evs {
			if ev == nil || ev.Kind == KindRun && (ev.Run == nil || ev.Job == nil) {
				t.Fatalf("decoded %+v", ev)
			}
		}
	})
}

// FuzzIngest feeds whatever decodes into one graph: awkward events (out of
// order, repeated, unknown runs, cycles, run ids reused by another job)
// are recorded or refused with a caller's error, never a crash or an
// internal error, and the graph read back from the store afterwards is
// the one held in memory.
func FuzzIngest(f *testing.F) {
	for _, p := range fixtureGlob(f, "events/*.json") {
		f.Add(readFixture(f, "events/"+filepath.Base(p)))
	}
	run := func(typ, id, job, in, out string, at int) string {
		return `{"eventType":"` + typ + `","eventTime":"2026-01-01T0` + string(rune('0'+at)) + `:00:00Z","producer":"p","schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",` +
			`"run":{"runId":"` + id + `"},"job":{"namespace":"etl","name":"` + job + `"},` +
			`"inputs":[{"namespace":"dw","name":"` + in + `"}],"outputs":[{"namespace":"dw","name":"` + out + `"}]}`
	}
	f.Add([]byte(run("COMPLETE", "r1", "a", "x", "y", 2)))
	f.Add([]byte(run("START", "r1", "a", "x", "y", 1)))
	f.Add([]byte(run("START", "r1", "b", "y", "x", 3))) // another job's run id
	f.Add([]byte(run("START", "r2", "b", "y", "x", 3))) // a cycle
	f.Add([]byte(run("OTHER", "r3", "c", "x", "x", 0))) // a self-loop
	ctx := context.Background()
	s := newService(f, openStore(f, "sqlite:"+filepath.Join(f.TempDir(), "m.db")))
	if err := s.SetTags(ctx, "dw", "x", "", "api", []LineageTag{{Name: "PII", Propagate: true}}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := Decode(b)
		if err != nil {
			return
		}
		c, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if _, err := s.Ingest(c, "fuzz", []*Event{ev}); err != nil {
			if k := steward.KindOf(err); k != steward.EInvalid && k != steward.EConflict {
				t.Fatalf("ingest: error of kind %s: %v", k, err)
			}
		}
		// Memory and store agree: a fresh load inherits the same.
		r := newService(t, s.db)
		for k, d := range s.g.ds {
			got, _, _ := r.InheritedTags(ctx, k.Namespace, k.Name)
			if names(got) != names(d.inherited()) {
				t.Fatalf("%s inherits %q in memory but %q after a reload", k, names(d.inherited()), names(got))
			}
		}
	})
}

// FuzzParseNodeID: node ids come from query strings.
func FuzzParseNodeID(f *testing.F) {
	for _, s := range []string{"dataset:ns:name", "job:postgres://h:5432:j", "datasetField:s3://b:k:f", "x", ":", "dataset::", "datasetField:a:b:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		kind, k, field, err := ParseNodeID(id)
		if err != nil {
			if steward.KindOf(err) != steward.EInvalid {
				t.Fatalf("error of kind %s", steward.KindOf(err))
			}
			return
		}
		if k.Namespace == "" || k.Name == "" || kind == "datasetField" && field == "" {
			t.Fatalf("ParseNodeID(%q) = %s %+v %q", id, kind, k, field)
		}
	})
}
