package server_test

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// The demo bank's tables as Trino names them: a Hive or Iceberg catalog
// named like the bucket, the first prefix as schema, the rest as table.
var trinoDemoTables = []string{
	"mortgages.market.mortgages_by_country",
	"mortgages.lending.home_loans",
	"mortgages.risk.credit_exposures",
	"mortgages.retail.customers",
	"mortgages.retail.accounts",
	"mortgages.payments.transactions",
	"public.reference.branches",
}

// trinoUser is a Steward user as Trino's OPA plugin names it: Trino's
// principal and the groups of its group provider.
type trinoUser struct {
	name   string
	groups []string
	cli    *steward
}

// trinoCall posts one request shaped as Trino's OPA access control sends
// it (io.trino.plugin.opa: {"input": {"context", "action"}}) and returns
// the "result".
func trinoCall(t *testing.T, url, endpoint string, u trinoUser, action map[string]any) json.RawMessage {
	t.Helper()
	body, err := json.Marshal(map[string]any{"input": map[string]any{
		"context": map[string]any{
			"identity":      map[string]any{"user": u.name, "groups": u.groups},
			"queryId":       "20261126_091500_00001_parity",
			"softwareStack": map[string]any{"trinoVersion": "476"},
		},
		"action": action,
	}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url+"/trino/v1/"+endpoint, "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %s", endpoint, body, resp.StatusCode, b)
	}
	var out struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: %v in %s", endpoint, err, b)
	}
	return out.Result
}

func splitTable(name string) (catalog, schema, table string) {
	p := strings.SplitN(name, ".", 3)
	return p[0], p[1], p[2]
}

// trinoFilter sends a batch Filter* request and returns the names kept.
func trinoFilter(t *testing.T, url string, u trinoUser, op string, names []string) []string {
	t.Helper()
	var res []map[string]any
	for _, n := range names {
		p := strings.Split(n, ".")
		switch len(p) {
		case 1:
			res = append(res, map[string]any{"catalog": map[string]any{"name": p[0]}})
		case 2:
			res = append(res, map[string]any{"schema": map[string]any{"catalogName": p[0], "schemaName": p[1]}})
		case 3:
			res = append(res, map[string]any{"table": map[string]any{"catalogName": p[0], "schemaName": p[1], "tableName": p[2]}})
		}
	}
	var idx []int
	if err := json.Unmarshal(trinoCall(t, url, "batch", u, map[string]any{"operation": op, "filterResources": res}), &idx); err != nil {
		t.Fatal(err)
	}
	kept := []string{}
	for _, i := range idx {
		kept = append(kept, names[i])
	}
	sort.Strings(kept)
	return kept
}

func trinoAllow(t *testing.T, url string, u trinoUser, op string, resource map[string]any) bool {
	t.Helper()
	var ok bool
	if err := json.Unmarshal(trinoCall(t, url, "allow", u, map[string]any{"operation": op, "resource": resource}), &ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// sqlRows runs a query through Steward's own SQL and returns its CSV rows
// without the header; ok is false when the query fails.
func sqlRows(t *testing.T, c *steward, q string) ([][]string, string, bool) {
	t.Helper()
	out, errs, code := c.run("", "sql", "-c", q, "--format", "csv")
	if code != 0 {
		return nil, errs, false
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v in %q", q, err, out)
	}
	if len(rows) == 0 {
		t.Fatalf("%s: no header in %q", q, out)
	}
	return rows[1:], "", true
}

// duckdbOf rewrites a Trino expression the OPA endpoints return into the
// DuckDB dialect of Steward's own SQL, so the expression Trino would apply
// can be evaluated over the same data. Each mapping computes the same
// value in both engines (COMPATIBILITY.md, Trino):
//
//	Trino to_hex(sha256(to_utf8(x)))  (upper-case hex of the UTF-8 bytes)
//	DuckDB upper(sha256(x))           (DuckDB's sha256 of a VARCHAR is the
//	                                   lower-case hex of its UTF-8 bytes)
func duckdbOf(t *testing.T, expr string) string {
	t.Helper()
	d := strings.ReplaceAll(expr, "to_hex(sha256(to_utf8(", "upper(sha256((")
	for _, f := range []string{"to_hex(", "to_utf8(", "regexp_replace("} {
		if strings.Contains(d, f) {
			t.Fatalf("no DuckDB mapping in the test for %q", expr)
		}
	}
	return d
}

// TestTrinoParity checks, for alice (analysts) and bob (mortgages) over the
// demo bank with the demo policies, that what Steward's OPA-compatible
// endpoints tell a Trino cluster gives the same tables, columns, rows and
// masked values as Steward's own SQL.
func TestTrinoParity(t *testing.T) {
	s := start(t)
	url := s.URL()
	alice, bob := newCLI(t, s), newCLI(t, s)
	alice.login("alice")
	bob.login("bob")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		// The crawler infers the schemas a moment after start.
		_, errs, ok := sqlRows(t, bob, "SELECT count(*) FROM mortgages.retail.customers, mortgages.risk.credit_exposures, public.reference.branches LIMIT 1")
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo bank not queryable: %s", errs)
		}
	}
	users := []trinoUser{
		{name: "alice", groups: []string{"analysts"}, cli: alice},
		{name: "bob", groups: []string{"mortgages"}, cli: bob},
	}

	// FilterCatalogs, FilterSchemas, FilterTables and the AccessCatalog and
	// ShowTables checks Trino makes before a query or listing, against
	// SHOW TABLES in Steward's own SQL.
	t.Run("tables", func(t *testing.T) {
		var catalogs, schemas []string
		for _, n := range trinoDemoTables {
			c, sc, _ := splitTable(n)
			catalogs = append(catalogs, c)
			schemas = append(schemas, c+"."+sc)
		}
		slices.Sort(catalogs)
		catalogs = slices.Compact(catalogs)
		slices.Sort(schemas)
		schemas = slices.Compact(schemas)
		wantCount := map[string]int{"alice": 5, "bob": 7} // alice: no lending, no risk
		for _, u := range users {
			t.Run(u.name, func(t *testing.T) {
				rows, errs, ok := sqlRows(t, u.cli, "SHOW TABLES")
				if !ok {
					t.Fatalf("SHOW TABLES: %s", errs)
				}
				var wantTables, wantSchemas, wantCatalogs []string
				for _, r := range rows {
					if slices.Contains(trinoDemoTables, r[0]) {
						c, sc, _ := splitTable(r[0])
						wantTables = append(wantTables, r[0])
						wantSchemas = append(wantSchemas, c+"."+sc)
						wantCatalogs = append(wantCatalogs, c)
					}
				}
				for _, l := range []*[]string{&wantTables, &wantSchemas, &wantCatalogs} {
					slices.Sort(*l)
					*l = slices.Compact(*l)
				}
				if len(wantTables) != wantCount[u.name] {
					t.Fatalf("SHOW TABLES shows %v, want %d demo tables", wantTables, wantCount[u.name])
				}
				if got := trinoFilter(t, url, u, "FilterTables", trinoDemoTables); !slices.Equal(got, wantTables) {
					t.Errorf("FilterTables %v, SHOW TABLES %v", got, wantTables)
				}
				if got := trinoFilter(t, url, u, "FilterSchemas", schemas); !slices.Equal(got, wantSchemas) {
					t.Errorf("FilterSchemas %v, schemas of SHOW TABLES %v", got, wantSchemas)
				}
				if got := trinoFilter(t, url, u, "FilterCatalogs", catalogs); !slices.Equal(got, wantCatalogs) {
					t.Errorf("FilterCatalogs %v, catalogs of SHOW TABLES %v", got, wantCatalogs)
				}
				for _, c := range wantCatalogs {
					// Trino asks AccessCatalog before every check on a table.
					if !trinoAllow(t, url, u, "AccessCatalog", map[string]any{"catalog": map[string]any{"name": c}}) {
						t.Errorf("AccessCatalog %s denied, but SQL shows its tables", c)
					}
				}
				for _, sc := range wantSchemas {
					c, name, _ := strings.Cut(sc, ".")
					if !trinoAllow(t, url, u, "ShowTables", map[string]any{"schema": map[string]any{"catalogName": c, "schemaName": name}}) {
						t.Errorf("ShowTables %s denied, but SQL shows its tables", sc)
					}
				}
			})
		}
	})

	// SelectFromColumns per table and column set against the success or
	// failure of the same SELECT in Steward's own SQL.
	t.Run("select", func(t *testing.T) {
		cases := []struct {
			table       string
			columns     []string
			aliceDenied bool // bob may read every one
		}{
			{"mortgages.retail.customers", []string{"customer_id", "email", "country_code"}, false},
			{"mortgages.retail.customers", []string{"customer_id", "iban"}, true},
			{"mortgages.retail.customers", []string{"name", "date_of_birth"}, false},
			{"mortgages.risk.credit_exposures", []string{"customer_id", "pd", "lgd"}, true},
			{"mortgages.lending.home_loans", []string{"loan_id", "customer_id"}, true},
			{"mortgages.payments.transactions", []string{"tx_id", "customer_id"}, false},
			{"mortgages.market.mortgages_by_country", nil, false},
			{"public.reference.branches", nil, false},
		}
		for _, u := range users {
			for _, tc := range cases {
				t.Run(u.name+"/"+tc.table+"/"+strings.Join(tc.columns, ","), func(t *testing.T) {
					c, sc, tb := splitTable(tc.table)
					cols := "count(*)"
					if len(tc.columns) > 0 {
						cols = strings.Join(tc.columns, ", ")
					}
					_, errs, sqlOK := sqlRows(t, u.cli, "SELECT "+cols+" FROM "+tc.table+" LIMIT 1")
					tbl := map[string]any{"catalogName": c, "schemaName": sc, "tableName": tb, "columns": tc.columns}
					if tc.columns == nil {
						tbl["columns"] = []string{}
					}
					trinoOK := trinoAllow(t, url, u, "SelectFromColumns", map[string]any{"table": tbl}) &&
						trinoAllow(t, url, u, "AccessCatalog", map[string]any{"catalog": map[string]any{"name": c}})
					if trinoOK != sqlOK {
						t.Errorf("Trino allowed=%v, Steward SQL allowed=%v (%s)", trinoOK, sqlOK, strings.TrimSpace(errs))
					}
					if want := !(u.name == "alice" && tc.aliceDenied); sqlOK != want {
						t.Errorf("Steward SQL allowed=%v, the demo policies say %v", sqlOK, want)
					}
				})
			}
		}
	})

	// GetRowFilters: the expressions Trino ANDs into its scan, evaluated
	// by bob (who sees every row) over the same table, against the rows
	// each user gets from Steward's own SQL.
	t.Run("row filters", func(t *testing.T) {
		for _, u := range users {
			for _, table := range []string{"mortgages.retail.customers", "mortgages.payments.transactions"} {
				t.Run(u.name+"/"+table, func(t *testing.T) {
					c, sc, tb := splitTable(table)
					var filters []struct {
						Expression string `json:"expression"`
					}
					raw := trinoCall(t, url, "row-filters", u, map[string]any{"operation": "GetRowFilters",
						"resource": map[string]any{"table": map[string]any{"catalogName": c, "schemaName": sc, "tableName": tb}}})
					if err := json.Unmarshal(raw, &filters); err != nil {
						t.Fatal(err)
					}
					where := "true"
					for _, f := range filters {
						where += " AND (" + duckdbOf(t, f.Expression) + ")"
					}
					want, errs, ok := sqlRows(t, bob, "SELECT count(*) FROM "+table+" WHERE "+where)
					if !ok {
						t.Fatalf("bob evaluates %q: %s", where, errs)
					}
					got, errs, ok := sqlRows(t, u.cli, "SELECT count(*) FROM "+table)
					if !ok {
						t.Fatalf("%s counts %s: %s", u.name, table, errs)
					}
					if got[0][0] != want[0][0] || got[0][0] == "0" {
						t.Errorf("Trino filters %v keep %s rows; Steward SQL shows %s", filters, want[0][0], got[0][0])
					}
				})
			}
		}
	})

	// GetColumnMask (batch endpoint): the masks Trino would put over each
	// column, evaluated by bob over the rows the user's row filters keep,
	// against the values the user sees in Steward's own SQL.
	t.Run("column masks", func(t *testing.T) {
		const table = "mortgages.retail.customers"
		columns := []struct{ name, typ string }{
			{"customer_id", "bigint"}, {"name", "varchar"}, {"email", "varchar"},
			{"date_of_birth", "date"}, {"country_code", "varchar"},
		}
		c, sc, tb := splitTable(table)
		for _, u := range users {
			t.Run(u.name, func(t *testing.T) {
				var res []map[string]any
				for _, col := range columns {
					res = append(res, map[string]any{"column": map[string]any{"catalogName": c, "schemaName": sc,
						"tableName": tb, "columnName": col.name, "columnType": col.typ}})
				}
				var masks []struct {
					Index          int `json:"index"`
					ViewExpression struct {
						Expression string `json:"expression"`
					} `json:"viewExpression"`
				}
				raw := trinoCall(t, url, "batch-column-masks", u, map[string]any{"operation": "GetColumnMask", "filterResources": res})
				if err := json.Unmarshal(raw, &masks); err != nil {
					t.Fatal(err)
				}
				exprs := make([]string, len(columns))
				names := make([]string, len(columns))
				for i, col := range columns {
					exprs[i], names[i] = col.name, col.name
				}
				masked := map[string]string{}
				for _, m := range masks {
					exprs[m.Index] = duckdbOf(t, m.ViewExpression.Expression) + " AS " + columns[m.Index].name
					masked[columns[m.Index].name] = m.ViewExpression.Expression
				}
				var filters []struct {
					Expression string `json:"expression"`
				}
				if err := json.Unmarshal(trinoCall(t, url, "row-filters", u, map[string]any{"operation": "GetRowFilters",
					"resource": map[string]any{"table": map[string]any{"catalogName": c, "schemaName": sc, "tableName": tb}}}), &filters); err != nil {
					t.Fatal(err)
				}
				where := "true"
				for _, f := range filters {
					where += " AND (" + duckdbOf(t, f.Expression) + ")"
				}
				want, errs, ok := sqlRows(t, bob, "SELECT "+strings.Join(exprs, ", ")+" FROM "+table+" WHERE "+where+" ORDER BY customer_id LIMIT 25")
				if !ok {
					t.Fatalf("bob evaluates the masks %v: %s", masked, errs)
				}
				got, errs, ok := sqlRows(t, u.cli, "SELECT "+strings.Join(names, ", ")+" FROM "+table+" ORDER BY customer_id LIMIT 25")
				if !ok {
					t.Fatalf("%s: %s", u.name, errs)
				}
				if len(got) == 0 || !slices.EqualFunc(got, want, slices.Equal) {
					t.Errorf("masks %v: Trino would show\n%v\nSteward SQL shows\n%v", masked, want, got)
				}
				if _, hashed := masked["email"]; hashed != (u.name == "alice") {
					t.Errorf("email masked for %s: %v", u.name, hashed)
				}
			})
		}
	})
}
