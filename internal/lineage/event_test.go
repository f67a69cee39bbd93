package lineage

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stewardhq/steward"
)

func TestDecodeFixtures(t *testing.T) {
	for _, f := range fixtureGlob(t, "events/*.json") {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			b := readFixture(t, "events/"+name)
			ev, err := Decode(b)
			bad := strings.HasPrefix(name, "event_invalid_") || name == "event_no_run_id.json"
			if bad {
				if err == nil {
					t.Fatalf("accepted an invalid event")
				}
				if steward.KindOf(err) != steward.EInvalid || !strings.Contains(steward.MessageOf(err), "at /") {
					t.Fatalf("error %v (kind %s) does not name the problem", err, steward.KindOf(err))
				}
				t.Logf("rejected: %s", steward.MessageOf(err))
				return
			}
			if err != nil {
				t.Fatalf("rejected a valid event: %v", err)
			}
			if ev.Kind != KindRun || ev.Run.RunID == "" || ev.Job.Name == "" {
				t.Fatalf("decoded %+v", ev)
			}
		})
	}
}

func TestDecodeProducers(t *testing.T) {
	for _, f := range fixtureGlob(t, "producers/*.json") {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			b := completeProducerEvent(t, readFixture(t, "producers/"+name))
			if _, err := Decode(b); err != nil {
				t.Fatalf("rejected: %v", err)
			}
		})
	}
}

func TestDecodeKinds(t *testing.T) {
	tests := []struct {
		name, body string
		kind       Kind
		wantErr    string
	}{
		{"dataset event", `{"eventTime":"2024-01-01T00:00:00Z","producer":"p","schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent","dataset":{"namespace":"ns","name":"d"}}`, KindDataset, ""},
		{"job event", `{"eventTime":"2024-01-01T00:00:00Z","producer":"p","schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent","job":{"namespace":"ns","name":"j"}}`, KindJob, ""},
		{"not an object", `[1]`, "", "JSON object"},
		{"not json", `{`, "", "not valid JSON"},
		{"no eventTime", `{"producer":"p","schemaURL":"u","job":{"namespace":"ns","name":"j"}}`, "", "eventTime"},
		{"bad eventType", `{"eventType":"WAT","eventTime":"2024-01-01T00:00:00Z","producer":"p","schemaURL":"u","run":{"runId":"r"},"job":{"namespace":"ns","name":"j"}}`, "", "eventType"},
		{"bad time", `{"eventType":"START","eventTime":"yesterday","producer":"p","schemaURL":"u","run":{"runId":"r"},"job":{"namespace":"ns","name":"j"}}`, "", "RunEvent"},
		{"bad schema facet", `{"eventType":"START","eventTime":"2024-01-01T00:00:00Z","producer":"p","schemaURL":"u","run":{"runId":"r"},"job":{"namespace":"ns","name":"j"},"outputs":[{"namespace":"n","name":"d","facets":{"schema":{"_producer":"p","_schemaURL":"u","fields":[{"type":"int"}]}}}]}`, "", "/outputs/0/facets/schema"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Decode([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want mention of %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind != tt.kind {
				t.Fatalf("kind %s, want %s", ev.Kind, tt.kind)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, p := range fixtureGlob(f, "events/*.json") {
		f.Add(readFixture(f, "events/"+filepath.Base(p)))
	}
	f.Add([]byte(`{"eventTime":"2024-01-01T00:00:00Z","producer":"p","schemaURL":"u","dataset":{"namespace":"ns","name":"d"}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := Decode(b)
		if err != nil {
			if k := steward.KindOf(err); k != steward.EInvalid && k != steward.ETooLarge {
				t.Fatalf("error of kind %s: %v", k, err)
			}
			return
		}
		if ev.Kind == KindRun && (ev.Run == nil || ev.Job == nil) {
			t.Fatalf("run event without run or job")
		}
		if ev.Kind == KindDataset && ev.Dataset == nil {
			t.Fatalf("dataset event without dataset")
		}
	})
}
