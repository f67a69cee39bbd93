package pgwire

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stewardhq/steward/internal/sqlengine"
)

// rowsQuerier returns 1000 rows of four columns, without any engine: the
// benchmarks below measure the wire protocol alone.
type rowsQuerier struct{}

var benchDay = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

func (rowsQuerier) Query(_ context.Context, _ sqlengine.Request, sink sqlengine.RowSink) (*sqlengine.Summary, error) {
	if err := sink.Columns([]sqlengine.Column{{Name: "id", Type: "BIGINT"}, {Name: "name", Type: "VARCHAR"},
		{Name: "amount", Type: "DOUBLE"}, {Name: "at", Type: "TIMESTAMP"}}); err != nil {
		return nil, err
	}
	row := make([]any, 4)
	for i := range 1000 {
		row[0], row[1], row[2], row[3] = int64(i), "customer name", float64(i)*1.5, benchDay
		if err := sink.Row(row); err != nil {
			return nil, err
		}
	}
	return &sqlengine.Summary{Rows: 1000}, nil
}

type discardSink struct{ n int }

func (d *discardSink) Columns([]sqlengine.Column) error { return nil }
func (d *discardSink) Row(v []any) error                { d.n += len(v); return nil }

// BenchmarkRows1000 reads a 1000-row result: straight from the Querier
// (the peer: no protocol at all), and through pgx over the simple
// protocol, the extended protocol with a cached statement (binary
// results) and describe-then-execute.
func BenchmarkRows1000(b *testing.B) {
	b.Run("direct", func(b *testing.B) {
		var s discardSink
		for b.Loop() {
			rowsQuerier{}.Query(context.Background(), sqlengine.Request{}, &s)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := NewServer(rowsQuerier{}, verifier(), nil)
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
			var (
				id     int64
				name   string
				amount float64
				at     time.Time
			)
			for b.Loop() {
				rows, err := c.Query(ctx, "SELECT id, name, amount, at FROM t WHERE id > $1", 0)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for rows.Next() {
					if err := rows.Scan(&id, &name, &amount, &at); err != nil {
						b.Fatal(err)
					}
					n++
				}
				if rows.Err() != nil || n != 1000 {
					b.Fatalf("%d rows, %v", n, rows.Err())
				}
			}
		})
	}
}
