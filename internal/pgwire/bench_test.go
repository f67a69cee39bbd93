package pgwire

import (
	"context"
	"math/big"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stewardhq/steward/internal/sqlengine"
)

// rowsQuerier returns n rows of cols made by fill, without any engine: the
// benchmarks below measure the wire protocol alone.
type rowsQuerier struct {
	cols []sqlengine.Column
	n    int
	fill func(i int, row []any)
}

var benchDay = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// mixed is four columns of common types, 1000 rows.
var mixed = rowsQuerier{
	cols: []sqlengine.Column{{Name: "id", Type: "BIGINT"}, {Name: "name", Type: "VARCHAR"},
		{Name: "amount", Type: "DOUBLE"}, {Name: "at", Type: "TIMESTAMP"}},
	n: 1000,
	fill: func(i int, row []any) {
		row[0], row[1], row[2], row[3] = int64(i), "customer name", float64(i)*1.5, benchDay
	},
}

// benchDecimal stands in for the DuckDB driver's Decimal (same fields,
// same String).
type benchDecimal struct {
	Width uint8
	Scale uint8
	Value *big.Int
}

func (d benchDecimal) String() string {
	s := d.Value.String()
	for len(s) <= int(d.Scale) {
		s = "0" + s
	}
	return s[:len(s)-int(d.Scale)] + "." + s[len(s)-int(d.Scale):]
}

// export is the shape of sqlbench's "export 5%" query (tx_id,
// customer_id, amount_eur DECIMAL(10,2), channel), 10,000 rows, with the
// Go values the DuckDB driver returns.
var export = rowsQuerier{
	cols: []sqlengine.Column{{Name: "tx_id", Type: "BIGINT"}, {Name: "customer_id", Type: "BIGINT"},
		{Name: "amount_eur", Type: "DECIMAL(10,2)"}, {Name: "channel", Type: "VARCHAR"}},
	n: 10000,
	fill: func(i int, row []any) {
		row[0], row[1] = int64(i)*20, int64(i%50000)
		row[2] = benchDecimal{10, 2, big.NewInt(int64(i*37%200000) - 50000)}
		row[3] = [...]string{"card", "online", "atm", "transfer"}[i%4]
	},
}

func (q rowsQuerier) Query(_ context.Context, _ sqlengine.Request, sink sqlengine.RowSink) (*sqlengine.Summary, error) {
	if err := sink.Columns(q.cols); err != nil {
		return nil, err
	}
	row := make([]any, len(q.cols))
	for i := range q.n {
		q.fill(i, row)
		if err := sink.Row(row); err != nil {
			return nil, err
		}
	}
	return &sqlengine.Summary{Rows: int64(q.n)}, nil
}

type discardSink struct{ n int }

func (d *discardSink) Columns([]sqlengine.Column) error { return nil }
func (d *discardSink) Row(v []any) error                { d.n += len(v); return nil }

// BenchmarkRows1000 reads a 1000-row result: straight from the Querier
// (the peer: no protocol at all), and through pgx over the simple
// protocol, the extended protocol with a cached statement (binary
// results) and describe-then-execute.
func BenchmarkRows1000(b *testing.B) { benchRows(b, mixed) }

// BenchmarkExport10k reads an export-shaped 10,000-row result the same
// ways (go test -bench Export10k -count 6 ./internal/pgwire/).
func BenchmarkExport10k(b *testing.B) { benchRows(b, export) }

func benchRows(b *testing.B, q rowsQuerier) {
	b.Run("direct", func(b *testing.B) {
		var s discardSink
		cpu0 := cpuTime()
		for b.Loop() {
			q.Query(context.Background(), sqlengine.Request{}, &s)
		}
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := NewServer(q, verifier(), nil)
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeDescribeExec} {
		b.Run(mode.String(), func(b *testing.B) {
			cfg, err := pgx.ParseConfig(connString(ln.Addr().String(), "alice", "tok-alice"))
			if err != nil {
				b.Fatal(err)
			}
			cfg.DefaultQueryExecMode = mode
			c, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close(ctx)
			// CPU time of the whole process (server and client) per
			// query: steadier than wall time on a shared machine.
			cpu0 := cpuTime()
			for b.Loop() {
				// Raw values, as sqlbench reads them: the client's own
				// decoding is not what is measured.
				rows, err := c.Query(ctx, "SELECT * FROM t WHERE id > $1", 0)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for rows.Next() {
					rows.RawValues()
					n++
				}
				if rows.Err() != nil || n != q.n {
					b.Fatalf("%d rows, %v", n, rows.Err())
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkEncodeExport encodes the export rows to DataRow bytes, without
// a connection.
func BenchmarkEncodeExport(b *testing.B) {
	for _, format := range []int16{0, 1} {
		b.Run("format="+strconv.Itoa(int(format)), func(b *testing.B) {
			var s encodeSink
			s.format = format
			for b.Loop() {
				export.Query(context.Background(), sqlengine.Request{}, &s)
			}
		})
	}
}

// encodeSink encodes each row as a DataRow and drops it.
type encodeSink struct {
	format int16
	enc    *encoder
	buf    []byte
	n      int
}

func (s *encodeSink) Columns(cols []sqlengine.Column) error {
	s.enc = &encoder{fields: fields(cols, []int16{s.format}), types: duckTypes(cols), loc: time.UTC}
	return nil
}

func (s *encodeSink) Row(v []any) error {
	b, err := s.enc.appendRow(s.buf[:0], v)
	if err != nil {
		return err
	}
	s.buf = b
	s.n += len(b)
	return nil
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
