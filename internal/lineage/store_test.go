package lineage

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/metastore"
	"github.com/stewardhq/steward/internal/policy"
	"github.com/stewardhq/steward/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type backend struct {
	name string
	dsn  func(t *testing.T) string
}

var backends = []backend{
	{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "m.db") }},
	{"postgres", func(t *testing.T) string { return pgtest.Start(t) }},
}

func openStore(t testing.TB, dsn string) *metastore.Store {
	t.Helper()
	db, err := metastore.Open(context.Background(), dsn, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newService(t testing.TB, db *metastore.Store) *Service {
	t.Helper()
	s, err := New(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// runEvent builds a run event as JSON and decodes it (so every test event
// passes the validator).
func runEvent(t testing.TB, typ, runID, job string, at time.Time, inputs, outputs []map[string]any) *Event {
	t.Helper()
	m := map[string]any{
		"eventType": typ, "eventTime": at.UTC().Format(time.RFC3339Nano),
		"producer": "https://example.com/test", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
		"run": map[string]any{"runId": runID}, "job": map[string]any{"namespace": "etl", "name": job},
		"inputs": nz(inputs), "outputs": nz(outputs),
	}
	b, _ := json.Marshal(m)
	ev, err := Decode(b)
	if err != nil {
		t.Fatalf("test event invalid: %v", err)
	}
	return ev
}

func nz(x []map[string]any) []map[string]any {
	if x == nil {
		return []map[string]any{}
	}
	return x
}

var facetBase = map[string]any{"_producer": "https://example.com/test", "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/X.json"}

func facet(kv map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range facetBase {
		out[k] = v
	}
	for k, v := range kv {
		out[k] = v
	}
	return out
}

func ds(ns, name string, facets map[string]any) map[string]any {
	d := map[string]any{"namespace": ns, "name": name}
	if facets != nil {
		d["facets"] = facets
	}
	return d
}

func tagsFacet(tags ...[3]string) map[string]any {
	var list []map[string]any
	for _, t := range tags {
		m := map[string]any{"key": t[0], "value": t[1]}
		if t[2] != "" {
			m["field"] = t[2]
		}
		list = append(list, m)
	}
	return facet(map[string]any{"tags": list})
}

// colLineage: out field -> input (ns, name, field, masking).
func colLineage(in [2]string, pairs ...[3]string) map[string]any {
	fields := map[string]any{}
	for _, p := range pairs {
		masking := p[2] == "masking"
		fields[p[0]] = map[string]any{"inputFields": []any{map[string]any{
			"namespace": in[0], "name": in[1], "field": p[1],
			"transformations": []any{map[string]any{"type": "DIRECT", "subtype": "TRANSFORMATION", "masking": masking}},
		}}}
	}
	return facet(map[string]any{"fields": fields})
}

func names(tags []InheritedTag) string {
	var s []string
	for _, t := range tags {
		n := t.Name
		if t.Field != "" {
			n = t.Field + "." + n
		}
		s = append(s, n)
	}
	return strings.Join(s, ",")
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestStorage(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := b.dsn(t)
			db := openStore(t, dsn)
			s := newService(t, db)

			customers := ds("crm", "customers", map[string]any{"tags": tagsFacet([3]string{"PII", "C3", "email"})["tags"]})
			customers["facets"] = map[string]any{"tags": tagsFacet([3]string{"PII", "C3", "email"})}
			start := runEvent(t, "START", "r1", "load", t0, []map[string]any{customers}, []map[string]any{ds("dw", "contacts", nil)})
			res, err := s.Ingest(ctx, "svc", []*Event{start})
			if err != nil || res.Accepted != 1 {
				t.Fatalf("ingest: %+v %v", res, err)
			}
			// No window of exposure: from START the output inherits.
			tags, cls, _ := s.InheritedTags(ctx, "dw", "contacts")
			if cls != policy.C3 || names(tags) != "PII" {
				t.Fatalf("after START: %s %v", names(tags), cls)
			}
			// Replay changes nothing.
			res, err = s.Ingest(ctx, "svc", []*Event{start})
			if err != nil || res.Duplicates != 1 || res.Accepted != 0 {
				t.Fatalf("replay: %+v %v", res, err)
			}
			// COMPLETE before START of another run (out of order): accepted,
			// state stays terminal when the late START arrives.
			done := runEvent(t, "COMPLETE", "r2", "load", t0.Add(2*time.Hour), nil, nil)
			late := runEvent(t, "START", "r2", "load", t0.Add(time.Hour), nil, nil)
			if _, err := s.Ingest(ctx, "svc", []*Event{done, late}); err != nil {
				t.Fatal(err)
			}
			var state string
			if err := db.QueryRow(ctx, `SELECT state FROM lineage_runs WHERE run_id = 'r2'`).Scan(&state); err != nil || state != "COMPLETE" {
				t.Fatalf("state %q %v", state, err)
			}
			// The new run of job load has no inputs: its current edges are
			// empty, so the tag is retracted.
			tags, cls, _ = s.InheritedTags(ctx, "dw", "contacts")
			if len(tags) != 0 || cls != policy.Unclassified {
				t.Fatalf("after a newer run without inputs: %s %v", names(tags), cls)
			}
			// A run of job load with the input again, then reload from the
			// store: the same graph comes back.
			again := runEvent(t, "START", "r3", "load", t0.Add(3*time.Hour), []map[string]any{customers}, []map[string]any{ds("dw", "contacts", nil)})
			if _, err := s.Ingest(ctx, "svc", []*Event{again}); err != nil {
				t.Fatal(err)
			}
			s2 := newService(t, db)
			tags, cls, _ = s2.InheritedTags(ctx, "dw", "contacts")
			if cls != policy.C3 || names(tags) != "PII" || tags[0].Run != "r3" || tags[0].OriginField != "email" {
				t.Fatalf("after reload: %+v %v", tags, cls)
			}
			ex, err := s2.Explain(ctx, "dw", "contacts")
			if err != nil || len(ex.Reasons) != 1 || !strings.Contains(ex.Reasons[0], "column email of crm:customers") || !strings.Contains(ex.Reasons[0], "job etl:load, run r3") {
				t.Fatalf("explain: %+v %v", ex, err)
			}
			// A run id reused by another job is a conflict.
			other := runEvent(t, "START", "r3", "other", t0, nil, nil)
			if _, err := s.Ingest(ctx, "svc", []*Event{other}); err == nil {
				t.Fatal("run of another job accepted")
			}
		})
	}
}

func TestFixtureEventsBuildGraph(t *testing.T) {
	ctx := context.Background()
	s := newService(t, openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "m.db")))
	var evs []*Event
	for _, f := range []string{"events/event_simple.json", "events/event_full.json", "events/example_full_event.json"} {
		ev, err := Decode(readFixture(t, f))
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	for _, f := range fixtureGlob(t, "producers/*.json") {
		ev, err := Decode(completeProducerEvent(t, readFixture(t, "producers/"+filepath.Base(f))))
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	res, err := s.Ingest(ctx, "svc", evs)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted+res.Duplicates != len(evs) {
		t.Fatalf("%+v", res)
	}
	// Each event alone builds the graph it describes: its job between its
	// inputs and outputs.
	for i, ev := range evs {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			s := newService(t, openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "m.db")))
			if _, err := s.Ingest(ctx, "svc", []*Event{ev}); err != nil {
				t.Fatal(err)
			}
			g, err := s.Graph(ctx, GraphQuery{NodeID: "job:" + ev.Job.Namespace + ":" + ev.Job.Name, Depth: 1})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]bool{"job:" + ev.Job.Namespace + ":" + ev.Job.Name: true}
			for _, d := range append(append([]Dataset(nil), ev.Inputs...), ev.Outputs...) {
				want["dataset:"+d.Namespace+":"+d.Name] = true
			}
			for _, n := range g.Graph {
				if !want[n.ID] {
					t.Errorf("unexpected node %s", n.ID)
				}
				delete(want, n.ID)
			}
			if len(want) > 0 {
				t.Errorf("missing nodes %v", want)
			}
		})
	}
}

func TestPropagation(t *testing.T) {
	ctx := context.Background()
	s := newService(t, openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "m.db")))
	ingest := func(evs ...*Event) {
		t.Helper()
		if _, err := s.Ingest(ctx, "svc", evs); err != nil {
			t.Fatal(err)
		}
	}
	check := func(name, ns, ds, want string, wantCls policy.Classification) {
		t.Helper()
		tags, cls, _ := s.InheritedTags(ctx, ns, ds)
		if got := names(tags); got != want || cls != wantCls {
			t.Fatalf("%s: %s:%s inherits %q %v, want %q %v", name, ns, ds, got, cls, want, wantCls)
		}
	}
	crm := [2]string{"crm", "customers"}
	// customers(email PII C3, id) -> job a -> stage(mail <- email, id <- id)
	// stage -> job b -> mart (no column lineage: column tags roll up)
	// stage -> job h (hash, masking) -> hashed(mail_hash <- email masked)
	if err := s.SetTags(ctx, "crm", "customers", "email", "catalog", []LineageTag{{Name: "PII", Classification: policy.C3, Propagate: true}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTags(ctx, "crm", "customers", "", "catalog", []LineageTag{{Name: "internal", Classification: policy.C2, Propagate: false}}); err != nil {
		t.Fatal(err)
	}
	ingest(runEvent(t, "START", "ra", "a", t0, []map[string]any{ds("crm", "customers", nil)},
		[]map[string]any{ds("dw", "stage", map[string]any{"columnLineage": colLineage(crm, [3]string{"mail", "email"}, [3]string{"id", "id"})})}))
	check("column lineage", "dw", "stage", "mail.PII", policy.C3)
	ingest(runEvent(t, "START", "rb", "b", t0, []map[string]any{ds("dw", "stage", nil)}, []map[string]any{ds("dw", "mart", nil)}))
	check("roll-up", "dw", "mart", "PII", policy.C3)
	ingest(runEvent(t, "START", "rh", "h", t0, []map[string]any{ds("crm", "customers", nil)},
		[]map[string]any{ds("dw", "hashed", map[string]any{"columnLineage": colLineage(crm, [3]string{"mail_hash", "email", "masking"})})}))
	check("masking edge", "dw", "hashed", "", policy.Unclassified)

	// Block list: job b blocks PII.
	if err := s.SetBlocks(ctx, JobKey{"etl", "b"}, []string{"PII"}); err != nil {
		t.Fatal(err)
	}
	check("blocked", "dw", "mart", "", policy.Unclassified)
	if err := s.SetBlocks(ctx, JobKey{"etl", "b"}, nil); err != nil {
		t.Fatal(err)
	}
	check("unblocked", "dw", "mart", "PII", policy.C3)

	// Two paths: mart also fed directly from customers by job c. Removing
	// one path keeps the tag; removing the tag retracts everywhere.
	ingest(runEvent(t, "START", "rc", "c", t0, []map[string]any{ds("crm", "customers", nil)}, []map[string]any{ds("dw", "mart2", nil)}))
	ingest(runEvent(t, "START", "rd", "d", t0, []map[string]any{ds("dw", "mart2", nil), ds("dw", "mart", nil)}, []map[string]any{ds("dw", "report", nil)}))
	check("two paths", "dw", "report", "PII", policy.C3)
	ingest(runEvent(t, "START", "rb2", "b", t0.Add(time.Hour), []map[string]any{}, []map[string]any{ds("dw", "mart", nil)}))
	check("one path left", "dw", "report", "PII", policy.C3)
	check("edge removed", "dw", "mart", "", policy.Unclassified)
	if err := s.SetTags(ctx, "crm", "customers", "email", "catalog", nil); err != nil {
		t.Fatal(err)
	}
	check("tag removed", "dw", "report", "", policy.Unclassified)
	check("tag removed stage", "dw", "stage", "", policy.Unclassified)

	// Cycle: x -> job p -> y -> job q -> x, with a tag on x: terminates and
	// both carry it.
	if err := s.SetTags(ctx, "c", "x", "", "catalog", []LineageTag{{Name: "secret", Classification: policy.C4, Propagate: true}}); err != nil {
		t.Fatal(err)
	}
	ingest(runEvent(t, "START", "rp", "p", t0, []map[string]any{ds("c", "x", nil)}, []map[string]any{ds("c", "y", nil)}),
		runEvent(t, "START", "rq", "q", t0, []map[string]any{ds("c", "y", nil)}, []map[string]any{ds("c", "x", nil)}))
	check("cycle y", "c", "y", "secret", policy.C4)
	check("cycle x", "c", "x", "secret", policy.C4) // its own tag, come round
	if err := s.SetTags(ctx, "c", "x", "", "catalog", nil); err != nil {
		t.Fatal(err)
	}
	check("cycle retracted", "c", "y", "", policy.Unclassified)
	check("cycle retracted x", "c", "x", "", policy.Unclassified)
	g, err := s.Graph(ctx, GraphQuery{NodeID: "dataset:c:x", Depth: 100})
	if err != nil || len(g.Graph) != 4 {
		t.Fatalf("cycle graph: %d nodes, %v", len(g.Graph), err)
	}
}

func TestParseNodeID(t *testing.T) {
	tests := []struct {
		in, kind, ns, name, field string
		bad                       bool
	}{
		{in: "dataset:crm:customers", kind: "dataset", ns: "crm", name: "customers"},
		{in: "dataset:postgres://db:5432:public.t", kind: "dataset", ns: "postgres://db:5432", name: "public.t"},
		{in: "datasetField:s3://b:/p/t:email", kind: "datasetField", ns: "s3://b", name: "/p/t", field: "email"},
		{in: "job:etl:load", kind: "job", ns: "etl", name: "load"},
		{in: "table:x:y", bad: true},
		{in: "dataset:x", bad: true},
		{in: "datasetField:a:b:", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			kind, k, f, err := ParseNodeID(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("accepted")
				}
				return
			}
			if err != nil || kind != tt.kind || k.Namespace != tt.ns || k.Name != tt.name || f != tt.field {
				t.Fatalf("got %s %v %s %v", kind, k, f, err)
			}
		})
	}
}

var _ = fmt.Sprint

func TestRecordCopyAndRun(t *testing.T) {
	ctx := context.Background()
	s := newService(t, openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "m.db")))
	src, dst := DatasetKey{"s3://raw", "customers.csv"}, DatasetKey{"s3://scratch", "copy.csv"}
	if err := s.SetTags(ctx, src.Namespace, src.Name, "", "catalog", []LineageTag{{Name: "PII", Classification: policy.C3, Propagate: true}}); err != nil {
		t.Fatal(err)
	}
	run, err := s.RecordCopy(ctx, nil, src, dst)
	if err != nil || run == "" {
		t.Fatal(run, err)
	}
	tags, cls, _ := s.InheritedTags(ctx, dst.Namespace, dst.Name)
	if cls != policy.C3 || len(tags) != 1 || tags[0].Run != run || tags[0].Job != (JobKey{Namespace, "copy"}) {
		t.Fatalf("%+v %v", tags, cls)
	}
	if err := s.SetTags(ctx, src.Namespace, src.Name, "email", "catalog", []LineageTag{{Name: "email", Classification: policy.C4, Propagate: true}}); err != nil {
		t.Fatal(err)
	}
	out := DatasetKey{"duckdb", "main.t"}
	_, err = s.RecordRun(ctx, JobKey{"steward", "sql:ctas"}, []DatasetKey{src}, []DatasetKey{out}, []ColumnEdge{
		{Output: out, OutputField: "h", Input: src, InputField: "email", Masking: true},
		{Output: out, OutputField: "e", Input: src, InputField: "email"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tags, cls, _ = s.ColumnInheritedTags(ctx, out.Namespace, out.Name, "e")
	if cls != policy.C4 || names(tags) != "e.email" {
		t.Fatalf("e: %+v %v", tags, cls)
	}
	tags, _, _ = s.ColumnInheritedTags(ctx, out.Namespace, out.Name, "h")
	if len(tags) != 0 {
		t.Fatalf("masked column inherits %+v", tags)
	}
	if _, err := s.RecordRun(ctx, JobKey{}, nil, nil, nil); err == nil {
		t.Fatal("job without name accepted")
	}
}

func TestRunStates(t *testing.T) {
	tests := []struct {
		name   string
		events []string // type@hour
		want   string
	}{
		{"in order", []string{"START@0", "RUNNING@1", "COMPLETE@2"}, "COMPLETE"},
		{"complete before start", []string{"COMPLETE@2", "START@0"}, "COMPLETE"},
		{"running after fail", []string{"START@0", "FAIL@1", "RUNNING@2"}, "FAIL"},
		{"abort after complete, later", []string{"START@0", "COMPLETE@1", "ABORT@2"}, "ABORT"},
		{"other changes nothing", []string{"START@0", "OTHER@3"}, "START"},
		{"only other", []string{"OTHER@0"}, ""},
		{"late running", []string{"RUNNING@2", "START@0"}, "RUNNING"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			db := openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "m.db"))
			s := newService(t, db)
			for _, e := range tt.events {
				typ, h, _ := strings.Cut(e, "@")
				hour := int(h[0] - '0')
				if _, err := s.Ingest(ctx, "svc", []*Event{runEvent(t, typ, "run", "j", t0.Add(time.Duration(hour)*time.Hour), nil, nil)}); err != nil {
					t.Fatal(err)
				}
			}
			var state string
			if err := db.QueryRow(ctx, `SELECT state FROM lineage_runs WHERE run_id = 'run'`).Scan(&state); err != nil || state != tt.want {
				t.Fatalf("state %q (%v), want %q", state, err, tt.want)
			}
		})
	}
}

func TestDatasetAndJobEvents(t *testing.T) {
	ctx := context.Background()
	s := newService(t, openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "m.db")))
	dsEv := `{"eventTime":"2026-01-01T00:00:00Z","producer":"p","schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
	 "dataset":{"namespace":"crm","name":"customers","facets":{
	  "schema":{"_producer":"p","_schemaURL":"u","fields":[{"name":"id","type":"int"},{"name":"email","type":"string"}]},
	  "tags":{"_producer":"p","_schemaURL":"u","tags":[{"key":"PII","value":"C4","field":"email"}]},
	  "ownership":{"_producer":"p","_schemaURL":"u","owners":[{"name":"bob"}]}}}}`
	jobEv := `{"eventTime":"2026-01-01T00:00:00Z","producer":"p","schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
	 "job":{"namespace":"etl","name":"static"},"inputs":[{"namespace":"crm","name":"customers"}],"outputs":[{"namespace":"dw","name":"static_out"}]}`
	var evs []*Event
	for _, raw := range []string{dsEv, jobEv} {
		ev, err := Decode([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	if _, err := s.Ingest(ctx, "svc", evs); err != nil {
		t.Fatal(err)
	}
	own := s.OwnTags(ctx, "crm", "customers")
	if len(own) != 2 {
		t.Fatalf("own tags %+v", own)
	}
	tags, cls, _ := s.InheritedTags(ctx, "dw", "static_out")
	if cls != policy.C4 || names(tags) != "PII" {
		t.Fatalf("static lineage: %+v %v", tags, cls)
	}
	g, err := s.Graph(ctx, GraphQuery{NodeID: "dataset:crm:customers", Depth: 1})
	if err != nil || len(g.Graph) != 3 {
		t.Fatalf("graph %+v %v", g, err)
	}
	for _, n := range g.Graph {
		if n.ID == "dataset:crm:customers" {
			d := n.Data.(DatasetData)
			if len(d.Fields) == 0 || d.Classification != "C4" {
				t.Fatalf("dataset data %+v", d)
			}
		}
	}
	// A replayed DatasetEvent is a duplicate.
	res, err := s.Ingest(ctx, "svc", evs[:1])
	if err != nil || res.Duplicates != 1 {
		t.Fatalf("replay %+v %v", res, err)
	}
}
