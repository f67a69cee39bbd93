package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/api"
	"github.com/stewardhq/steward/internal/catalog"
	"github.com/stewardhq/steward/internal/metastore"
	"github.com/stewardhq/steward/internal/policystore"
)

func TestUsageAPI(t *testing.T) {
	ctx := context.Background()
	db, err := metastore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "s.db"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := policystore.New(db)
	h := policystore.NewHolder(st, nil)
	if _, err := h.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	cat := catalog.NewService(catalog.NewStore(db), h, nil, nil)
	if err := cat.Index.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	usage := catalog.NewUsage(db, cat, nil)
	au := &memAuditor{}
	a := api.New(api.Deps{Auditor: au, AdminGroup: "platform-admins", Policies: st, PolicyEngine: h, Catalog: cat, Usage: usage})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if p := principals[r.Header.Get("X-Test-User")]; p != nil {
			ctx = steward.WithPrincipal(ctx, p)
		}
		a.Handler().ServeHTTP(w, r.WithContext(ctx))
	}))
	t.Cleanup(srv.Close)
	e := &env{t: t, url: srv.URL + api.Prefix, store: st, audit: au}

	for _, d := range []map[string]any{
		{"namespace": "s3://bank", "name": "risk/mortgages", "classification": "C2", "owners": []string{"bob"}},
		{"namespace": "s3://bank", "name": "risk/rates", "classification": "C2"},
		{"namespace": "s3://bank", "name": "hr/salaries", "classification": "C4", "owners": []string{"bob"}},
	} {
		e.must("carol", "POST", "/datasets", d, nil)
	}
	mortgages, rates, salaries := catalog.ID("s3://bank", "risk/mortgages"), catalog.ID("s3://bank", "risk/rates"), catalog.ID("s3://bank", "hr/salaries")

	// Reads arrive as audit events: alice reads the mortgages twice; dave,
	// another analyst, reads the rates and bob's C4 salaries.
	reads := catalog.UsageAuditor{Next: au, Usage: usage}
	read := func(user string, groups []string, object string) {
		t.Helper()
		ctx := steward.WithPrincipal(ctx, &steward.Principal{Kind: steward.KindUser, Username: user, Groups: groups})
		ev := steward.AuditEvent{Time: time.Now().UTC(), Actor: user, ActorKind: "user", Action: "s3:GetObject", Resource: "s3://bank/" + object,
			Decision: "allow", Outcome: "success", Details: map[string]any{"status": 200}}
		if err := reads.Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	read("alice", []string{"analysts"}, "risk/mortgages/a.parquet")
	read("alice", []string{"analysts"}, "risk/mortgages/b.parquet")
	read("dave", []string{"analysts"}, "risk/rates/a.parquet")
	read("dave", []string{"analysts"}, "hr/salaries/a.parquet")
	if err := usage.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	var u catalog.DatasetUsage
	e.must("alice", "GET", "/datasets/"+mortgages+"/usage?days=7", nil, &u)
	if u.Reads != 2 || u.Readers != 1 || len(u.Daily) != 7 || len(u.TopUsers) != 1 || u.TopUsers[0].User != "alice" || u.Popularity <= 0 {
		t.Errorf("usage: %+v", u)
	}
	for _, tc := range []struct {
		name, user, method, path string
		want                     int
	}{
		{"C4 usage hidden", "alice", "GET", "/datasets/" + salaries + "/usage", 404},
		{"owner sees C4 usage", "bob", "GET", "/datasets/" + salaries + "/usage", 200},
		{"window too long", "alice", "GET", "/datasets/" + mortgages + "/usage?days=1000", 422},
		{"bad id", "alice", "GET", "/datasets/not-base64!/usage", 400},
		{"anonymous", "", "GET", "/datasets/" + mortgages + "/usage", 401},
		{"bookmark", "alice", "PUT", "/bookmarks/" + rates, 204},
		{"bookmark again", "alice", "PUT", "/bookmarks/" + rates, 204},
		{"bookmark C4", "alice", "PUT", "/bookmarks/" + salaries, 404},
		{"anonymous bookmarks", "", "GET", "/bookmarks", 401},
		{"anonymous recommendations", "", "GET", "/recommendations", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if st := e.call(tc.user, tc.method, tc.path, nil, nil); st != tc.want {
				t.Errorf("%s %s as %q: %d, want %d", tc.method, tc.path, tc.user, st, tc.want)
			}
		})
	}

	var bs struct{ Bookmarks []catalog.Bookmark }
	e.must("alice", "GET", "/bookmarks", nil, &bs)
	if len(bs.Bookmarks) != 1 || bs.Bookmarks[0].Dataset.ID != rates {
		t.Errorf("bookmarks: %+v", bs)
	}

	// alice's group read the rates (bookmarked: not recommended) and the
	// salaries (C4: not recommended to her); bob sees nothing new.
	var rs struct{ Recommendations []catalog.Recommendation }
	e.must("alice", "GET", "/recommendations", nil, &rs)
	if len(rs.Recommendations) != 0 {
		t.Errorf("recommendations with rates bookmarked: %+v", rs)
	}
	if st := e.call("alice", "DELETE", "/bookmarks/"+rates, nil, nil); st != 204 {
		t.Fatalf("remove bookmark: %d", st)
	}
	if st := e.call("alice", "DELETE", "/bookmarks/"+rates, nil, nil); st != 404 {
		t.Errorf("remove it again: %d", st)
	}
	e.must("alice", "GET", "/recommendations?limit=5", nil, &rs)
	if len(rs.Recommendations) != 1 || rs.Recommendations[0].Dataset.ID != rates || len(rs.Recommendations[0].Reasons) == 0 {
		t.Errorf("recommendations: %+v", rs)
	}
}
