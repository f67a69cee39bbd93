package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/api"
	"github.com/stewardhq/steward/internal/lineage"
	"github.com/stewardhq/steward/internal/metastore"
	"github.com/stewardhq/steward/internal/policy"
)

// hideDiscover hides the datasets of one namespace from non-admins.
type hideDiscover struct{ ns string }

func (h hideDiscover) CanDiscover(_ context.Context, _ *steward.Principal, k lineage.DatasetKey, _ []policy.Tag, _ policy.Classification) bool {
	return k.Namespace != h.ns
}

func newLineageEnv(t *testing.T) *env {
	t.Helper()
	db, err := metastore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "s.db"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := lineage.New(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	au := &memAuditor{}
	a := api.New(api.Deps{Auditor: au, AdminGroup: "platform-admins"})
	a.RegisterLineage(api.LineageDeps{Service: svc, Discover: hideDiscover{ns: "crm"}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if p := principals[r.Header.Get("X-Test-User")]; p != nil {
			ctx = steward.WithPrincipal(ctx, p)
		}
		a.Handler().ServeHTTP(w, r.WithContext(ctx))
	}))
	t.Cleanup(srv.Close)
	return &env{t: t, url: srv.URL + api.Prefix, audit: au}
}

func lineageFixture(t *testing.T, rel string) json.RawMessage {
	t.Helper()
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "shared", "fixtures", "openlineage", rel)); err == nil {
			return b
		}
		if filepath.Dir(d) == d {
			t.Fatalf("OpenLineage fixture %s not found in shared/fixtures above %s", rel, dir)
		}
	}
}

const customersEvent = `{"eventType":"START","eventTime":"2026-01-01T00:00:00Z","producer":"https://example.com/p","schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
 "run":{"runId":"0191e5a1-0000-7000-8000-00000000000a"},"job":{"namespace":"etl","name":"contacts"},
 "inputs":[{"namespace":"crm","name":"customers","facets":{"tags":{"_producer":"p","_schemaURL":"u","tags":[{"key":"PII","value":"C3","field":"email"}]}}}],
 "outputs":[{"namespace":"dw","name":"contacts","facets":{"columnLineage":{"_producer":"p","_schemaURL":"u","fields":{"mail":{"inputFields":[{"namespace":"crm","name":"customers","field":"email"}]}}}}}]}`

func TestLineageAPI(t *testing.T) {
	e := newLineageEnv(t)
	var p problem
	if st := e.call("alice", "POST", "/lineage", json.RawMessage(customersEvent), &p); st != 403 || p.Code != "permission" {
		t.Errorf("a person without the producer role recorded lineage: %d %+v", st, p)
	}
	if st := e.call("", "POST", "/lineage", json.RawMessage(customersEvent), &p); st != 401 {
		t.Fatalf("anonymous post: %d", st)
	}
	for _, f := range []string{"event_invalid_run_facet.json", "event_no_run_id.json"} {
		if st := e.call("trino", "POST", "/lineage", lineageFixture(t, "events/"+f), &p); st != 400 || p.Code != "invalid" || !strings.Contains(p.Detail, "/run") {
			t.Fatalf("%s: %d %+v", f, st, p)
		}
	}
	var res lineage.IngestResult
	if st := e.call("trino", "POST", "/lineage", json.RawMessage(customersEvent), &res); st != 201 || res.Accepted != 1 {
		t.Fatalf("post: %d %+v", st, res)
	}
	if st := e.call("trino", "POST", "/lineage", json.RawMessage(customersEvent), &res); st != 201 || res.Duplicates != 1 {
		t.Fatalf("replay: %d %+v", st, res)
	}
	batch := json.RawMessage("[" + string(lineageFixture(t, "events/event_simple.json")) + "," + string(lineageFixture(t, "events/event_full.json")) + "]")
	if st := e.call("trino", "POST", "/lineage/batch", batch, &res); st != 201 || res.Accepted != 2 {
		t.Fatalf("batch: %d %+v", st, res)
	}
	bad := json.RawMessage("[" + string(lineageFixture(t, "events/event_simple.json")) + "," + string(lineageFixture(t, "events/event_invalid_job_facet.json")) + "]")
	if st := e.call("trino", "POST", "/lineage/batch", bad, &p); st != 400 || !strings.Contains(p.Detail, "event 1") {
		t.Fatalf("bad batch: %d %+v", st, p)
	}

	// The graph in Marquez's shape; crm is hidden from alice but not from
	// carol (an administrator).
	var g lineage.LineageGraph
	e.must("alice", "GET", "/lineage?nodeId=dataset:dw:contacts&depth=2", nil, &g)
	ids := map[string]lineage.LineageNode{}
	for _, n := range g.Graph {
		ids[n.ID] = n
	}
	job, ok := ids["job:etl:contacts"]
	if len(g.Graph) != 3 || !ok || len(job.InEdges) != 1 || len(job.OutEdges) != 1 || job.OutEdges[0].Destination != "dataset:dw:contacts" {
		t.Fatalf("graph: %+v", g)
	}
	hidden := job.InEdges[0].Origin
	if !strings.HasPrefix(hidden, "dataset:redacted:") || ids[hidden].Data != nil || strings.Contains(hidden, "customers") {
		t.Fatalf("placeholder: %q %+v", hidden, ids[hidden])
	}
	if st := e.call("alice", "GET", "/lineage?nodeId=dataset:crm:customers", nil, &p); st != 404 {
		t.Fatalf("hidden start node: %d", st)
	}
	e.must("carol", "GET", "/lineage?nodeId=dataset:dw:contacts&direction=upstream", nil, &g)
	found := false
	for _, n := range g.Graph {
		found = found || n.ID == "dataset:crm:customers"
	}
	if !found {
		t.Fatalf("admin graph: %+v", g)
	}
	// Column lineage and impact.
	e.must("carol", "GET", "/column-lineage?nodeId=datasetField:crm:customers:email&direction=downstream", nil, &g)
	if len(g.Graph) != 2 || g.Graph[1].ID != "datasetField:dw:contacts:mail" || len(g.Graph[1].InEdges) != 1 {
		t.Fatalf("column graph: %+v", g)
	}
	// Explanation, with the hidden origin redacted for alice.
	var ex lineage.LineageExplanation
	e.must("carol", "GET", "/lineage/explain?dataset=dw:contacts", nil, &ex)
	if ex.Classification != "C3" || len(ex.Reasons) != 1 || !strings.Contains(ex.Reasons[0], "column email of crm:customers") {
		t.Fatalf("explain: %+v", ex)
	}
	ex = lineage.LineageExplanation{}
	e.must("alice", "GET", "/lineage/explain?dataset=dw:contacts", nil, &ex)
	if ex.Classification != "C3" || strings.Contains(ex.Reasons[0], "customers") {
		t.Fatalf("explain for alice: %+v", ex)
	}
	// Blocking PII on the job lowers the output; only admins may.
	blocks := map[string]any{"namespace": "etl", "name": "contacts", "tags": []string{"PII"}}
	if st := e.call("alice", "PUT", "/lineage/blocks", blocks, nil); st != 403 {
		t.Fatalf("non-admin blocks: %d", st)
	}
	e.must("carol", "PUT", "/lineage/blocks", blocks, nil)
	ex = lineage.LineageExplanation{}
	e.must("carol", "GET", "/lineage/explain?dataset=dw:contacts", nil, &ex)
	if ex.Classification != "" || len(ex.Reasons) != 0 {
		t.Fatalf("after block: %+v", ex)
	}
	tags := map[string]any{"namespace": "dw", "name": "contacts", "tags": []map[string]any{{"name": "C4", "classification": 4, "propagate": true}}}
	e.must("carol", "PUT", "/lineage/tags", tags, nil)
	ex = lineage.LineageExplanation{}
	e.must("carol", "GET", "/lineage/explain?dataset=dw:contacts", nil, &ex)
	if ex.Classification != "C4" {
		t.Fatalf("after own tag: %+v", ex)
	}
	// Tags write their classification as a C-level, and take one.
	var raw json.RawMessage
	e.must("carol", "GET", "/lineage/explain?dataset=dw:contacts", nil, &raw)
	if !strings.Contains(string(raw), `"classification":"C4","propagate":true`) {
		t.Fatalf("own tag JSON: %s", raw)
	}
	tags = map[string]any{"namespace": "dw", "name": "contacts", "tags": []map[string]any{{"name": "secret", "classification": "C3", "propagate": true}}}
	e.must("carol", "PUT", "/lineage/tags", tags, nil)
	if own := ex.Own; len(own) != 1 || own[0].Classification != policy.C4 {
		t.Fatalf("own tags decoded: %+v", own)
	}
	ex = lineage.LineageExplanation{}
	e.must("carol", "GET", "/lineage/explain?dataset=dw:contacts", nil, &ex)
	if ex.Classification != "C3" || len(ex.Own) != 1 || ex.Own[0].Classification != policy.C3 {
		t.Fatalf("after a C3 tag: %+v", ex)
	}
	badTag := map[string]any{"namespace": "dw", "name": "contacts", "tags": []map[string]any{{"name": "x", "classification": "C9"}}}
	if st := e.call("carol", "PUT", "/lineage/tags", badTag, nil); st != 400 && st != 422 {
		t.Fatalf("classification C9: %d", st)
	}
	var doc struct {
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	e.must("carol", "GET", "/openapi.json", nil, &doc)
	if s := string(doc.Components.Schemas["LineageTag"]); !strings.Contains(s, `"C3"`) {
		t.Fatalf("LineageTag schema: %s", s)
	}
}
