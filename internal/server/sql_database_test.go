package server_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stewardhq/steward/internal/config"
)

// TestSQLShortNamesInDatabase: a PostgreSQL client connected to database
// mortgages (a catalog) names tables as schema.table, or table alone for
// the public schema, with the policies of the full names applied; the
// REST API and `steward sql -d` do the same with a database field.
func TestSQLShortNamesInDatabase(t *testing.T) {
	s := start(t, func(c *config.Config) { c.PGAddr = "127.0.0.1:0" })
	carol, alice, bob := newCLI(t, s), newCLI(t, s), newCLI(t, s)
	carol.login("carol")
	alice.login("alice")
	bob.login("bob")
	carol.must(sqlDemoPolicies, "policy", "apply", "-f", "-")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		// The crawler infers the schemas a moment after start.
		_, _, code := alice.run("", "sql", "-c", "SELECT count(*) FROM mortgages.retail.customers")
		_, _, code2 := alice.run("", "sql", "-c", "SELECT count(*) FROM mortgages.payments.transactions")
		if code == 0 && code2 == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the demo tables were not crawled in time")
		}
	}
	const joined = "SELECT c.country_code, c.email, count(t.tx_id) AS n FROM retail.customers c LEFT JOIN payments.transactions t USING (customer_id) GROUP BY ALL ORDER BY ALL"

	host, port, _ := net.SplitHostPort(s.PGAddr())
	connect := func(t *testing.T, c *steward, user, db string) *pgx.Conn {
		t.Helper()
		token := strings.TrimSpace(c.must("", "token"))
		cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=%s sslmode=disable", host, port, user, token, db))
		if err != nil {
			t.Fatal(err)
		}
		conn, err := pgx.ConnectConfig(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		return conn
	}
	rowsOf := func(t *testing.T, conn *pgx.Conn, q string) ([][]any, error) {
		t.Helper()
		rows, err := conn.Query(context.Background(), q, pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			return nil, err
		}
		var out [][]any
		for rows.Next() {
			v, err := rows.Values()
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, rows.Err()
	}

	t.Run("pgwire", func(t *testing.T) {
		ac := connect(t, alice, "alice", "mortgages")
		rows, err := rowsOf(t, ac, joined)
		if err != nil || len(rows) == 0 {
			t.Fatalf("alice: %v %v", rows, err)
		}
		for _, r := range rows {
			if r[0] != "BE" || strings.Contains(fmt.Sprint(r[1]), "@") {
				t.Errorf("alice sees %v", r)
			}
		}
		bc := connect(t, bob, "bob", "mortgages")
		rows, err = rowsOf(t, bc, "SELECT count(*) FROM retail.customers WHERE email LIKE '%@%' AND country_code <> 'BE'")
		if err != nil || len(rows) != 1 || fmt.Sprint(rows[0][0]) == "0" {
			t.Errorf("bob: %v %v", rows, err)
		}
		// The extended protocol (pgx's default) resolves alike.
		var n int64
		if err := ac.QueryRow(context.Background(), "SELECT count(*) FROM payments.transactions").Scan(&n); err != nil || n == 0 {
			t.Errorf("extended: %d %v", n, err)
		}
		for _, tc := range []struct{ q, state, mention string }{
			{"SELECT iban FROM retail.customers", "42703", "iban"},
			{"SELECT * FROM risk.credit_exposures", "42501", "mortgages.risk.credit_exposures"},
			{"SELECT * FROM customers", "42P01", "mortgages.public.customers"},
			{"SELECT * FROM main.customers", "42P09", "main.customers"},
			{"SELECT * FROM mortgages.customers", "42P09", "mortgages.customers"},
			{"SELECT * FROM read_csv('/etc/passwd')", "42501", "read_csv"},
		} {
			_, err := rowsOf(t, ac, tc.q)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != tc.state || !strings.Contains(pe.Message, tc.mention) {
				t.Errorf("%s: %v, want %s naming %s", tc.q, err, tc.state, tc.mention)
			}
		}
		// Three-part names work in any database; short ones only in a catalog's.
		other := connect(t, alice, "alice", "steward")
		if rows, err := rowsOf(t, other, "SELECT count(*) FROM mortgages.retail.customers"); err != nil || len(rows) != 1 {
			t.Errorf("three parts elsewhere: %v %v", rows, err)
		}
		var pe *pgconn.PgError
		if _, err := rowsOf(t, other, "SELECT count(*) FROM retail.customers"); !errors.As(err, &pe) || pe.Code != "42P01" {
			t.Errorf("short name outside a catalog's database: %v", err)
		}
	})

	t.Run("rest", func(t *testing.T) {
		out := alice.must("", "sql", "-d", "mortgages", "-c", joined, "--format", "csv")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) < 2 {
			t.Fatalf("alice: %q", out)
		}
		for _, l := range lines[1:] {
			if !strings.HasPrefix(l, "BE,") || strings.Contains(l, "@") {
				t.Errorf("alice sees %q", l)
			}
		}
		if _, errs, code := alice.run("", "sql", "--database", "mortgages", "-c", "SELECT * FROM risk.credit_exposures"); code == 0 || !strings.Contains(errs, "42501") || !strings.Contains(errs, "mortgages.risk.credit_exposures") {
			t.Errorf("exposures: %d %s", code, errs)
		}
		if _, errs, code := alice.run("", "sql", "-c", "SELECT count(*) FROM retail.customers"); code == 0 || !strings.Contains(errs, "42P01") {
			t.Errorf("without a database: %d %s", code, errs)
		}
	})
}
