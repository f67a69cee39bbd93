package trino

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/policy"
)

type recorder struct {
	mu   sync.Mutex
	evs  []steward.AuditEvent
	fail bool
}

func (r *recorder) Record(_ context.Context, ev steward.AuditEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("disk full")
	}
	r.evs = append(r.evs, ev)
	return nil
}

// mapTags tags table or column names ("hive.crm.customers#email").
type mapTags map[string][]string

func (m mapTags) Tags(_ context.Context, name, col string) ([]policy.Tag, policy.Classification, error) {
	key := name
	if col != "" {
		key += "#" + col
	}
	var out []policy.Tag
	for _, t := range m[key] {
		out = append(out, policy.Tag{Name: t})
	}
	return out, policy.Unclassified, nil
}

func testEngine(t testing.TB) *policy.Engine {
	t.Helper()
	data, err := os.ReadFile("testdata/policies.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := policy.ParseFile("policies.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	e, err := policy.Compile(ps, policy.Options{Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func newTestHandler(t testing.TB, tags TagSource) (*Handler, *recorder) {
	t.Helper()
	e := testEngine(t)
	rec := &recorder{}
	h := NewHandler(EngineFunc(func() *policy.Engine { return e }), tags, rec, nil)
	h.Now = func() time.Time { return time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC) }
	return h, rec
}

// fixture reads a request and optionally replaces the identity.
func fixture(t *testing.T, name, user string, groups []string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "requests", name))
	if err != nil {
		t.Fatal(err)
	}
	if user == "" {
		return b
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	doc["input"].(map[string]any)["context"].(map[string]any)["identity"] = map[string]any{"user": user, "groups": groups}
	b, _ = json.Marshal(doc)
	return b
}

func post(t *testing.T, h http.Handler, path string, body []byte) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code, strings.TrimSpace(w.Body.String())
}

func jsonEq(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("response %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %q: %v", want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Errorf("response = %s, want %s", gb, wb)
	}
}

const last4Email = `concat(regexp_replace(substr(\"email\", 1, greatest(length(\"email\") - 4, 0)), '.', 'x'), substr(\"email\", greatest(length(\"email\") - 3, 1)))`

func TestTrinoRequests(t *testing.T) {
	pii := mapTags{"hive.crm.customers#email": {"PII"}}
	cases := []struct {
		name, fixture, path string
		user                string
		groups              []string
		tags                TagSource
		want                string
		audit               string // expected decision of the one audit record
		policy              string
	}{
		{name: "select allowed", fixture: "select_from_columns.json", path: "/allow", want: `{"result": true}`, audit: "allow", policy: "analysts-crm@1"},
		{name: "select no policy", fixture: "select_from_columns.json", path: "/allow", user: "sue", groups: []string{"support"}, want: `{"result": false}`, audit: "deny"},
		{name: "select tag deny on one column", fixture: "select_from_columns.json", path: "/allow", user: "carl", groups: []string{"analysts", "contractors"}, tags: pii, want: `{"result": false}`, audit: "deny", policy: "pii-contractors@1"},
		{name: "rename needs delete and create", fixture: "rename_table.json", path: "/allow", want: `{"result": false}`, audit: "deny"},
		{name: "rename by etl", fixture: "rename_table.json", path: "/allow", user: "etl", want: `{"result": true}`, audit: "allow", policy: "etl-crm@1"},
		{name: "execute query", fixture: "execute_query.json", path: "/allow", want: `{"result": true}`, audit: "allow"},
		{name: "access catalog by discover", fixture: "access_catalog.json", path: "/allow", want: `{"result": true}`, audit: "allow", policy: "analysts-see-hive@1"},
		{name: "access catalog denied", fixture: "access_catalog.json", path: "/allow", user: "bob", want: `{"result": false}`, audit: "deny"},
		{name: "show tables by select on the schema prefix", fixture: "show_tables.json", path: "/allow", want: `{"result": true}`, audit: "allow", policy: "analysts-crm@1"},
		{name: "insert denied", fixture: "insert_into_table.json", path: "/allow", want: `{"result": false}`, audit: "deny"},
		{name: "insert by etl", fixture: "insert_into_table.json", path: "/allow", user: "etl", want: `{"result": true}`, audit: "allow"},
		{name: "impersonate denied", fixture: "impersonate_user.json", path: "/allow", want: `{"result": false}`, audit: "deny"},
		{name: "impersonate by superset", fixture: "impersonate_user.json", path: "/allow", user: "superset", want: `{"result": true}`, audit: "allow", policy: "impersonation@1"},
		{name: "session property", fixture: "set_system_session_property.json", path: "/allow", want: `{"result": true}`, audit: "allow"},
		{name: "create schema denied", fixture: "create_schema.json", path: "/allow", want: `{"result": false}`, audit: "deny"},
		{name: "unknown operation fails closed", fixture: "unknown_operation.json", path: "/allow", want: `{"result": false}`, audit: "deny"},
		{name: "filter catalogs", fixture: "filter_catalogs.json", path: "/batch", want: `{"result": [1]}`, audit: "allow"},
		{name: "filter tables", fixture: "filter_tables.json", path: "/batch", want: `{"result": [0, 2]}`, audit: "allow"},
		{name: "filter tables none", fixture: "filter_tables.json", path: "/batch", user: "bob", want: `{"result": []}`, audit: "deny"},
		{name: "filter columns by column policy", fixture: "filter_columns.json", path: "/batch", user: "sue", groups: []string{"support"}, want: `{"result": [0, 2]}`, audit: "allow"},
		{name: "row filter with USER", fixture: "get_row_filters.json", path: "/row-filters", want: `{"result": [{"expression": "country = 'NL' AND owner <> 'alice'"}]}`, audit: "allow"},
		{name: "row filter none", fixture: "get_row_filters.json", path: "/row-filters", user: "etl", want: `{"result": []}`, audit: "allow"},
		{name: "row filter fails closed", fixture: "get_row_filters.json", path: "/row-filters", user: "bob", want: `{"result": [{"expression": "false"}]}`, audit: "deny"},
		{name: "column mask show last 4", fixture: "get_column_mask.json", path: "/column-masks", want: `{"result": {"expression": "` + last4Email + `"}}`, audit: "allow"},
		{name: "column mask none", fixture: "get_column_mask.json", path: "/column-masks", user: "etl", want: `{}`, audit: "allow"},
		{name: "column mask for a denied column", fixture: "get_column_mask.json", path: "/column-masks", user: "bob", want: `{"result": {"expression": "NULL"}}`, audit: "deny"},
		{name: "batch column masks", fixture: "batch_column_masks.json", path: "/batch-column-masks",
			want:  `{"result": [{"index": 0, "viewExpression": {"expression": "` + last4Email + `"}}, {"index": 2, "viewExpression": {"expression": "NULL"}}, {"index": 3, "viewExpression": {"expression": "NULL"}}]}`,
			audit: "allow"},
		{name: "batch column masks date", fixture: "batch_column_masks.json", path: "/batch-column-masks", user: "etl",
			want: `{"result": [{"index": 2, "viewExpression": {"expression": "date_trunc('year', \"birth_date\")"}}]}`, audit: "allow"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, rec := newTestHandler(t, tc.tags)
			code, body := post(t, h, tc.path, fixture(t, tc.fixture, tc.user, tc.groups))
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			jsonEq(t, body, tc.want)
			if len(rec.evs) != 1 {
				t.Fatalf("%d audit records, want 1", len(rec.evs))
			}
			ev := rec.evs[0]
			var in struct {
				Input input `json:"input"`
			}
			_ = json.Unmarshal(fixture(t, tc.fixture, "", nil), &in)
			if ev.Action != "trino:"+in.Input.Action.Operation || ev.Decision != tc.audit || ev.RequestID != "20250718_081710_03427_trino" {
				t.Errorf("audit = %+v, want action trino:%s decision %s", ev, in.Input.Action.Operation, tc.audit)
			}
			if tc.policy != "" && ev.Policy != tc.policy {
				t.Errorf("audit policy = %q, want %q", ev.Policy, tc.policy)
			}
		})
	}
}

func TestBatchAuditsCounts(t *testing.T) {
	h, rec := newTestHandler(t, nil)
	post(t, h, "/batch", fixture(t, "filter_tables.json", "", nil))
	if len(rec.evs) != 1 {
		t.Fatalf("%d audit records", len(rec.evs))
	}
	d := rec.evs[0].Details
	if d["items"] != 3 || d["allowed"] != 2 || d["denied"] != 1 {
		t.Errorf("details = %v", d)
	}
}

func TestTrinoBadRequests(t *testing.T) {
	h, rec := newTestHandler(t, nil)
	cases := []struct {
		name, method, path, body string
		code                     int
		want                     string
	}{
		{"not json", http.MethodPost, "/allow", `{"input": `, 400, "invalid JSON"},
		{"wrong type", http.MethodPost, "/allow", `{"input": {"action": {"operation": 5}}}`, 400, `field "input.action.operation"`},
		{"no input", http.MethodPost, "/allow", `{}`, 400, `missing "input"`},
		{"no user", http.MethodPost, "/allow", `{"input": {"context": {"identity": {}}, "action": {"operation": "ExecuteQuery"}}}`, 400, "identity.user"},
		{"trailing", http.MethodPost, "/allow", `{"input": {}} {}`, 400, "trailing"},
		{"too large", http.MethodPost, "/batch", `{"input": {"x": "` + strings.Repeat("a", MaxBodySize) + `"}}`, 400, "larger than"},
		{"get", http.MethodGet, "/allow", ``, 405, "POST"},
		{"unknown path", http.MethodPost, "/nope", `{}`, 404, "unknown endpoint"},
		{"row filters without table", http.MethodPost, "/row-filters", `{"input": {"context": {"identity": {"user": "a"}}, "action": {"operation": "GetRowFilters"}}}`, 400, "resource.table"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tc.code {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.code, w.Body)
			}
			var e struct{ Error string }
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || !strings.Contains(e.Error, tc.want) {
				t.Fatalf("body %s, want a JSON error containing %q", w.Body, tc.want)
			}
		})
	}
	if len(rec.evs) != 0 {
		t.Errorf("bad requests were audited: %v", rec.evs)
	}
}

func TestAuditFailureFailsClosed(t *testing.T) {
	h, rec := newTestHandler(t, nil)
	rec.fail = true
	code, body := post(t, h, "/allow", fixture(t, "select_from_columns.json", "", nil))
	if code != http.StatusInternalServerError || strings.Contains(body, "disk full") {
		t.Fatalf("status %d body %s: want 500 without internal detail", code, body)
	}
}

func TestNilEngineDenies(t *testing.T) {
	h := NewHandler(&policy.Atomic{}, nil, nil, nil)
	code, body := post(t, h, "/allow", fixture(t, "select_from_columns.json", "", nil))
	if code != 200 {
		t.Fatal(code, body)
	}
	jsonEq(t, body, `{"result": false}`)
}

func TestEveryOperationDocumented(t *testing.T) {
	doc, err := os.ReadFile("OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	for name := range operations {
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("operation %s is not in OPERATIONS.md", name)
		}
	}
}

func TestMaskSQL(t *testing.T) {
	cases := []struct {
		m          policy.Mask
		col, typ   string
		want       string
		wantMasked bool
	}{
		{policy.Mask{Type: policy.MaskHash}, "e", "varchar", `lower(to_hex(sha256(to_utf8(cast("e" as varchar)))))`, true},
		{policy.Mask{Type: policy.MaskHash}, "n", "bigint", `NULL`, true},
		{policy.Mask{Type: policy.MaskRedact}, `we"ird`, "varchar(10)", `regexp_replace(regexp_replace(regexp_replace("we""ird", '[A-Z]', 'X'), '[a-z]', 'x'), '[0-9]', '0')`, true},
		{policy.Mask{Type: policy.MaskShowFirst4}, "c", "", `concat(substr("c", 1, 4), regexp_replace(substr("c", 5), '.', 'x'))`, true},
		{policy.Mask{Type: policy.MaskDateShowYear}, "d", "timestamp(3)", `date_trunc('year', "d")`, true},
		{policy.Mask{Type: policy.MaskNull}, "d", "date", `NULL`, true},
		{policy.Mask{Type: policy.MaskCustom, Expr: "upper({col})"}, "c", "varchar", `upper("c")`, true},
		{policy.Mask{Type: policy.MaskNone}, "c", "varchar", ``, false},
	}
	for _, tc := range cases {
		t.Run(string(tc.m.Type)+"/"+tc.typ, func(t *testing.T) {
			got, ok := MaskSQL(tc.m, tc.col, tc.typ)
			if got != tc.want || ok != tc.wantMasked {
				t.Errorf("MaskSQL = %q, %v; want %q, %v", got, ok, tc.want, tc.wantMasked)
			}
		})
	}
}

func FuzzTrinoRequest(f *testing.F) {
	entries, err := os.ReadDir("testdata/requests")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("testdata", "requests", e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"input":{"context":{"identity":{"user":"a"}},"action":{"operation":"RenameSchema","resource":{"schema":{"catalogName":"a","schemaName":"b"}},"targetResource":{}}}}`))
	h, _ := newTestHandler(f, nil)
	paths := []string{"/allow", "/batch", "/row-filters", "/column-masks", "/batch-column-masks"}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, _ = parseRequest(body)
		for _, p := range paths {
			req := httptest.NewRequest(http.MethodPost, p, bytes.NewReader(body))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 200 && w.Code != 400 {
				t.Fatalf("%s: status %d", p, w.Code)
			}
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%s: response is not JSON: %q", p, w.Body)
			}
		}
	})
}

// TestHolderVisibleThroughTables: with Handler.Tables, a catalog or schema
// holding a table the user may select is visible without a policy on its
// own name (as in Steward's own SQL); other operations are unaffected.
func TestHolderVisibleThroughTables(t *testing.T) {
	lister := TablesFunc(func(_ context.Context, user string, _ []string) ([]string, error) {
		if user == "bob" {
			return []string{"iceberg.sales.orders"}, nil
		}
		return nil, nil
	})
	cases := []struct {
		name, fixture, path string
		tables              TableLister
		want                string
	}{
		{"access catalog without lister", "access_catalog.json", "/allow", nil, `{"result": false}`},
		{"access catalog of another catalog", "access_catalog.json", "/allow", lister, `{"result": false}`},
		{"filter catalogs", "filter_catalogs.json", "/batch", lister, `{"result": [2]}`},
		{"show tables of another schema", "show_tables.json", "/allow", lister, `{"result": false}`},
		{"tables are not widened", "filter_tables.json", "/batch", lister, `{"result": []}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := newTestHandler(t, nil)
			h.Tables = tc.tables
			code, body := post(t, h, tc.path, fixture(t, tc.fixture, "bob", nil))
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			jsonEq(t, body, tc.want)
		})
	}
	t.Run("lister error fails the request", func(t *testing.T) {
		h, _ := newTestHandler(t, nil)
		h.Tables = TablesFunc(func(context.Context, string, []string) ([]string, error) { return nil, errors.New("store down") })
		if code, body := post(t, h, "/allow", fixture(t, "access_catalog.json", "bob", nil)); code != http.StatusInternalServerError {
			t.Fatalf("status %d: %s", code, body)
		}
	})
}
