package server

// Catalog wiring (internal/catalog, issue 5), kept apart from server.go:
// the catalog service with its search index, the DuckDB crawler, the hook
// that lets S3 gateway writes mark datasets changed, and the demo
// datasets.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/catalog"
	catalogduckdb "github.com/stewardhq/steward/internal/catalog/duckdb"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/objectstore"
)

type catalogParts struct {
	svc *catalog.Service
}

// wireCatalog builds the catalog over the metastore and the object store
// and loads its search index. Call after the object store is open.
func (s *Server) wireCatalog(ctx context.Context) error {
	tmp := filepath.Join(s.cfg.DataDir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return &config.SettingError{Key: "data_dir", Msg: "catalog: " + err.Error()}
	}
	crawler := catalogduckdb.New(s.objects, tmp, s.log.With("component", "crawler"))
	s.cat.svc = catalog.NewService(catalog.NewStore(s.store), s.engine, crawler, s.log.With("component", "catalog"))
	if err := s.cat.svc.Index.Refresh(ctx); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	return nil
}

// gatewayStore is the object store the S3 gateway writes through: every
// successful write or delete marks its dataset changed for the crawler.
func (s *Server) gatewayStore() objectstore.Store {
	return catalog.NotifyingStore{Store: s.objects, N: s.cat.svc}
}

// runCatalog runs the index refresh and the crawl worker until ctx ends.
func (s *Server) runCatalog(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.cat.svc.Run(ctx, catalog.CrawlOptions{Debounce: time.Second, Poll: 250 * time.Millisecond})
	}()
}

// Catalog is the catalog service, for components that look datasets up.
func (s *Server) Catalog() *catalog.Service { return s.cat.svc }

// demoDatasets describe the demo bank's data. bob owns the mortgage data;
// the credit exposures are C4 (alice cannot discover them).
var demoDatasets = []catalog.Dataset{
	{Namespace: "s3://mortgages", Name: "market/mortgages_by_country", Owners: []string{"bob"}, Stewards: []string{"group:mortgages"}, Classification: "C2",
		Description: "Mortgage market by country: average rates, volumes and terms per year for Belgium, the Netherlands, France, Germany, Spain, Italy and more. Answers how competitive our Belgian mortgages are.",
		Tags:        []catalog.Tag{{Name: "mortgages"}, {Name: "market-data"}}},
	{Namespace: "s3://mortgages", Name: "risk/credit_exposures", Owners: []string{"bob"}, Classification: "C4",
		Description: "Credit risk exposures per mortgage borrower: probability of default, loss given default, exposure at default. Restricted.",
		Tags:        []catalog.Tag{{Name: "risk"}}},
	{Namespace: "s3://mortgages", Name: "retail/customers", Owners: []string{"bob"}, Classification: "C2",
		Description: "Retail customers: name, e-mail, IBAN, date of birth and country."},
	{Namespace: "s3://mortgages", Name: "payments/transactions", Owners: []string{"bob"}, Classification: "C3",
		Description: "Card and transfer transactions of retail customers."},
	{Namespace: "s3://public", Name: "reference/branches", Owners: []string{"carol"}, Classification: "C1",
		Description: "The bank's branches with their city and country."},
}

// seedCatalogDemo writes the demo bank's files (deterministic synthetic
// CSV) through the gateway's store and registers the datasets, once; the
// crawl worker infers their schemas and tags a moment after start.
func (s *Server) seedCatalogDemo(ctx context.Context) error {
	svc := s.cat.svc
	root := catalog.Viewer{User: "steward", Admin: true}
	files := demoFiles()
	for _, d := range demoDatasets {
		if _, err := svc.Store.Get(ctx, d.Namespace, d.Name); err == nil {
			continue
		} else if steward.KindOf(err) != steward.ENotFound {
			return err
		}
		bucket, _ := catalog.BucketOf(d.Namespace)
		if err := s.objects.CreateBucket(ctx, bucket); err != nil && steward.KindOf(err) != steward.EConflict {
			return err
		}
		for key, data := range files[d.Name] {
			if _, err := s.gatewayStore().Put(ctx, bucket, d.Name+"/"+key, bytes.NewReader(data), int64(len(data)), objectstore.PutOptions{ContentType: "text/csv"}); err != nil {
				return err
			}
		}
		d := d
		if _, err := svc.Register(ctx, root, &d); err != nil {
			return err
		}
	}
	return nil
}

// demoFiles generates the demo bank deterministically: dataset name ->
// relative key -> CSV.
func demoFiles() map[string]map[string][]byte {
	r := rand.New(rand.NewPCG(42, 2026))
	countries := []struct {
		code, name string
		rate       float64
	}{{"BE", "Belgium", 3.3}, {"NL", "Netherlands", 3.8}, {"FR", "France", 3.6}, {"DE", "Germany", 3.9}, {"ES", "Spain", 3.2}, {"IT", "Italy", 3.7}, {"LU", "Luxembourg", 3.4}, {"IE", "Ireland", 4.1}}
	out := map[string]map[string][]byte{}

	var m strings.Builder
	m.WriteString("country_code,country,year,avg_rate_pct,volume_eur_m,avg_term_years\n")
	for _, c := range countries {
		for y := 2020; y <= 2025; y++ {
			fmt.Fprintf(&m, "%s,%s,%d,%.2f,%d,%d\n", c.code, c.name, y, c.rate+float64(y-2022)*0.3+r.Float64()*0.2, 500+r.IntN(9500), 20+r.IntN(11))
		}
	}
	out["market/mortgages_by_country"] = map[string][]byte{"mortgages.csv": []byte(m.String())}

	first := []string{"Alice", "Peter", "Marie", "Jan", "Sophie", "Lucas", "Emma", "Thomas", "Laura", "David"}
	last := []string{"Martin", "Peeters", "Janssens", "Dubois", "De Smet", "Jacobs", "Maes", "Willems", "Claes", "Wouters"}
	var cu, ex strings.Builder
	cu.WriteString("customer_id,name,email,iban,date_of_birth,country_code\n")
	ex.WriteString("customer_id,pd,lgd,ead_eur\n")
	for i := 1; i <= 200; i++ {
		f, l := first[r.IntN(len(first))], last[r.IntN(len(last))]
		email := strings.ToLower(f+"."+strings.ReplaceAll(l, " ", "")) + fmt.Sprintf("%d@mail.example", i)
		fmt.Fprintf(&cu, "%d,%s %s,%s,%s,%d-%02d-%02d,%s\n", i, f, l, email, belgianIBAN(r), 1940+r.IntN(65), 1+r.IntN(12), 1+r.IntN(28), countries[r.IntN(len(countries))].code)
		fmt.Fprintf(&ex, "%d,%.4f,%.2f,%d\n", i, r.Float64()*0.1, 0.1+r.Float64()*0.5, 50000+r.IntN(450000))
	}
	out["retail/customers"] = map[string][]byte{"customers.csv": []byte(cu.String())}
	out["risk/credit_exposures"] = map[string][]byte{"exposures.csv": []byte(ex.String())}

	tx := map[string][]byte{}
	for month := 1; month <= 3; month++ {
		var t strings.Builder
		t.WriteString("tx_id,customer_id,booked_at,amount_eur,channel\n")
		for i := 0; i < 2000; i++ {
			fmt.Fprintf(&t, "%d%05d,%d,2025-%02d-%02d,%.2f,%s\n", month, i, 1+r.IntN(200), month, 1+r.IntN(28), r.Float64()*500, []string{"card", "transfer", "atm"}[r.IntN(3)])
		}
		tx[fmt.Sprintf("year=2025/month=%02d/transactions.csv", month)] = []byte(t.String())
	}
	out["payments/transactions"] = tx

	var b strings.Builder
	b.WriteString("branch_id,city,country_code\n")
	for i, c := range []string{"Brussels,BE", "Antwerp,BE", "Ghent,BE", "Liège,BE", "Amsterdam,NL", "Rotterdam,NL", "Paris,FR", "Luxembourg,LU"} {
		fmt.Fprintf(&b, "%d,%s\n", i+1, c)
	}
	out["reference/branches"] = map[string][]byte{"branches.csv": []byte(b.String())}
	return out
}

// belgianIBAN returns a valid Belgian IBAN (bank code, account, national
// check mod 97, IBAN check digits).
func belgianIBAN(r *rand.Rand) string {
	acct := int64(r.IntN(1000)*10000000 + r.IntN(10000000)) // 10 digits
	check := acct % 97
	if check == 0 {
		check = 97
	}
	bban := fmt.Sprintf("%010d%02d", acct, check)
	// Check digits: 98 - (BBAN + "BE00" as digits) mod 97; B=11, E=14.
	n := bban + "111400"
	rem := 0
	for _, c := range n {
		rem = (rem*10 + int(c-'0')) % 97
	}
	return fmt.Sprintf("BE%02d%s", 98-rem, bban)
}
