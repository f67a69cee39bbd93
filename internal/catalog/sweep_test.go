package catalog

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeCrawler is an object store seen through the Crawler interface: the
// files of each dataset, listed by Datasets and summed up by Crawl, which
// it counts per dataset.
type fakeCrawler struct {
	mu      sync.Mutex
	files   map[Key]map[string]fakeFile // dataset -> file name -> file
	broken  map[Key]bool                // Crawl fails for these
	crawled map[Key]int
}

type fakeFile struct {
	size int64
	mod  time.Time
}

var _ Crawler = (*fakeCrawler)(nil)

func newFakeCrawler() *fakeCrawler {
	return &fakeCrawler{files: map[Key]map[string]fakeFile{}, broken: map[Key]bool{}, crawled: map[Key]int{}}
}

func (f *fakeCrawler) put(name, file string, size int64, mod time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := Key{"s3://bank", name}
	if f.files[k] == nil {
		f.files[k] = map[string]fakeFile{}
	}
	f.files[k][file] = fakeFile{size, mod}
}

func (f *fakeCrawler) remove(name, file string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := Key{"s3://bank", name}
	delete(f.files[k], file)
	if len(f.files[k]) == 0 {
		delete(f.files, k)
	}
}

func (f *fakeCrawler) sum(k Key) Listing {
	l := Listing{Key: k}
	for _, fl := range f.files[k] {
		l.FileCount++
		l.Size += fl.size
		if fl.mod.After(l.LastModified) {
			l.LastModified = fl.mod
		}
	}
	return l
}

func (f *fakeCrawler) Datasets(context.Context) ([]Listing, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Listing
	for k := range f.files {
		out = append(out, f.sum(k))
	}
	return out, nil
}

func (f *fakeCrawler) Crawl(_ context.Context, bucket, prefix string) (*Inference, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := Key{"s3://" + bucket, strings.TrimSuffix(prefix, "/")}
	f.crawled[k]++
	if f.broken[k] {
		return nil, errors.New("store unavailable")
	}
	l := f.sum(k)
	inf := &Inference{Format: FormatCSV, FileCount: l.FileCount, Size: l.Size, LastModified: l.LastModified, RowCount: l.FileCount}
	if l.FileCount > 0 {
		inf.Schema = []Column{{Name: "id", Type: "BIGINT"}}
	}
	return inf, nil
}

// crawls returns the datasets crawled since the last call, sorted.
func (f *fakeCrawler) crawls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k, n := range f.crawled {
		for range n {
			out = append(out, k.Name)
		}
	}
	f.crawled = map[Key]int{}
	slices.Sort(out)
	return out
}

func newSweepService(t *testing.T) (*Service, *fakeCrawler) {
	t.Helper()
	s := newTestService(t, nil)
	f := newFakeCrawler()
	s.Crawler = f
	return s, f
}

// sweepAndCrawl runs one sweep and crawls what it marked, returning the
// datasets crawled.
func sweepAndCrawl(t *testing.T, s *Service, f *fakeCrawler) []string {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	s.CrawlPending(ctx, time.Now().Add(time.Hour))
	return f.crawls()
}

func TestSweepCrawlsOnlyChanged(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, tc := range []struct {
		name   string
		change func(f *fakeCrawler)
		want   []string // crawled by the second sweep
	}{
		{"unchanged", func(*fakeCrawler) {}, nil},
		{"file added", func(f *fakeCrawler) { f.put("risk/loans", "year=2024/c.csv", 10, t0) }, []string{"risk/loans"}},
		{"size changed", func(f *fakeCrawler) { f.put("retail/customers", "a.csv", 101, t0) }, []string{"retail/customers"}},
		{"same size, newer file", func(f *fakeCrawler) {
			f.put("retail/customers", "a.csv", 100, time.Now().Add(time.Minute))
		}, []string{"retail/customers"}},
		{"file deleted", func(f *fakeCrawler) { f.remove("risk/loans", "year=2024/b.csv") }, []string{"risk/loans"}},
		{"new dataset", func(f *fakeCrawler) { f.put("retail/accounts", "x.csv", 5, t0) }, []string{"retail/accounts"}},
		{"every file deleted", func(f *fakeCrawler) {
			f.remove("risk/loans", "year=2024/a.csv")
			f.remove("risk/loans", "year=2024/b.csv")
		}, []string{"risk/loans"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, f := newSweepService(t)
			f.put("retail/customers", "a.csv", 100, t0)
			f.put("risk/loans", "year=2024/a.csv", 200, t0)
			f.put("risk/loans", "year=2024/b.csv", 300, t0.Add(time.Second))
			if got := sweepAndCrawl(t, s, f); !slices.Equal(got, []string{"retail/customers", "risk/loans"}) {
				t.Fatalf("first sweep crawled %v, want every dataset", got)
			}
			tc.change(f)
			if got := sweepAndCrawl(t, s, f); !slices.Equal(got, tc.want) {
				t.Errorf("second sweep crawled %v, want %v", got, tc.want)
			}
			if got := sweepAndCrawl(t, s, f); len(got) != 0 {
				t.Errorf("a sweep after the re-crawl crawled %v, want nothing", got)
			}
		})
	}
}

func TestSweepCatalogState(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)

	t.Run("registered, never crawled", func(t *testing.T) {
		s, f := newSweepService(t)
		f.put("retail/customers", "a.csv", 100, t0)
		// Registered with matching counts but never crawled.
		register(t, s, Dataset{Namespace: "s3://bank", Name: "retail/customers", Size: 100, FileCount: 1})
		if got := sweepAndCrawl(t, s, f); !slices.Equal(got, []string{"retail/customers"}) {
			t.Errorf("crawled %v", got)
		}
	})

	t.Run("last crawl failed", func(t *testing.T) {
		s, f := newSweepService(t)
		f.put("retail/customers", "a.csv", 100, t0)
		sweepAndCrawl(t, s, f)
		f.broken[Key{"s3://bank", "retail/customers"}] = true
		if _, err := s.Crawl(ctx, "s3://bank", "retail/customers"); err == nil {
			t.Fatal("the broken crawl succeeded")
		}
		f.crawls()
		delete(f.broken, Key{"s3://bank", "retail/customers"})
		if got := sweepAndCrawl(t, s, f); !slices.Equal(got, []string{"retail/customers"}) {
			t.Errorf("after a failed crawl the sweep crawled %v", got)
		}
		if got := sweepAndCrawl(t, s, f); len(got) != 0 {
			t.Errorf("after a good crawl the sweep crawled %v", got)
		}
	})

	t.Run("files gone", func(t *testing.T) {
		s, f := newSweepService(t)
		f.put("retail/customers", "a.csv", 100, t0)
		sweepAndCrawl(t, s, f)
		f.remove("retail/customers", "a.csv")
		if got := sweepAndCrawl(t, s, f); !slices.Equal(got, []string{"retail/customers"}) {
			t.Fatalf("crawled %v", got)
		}
		d, err := s.Store.Get(ctx, "s3://bank", "retail/customers")
		if err != nil {
			t.Fatal(err)
		}
		if d.FileCount != 0 || d.Size != 0 || len(d.Problems) == 0 || !strings.Contains(d.Problems[len(d.Problems)-1].Message, "no data files") {
			t.Errorf("after the files went: %+v", d)
		}
		// Recorded once; later sweeps leave it alone until files return.
		if got := sweepAndCrawl(t, s, f); len(got) != 0 {
			t.Errorf("crawled again %v", got)
		}
		f.put("retail/customers", "b.csv", 7, t0)
		if got := sweepAndCrawl(t, s, f); !slices.Equal(got, []string{"retail/customers"}) {
			t.Errorf("files back: crawled %v", got)
		}
	})

	t.Run("other namespaces", func(t *testing.T) {
		s, f := newSweepService(t)
		register(t, s, Dataset{Namespace: "postgres://db", Name: "public.t", FileCount: 3})
		if got := sweepAndCrawl(t, s, f); len(got) != 0 {
			t.Errorf("crawled %v", got)
		}
	})

	t.Run("no crawler", func(t *testing.T) {
		s := newTestService(t, nil)
		if _, err := s.Sweep(ctx); err == nil {
			t.Error("a sweep without a crawler succeeded")
		}
	})
}
