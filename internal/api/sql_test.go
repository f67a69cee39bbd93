package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/api"
	"github.com/stewardhq/steward/internal/sqlengine"
)

type fakeSQL struct{}

func (fakeSQL) Query(_ context.Context, r sqlengine.Request, sink sqlengine.RowSink) (*sqlengine.Summary, error) {
	switch {
	case strings.Contains(r.SQL, "secret"):
		return nil, sqlengine.Errorf(steward.EPermission, sqlengine.StatePrivilege, "permission denied for table bank.crm.secret")
	case strings.Contains(r.SQL, "late"):
		sink.Columns([]sqlengine.Column{{Name: "x", Type: "INTEGER"}})
		sink.Row([]any{int32(1)})
		return nil, sqlengine.Errorf(steward.ETooLarge, sqlengine.StateLimit, "result exceeds the limit of 1 rows")
	}
	sink.Columns([]sqlengine.Column{{Name: "who", Type: "VARCHAR"}, {Name: "n", Type: "BIGINT"}, {Name: "b", Type: "BLOB"}})
	sink.Row([]any{r.Principal.Username, int64(7), []byte("hi")})
	sink.Row([]any{"a,\"b", nil, nil})
	return &sqlengine.Summary{Rows: 2}, nil
}

func TestSQLQuery(t *testing.T) {
	a := api.New(api.Deps{Auditor: &memAuditor{}, SQL: fakeSQL{}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if p := principals[r.Header.Get("X-Test-User")]; p != nil {
			ctx = steward.WithPrincipal(ctx, p)
		}
		a.Handler().ServeHTTP(w, r.WithContext(ctx))
	}))
	t.Cleanup(srv.Close)
	post := func(user, body string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+api.Prefix+"/query", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if user != "" {
			req.Header.Set("X-Test-User", user)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", err.Error()
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return resp.StatusCode, resp.Header.Get("Content-Type"), string(b) + "READ ERROR: " + err.Error()
		}
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	t.Run("jsonl", func(t *testing.T) {
		st, ct, body := post("alice", `{"sql":"select 1"}`)
		if st != 200 || ct != "application/jsonl" {
			t.Fatalf("%d %s %s", st, ct, body)
		}
		sc := bufio.NewScanner(strings.NewReader(body))
		var lines []map[string]any
		var rows [][]any
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "[") {
				var r []any
				json.Unmarshal(sc.Bytes(), &r)
				rows = append(rows, r)
				continue
			}
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, m)
		}
		if len(lines) != 2 || lines[0]["columns"] == nil || lines[1]["complete"] == nil || len(rows) != 2 || rows[0][0] != "alice" || rows[0][2] != "hi" {
			t.Fatalf("body %s", body)
		}
	})
	t.Run("csv", func(t *testing.T) {
		st, ct, body := post("alice", `{"sql":"select 1","format":"csv"}`)
		if st != 200 || !strings.HasPrefix(ct, "text/csv") || body != "who,n,b\nalice,7,hi\n\"a,\"\"b\",,\n" {
			t.Fatalf("%d %s %q", st, ct, body)
		}
	})
	t.Run("denied", func(t *testing.T) {
		st, _, body := post("alice", `{"sql":"select * from secret"}`)
		if st != 403 || !strings.Contains(body, "42501") || !strings.Contains(body, "bank.crm.secret") {
			t.Fatalf("%d %s", st, body)
		}
	})
	t.Run("error after rows", func(t *testing.T) {
		st, _, body := post("alice", `{"sql":"late"}`)
		if st != 200 || !strings.Contains(body, `"sqlstate":"54000"`) {
			t.Fatalf("%d %s", st, body)
		}
	})
	t.Run("format from the Accept header", func(t *testing.T) {
		req, _ := http.NewRequest("POST", srv.URL+api.Prefix+"/query", strings.NewReader(`{"sql":"select 1"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "text/csv")
		req.Header.Set("X-Test-User", "alice")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
			t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	})
	t.Run("anonymous", func(t *testing.T) {
		if st, _, body := post("", `{"sql":"select 1"}`); st != 401 {
			t.Fatalf("%d %s", st, body)
		}
	})
}
