package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/catalog"
	"github.com/stewardhq/steward/internal/objectstore"
	fsstore "github.com/stewardhq/steward/internal/objectstore/fs"
)

func newStore(t *testing.T) *fsstore.Store {
	t.Helper()
	s, err := fsstore.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.CreateBucket(context.Background(), "bank"); err != nil {
		t.Fatal(err)
	}
	return s
}

func put(t *testing.T, s objectstore.Store, key string, data []byte) {
	t.Helper()
	if _, err := s.Put(context.Background(), "bank", key, strings.NewReader(string(data)), int64(len(data)), objectstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

// parquet writes rows with DuckDB and returns the file's bytes.
func parquet(t *testing.T, query string) []byte {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := filepath.Join(t.TempDir(), "x.parquet")
	if _, err := db.Exec("COPY (" + query + ") TO " + quote(p) + " (FORMAT parquet)"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const customersCSV = "id,name,email,iban,dob\n1,Alice Martin,alice@example.com,BE68539007547034,1980-05-17\n2,Peter Jansen,peter@example.org,NL91ABNA0417164300,1975-01-02\n3,Marie Dubois,marie@example.net,DE89370400440532013000,1990-12-31\n"

func TestCrawl(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	put(t, s, "retail/customers/part-1.csv", []byte(customersCSV))
	put(t, s, "retail/customers/_SUCCESS", nil)
	put(t, s, "retail/customers/archive/2019.csv", []byte(customersCSV+"4,Old Customer,old@example.com,BE68539007547034,1950-01-01\n"))
	mort := parquet(t, "SELECT 'BE' AS country, 3.1 AS rate, 200000 AS amount UNION ALL SELECT 'NL', 3.5, NULL")
	put(t, s, "risk/mortgages/year=2024/month=01/a.parquet", mort)
	put(t, s, "risk/mortgages/year=2024/month=02/b.parquet", mort)
	put(t, s, "events/raw/e.json", []byte(`{"user":{"id":1,"tags":["a"]},"kind":"click"}`+"\n"+`{"user":{"id":2,"tags":[]},"kind":"view"}`+"\n"))
	put(t, s, "broken/p/bad.parquet", []byte("PAR1 this is not parquet"))
	put(t, s, "mixed/m/good.parquet", mort)
	put(t, s, "mixed/m/bad.parquet", []byte("garbage"))
	put(t, s, "ragged/r/x.csv", []byte("a,b\n1,2\n3,4,5,6\n\xff\xfe,7\n"))
	put(t, s, "empty/e/x.csv", nil)

	c := New(s, t.TempDir(), nil)
	t.Run("csv", func(t *testing.T) {
		inf, err := c.Crawl(ctx, "bank", "retail/customers/")
		if err != nil {
			t.Fatal(err)
		}
		if inf.Format != catalog.FormatCSV || inf.FileCount != 1 || inf.RowCount != 3 || len(inf.Schema) != 5 || len(inf.Problems) != 0 {
			t.Fatalf("%+v", inf)
		}
		if st := inf.Schema[0].Stats; st == nil || st.Min != "1" || st.Max != "3" || st.Nulls != 0 {
			t.Errorf("id stats %+v", st)
		}
		if len(inf.Samples["email"]) != 3 {
			t.Errorf("samples %v", inf.Samples)
		}
	})
	t.Run("partitioned parquet", func(t *testing.T) {
		inf, err := c.Crawl(ctx, "bank", "risk/mortgages/")
		if err != nil {
			t.Fatal(err)
		}
		if inf.Format != catalog.FormatParquet || inf.FileCount != 2 || inf.RowCount != 4 || strings.Join(inf.Partitions, "/") != "year/month" {
			t.Fatalf("%+v", inf)
		}
		var names []string
		for _, c := range inf.Schema {
			names = append(names, c.Name)
		}
		if !strings.Contains(strings.Join(names, ","), "country,rate,amount") || !strings.Contains(strings.Join(names, ","), "year") {
			t.Errorf("columns %v", names)
		}
		for _, c := range inf.Schema {
			if c.Name == "amount" && (c.Stats == nil || c.Stats.Nulls != 2) {
				t.Errorf("amount stats %+v", c.Stats)
			}
		}
	})
	t.Run("nested json", func(t *testing.T) {
		inf, err := c.Crawl(ctx, "bank", "events/raw/")
		if err != nil {
			t.Fatal(err)
		}
		if inf.RowCount != 2 || len(inf.Schema) != 2 || inf.Schema[0].Name != "user" || len(inf.Schema[0].Fields) != 2 {
			t.Fatalf("%+v", inf.Schema)
		}
	})
	for _, tc := range []struct{ prefix, want string }{
		{"broken/p/", "not readable as parquet"},
		{"mixed/m/", "not readable as parquet"},
		{"ragged/r/", "not readable as csv"},
	} {
		t.Run(tc.prefix, func(t *testing.T) {
			inf, err := c.Crawl(ctx, "bank", tc.prefix)
			if err != nil {
				t.Fatal(err)
			}
			if len(inf.Problems) == 0 || !strings.Contains(inf.Problems[0].Message, tc.want) {
				t.Fatalf("problems %+v", inf.Problems)
			}
			if strings.Contains(inf.Problems[0].Message, os.TempDir()+"/steward-crawl") {
				t.Errorf("problem shows a local path: %s", inf.Problems[0].Message)
			}
		})
	}
	// The sweep's listing counts each dataset's files as its crawl does:
	// Hive partitions belong to their dataset, a nested prefix is a
	// dataset of its own, files not in a known format are not counted.
	t.Run("datasets", func(t *testing.T) {
		ls, err := c.Datasets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(ls, func(a, b catalog.Listing) int { return strings.Compare(a.Name, b.Name) })
		var got []string
		for _, l := range ls {
			got = append(got, fmt.Sprintf("%s:%d", l.Name, l.FileCount))
			if l.Namespace != "s3://bank" {
				t.Errorf("%s: namespace %s", l.Name, l.Namespace)
			}
			inf, err := c.Crawl(ctx, "bank", l.Name+"/")
			if err != nil {
				t.Fatal(err)
			}
			if inf.FileCount != l.FileCount || inf.Size != l.Size || !inf.LastModified.Equal(l.LastModified) {
				t.Errorf("%s: listed %+v, crawled %d files, %d bytes, newest %v", l.Name, l, inf.FileCount, inf.Size, inf.LastModified)
			}
		}
		want := "broken/p:1 empty/e:1 events/raw:1 mixed/m:2 ragged/r:1 retail/customers:1 retail/customers/archive:1 risk/mortgages:2"
		if strings.Join(got, " ") != want {
			t.Errorf("datasets %v, want %s", got, want)
		}
	})
}

// Through the catalog: a write through the (notifying) store marks the
// dataset, the crawl infers its schema, the e-mail column is tagged and
// the dataset is at least C3; a later broken file keeps what was known.
func TestCatalogCrawl(t *testing.T) {
	ctx := context.Background()
	objs := newStore(t)
	svc := catalog.NewService(catalogStore(t), nil, New(objs, t.TempDir(), nil), nil)
	gw := catalog.NotifyingStore{Store: objs, N: svc}
	put(t, gw, "retail/customers/2024.csv", []byte(customersCSV))
	svc.CrawlPending(ctx, timeFar)
	d, err := svc.Store.Get(ctx, "s3://bank", "retail/customers")
	if err != nil {
		t.Fatal(err)
	}
	email := d.Column("email")
	if email == nil || !catalog.HasTag(email.Tags, catalog.TagPII) || d.Classification != "C3" || d.RowCount != 3 {
		t.Fatalf("dataset %+v", d)
	}
	if iban := d.Column("iban"); !catalog.HasTag(iban.Tags, catalog.TagPII) {
		t.Errorf("iban %+v", iban)
	}
	if r := svc.Search(catalog.Viewer{User: "alice"}, catalog.Query{Text: "customers email"}); r.Total != 1 {
		t.Errorf("search %+v", r)
	}

	put(t, gw, "retail/customers/2025.csv", []byte("a,b\n1,2\n3,4,5,6\n\xff\xfe,7\n"))
	if _, err := objs.Delete(ctx, "bank", "retail/customers/2024.csv", ""); err != nil {
		t.Fatal(err)
	}
	svc.CrawlPending(ctx, timeFar)
	d2, err := svc.Store.Get(ctx, "s3://bank", "retail/customers")
	if err != nil {
		t.Fatal(err)
	}
	if len(d2.Schema) != 5 || len(d2.Problems) == 0 || d2.Column("email").Stats == nil {
		t.Fatalf("previous knowledge lost or problem missing: %+v", d2)
	}
}

func TestParseType(t *testing.T) {
	for _, tc := range []struct {
		in     string
		fields string
	}{
		{"INTEGER", ""},
		{"STRUCT(id BIGINT, tags VARCHAR[])", "id,tags"},
		{`STRUCT("first name" VARCHAR, addr STRUCT(city VARCHAR, zip VARCHAR))[]`, "first name,addr"},
		{"MAP(VARCHAR, INTEGER)", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			c := ParseType(tc.in)
			var names []string
			for _, f := range c.Fields {
				names = append(names, f.Name)
			}
			if strings.Join(names, ",") != tc.fields || c.Type != tc.in {
				t.Errorf("%+v", c)
			}
		})
	}
}

func FuzzParseType(f *testing.F) {
	for _, s := range []string{"INTEGER", "STRUCT(a INTEGER)", `STRUCT("x""y" STRUCT(b INT[])[])`, "STRUCT(", "STRUCT())", `"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4096 {
			return
		}
		ParseType(s)
	})
}
