package duckdb

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stewardhq/steward/internal/catalog"
)

// countingCrawler is the real crawler, counting its crawls.
type countingCrawler struct {
	*Crawler
	mu      sync.Mutex
	crawled []string
}

func (c *countingCrawler) Crawl(ctx context.Context, bucket, prefix string) (*catalog.Inference, error) {
	c.mu.Lock()
	c.crawled = append(c.crawled, strings.TrimSuffix(prefix, "/"))
	c.mu.Unlock()
	return c.Crawler.Crawl(ctx, bucket, prefix)
}

func (c *countingCrawler) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.crawled
	c.crawled = nil
	slices.Sort(out)
	return out
}

// The periodic sweep over a real store and the real crawler, with files
// written behind the catalog's back (no change notifications): it crawls
// what is new or changed, Hive-partitioned and nested datasets included,
// and nothing else.
func TestSweep(t *testing.T) {
	ctx := context.Background()
	objs := newStore(t)
	cc := &countingCrawler{Crawler: New(objs, t.TempDir(), nil)}
	svc := catalog.NewService(catalogStore(t), nil, cc, nil)

	mort := parquet(t, "SELECT 'BE' AS country, 3.1 AS rate UNION ALL SELECT 'NL', 3.5")
	put(t, objs, "retail/customers/2024.csv", []byte(customersCSV))
	put(t, objs, "retail/customers/archive/2019.csv", []byte(customersCSV))
	put(t, objs, "risk/mortgages/year=2024/month=01/a.parquet", mort)
	put(t, objs, "risk/mortgages/year=2024/month=02/b.parquet", mort)
	put(t, objs, "broken/p/bad.parquet", []byte("PAR1 this is not parquet"))

	sweep := func(t *testing.T, want ...string) {
		t.Helper()
		if _, err := svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		svc.CrawlPending(ctx, timeFar)
		if got := cc.take(); !slices.Equal(got, want) {
			t.Errorf("crawled %v, want %v", got, want)
		}
	}
	get := func(t *testing.T, name string) *catalog.Dataset {
		t.Helper()
		d, err := svc.Store.Get(ctx, "s3://bank", name)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	t.Run("first sweep crawls every dataset", func(t *testing.T) {
		sweep(t, "broken/p", "retail/customers", "retail/customers/archive", "risk/mortgages")
		if d := get(t, "risk/mortgages"); d.FileCount != 2 || strings.Join(d.Partitions, "/") != "year/month" {
			t.Errorf("mortgages %+v", d)
		}
	})
	t.Run("unchanged: only the failed one again", func(t *testing.T) {
		sweep(t, "broken/p")
	})
	t.Run("new partition", func(t *testing.T) {
		put(t, objs, "risk/mortgages/year=2024/month=03/c.parquet", mort)
		sweep(t, "broken/p", "risk/mortgages")
		if d := get(t, "risk/mortgages"); d.FileCount != 3 || d.RowCount != 6 {
			t.Errorf("mortgages %+v", d)
		}
	})
	t.Run("nested file replaced, same size", func(t *testing.T) {
		put(t, objs, "retail/customers/archive/2019.csv", []byte(strings.Replace(customersCSV, "Alice", "Alina", 1)))
		sweep(t, "broken/p", "retail/customers/archive")
	})
	t.Run("file deleted", func(t *testing.T) {
		if _, err := objs.Delete(ctx, "bank", "risk/mortgages/year=2024/month=01/a.parquet", ""); err != nil {
			t.Fatal(err)
		}
		sweep(t, "broken/p", "risk/mortgages")
		if d := get(t, "risk/mortgages"); d.FileCount != 2 {
			t.Errorf("mortgages %+v", d)
		}
	})
	t.Run("every file deleted", func(t *testing.T) {
		if _, err := objs.Delete(ctx, "bank", "retail/customers/2024.csv", ""); err != nil {
			t.Fatal(err)
		}
		sweep(t, "broken/p", "retail/customers")
		if d := get(t, "retail/customers"); d.FileCount != 0 || len(d.Schema) == 0 {
			t.Errorf("customers %+v", d)
		}
		sweep(t, "broken/p")
	})
	t.Run("fixed file", func(t *testing.T) {
		put(t, objs, "broken/p/bad.parquet", mort)
		sweep(t, "broken/p")
		sweep(t)
	})
}
