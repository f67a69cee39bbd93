package server

// The demo bank: a small synthetic bank that `steward serve --demo` writes
// into the object store through the gateway's own store (so the catalog
// notices the writes as it would a user's) and registers in the catalog.
// Everything is generated deterministically from row numbers (DuckDB's
// hash of the row number and a salt), never downloaded: the same
// demo_rows give the same data on every machine with the same DuckDB.
//
// The big tables are Parquet written by DuckDB (customers, accounts, the
// bank's own mortgage loans, credit exposures, and transactions partitioned
// by month with demo_rows rows in all); the small reference tables are CSV,
// so the demo shows both formats.

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	_ "github.com/duckdb/duckdb-go/v2" // the "duckdb" database/sql driver

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/catalog"
	"github.com/stewardhq/steward/internal/objectstore"
)

// demoDatasets describe the demo bank's data. bob owns the mortgage data;
// the credit exposures are C4 (alice cannot discover them).
var demoDatasets = []catalog.Dataset{
	{Namespace: "s3://mortgages", Name: "market/mortgages_by_country", Owners: []string{"bob"}, Stewards: []string{"group:mortgages"}, Classification: "C2",
		Description: "Mortgage market by country: average rates, volumes and terms per year for Belgium, the Netherlands, France, Germany, Spain, Italy and more. Answers how competitive our Belgian mortgages are.",
		Tags:        []catalog.Tag{{Name: "mortgages"}, {Name: "market-data"}}},
	{Namespace: "s3://mortgages", Name: "lending/home_loans", Owners: []string{"bob"}, Stewards: []string{"group:mortgages"}, Classification: "C3",
		Description: "The bank's own book of home loans: one row per loan with the borrower, the country of the property, the fixed rate, principal, term and start date. Compare with the market data.",
		Tags:        []catalog.Tag{{Name: "lending"}}},
	{Namespace: "s3://mortgages", Name: "risk/credit_exposures", Owners: []string{"bob"}, Classification: "C4",
		Description: "Credit risk exposures per mortgage borrower: probability of default, loss given default, exposure at default. Restricted.",
		Tags:        []catalog.Tag{{Name: "risk"}}},
	{Namespace: "s3://mortgages", Name: "retail/customers", Owners: []string{"bob"}, Classification: "C2",
		Description: "Retail customers: name, e-mail, IBAN, date of birth and country."},
	{Namespace: "s3://mortgages", Name: "retail/accounts", Owners: []string{"bob"}, Classification: "C2",
		Description: "Current and savings accounts of retail customers: product, branch, opening date and balance."},
	{Namespace: "s3://mortgages", Name: "payments/transactions", Owners: []string{"bob"}, Classification: "C3",
		Description: "Card and transfer transactions of retail customers, partitioned by year and month."},
	{Namespace: "s3://public", Name: "reference/branches", Owners: []string{"carol"}, Classification: "C1",
		Description: "The bank's branches with their city and country."},
}

// demoSizes are the demo bank's table sizes for a transactions table of
// rows rows.
type demoSizes struct {
	Transactions, Customers, Accounts, Loans int64
}

func demoSizesFor(rows int64) demoSizes {
	customers := min(max(rows/50, 200), 200_000)
	return demoSizes{Transactions: rows, Customers: customers, Accounts: customers * 3 / 2, Loans: customers / 4}
}

// seedCatalogDemo writes the demo bank's files through the gateway's store
// and registers the datasets, once; the crawl worker infers their schemas,
// statistics and tags a moment after start.
func (s *Server) seedCatalogDemo(ctx context.Context) error {
	svc := s.cat.svc
	root := catalog.Viewer{User: "steward", Admin: true}
	var missing []catalog.Dataset
	for _, d := range demoDatasets {
		if _, err := svc.Store.Get(ctx, d.Namespace, d.Name); err == nil {
			continue
		} else if steward.KindOf(err) != steward.ENotFound {
			return err
		}
		missing = append(missing, d)
	}
	if len(missing) == 0 {
		return nil
	}
	dir, err := os.MkdirTemp(filepath.Join(s.cfg.DataDir, "tmp"), "demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s.log.Info("generating the demo bank", "transactions", s.cfg.DemoRows)
	if err := generateDemoBank(ctx, dir, demoSizesFor(s.cfg.DemoRows)); err != nil {
		return fmt.Errorf("generating the demo bank: %w", err)
	}
	for _, d := range missing {
		bucket, _ := catalog.BucketOf(d.Namespace)
		if err := s.objects.CreateBucket(ctx, bucket); err != nil && steward.KindOf(err) != steward.EConflict {
			return err
		}
		if err := s.putDemoTree(ctx, filepath.Join(dir, filepath.FromSlash(d.Name)), bucket, d.Name); err != nil {
			return err
		}
		d := d
		if _, err := svc.Register(ctx, root, &d); err != nil {
			return err
		}
	}
	s.log.Info("demo bank written", "datasets", len(missing))
	return nil
}

// putDemoTree stores every file under dir as bucket/prefix/<relative path>.
func (s *Server) putDemoTree(ctx context.Context, dir, bucket, prefix string) error {
	return filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		ct := "application/vnd.apache.parquet"
		if strings.HasSuffix(p, ".csv") {
			ct = "text/csv"
		}
		_, err = s.gatewayStore().Put(ctx, bucket, prefix+"/"+filepath.ToSlash(rel), f, st.Size(), objectstore.PutOptions{ContentType: ct})
		return err
	})
}

// generateDemoBank writes the demo bank's files under dir, one directory
// per dataset name (dir/retail/customers/customers.parquet, ...).
func generateDemoBank(ctx context.Context, dir string, n demoSizes) error {
	for _, d := range demoDatasets {
		if err := os.MkdirAll(filepath.Join(dir, filepath.FromSlash(d.Name)), 0o700); err != nil {
			return err
		}
	}
	for m := 1; m <= 12; m++ {
		if err := os.MkdirAll(filepath.Join(dir, "payments", "transactions", "year=2025", fmt.Sprintf("month=%02d", m)), 0o700); err != nil {
			return err
		}
	}
	for name, data := range demoCSVFiles() {
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(name)), data, 0o600); err != nil {
			return err
		}
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, q := range demoBankSQL(dir, n) {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%.60s...: %w", q, err)
		}
	}
	return nil
}

// demoBankSQL is the DuckDB script that writes the Parquet tables. u(salt)
// is a uniform number in [0, 1) drawn from the row number and a salt.
func demoBankSQL(dir string, n demoSizes) []string {
	out := func(name string) string {
		return "'" + strings.ReplaceAll(filepath.Join(dir, filepath.FromSlash(name)), "'", "''") + "'"
	}
	const pq = "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)"
	qs := []string{
		"SET threads=2",
		"SET preserve_insertion_order=true",
		`CREATE MACRO u(i, salt) AS (hash(i, salt) % 1000000)::DOUBLE / 1000000`,
		`CREATE MACRO pick(xs, i, salt) AS xs[1 + (hash(i, salt) % len(xs))::INTEGER]`,
		// Belgian IBAN: 3-digit bank code + 7-digit account, national check
		// (mod 97, 97 for 0), IBAN check digits over BBAN + "BE00" (B=11, E=14).
		`CREATE MACRO bban(i) AS (hash(i, 'acct') % 10000000000)::HUGEINT * 100 + coalesce(nullif((hash(i, 'acct') % 10000000000) % 97, 0), 97)`,
		`CREATE MACRO iban(i) AS 'BE' || lpad((98 - ((bban(i) * 1000000 + 111400) % 97))::VARCHAR, 2, '0') || lpad(bban(i)::VARCHAR, 12, '0')`,
		`CREATE TABLE countries AS SELECT * FROM (VALUES
			('BE', 3.3), ('BE', 3.3), ('BE', 3.3), ('BE', 3.3), ('NL', 3.8), ('NL', 3.8), ('FR', 3.6), ('DE', 3.9), ('LU', 3.4), ('ES', 3.2))
			AS t(code, rate)`,
		fmt.Sprintf(`COPY (SELECT i AS customer_id,
			pick(['Alice','Peter','Marie','Jan','Sophie','Lucas','Emma','Thomas','Laura','David','Elise','Louis','Nora','Arthur','Lena','Victor'], i, 'first')
				|| ' ' || pick(['Martin','Peeters','Janssens','Dubois','De Smet','Jacobs','Maes','Willems','Claes','Wouters','Mertens','Lambert','Dupont','Goossens'], i, 'last') AS name,
			lower(replace(pick(['Alice','Peter','Marie','Jan','Sophie','Lucas','Emma','Thomas','Laura','David','Elise','Louis','Nora','Arthur','Lena','Victor'], i, 'first')
				|| '.' || pick(['Martin','Peeters','Janssens','Dubois','De Smet','Jacobs','Maes','Willems','Claes','Wouters','Mertens','Lambert','Dupont','Goossens'], i, 'last'), ' ', ''))
				|| i || '@mail.example' AS email,
			iban(i) AS iban,
			DATE '1940-01-01' + (hash(i, 'dob') %% 23000)::INTEGER AS date_of_birth,
			pick(['BE','BE','BE','BE','BE','NL','NL','FR','DE','LU'], i, 'country') AS country_code
			FROM range(1, %d + 1) r(i)) TO %s %s`, n.Customers, out("retail/customers/customers.parquet"), pq),
		fmt.Sprintf(`COPY (SELECT i AS account_id, 1 + (i - 1) %% %d AS customer_id,
			pick(['current','current','savings','savings','business'], i, 'product') AS product,
			1 + (hash(i, 'branch') %% 8)::INTEGER AS branch_id,
			DATE '2000-01-01' + (hash(i, 'opened') %% 9000)::INTEGER AS opened_on,
			round(u(i, 'balance') * u(i, 'balance2') * 80000, 2)::DECIMAL(12,2) AS balance_eur
			FROM range(1, %d + 1) r(i)) TO %s %s`, n.Customers, n.Accounts, out("retail/accounts/accounts.parquet"), pq),
		fmt.Sprintf(`COPY (SELECT i AS loan_id, 1 + (hash(i, 'borrower') %% %d)::BIGINT AS customer_id,
			pick(['BE','BE','BE','BE','BE','BE','NL','NL','FR','LU'], i, 'lcountry') AS country_code,
			round(2.6 + u(i, 'rate') * 1.6, 2)::DECIMAL(5,2) AS rate_pct,
			(50000 + (hash(i, 'principal') %% 450000))::BIGINT AS principal_eur,
			pick([15, 20, 20, 25, 25, 30], i, 'term') AS term_years,
			DATE '2012-01-01' + (hash(i, 'start') %% 5000)::INTEGER AS start_date
			FROM range(1, %d + 1) r(i)) TO %s %s`, n.Customers, n.Loans, out("lending/home_loans/loans.parquet"), pq),
		fmt.Sprintf(`COPY (SELECT i AS customer_id, round(u(i, 'pd') * 0.1, 4) AS pd, round(0.1 + u(i, 'lgd') * 0.5, 2) AS lgd,
			(50000 + (hash(i, 'ead') %% 450000))::BIGINT AS ead_eur
			FROM range(1, %d + 1) r(i)) TO %s %s`, n.Customers, out("risk/credit_exposures/exposures.parquet"), pq),
	}
	per := n.Transactions / 12
	for m := int64(1); m <= 12; m++ {
		rows := per
		if m == 12 {
			rows = n.Transactions - 11*per
		}
		// Two hashes per row; the fields take different bits of them.
		qs = append(qs, fmt.Sprintf(`COPY (SELECT %d::BIGINT * 1000000000 + i AS tx_id, a AS account_id, 1 + (a - 1) %% %d AS customer_id,
			make_timestamp(2025, %d, 1 + ((h1 >> 40) %% 28)::BIGINT, ((h1 >> 45) %% 24)::BIGINT, ((h1 >> 50) %% 60)::BIGINT, 0.0) AS booked_at,
			round(1 + pow(((h2 & 1048575)::DOUBLE / 1048576), 3) * 2500, 2)::DECIMAL(10,2) AS amount_eur,
			['card','card','card','transfer','transfer','atm','online'][1 + ((h2 >> 20) %% 7)::INTEGER] AS channel,
			['groceries','fuel','restaurants','travel','utilities','retail','health','salary'][1 + ((h2 >> 24) %% 8)::INTEGER] AS category,
			['BE','BE','BE','BE','BE','BE','NL','FR','DE','LU'][1 + ((h2 >> 28) %% 10)::INTEGER] AS counterparty_country
			FROM (SELECT i, h1, h2, 1 + ((h1 & 1099511627775) %% %d)::BIGINT AS a
				FROM (SELECT i, hash(i, %d) AS h1, hash(i, %d, 'x') AS h2 FROM range(%d) r(i))))
			TO %s %s`, m, n.Customers, m, n.Accounts, m, m, rows,
			out(fmt.Sprintf("payments/transactions/year=2025/month=%02d/transactions.parquet", m)), pq))
	}
	return qs
}

// demoCSVFiles are the small reference tables, as CSV: relative path ->
// content.
func demoCSVFiles() map[string][]byte {
	r := rand.New(rand.NewPCG(42, 2026))
	countries := []struct {
		code, name string
		rate       float64
	}{{"BE", "Belgium", 3.3}, {"NL", "Netherlands", 3.8}, {"FR", "France", 3.6}, {"DE", "Germany", 3.9}, {"ES", "Spain", 3.2}, {"IT", "Italy", 3.7}, {"LU", "Luxembourg", 3.4}, {"IE", "Ireland", 4.1}}
	var m strings.Builder
	m.WriteString("country_code,country,year,avg_rate_pct,volume_eur_m,avg_term_years\n")
	for _, c := range countries {
		for y := 2020; y <= 2025; y++ {
			fmt.Fprintf(&m, "%s,%s,%d,%.2f,%d,%d\n", c.code, c.name, y, c.rate+float64(y-2022)*0.3+r.Float64()*0.2, 500+r.IntN(9500), 20+r.IntN(11))
		}
	}
	var b bytes.Buffer
	b.WriteString("branch_id,city,country_code\n")
	for i, c := range []string{"Brussels,BE", "Antwerp,BE", "Ghent,BE", "Liège,BE", "Amsterdam,NL", "Rotterdam,NL", "Paris,FR", "Luxembourg,LU"} {
		fmt.Fprintf(&b, "%d,%s\n", i+1, c)
	}
	return map[string][]byte{
		"market/mortgages_by_country/mortgages.csv": []byte(m.String()),
		"reference/branches/branches.csv":           b.Bytes(),
	}
}
