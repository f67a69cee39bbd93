package pgwire

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/stewardhq/steward/internal/sqlengine"
)

// testInterval has the shape of the DuckDB driver's Interval.
type testInterval struct {
	Days   int32
	Months int32
	Micros int64
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("no time zone data for %s: %v", name, err)
	}
	return l
}

// encodeOne encodes v as one column of DuckDB type typ in format through
// the row encoder and returns the value's bytes (nil for NULL).
func encodeOne(t *testing.T, v any, typ string, format int16, loc *time.Location) ([]byte, error) {
	t.Helper()
	cols := []sqlengine.Column{{Name: "c", Type: typ}}
	e := &encoder{fields: fields(cols, []int16{format}), types: duckTypes(cols), loc: loc}
	prefix := []byte("prefix")
	b, err := e.appendRow(prefix, []any{v})
	if err != nil {
		if string(b) != "prefix" {
			t.Errorf("a failed row left %q in the buffer", b[len(prefix):])
		}
		return nil, err
	}
	var dr pgproto3.DataRow
	if b[6] != 'D' || int(binary.BigEndian.Uint32(b[7:])) != len(b)-7 {
		t.Fatalf("bad DataRow framing % x", b[6:])
	}
	if err := dr.Decode(b[11:]); err != nil {
		t.Fatal(err)
	}
	if len(dr.Values) != 1 {
		t.Fatalf("%d values", len(dr.Values))
	}
	return dr.Values[0], nil
}

// TestEncodeMatchesReference checks the row encoder against the
// value-at-a-time encoder (encodeValue, TextValue) for every value where
// the two agree by design.
func TestEncodeMatchesReference(t *testing.T) {
	uuid := []byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	ams := mustLoc(t, "Europe/Amsterdam")
	ny := mustLoc(t, "America/New_York")
	ts := time.Date(2024, 3, 1, 12, 34, 56, 789012345, time.UTC)
	for _, tc := range []struct {
		v   any
		typ string
	}{
		{int64(0), "BIGINT"}, {int64(-9223372036854775808), "BIGINT"}, {int64(9223372036854775807), "BIGINT"},
		{int32(-42), "INTEGER"}, {int16(-32768), "SMALLINT"}, {int8(-128), "TINYINT"},
		{uint8(255), "UTINYINT"}, {uint16(65535), "USMALLINT"}, {uint32(4294967295), "UINTEGER"},
		{uint64(18446744073709551615), "UBIGINT"}, {int(7), "BIGINT"},
		{big.NewInt(-170141183460469231), "HUGEINT"},
		{new(big.Int).Lsh(big.NewInt(1), 100), "HUGEINT"},
		{1.5, "DOUBLE"}, {-0.1, "DOUBLE"}, {1e20, "DOUBLE"}, {1e-7, "DOUBLE"}, {123456789.125, "DOUBLE"},
		{math.Copysign(0, -1), "DOUBLE"}, {math.NaN(), "DOUBLE"}, {float32(0.1), "FLOAT"}, {float32(-3.5), "FLOAT"},
		{true, "BOOLEAN"}, {false, "BOOLEAN"},
		{"", "VARCHAR"}, {"plain", "VARCHAR"}, {"Grüße, 世界 🚀", "VARCHAR"}, {"tab\tnew\nline", "VARCHAR"},
		{`{"a": [1, 2]}`, "JSON"},
		{[]byte{}, "BLOB"}, {[]byte{0, 1, 0xfe, 0xff}, "BLOB"}, {uuid, "UUID"},
		{time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "DATE"},
		{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), "DATE"},
		{time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC), "DATE"},
		{time.Date(1970, 1, 1, 23, 59, 59, 999999000, time.UTC), "TIME"},
		{time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), "TIME"},
		{time.Date(1970, 1, 1, 8, 5, 3, 500000000, time.UTC), "TIME"},
		{ts, "TIMESTAMP"}, {ts.Truncate(time.Second), "TIMESTAMP"}, {ts.Truncate(time.Millisecond), "TIMESTAMP"},
		{time.Date(1900, 6, 1, 0, 0, 0, 1000, time.UTC), "TIMESTAMP"}, {time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), "TIMESTAMP"},
		{ts, "TIMESTAMPTZ"}, {ts.In(ams), "TIMESTAMPTZ"}, {ts.In(ny), "TIMESTAMP WITH TIME ZONE"},
		{ts, "TIMESTAMP_NS"},
		{testInterval{Days: 3, Months: 14, Micros: 4*3600e6 + 5*60e6 + 6.5e6}, "INTERVAL"},
		{testInterval{Months: -1}, "INTERVAL"}, {testInterval{}, "INTERVAL"}, {testInterval{Micros: -1}, "INTERVAL"},
		{[]any{int64(1), "a"}, "INTEGER[]"}, {map[string]any{"k": int64(1)}, "STRUCT(k INTEGER)"},
	} {
		for _, loc := range []*time.Location{nil, time.UTC, ams, ny} {
			for _, format := range []int16{0, 1} {
				name := fmt.Sprintf("%s/%T(%v)/%v/%d", tc.typ, tc.v, tc.v, loc, format)
				t.Run(name, func(t *testing.T) {
					oid, _ := TypeOID(tc.typ)
					want, wantErr := encodeValue(tc.v, strings.ToUpper(tc.typ), oid, format, loc)
					got, err := encodeOne(t, tc.v, tc.typ, format, loc)
					if (err != nil) != (wantErr != nil) {
						t.Fatalf("error %v, reference %v", err, wantErr)
					}
					if string(got) != string(want) {
						t.Errorf("got %q, reference %q", got, want)
					}
				})
			}
		}
	}
}

// TestEncodePostgresText checks values against the text PostgreSQL sends
// where the reference encoder did not: numeric keeps its scale, infinite
// floats are spelt out, time zones off the hour keep their minutes.
func TestEncodePostgresText(t *testing.T) {
	kolkata := mustLoc(t, "Asia/Kolkata")
	ams := mustLoc(t, "Europe/Amsterdam")
	st := mustLoc(t, "America/St_Johns")
	dec := func(unscaled int64, scale uint8) benchDecimal { return benchDecimal{18, scale, big.NewInt(unscaled)} }
	huge, _ := new(big.Int).SetString("-123456789012345678901234567890", 10)
	ts := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		v    any
		typ  string
		loc  *time.Location
		want string
	}{
		{"decimal", dec(1230, 2), "DECIMAL(10,2)", nil, "12.30"},
		{"decimal negative", dec(-5, 2), "DECIMAL(10,2)", nil, "-0.05"},
		{"decimal zero", dec(0, 2), "DECIMAL(10,2)", nil, "0.00"},
		{"decimal scale 0", dec(-42, 0), "DECIMAL(18,0)", nil, "-42"},
		{"decimal scale 4", dec(10000, 4), "DECIMAL(18,4)", nil, "1.0000"},
		{"decimal min int64", dec(math.MinInt64, 3), "DECIMAL(38,3)", nil, "-9223372036854775.808"},
		{"decimal wide", benchDecimal{38, 10, huge}, "DECIMAL(38,10)", nil, "-12345678901234567890.1234567890"},
		{"infinity", math.Inf(1), "DOUBLE", nil, "Infinity"},
		{"minus infinity", math.Inf(-1), "DOUBLE", nil, "-Infinity"},
		{"float infinity", float32(math.Inf(-1)), "FLOAT", nil, "-Infinity"},
		{"timestamptz utc", ts, "TIMESTAMPTZ", time.UTC, "2024-03-01 12:00:00+00"},
		{"timestamptz half hour", ts, "TIMESTAMPTZ", kolkata, "2024-03-01 17:30:00+05:30"},
		{"timestamptz negative half hour", ts.Add(1500 * time.Microsecond), "TIMESTAMPTZ", st, "2024-03-01 08:30:00.0015-03:30"},
		{"timestamptz seconds offset", time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), "TIMESTAMPTZ", ams, "1900-01-01 00:19:32+00:19:32"},
		{"timestamp micros", ts.Add(time.Microsecond), "TIMESTAMP", nil, "2024-03-01 12:00:00.000001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := encodeOne(t, tc.v, tc.typ, 0, tc.loc)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestEncodeBinary decodes binary values the way a client does (pgx's
// pgtype) and checks what comes out.
func TestEncodeBinary(t *testing.T) {
	m := pgtype.NewMap()
	ts := time.Date(2024, 3, 1, 12, 34, 56, 789012000, time.UTC)
	kolkata := mustLoc(t, "Asia/Kolkata")
	for _, tc := range []struct {
		name string
		v    any
		typ  string
		loc  *time.Location
		want string // fmt.Sprint of the decoded value
	}{
		{"bigint", int64(-9223372036854775808), "BIGINT", nil, "-9223372036854775808"},
		{"integer", int32(-7), "INTEGER", nil, "-7"},
		{"smallint", int8(-3), "TINYINT", nil, "-3"},
		{"double", -2.25, "DOUBLE", nil, "-2.25"},
		{"real", float32(1.5), "FLOAT", nil, "1.5"},
		{"bool", true, "BOOLEAN", nil, "true"},
		{"text", "Grüße", "VARCHAR", nil, "Grüße"},
		{"bytea", []byte{0, 0xff}, "BLOB", nil, "[0 255]"},
		{"date", time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC), "DATE", nil, "1999-12-31 00:00:00 +0000 UTC"},
		{"timestamp", ts, "TIMESTAMP", nil, "2024-03-01 12:34:56.789012 +0000 UTC"},
		{"timestamptz", ts, "TIMESTAMPTZ", kolkata, "2024-03-01 12:34:56.789012 +0000 UTC"},
		{"numeric", benchDecimal{10, 2, big.NewInt(-1230)}, "DECIMAL(10,2)", nil, "-12.30"},
		{"interval", testInterval{Days: 3, Months: 14, Micros: 5}, "INTERVAL", nil, "1 year 2 mons 3 days 00:00:00.000005"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := encodeOne(t, tc.v, tc.typ, 1, tc.loc)
			if err != nil {
				t.Fatal(err)
			}
			oid, _ := TypeOID(tc.typ)
			var got string
			switch oid {
			case oidNumeric:
				var n pgtype.Numeric
				if err := m.Scan(oid, 1, b, &n); err != nil {
					t.Fatal(err)
				}
				v, _ := n.Value()
				got = fmt.Sprint(v)
			case oidInterval:
				var iv pgtype.Interval
				if err := m.Scan(oid, 1, b, &iv); err != nil {
					t.Fatal(err)
				}
				got = intervalText(iv.Months, iv.Days, iv.Microseconds)
			case oidTimestamp, oidTimestamptz, oidDate:
				var tm time.Time
				if err := m.Scan(oid, 1, b, &tm); err != nil {
					t.Fatal(err)
				}
				got = tm.UTC().String()
			default:
				var v any
				if err := m.Scan(oid, 1, b, &v); err != nil {
					t.Fatal(err)
				}
				got = fmt.Sprint(v)
			}
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestEncodeNumericZero checks that a zero numeric keeps its scale in
// binary (PostgreSQL sends no digits, weight 0, dscale 2 for 0.00).
func TestEncodeNumericZero(t *testing.T) {
	b, err := encodeOne(t, benchDecimal{10, 2, big.NewInt(0)}, "DECIMAL(10,2)", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0, 0, 0, 0, 0, 0, 0, 2}; string(b) != string(want) {
		t.Errorf("got % x, want % x", b, want)
	}
}

func TestEncodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    any
		typ  string
	}{
		{"smallint out of range", int64(40000), "SMALLINT"},
		{"integer out of range", int64(1) << 40, "INTEGER"},
		{"not an integer", "x", "BIGINT"},
		{"not a time", "x", "TIMESTAMP"},
		{"not a boolean", "x", "BOOLEAN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := encodeOne(t, tc.v, tc.typ, 1, nil); err == nil || !strings.Contains(err.Error(), `column "c"`) {
				t.Errorf("err = %v", err)
			}
		})
	}
	t.Run("column count", func(t *testing.T) {
		e := &encoder{fields: fields([]sqlengine.Column{{Name: "a", Type: "BIGINT"}}, nil)}
		if b, err := e.appendRow(nil, []any{int64(1), int64(2)}); err == nil || len(b) != 0 {
			t.Errorf("got %q, %v", b, err)
		}
	})
	t.Run("nulls and empty strings", func(t *testing.T) {
		cols := []sqlengine.Column{{Name: "a", Type: "VARCHAR"}, {Name: "b", Type: "BIGINT"}, {Name: "c", Type: "VARCHAR"}}
		e := &encoder{fields: fields(cols, nil), types: duckTypes(cols)}
		b, err := e.appendRow(nil, []any{nil, nil, ""})
		if err != nil {
			t.Fatal(err)
		}
		var dr pgproto3.DataRow
		if err := dr.Decode(b[5:]); err != nil {
			t.Fatal(err)
		}
		if dr.Values[0] != nil || dr.Values[1] != nil || dr.Values[2] == nil || len(dr.Values[2]) != 0 {
			t.Errorf("values %q", dr.Values)
		}
	})
}

// manyQuerier returns n rows of many types, with NULLs, so that a result
// spans many flushes.
type manyQuerier struct{ n int }

var manyCols = []sqlengine.Column{{Name: "id", Type: "BIGINT"}, {Name: "amount", Type: "DECIMAL(10,2)"},
	{Name: "name", Type: "VARCHAR"}, {Name: "at", Type: "TIMESTAMPTZ"}, {Name: "f", Type: "DOUBLE"}}

func manyRow(i int, row []any) {
	row[0] = int64(i)
	row[1] = benchDecimal{10, 2, big.NewInt(int64(i) - 500)}
	row[2] = strings.Repeat("é", i%7)
	row[3] = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
	row[4] = float64(i) / 4
	if i%10 == 3 {
		row[1], row[2] = nil, nil
	}
}

func (q manyQuerier) Query(_ context.Context, _ sqlengine.Request, sink sqlengine.RowSink) (*sqlengine.Summary, error) {
	if err := sink.Columns(manyCols); err != nil {
		return nil, err
	}
	row := make([]any, len(manyCols))
	for i := range q.n {
		manyRow(i, row)
		if err := sink.Row(row); err != nil {
			return nil, err
		}
	}
	return &sqlengine.Summary{Rows: int64(q.n)}, nil
}

// TestLargeResult reads a result many times flushSize long through pgx
// in the simple and the extended protocol and checks every value.
func TestLargeResult(t *testing.T) {
	const n = 20000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := NewServer(manyQuerier{n}, verifier(), nil)
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		t.Run(mode.String(), func(t *testing.T) {
			cfg, err := pgx.ParseConfig(connString(ln.Addr().String(), "alice", "tok-alice"))
			if err != nil {
				t.Fatal(err)
			}
			cfg.DefaultQueryExecMode = mode
			c, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			rows, err := c.Query(ctx, "SELECT * FROM many WHERE id >= $1", 0)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]any, len(manyCols))
			i := 0
			for rows.Next() {
				var (
					id     int64
					amount pgtype.Numeric
					name   *string
					at     time.Time
					f      float64
				)
				if err := rows.Scan(&id, &amount, &name, &at, &f); err != nil {
					t.Fatal(err)
				}
				manyRow(i, want)
				if id != int64(i) || !at.Equal(want[3].(time.Time)) || f != want[4].(float64) {
					t.Fatalf("row %d: %d %v %v", i, id, at, f)
				}
				if want[1] == nil {
					if amount.Valid || name != nil {
						t.Fatalf("row %d: want NULLs, got %v %v", i, amount, name)
					}
				} else {
					d := want[1].(benchDecimal)
					if !amount.Valid || cents(amount).Cmp(d.Value) != 0 || *name != want[2] {
						t.Fatalf("row %d: %v %v", i, amount, *name)
					}
				}
				i++
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if i != n || rows.CommandTag().String() != fmt.Sprintf("SELECT %d", n) {
				t.Errorf("%d rows, tag %q", i, rows.CommandTag())
			}
		})
	}
}

// cents is n in hundredths.
func cents(n pgtype.Numeric) *big.Int {
	v := new(big.Int).Set(n.Int)
	for e := n.Exp; e > -2; e-- {
		v.Mul(v, big.NewInt(10))
	}
	for e := n.Exp; e < -2; e++ {
		v.Quo(v, big.NewInt(10))
	}
	return v
}

// TestPortalSuspendedAcrossBatches: row-limited Executes that end in the
// middle of the batches the query hands over still return every row once,
// in order.
func TestPortalSuspendedAcrossBatches(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := NewServer(manyQuerier{150}, verifier(), nil)
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	c, err := pgx.Connect(ctx, connString(ln.Addr().String(), "alice", "tok-alice"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	pc := c.PgConn()
	if _, err := pc.Prepare(ctx, "", "SELECT * FROM many", nil); err != nil {
		t.Fatal(err)
	}
	fe := pc.Frontend()
	fe.SendBind(&pgproto3.Bind{DestinationPortal: "p"})
	for range 4 {
		fe.SendExecute(&pgproto3.Execute{Portal: "p", MaxRows: 40})
	}
	fe.SendSync(&pgproto3.Sync{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var got []string
	next := 0
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			if string(m.Values[0]) != fmt.Sprint(next) {
				t.Fatalf("row %d has id %s", next, m.Values[0])
			}
			next++
		case *pgproto3.PortalSuspended:
			got = append(got, fmt.Sprint(next))
		case *pgproto3.CommandComplete:
			got = append(got, string(m.CommandTag))
		case *pgproto3.ErrorResponse:
			t.Fatal(m.Message)
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			break
		}
	}
	if s := strings.Join(got, " "); s != "40 80 120 SELECT 30" || next != 150 {
		t.Fatalf("got %s after %d rows", s, next)
	}
}

// TestAppendNumeric checks the binary numeric built from the unscaled
// integer against the one built from its text (encodeNumeric, which the
// parameter tests check against PostgreSQL's layout).
func TestAppendNumeric(t *testing.T) {
	huge, _ := new(big.Int).SetString("-99999999999999999999999999999999999999", 10)
	vals := []*big.Int{big.NewInt(0), big.NewInt(1), big.NewInt(-1), big.NewInt(5), big.NewInt(-1230), big.NewInt(10000),
		big.NewInt(100000000), big.NewInt(99999999), big.NewInt(-123456789), big.NewInt(math.MaxInt64), big.NewInt(math.MinInt64), huge,
		new(big.Int).Neg(huge), new(big.Int).Lsh(big.NewInt(1), 90)}
	for n := int64(1); n < 1e15; n = n*7 + 3 {
		vals = append(vals, big.NewInt(n), big.NewInt(-n*10))
	}
	for _, v := range vals {
		for scale := 0; scale <= 12; scale++ {
			text := appendDecimal(nil, scale, v)
			want, err := encodeNumeric(string(text))
			if err != nil {
				t.Fatal(err)
			}
			if got := appendNumeric(nil, scale, v); string(got) != string(want) {
				t.Errorf("%s (scale %d): got % x, want % x", text, scale, got, want)
			}
		}
	}
}
