package server

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// TestDemoBankGenerated checks the generated demo bank: the row counts
// asked for, valid IBANs, e-mail addresses, every transaction's account and
// customer existing, and the same data from a second run.
func TestDemoBankGenerated(t *testing.T) {
	ctx := context.Background()
	n := demoSizesFor(24_000)
	dirs := []string{t.TempDir(), t.TempDir()}
	for _, d := range dirs {
		if err := generateDemoBank(ctx, d, n); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	q := func(query string, args ...any) int64 {
		t.Helper()
		var v int64
		if err := db.QueryRowContext(ctx, query, args...).Scan(&v); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return v
	}
	for _, d := range dirs {
		tx := filepath.Join(d, "payments/transactions/*/*/*.parquet")
		cu := filepath.Join(d, "retail/customers/customers.parquet")
		ac := filepath.Join(d, "retail/accounts/accounts.parquet")
		if got := q("SELECT count(*) FROM read_parquet(?, hive_partitioning=true)", tx); got != n.Transactions {
			t.Errorf("transactions: %d rows, want %d", got, n.Transactions)
		}
		if got := q("SELECT count(DISTINCT tx_id) FROM read_parquet(?)", tx); got != n.Transactions {
			t.Errorf("transaction ids not unique: %d", got)
		}
		if got := q("SELECT count(*) FROM read_parquet(?)", cu); got != n.Customers {
			t.Errorf("customers: %d, want %d", got, n.Customers)
		}
		if got := q("SELECT count(*) FROM read_parquet(?) t ANTI JOIN read_parquet(?) a USING (account_id)", tx, ac); got != 0 {
			t.Errorf("%d transactions of unknown accounts", got)
		}
		if got := q("SELECT count(*) FROM read_parquet(?) t ANTI JOIN read_parquet(?) c USING (customer_id)", tx, cu); got != 0 {
			t.Errorf("%d transactions of unknown customers", got)
		}
		if got := q("SELECT count(*) FROM read_parquet(?) WHERE email NOT SIMILAR TO '[a-z]+\\.[a-z]+[0-9]+@mail\\.example'", cu); got != 0 {
			t.Errorf("%d malformed e-mails", got)
		}
		// ISO 13616: move the first four characters to the end, letters to
		// numbers (B=11, E=14), the whole mod 97 is 1.
		if got := q(`SELECT count(*) FROM read_parquet(?) WHERE length(iban) <> 16
			OR ((substr(iban, 5)::HUGEINT * 1000000 + 111400 + substr(iban, 3, 2)::INTEGER) % 97) <> 1`, cu); got != 0 {
			t.Errorf("%d invalid IBANs", got)
		}
	}
	a := q("SELECT sum(hash(tx_id, account_id, amount_eur, channel)) % 1000000007 FROM read_parquet(?)", filepath.Join(dirs[0], "payments/transactions/*/*/*.parquet"))
	b := q("SELECT sum(hash(tx_id, account_id, amount_eur, channel)) % 1000000007 FROM read_parquet(?)", filepath.Join(dirs[1], "payments/transactions/*/*/*.parquet"))
	if a != b {
		t.Errorf("two runs differ: %d vs %d", a, b)
	}
}
