package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/api"
	"github.com/stewardhq/steward/internal/catalog"
	"github.com/stewardhq/steward/internal/metastore"
	"github.com/stewardhq/steward/internal/policystore"
)

func newCatalogEnv(t *testing.T) *env {
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
	cat := catalog.NewService(catalog.NewStore(db), h, nil, nil)
	if err := cat.Index.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	au := &memAuditor{}
	a := api.New(api.Deps{Auditor: au, AdminGroup: "platform-admins", Policies: st, PolicyEngine: h, Catalog: cat})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if p := principals[r.Header.Get("X-Test-User")]; p != nil {
			ctx = steward.WithPrincipal(ctx, p)
		}
		a.Handler().ServeHTTP(w, r.WithContext(ctx))
	}))
	t.Cleanup(srv.Close)
	return &env{t: t, url: srv.URL + api.Prefix, store: st, audit: au}
}

func TestCatalogAPI(t *testing.T) {
	e := newCatalogEnv(t)
	mortgages := map[string]any{"namespace": "s3://bank", "name": "risk/mortgages", "description": "Mortgages by country, Belgium included",
		"owners": []string{"bob"}, "classification": "C2", "format": "parquet",
		"schema": []map[string]any{{"name": "country", "type": "VARCHAR"}, {"name": "rate", "type": "DOUBLE"}}}
	if st := e.call("alice", "POST", "/datasets", mortgages, nil); st != 403 {
		t.Fatalf("non-admin registers: %d", st)
	}
	var d catalog.Dataset
	e.must("carol", "POST", "/datasets", mortgages, &d)
	if d.ID != catalog.ID("s3://bank", "risk/mortgages") || d.Version != 1 {
		t.Fatalf("registered %+v", d)
	}
	if st := e.call("carol", "POST", "/datasets", mortgages, nil); st != 409 {
		t.Fatalf("duplicate: %d", st)
	}
	e.must("carol", "POST", "/datasets", map[string]any{"namespace": "s3://bank", "name": "hr/salaries", "description": "Salaries of every employee", "owners": []string{"bob"}, "classification": "C4"}, nil)

	// alice finds the mortgages, with a typo, but not bob's C4 salaries.
	var r catalog.SearchResult
	e.must("alice", "GET", "/search?q="+url.QueryEscape("mortage belgium"), nil, &r)
	if r.Total != 1 || r.Hits[0].Dataset.Name != "risk/mortgages" {
		t.Fatalf("search: %+v", r)
	}
	e.must("alice", "GET", "/datasets?q=salaries", nil, &r)
	if r.Total != 0 {
		t.Fatalf("alice sees C4: %+v", r)
	}
	if st := e.call("alice", "GET", "/datasets/"+catalog.ID("s3://bank", "hr/salaries"), nil, nil); st != 404 {
		t.Fatalf("alice gets C4: %d", st)
	}
	e.must("bob", "GET", "/datasets?q=salaries", nil, &r)
	if r.Total != 1 {
		t.Fatalf("bob does not see his C4: %+v", r)
	}
	e.must("alice", "GET", "/datasets?format=parquet", nil, &r)
	if r.Total != 1 || len(r.Facets["format"]) != 1 {
		t.Fatalf("filter: %+v", r)
	}

	// Owners edit; others may not.
	id := d.ID
	patch := map[string]any{"add_tags": []map[string]any{{"name": "finance"}}, "columns": map[string]any{"country": map[string]any{"description": "ISO 3166 code"}}}
	if st := e.call("alice", "PATCH", "/datasets/"+id, patch, nil); st != 403 {
		t.Fatalf("alice patches: %d", st)
	}
	e.must("bob", "PATCH", "/datasets/"+id, patch, &d)
	if !catalog.HasTag(d.Tags, "finance") || d.Column("country").Description != "ISO 3166 code" {
		t.Fatalf("patched %+v", d)
	}
	if st := e.call("bob", "PATCH", "/datasets/"+id+"?if_version=1", patch, nil); st != 409 {
		t.Fatalf("stale patch: %d", st)
	}
	d.Description = "Belgian mortgages"
	e.must("bob", "PUT", "/datasets/"+id, d, &d)
	if d.Description != "Belgian mortgages" || d.Version != 3 {
		t.Fatalf("put %+v", d)
	}
	if st := e.call("bob", "GET", "/datasets/not-base64!", nil, nil); st != 400 {
		t.Fatalf("bad id: %d", st)
	}
	if st := e.call("", "GET", "/search?q=x", nil, nil); st != 401 {
		t.Fatalf("anonymous search: %d", st)
	}
	if st := e.call("alice", "DELETE", "/datasets/"+id, nil, nil); st != 403 {
		t.Fatalf("alice deletes: %d", st)
	}
	if st := e.call("bob", "DELETE", "/datasets/"+id, nil, nil); st != 204 {
		t.Fatalf("bob deletes: %d", st)
	}
	got := e.audit.actions("bob")
	want := []string{"catalog.edit/allow", "catalog.edit/allow", "catalog.delete/allow"}
	for _, w := range want {
		if !contains(got, w) {
			t.Errorf("audit of bob: %v, want %v", got, want)
		}
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
