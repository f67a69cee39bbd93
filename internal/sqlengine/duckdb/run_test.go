package duckdb_test

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"testing"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/sqlengine"
	"github.com/stewardhq/steward/internal/sqlengine/duckdb"
)

// collectSink keeps a result.
type collectSink struct {
	cols []sqlengine.Column
	rows [][]any
	// stop, if set, is called with each row; its error ends the query.
	stop func(n int) error
}

func (s *collectSink) Columns(cols []sqlengine.Column) error { s.cols = cols; return nil }

func (s *collectSink) Row(v []any) error {
	s.rows = append(s.rows, append([]any(nil), v...))
	if s.stop != nil {
		return s.stop(len(s.rows))
	}
	return nil
}

func newBackend(t *testing.T) *duckdb.Backend {
	t.Helper()
	b := duckdb.New(nil)
	t.Cleanup(func() { b.Close() })
	return b
}

// TestRunValuesAsDatabaseSQL checks that Run hands the sink the values,
// column names and types that database/sql scanning into []any gives.
func TestRunValuesAsDatabaseSQL(t *testing.T) {
	const query = `SELECT * FROM (VALUES
		(1::BIGINT, -2::INTEGER, -3::SMALLINT, -4::TINYINT, 18446744073709551615::UBIGINT, 170141183460469231731687303715884105727::HUGEINT,
		 -12.30::DECIMAL(10,2), 12345678901234567890.123::DECIMAL(38,3), -1.5::DOUBLE, 0.25::FLOAT, true, 'Grüße, 世界 🚀', '\xAA\x00'::BLOB,
		 DATE '2024-02-29', TIME '23:59:59.123456', TIMESTAMP '2024-03-01 12:34:56.789012', TIMESTAMPTZ '2024-03-01 12:34:56+05:30',
		 INTERVAL '1 year 2 months 3 days 04:05:06.5', '12345678-9abc-def0-0123-456789abcdef'::UUID, [1, 2, NULL], {'a': 1, 'b': 'x'},
		 MAP {'k': 1}, '{"j": [1]}'::JSON),
		(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
		(-9223372036854775808, 2147483647, 0, 127, 0, -1, 0.00, -0.001, 'inf'::DOUBLE, 'nan'::FLOAT, false, '', ''::BLOB,
		 DATE '0001-01-01', TIME '00:00:00', TIMESTAMP '1900-01-01 00:00:00', TIMESTAMPTZ '1970-01-01 00:00:00+00',
		 INTERVAL '-1 microsecond', '00000000-0000-0000-0000-000000000000'::UUID, [], {'a': NULL, 'b': NULL}, MAP {}, 'null'::JSON)
	) t(i8, i4, i2, i1, u8, h, d, dw, f8, f4, b, s, blob, day, clock, ts, tstz, iv, u, l, st, m, j)`
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rows, err := db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	cts, err := rows.ColumnTypes()
	if err != nil {
		t.Fatal(err)
	}
	var want [][]any
	for rows.Next() {
		vals := make([]any, len(cts))
		ptrs := make([]any, len(cts))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		want = append(want, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()

	var sink collectSink
	n, err := newBackend(t).Run(context.Background(), &sqlengine.Run{Query: query, Dir: t.TempDir()}, &sink)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 || len(sink.rows) != 3 || len(want) != 3 {
		t.Fatalf("%d rows (sink %d, database/sql %d)", n, len(sink.rows), len(want))
	}
	for i, ct := range cts {
		if c := sink.cols[i]; c.Name != ct.Name() || c.Type != ct.DatabaseTypeName() {
			t.Errorf("column %d: %+v, database/sql %s %s", i, c, ct.Name(), ct.DatabaseTypeName())
		}
	}
	for r := range want {
		for i := range cts {
			t.Run(cts[i].Name(), func(t *testing.T) {
				got, w := sink.rows[r][i], want[r][i]
				if f, ok := w.(float64); ok && f != f {
					if g, ok := got.(float64); !ok || g == g {
						t.Errorf("row %d: %#v, database/sql %#v", r, got, w)
					}
					return
				}
				if f, ok := w.(float32); ok && f != f {
					if g, ok := got.(float32); !ok || g == g {
						t.Errorf("row %d: %#v, database/sql %#v", r, got, w)
					}
					return
				}
				if !reflect.DeepEqual(got, w) {
					t.Errorf("row %d: %#v, database/sql %#v", r, got, w)
				}
			})
		}
	}
}

// TestRunStops checks that a canceled context or a sink error ends a
// long result early, with the canceled SQLSTATE or the sink's own error.
func TestRunStops(t *testing.T) {
	b := newBackend(t)
	const query = "SELECT range AS n FROM range(5000000)"
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		sink := collectSink{stop: func(n int) error {
			if n == 10 {
				cancel()
			}
			return nil
		}}
		_, err := b.Run(ctx, &sqlengine.Run{Query: query, Dir: t.TempDir()}, &sink)
		if sqlengine.SQLState(err) != sqlengine.StateCanceled {
			t.Fatalf("err = %v (%s)", err, sqlengine.SQLState(err))
		}
		if len(sink.rows) > 10+256 {
			t.Errorf("%d rows sent after the cancel", len(sink.rows)-10)
		}
	})
	t.Run("sink error", func(t *testing.T) {
		limit := sqlengine.Errorf(steward.ETooLarge, sqlengine.StateLimit, "too many")
		sink := collectSink{stop: func(n int) error {
			if n == 3 {
				return limit
			}
			return nil
		}}
		n, err := b.Run(context.Background(), &sqlengine.Run{Query: query, Dir: t.TempDir()}, &sink)
		if !errors.Is(err, limit) || n != 2 {
			t.Fatalf("n = %d, err = %v", n, err)
		}
	})
	t.Run("engine error", func(t *testing.T) {
		var sink collectSink
		_, err := b.Run(context.Background(), &sqlengine.Run{Query: "SELECT 1/0::INTEGER, error('boom')", Dir: t.TempDir()}, &sink)
		if err == nil || sqlengine.SQLState(err) == "" {
			t.Fatalf("err = %v", err)
		}
	})
}

// BenchmarkExport reads an export-shaped result (200,000 rows of BIGINT,
// BIGINT, DECIMAL(10,2), VARCHAR from Parquet) through Run and, as the
// peer, through database/sql scanning into []any on a plain DuckDB:
//
//	go test -run XXX -bench Export -count 6 ./internal/sqlengine/duckdb/
func BenchmarkExport(b *testing.B) {
	dir := b.TempDir()
	file := dir + "/tx.parquet"
	db, err := sql.Open("duckdb", "")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`COPY (SELECT i AS tx_id, i % 50000 AS customer_id, ((i * 37) % 200000 - 50000) / 100 :: DECIMAL(10,2) AS amount_eur,
		['card', 'online', 'atm', 'transfer'][i % 4 + 1] AS channel FROM range(200000) r(i)) TO '` + file + `' (FORMAT parquet)`); err != nil {
		b.Fatal(err)
	}
	const query = "SELECT tx_id, customer_id, amount_eur, channel FROM bench.pay.tx"
	b.Run("database-sql", func(b *testing.B) {
		for b.Loop() {
			rows, err := db.Query("SELECT tx_id, customer_id, amount_eur, channel FROM read_parquet('" + file + "')")
			if err != nil {
				b.Fatal(err)
			}
			vals := make([]any, 4)
			ptrs := []any{&vals[0], &vals[1], &vals[2], &vals[3]}
			n := 0
			for rows.Next() {
				if err := rows.Scan(ptrs...); err != nil {
					b.Fatal(err)
				}
				n++
			}
			rows.Close()
			if n != 200000 {
				b.Fatalf("%d rows", n)
			}
		}
	})
	be := duckdb.New(nil)
	defer be.Close()
	r := &sqlengine.Run{Query: query, Dir: dir, Limits: sqlengine.Limits{Threads: 2}, Views: []sqlengine.View{{Catalog: "bench", Schema: "pay", Table: "tx", Format: "parquet",
		Files: []string{file}, Columns: []sqlengine.ViewColumn{{Name: "tx_id", Expr: `"tx_id"`}, {Name: "customer_id", Expr: `"customer_id"`},
			{Name: "amount_eur", Expr: `"amount_eur"`}, {Name: "channel", Expr: `"channel"`}}}}}
	b.Run("Run", func(b *testing.B) {
		for b.Loop() {
			var s countSink
			if _, err := be.Run(context.Background(), r, &s); err != nil {
				b.Fatal(err)
			}
			if s.n != 200000 {
				b.Fatalf("%d rows", s.n)
			}
		}
	})
}

type countSink struct{ n int }

func (s *countSink) Columns([]sqlengine.Column) error { return nil }
func (s *countSink) Row([]any) error                  { s.n++; return nil }
