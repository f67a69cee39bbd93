package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/api"
	"github.com/stewardhq/steward/internal/metastore"
	"github.com/stewardhq/steward/internal/policystore"
)

// memAuditor keeps audit events in memory.
type memAuditor struct {
	mu  sync.Mutex
	evs []steward.AuditEvent
}

func (m *memAuditor) Record(_ context.Context, ev steward.AuditEvent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.evs = append(m.evs, ev)
	return nil
}

func (m *memAuditor) actions(actor string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, ev := range m.evs {
		if ev.Actor == actor {
			out = append(out, ev.Action+"/"+ev.Decision)
		}
	}
	return out
}

var principals = map[string]*steward.Principal{
	"alice": {Kind: steward.KindUser, Username: "alice", Groups: []string{"analysts"}},
	"bob":   {Kind: steward.KindUser, Username: "bob", Groups: []string{"mortgages"}},
	"carol": {Kind: steward.KindUser, Username: "carol", Groups: []string{"platform-admins"}},
	"trino": {Kind: steward.KindService, Username: "trino", Roles: []string{api.RoleAuthorizer}},
}

type env struct {
	t     *testing.T
	url   string
	store *policystore.Store
	audit *memAuditor
}

// newEnv serves the API over a real metastore, with an identity stub that
// takes the principal from the X-Test-User header.
func newEnv(t *testing.T) *env {
	t.Helper()
	db, err := metastore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "s.db"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := policystore.New(db)
	h := policystore.NewHolder(st, nil)
	if _, err := h.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	au := &memAuditor{}
	a := api.New(api.Deps{Auditor: au, AdminGroup: "platform-admins", Policies: st, PolicyEngine: h})
	srv := httptest.NewServer(http.StripPrefix("", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if p := principals[r.Header.Get("X-Test-User")]; p != nil {
			ctx = steward.WithPrincipal(ctx, p)
		}
		a.Handler().ServeHTTP(w, r.WithContext(ctx))
	})))
	t.Cleanup(srv.Close)
	return &env{t: t, url: srv.URL + api.Prefix, store: st, audit: au}
}

// call makes a request as user and decodes the JSON answer into out.
func (e *env) call(user, method, path string, in, out any) int {
	e.t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.url+path, body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Test-User", user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

func (e *env) must(user, method, path string, in, out any) {
	e.t.Helper()
	var raw json.RawMessage
	if st := e.call(user, method, path, in, &raw); st >= 300 {
		e.t.Fatalf("%s %s as %s: %d %s", method, path, user, st, raw)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatal(err)
		}
	}
}

type problem struct {
	Status int
	Code   string
	Detail string
}

func (e *env) decide(user string, q map[string]any) api.DecisionOutput {
	e.t.Helper()
	var d api.DecisionOutput
	e.must(user, "POST", "/authorize", q, &d)
	return d
}

const policyFile = `policies:
  - id: analysts/sandbox
    resources:
      paths: ["s3://sandbox/**"]
    allow:
      - groups: [analysts]
        accesses: [read, write, list]
`

func TestPolicyAdministration(t *testing.T) {
	e := newEnv(t)
	apply := map[string]any{"file": "p.yaml", "content": policyFile}

	var p problem
	if st := e.call("alice", "POST", "/policies/apply", apply, &p); st != 403 || p.Code != "permission" {
		t.Fatalf("non-admin apply: %d %+v", st, p)
	}
	if st := e.call("", "GET", "/policies", nil, &p); st != 401 {
		t.Fatalf("anonymous list: %d", st)
	}

	var r api.ApplyResult
	e.must("carol", "POST", "/policies/apply", map[string]any{"file": "p.yaml", "content": policyFile, "dry_run": true}, &r)
	if r.Changed || len(r.Changes) != 1 || !strings.Contains(r.Diff, `+ create "analysts/sandbox"`) {
		t.Fatalf("dry run: %+v", r)
	}
	q := map[string]any{"access": "read", "resource": "s3://sandbox/x.csv"}
	if d := e.decide("alice", q); d.Allowed {
		t.Fatal("dry run changed the engine")
	}
	e.must("carol", "POST", "/policies/apply", apply, &r)
	if !r.Changed || r.SetVersion != 1 {
		t.Fatalf("apply: %+v", r)
	}
	// The replica that applied sees the change at once.
	if d := e.decide("alice", q); !d.Allowed || d.PolicyID != "analysts/sandbox" || d.PolicyVersion != 1 || d.SetVersion != 1 {
		t.Fatalf("decision after apply: %+v", d)
	}
	e.must("carol", "POST", "/policies:apply", apply, &r)
	if r.Changed || r.SetVersion != 1 {
		t.Fatalf("re-apply: %+v", r)
	}

	// IDs with a slash work when escaped.
	var rec policystore.Record
	e.must("carol", "GET", "/policies/"+url.PathEscape("analysts/sandbox"), nil, &rec)
	if rec.Policy.ID != "analysts/sandbox" || rec.UpdatedBy != "carol" {
		t.Fatalf("get: %+v", rec)
	}
	var hist []policystore.HistoryEntry
	e.must("carol", "GET", "/policies/"+url.PathEscape("analysts/sandbox")+"/history", nil, &hist)
	if len(hist) != 1 || hist[0].Actor != "carol" {
		t.Fatalf("history: %+v", hist)
	}

	// Export is a policy file that applies as no change.
	req, _ := http.NewRequest("GET", e.url+"/policies/export", nil)
	req.Header.Set("X-Test-User", "carol")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	exported, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/yaml") {
		t.Fatalf("export: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	e.must("carol", "POST", "/policies/apply", map[string]any{"file": "export.yaml", "content": string(exported), "prune": true}, &r)
	if r.Changed {
		t.Fatalf("re-applying the export changed: %s\n%s", r.Diff, exported)
	}

	// Bad input: a precise error and nothing applied.
	bad := []struct {
		name string
		body any
		code int
		want string
	}{
		{"bad access", map[string]any{"file": "team/p.yaml", "content": strings.Replace(policyFile, "list]", "lst]", 1)}, 400,
			`p.yaml: policy "analysts/sandbox": allow[0].accesses[2]: unknown access type "lst"`},
		{"unknown field in file", map[string]any{"file": "p.yaml", "content": strings.Replace(policyFile, "    allow:", "    alow:", 1)}, 400, `p.yaml: policy "analysts/sandbox"`},
		{"unknown body field", map[string]any{"content": policyFile, "dryrun": true}, 422, ""},
		{"empty", map[string]any{"content": ""}, 400, "empty policy file"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			var p problem
			if st := e.call("carol", "POST", "/policies/apply", tc.body, &p); st != tc.code || !strings.Contains(p.Detail, tc.want) {
				t.Fatalf("got %d %+v, want %d with %q", st, p, tc.code, tc.want)
			}
			if v, _ := e.store.Version(context.Background()); v != 1 {
				t.Fatalf("version %d after bad input", v)
			}
		})
	}
	big := map[string]any{"content": strings.Repeat("#", 17<<20)}
	if st := e.call("carol", "POST", "/policies/apply", big, nil); st != 413 {
		t.Fatalf("oversized apply: %d", st)
	}

	// Explain (admins).
	var ex struct {
		Allowed bool
		Steps   []struct {
			PolicyID string `json:"policy_id"`
		}
	}
	e.must("carol", "POST", "/policies/explain", map[string]any{"user": "alice", "groups": []string{"analysts"}, "access": "read", "resource": "s3://sandbox/x"}, &ex)
	if !ex.Allowed || len(ex.Steps) != 1 || ex.Steps[0].PolicyID != "analysts/sandbox" {
		t.Fatalf("explain: %+v", ex)
	}
	if st := e.call("alice", "POST", "/policies/explain", map[string]any{"access": "read", "resource": "s3://sandbox/x"}, nil); st != 403 {
		t.Fatalf("explain as non-admin: %d", st)
	}

	// Delete.
	e.must("carol", "DELETE", "/policies/"+url.PathEscape("analysts/sandbox"), nil, &r)
	if !r.Changed || r.SetVersion != 2 {
		t.Fatalf("delete: %+v", r)
	}
	if d := e.decide("alice", q); d.Allowed {
		t.Fatal("allowed after delete")
	}
	acts := strings.Join(e.audit.actions("carol"), " ")
	for _, want := range []string{"policy.apply/allow", "policy.change/allow", "policy.delete/allow"} {
		if !strings.Contains(acts, want) {
			t.Errorf("audit lacks %s: %s", want, acts)
		}
	}
}

func TestAuthorize(t *testing.T) {
	e := newEnv(t)
	var r api.ApplyResult
	e.must("carol", "POST", "/policies/apply", map[string]any{"content": policyFile + `  - id: mask
    kind: masking
    resources: {tables: ["bank.core.customers"], columns: [ssn]}
    masks: [{groups: [public], type: show_last_4}]
  - id: tables
    resources: {tables: ["bank.core.*"]}
    allow: [{groups: [analysts], accesses: [select]}]
  - id: rows
    kind: rowfilter
    resources: {tables: ["bank.core.customers"]}
    row_filters: [{groups: [public], filter: "owner = {USER}"}]
`}, &r)

	// About oneself.
	d := e.decide("alice", map[string]any{"access": "select", "resource": "table:bank.core.customers#ssn"})
	if !d.Allowed || len(d.Masks) != 1 || d.Masks[0].Type != "show_last_4" || len(d.RowFilters) != 1 || d.RowFilters[0] != "owner = 'alice'" {
		t.Fatalf("select with mask and row filter: %+v", d)
	}
	// Not about others, unless admin or authorizer.
	var p problem
	if st := e.call("alice", "POST", "/authorize", map[string]any{"user": "bob", "access": "read", "resource": "s3://sandbox/x"}, &p); st != 403 {
		t.Fatalf("alice asking about bob: %d %+v", st, p)
	}
	if st := e.call("alice", "POST", "/authorize", map[string]any{"groups": []string{"platform-admins"}, "access": "read", "resource": "s3://sandbox/x"}, &p); st != 403 {
		t.Fatalf("alice claiming groups: %d", st)
	}
	var batch api.AuthorizeResult
	e.must("trino", "POST", "/authorize", map[string]any{"requests": []map[string]any{
		{"user": "alice", "groups": []string{"analysts"}, "access": "read", "resource": "s3://sandbox/a"},
		{"user": "bob", "groups": []string{"mortgages"}, "access": "read", "resource": "s3://sandbox/a"},
		{"user": "dave", "access": "select", "resource": "table:bank.core.t", "tags": []map[string]any{{"name": "PII"}}, "classification": "C3"},
	}}, &batch)
	if batch.DecisionOutput != nil || len(batch.Results) != 3 || !batch.Results[0].Allowed || batch.Results[1].Allowed || batch.Results[2].Allowed {
		t.Fatalf("batch: %+v", batch)
	}
	// Bad input.
	for _, tc := range []struct {
		name string
		body any
		code int
	}{
		{"bad access", map[string]any{"access": "raed", "resource": "s3://a/b"}, 400},
		{"bad resource", map[string]any{"access": "read", "resource": "ftp://a"}, 400},
		{"both", map[string]any{"access": "read", "resource": "s3://a", "requests": []map[string]any{{"access": "read", "resource": "s3://a"}}}, 400},
		{"unknown field", map[string]any{"access": "read", "resource": "s3://a", "usr": "x"}, 422},
		{"bad classification", map[string]any{"access": "read", "resource": "s3://a", "classification": "C9"}, 422},
		{"time as non-admin", map[string]any{"access": "read", "resource": "s3://a", "time": time.Now()}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if st := e.call("alice", "POST", "/authorize", tc.body, nil); st != tc.code {
				t.Fatalf("status %d, want %d", st, tc.code)
			}
		})
	}
	many := make([]map[string]any, 1001)
	for i := range many {
		many[i] = map[string]any{"user": "a", "access": "read", "resource": "s3://a"}
	}
	if st := e.call("trino", "POST", "/authorize", map[string]any{"requests": many}, nil); st != 422 && st != 413 {
		t.Fatalf("oversized batch: %d", st)
	}
	// Every decision is audited.
	n := 0
	for _, a := range e.audit.actions("trino") {
		if strings.HasPrefix(a, "authorize:") {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("trino's decisions audited %d times, want 3", n)
	}
}
