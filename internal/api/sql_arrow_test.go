package api_test

import (
	"context"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/api"
	"github.com/stewardhq/steward/internal/sqlengine"
)

// decimal stands in for the DuckDB driver's Decimal: an unscaled Value.
type decimal struct {
	Width, Scale uint8
	Value        *big.Int
}

func (d decimal) Float64() float64 { f, _ := new(big.Float).SetInt(d.Value).Float64(); return f }

type interval struct {
	Days   int32 `json:"days"`
	Months int32 `json:"months"`
	Micros int64 `json:"micros"`
}

// typedSQL returns one row of every mapped type, then many rows of one
// column, as the DuckDB driver scans them.
type typedSQL struct {
	rows    int
	failAt  int // if > 0, fail after this many rows
	started chan struct{}
	stopped chan error
}

var when = time.Date(2025, 3, 14, 15, 9, 26, 535_897_000, time.UTC)

func (f *typedSQL) Query(ctx context.Context, r sqlengine.Request, sink sqlengine.RowSink) (*sqlengine.Summary, error) {
	if strings.Contains(r.SQL, "forever") {
		sink.Columns([]sqlengine.Column{{Name: "n", Type: "BIGINT"}})
		sink.Row([]any{int64(1)})
		close(f.started)
		<-ctx.Done() // a long query: only cancellation ends it
		f.stopped <- ctx.Err()
		return nil, ctx.Err()
	}
	if strings.Contains(r.SQL, "many") {
		sink.Columns([]sqlengine.Column{{Name: "n", Type: "BIGINT"}})
		for i := range f.rows {
			if f.failAt > 0 && i == f.failAt {
				return nil, sqlengine.Errorf(steward.ETooLarge, sqlengine.StateLimit, "too many rows")
			}
			if err := sink.Row([]any{int64(i)}); err != nil {
				return nil, err
			}
		}
		return &sqlengine.Summary{Rows: int64(f.rows)}, nil
	}
	cols := []sqlengine.Column{
		{Name: "b", Type: "BOOLEAN"}, {Name: "i8", Type: "TINYINT"}, {Name: "i32", Type: "INTEGER"}, {Name: "i64", Type: "BIGINT"},
		{Name: "u64", Type: "UBIGINT"}, {Name: "f", Type: "DOUBLE"}, {Name: "d", Type: "DECIMAL(10,2)"}, {Name: "h", Type: "HUGEINT"},
		{Name: "s", Type: "VARCHAR"}, {Name: "blob", Type: "BLOB"}, {Name: "day", Type: "DATE"}, {Name: "t", Type: "TIME"},
		{Name: "ts", Type: "TIMESTAMP"}, {Name: "tz", Type: "TIMESTAMPTZ"}, {Name: "iv", Type: "INTERVAL"}, {Name: "l", Type: "INTEGER[]"},
		{Name: "u", Type: "UUID"},
	}
	sink.Columns(cols)
	sink.Row([]any{true, int8(-3), int32(7), int64(1) << 40, uint64(1) << 63, 2.5, decimal{10, 2, big.NewInt(-12345)}, big.NewInt(99),
		"é,\"x", []byte{0, 1}, time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC), time.Date(1, 1, 1, 15, 9, 26, 535_897_000, time.UTC),
		when, when, interval{Days: 2, Months: 1, Micros: 3}, []any{int32(1), int32(2)},
		[]byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0}})
	row := make([]any, len(cols))
	sink.Row(row) // all NULL
	return &sqlengine.Summary{Rows: 2}, nil
}

func arrowServer(t testing.TB, q api.SQLQuerier) *httptest.Server {
	t.Helper()
	a := api.New(api.Deps{Auditor: &memAuditor{}, SQL: q})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.Handler().ServeHTTP(w, r.WithContext(steward.WithPrincipal(r.Context(), principals["alice"])))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func postArrow(t *testing.T, ctx context.Context, srv *httptest.Server, query, sql string, accept bool) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+api.Prefix+"/query"+query, strings.NewReader(`{"sql":"`+sql+`"}`))
	req.Header.Set("Content-Type", "application/json")
	if accept {
		req.Header.Set("Accept", api.ArrowStreamType+", application/json;q=0.5")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestSQLArrow(t *testing.T) {
	t.Run("types", func(t *testing.T) {
		srv := arrowServer(t, &typedSQL{})
		resp := postArrow(t, context.Background(), srv, "?format=arrow", "select types", false)
		defer resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != api.ArrowStreamType {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("%d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
		rd, err := ipc.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Release()
		want := map[string]string{"b": "bool", "i8": "int8", "i32": "int32", "i64": "int64", "u64": "uint64", "f": "float64",
			"d": "decimal(10, 2)", "h": "decimal(38, 0)", "s": "utf8", "blob": "binary", "day": "date32", "t": "time64[us]",
			"ts": "timestamp[us]", "tz": "timestamp[us, tz=UTC]", "iv": "month_day_nano_interval", "l": "utf8", "u": "utf8"}
		for _, f := range rd.Schema().Fields() {
			if got := f.Type.String(); got != want[f.Name] {
				t.Errorf("%s: %s, want %s", f.Name, got, want[f.Name])
			}
		}
		if !rd.Next() {
			t.Fatalf("no batch: %v", rd.Err())
		}
		rec := rd.RecordBatch()
		if rec.NumRows() != 2 {
			t.Fatalf("%d rows", rec.NumRows())
		}
		col := func(name string) arrow.Array {
			idx := rec.Schema().FieldIndices(name)
			return rec.Column(idx[0])
		}
		checks := map[string]string{
			"b": "true", "i8": "-3", "i32": "7", "i64": "1099511627776", "u64": "9223372036854775808", "f": "2.5",
			"d": "-123.45", "h": "99", "s": "é,\"x", "day": "2025-03-14", "t": "15:09:26.535897",
			"ts": "2025-03-14T15:09:26.535897", "l": "[1,2]", "u": "12345678-9abc-def0-1234-56789abcdef0",
		}
		for name, w := range checks {
			c := col(name)
			if got := c.ValueStr(0); got != w {
				t.Errorf("%s = %q, want %q", name, got, w)
			}
			if !c.IsNull(1) {
				t.Errorf("%s: row 2 not NULL", name)
			}
		}
		if b := col("blob").(*array.Binary).Value(0); string(b) != "\x00\x01" {
			t.Errorf("blob %q", b)
		}
		if iv := col("iv").(*array.MonthDayNanoInterval).Value(0); iv != (arrow.MonthDayNanoInterval{Months: 1, Days: 2, Nanoseconds: 3000}) {
			t.Errorf("interval %+v", iv)
		}
		if ts := col("tz").(*array.Timestamp).Value(0); ts.ToTime(arrow.Microsecond) != when {
			t.Errorf("tz %v", ts.ToTime(arrow.Microsecond))
		}
		if rd.Next() || rd.Err() != nil {
			t.Fatalf("extra batch or error: %v", rd.Err())
		}
	})
	t.Run("batches", func(t *testing.T) {
		const n = 150_000
		srv := arrowServer(t, &typedSQL{rows: n})
		resp := postArrow(t, context.Background(), srv, "", "many", true)
		defer resp.Body.Close()
		rd, err := ipc.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Release()
		var got, batches int64
		for rd.Next() {
			rec := rd.RecordBatch()
			c := rec.Column(0).(*array.Int64)
			for i := 0; i < c.Len(); i++ {
				if c.Value(i) != got {
					t.Fatalf("row %d = %d", got, c.Value(i))
				}
				got++
			}
			batches++
		}
		if rd.Err() != nil || got != n || batches != 3 {
			t.Fatalf("%d rows in %d batches, %v", got, batches, rd.Err())
		}
	})
	t.Run("failure after rows is a truncated stream", func(t *testing.T) {
		srv := arrowServer(t, &typedSQL{rows: 200_000, failAt: 100_000})
		resp := postArrow(t, context.Background(), srv, "?format=arrow", "many", false)
		defer resp.Body.Close()
		rd, err := ipc.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Release()
		for rd.Next() {
		}
		if rd.Err() == nil {
			t.Fatal("a failed result read as complete")
		}
	})
	t.Run("empty result has a schema", func(t *testing.T) {
		srv := arrowServer(t, &typedSQL{rows: 0})
		resp := postArrow(t, context.Background(), srv, "?format=arrow", "many", false)
		defer resp.Body.Close()
		rd, err := ipc.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Release()
		if rd.Schema().NumFields() != 1 || rd.Next() || rd.Err() != nil {
			t.Fatalf("schema %v, err %v", rd.Schema(), rd.Err())
		}
	})
}

// TestSQLClientDisconnectCancels: when the HTTP client goes away, the
// query's context is canceled, so the engine stops.
func TestSQLClientDisconnectCancels(t *testing.T) {
	for _, format := range []string{"jsonl", "csv", "arrow"} {
		t.Run(format, func(t *testing.T) {
			q := &typedSQL{started: make(chan struct{}), stopped: make(chan error, 1)}
			srv := arrowServer(t, q)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				// Headers may not be sent before the first flush: the
				// client gives up (cancel) while waiting for them.
				req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+api.Prefix+"/query?format="+format, strings.NewReader(`{"sql":"forever"}`))
				req.Header.Set("Content-Type", "application/json")
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}()
			<-q.started
			cancel()
			select {
			case err := <-q.stopped:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("stopped with %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the query was not canceled when the client disconnected")
			}
		})
	}
}

// FuzzQueryFormat: any Accept header and format parameter gives a result
// in one of the three formats, or a 422 for an unknown format name.
func FuzzQueryFormat(f *testing.F) {
	for _, s := range [][2]string{{api.ArrowStreamType, ""}, {"text/csv;q=0.9, */*", ""}, {"", "arrow"}, {",,;;", "csv"}, {"application/JSONL", "x"}} {
		f.Add(s[0], s[1])
	}
	srv := arrowServer(f, fakeSQL{})
	f.Fuzz(func(t *testing.T, accept, format string) {
		req, err := http.NewRequest("POST", srv.URL+api.Prefix+"/query?format="+url.QueryEscape(format), strings.NewReader(`{"sql":"select 1"}`))
		if err != nil {
			t.Skip()
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header["Accept"] = []string{accept}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Skip() // a header value net/http refuses to send
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		ct := resp.Header.Get("Content-Type")
		switch {
		case resp.StatusCode == 200 && (ct == api.ArrowStreamType || ct == "application/jsonl" || strings.HasPrefix(ct, "text/csv")):
		case resp.StatusCode == 422 && format != "" && format != "arrow" && format != "csv" && format != "jsonl":
		default:
			t.Fatalf("accept %q format %q: %d %s", accept, format, resp.StatusCode, ct)
		}
	})
}
