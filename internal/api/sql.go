package api

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/danielgtaylor/huma/v2"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/sqlengine"
)

// SQLQuerier runs governed queries; *sqlengine.Service implements it.
type SQLQuerier interface {
	Query(ctx context.Context, req sqlengine.Request, sink sqlengine.RowSink) (*sqlengine.Summary, error)
}

type queryInput struct {
	Format string `query:"format" enum:"jsonl,csv,arrow," doc:"The result format, as in the body; the body's wins when both are set."`
	Accept string `header:"Accept" doc:"application/vnd.apache.arrow.stream asks for Arrow IPC, text/csv for CSV, when no format is named."`
	Body   struct {
		SQL    string `json:"sql" minLength:"1" maxLength:"1048576" doc:"One SELECT statement over catalog tables (ns.schema.table), or SHOW TABLES."`
		Format string `json:"format,omitempty" enum:"jsonl,csv,arrow," doc:"jsonl (default), csv or arrow (an Arrow IPC stream)."`
		// Database is additive: as a PostgreSQL client's database.
		Database string `json:"database,omitempty" maxLength:"255" doc:"The database to resolve short names in, as a PostgreSQL client's: when it names a catalog you can see (bank), schema.table is bank.schema.table and a table alone is bank.public.table; three-part names work everywhere."`
	}
}

// ArrowStreamType is the media type of an Arrow IPC stream.
const ArrowStreamType = "application/vnd.apache.arrow.stream"

// resultFormat picks the format: the body's, the query parameter's, or
// the Accept header's, in that order; JSON lines by default.
func resultFormat(in *queryInput) string {
	if in.Body.Format != "" {
		return in.Body.Format
	}
	if in.Format != "" {
		return in.Format
	}
	for _, part := range strings.Split(in.Accept, ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		switch strings.ToLower(strings.TrimSpace(mt)) {
		case ArrowStreamType:
			return "arrow"
		case "text/csv":
			return "csv"
		case "application/jsonl", "application/x-ndjson", "application/json":
			return "jsonl"
		}
	}
	return "jsonl"
}

// The JSON-lines result format: a {"columns": [...]} line, one JSON array
// per row, then {"complete": {"rows": n}} or, if the query fails after
// rows were sent, {"error": {...}}.
type jsonlColumns struct {
	Columns []sqlengine.Column `json:"columns"`
}

type jsonlError struct {
	Code     string `json:"code"`
	SQLState string `json:"sqlstate"`
	Message  string `json:"message"`
}

func (a *API) registerSQL() {
	huma.Register(a.h, huma.Operation{
		OperationID: "query-sql", Method: http.MethodPost, Path: "/query", Tags: []string{"sql"},
		Summary:     "Run a governed SQL query",
		Description: "Runs one SELECT with the caller's masks and row filters applied and streams the result as JSON lines (a columns line, one JSON array per row, then a complete or error line), CSV (a header, then rows) or an Arrow IPC stream (" + ArrowStreamType + ", record batches of up to 65536 rows; ask with format=arrow or the Accept header). A failure after rows were sent ends a JSON-lines result with an error line and aborts a CSV or Arrow response, so that a short result never looks complete. A client that disconnects cancels its query. Every query is audited.",
		Security:    bearer, Errors: []int{400, 401, 403, 404, 413, 503},
	}, func(ctx context.Context, in *queryInput) (*huma.StreamResponse, error) {
		p, err := requireUser(ctx)
		if err != nil {
			return nil, a.problem(ctx, "sql.query", err)
		}
		return &huma.StreamResponse{Body: func(hc huma.Context) {
			a.streamQuery(hc, p, in.Body.SQL, resultFormat(in), in.Body.Database)
		}}, nil
	})
}

func (a *API) streamQuery(hc huma.Context, p *steward.Principal, q, format, database string) {
	ctx := hc.Context()
	sink := &httpSink{hc: hc, csv: format == "csv", arrow: format == "arrow"}
	sum, err := a.d.SQL.Query(ctx, sqlengine.Request{Principal: p, SQL: q, ClientAddr: steward.ClientAddrFrom(ctx), RequestID: RequestID(ctx), Database: database}, sink)
	if sink.err != nil {
		return // the client is gone
	}
	if err != nil {
		if !sink.started {
			pr := a.problem(ctx, "sql.query", err).(*Problem)
			hc.SetHeader("Content-Type", "application/problem+json")
			hc.SetStatus(pr.Status)
			json.NewEncoder(hc.BodyWriter()).Encode(struct {
				*Problem
				SQLState string `json:"sqlstate"`
			}{pr, sqlengine.SQLState(err)})
			return
		}
		if sink.csv {
			sink.cw.Flush()
			panic(http.ErrAbortHandler) // a short CSV must not look complete
		}
		if sink.arrow {
			sink.ab.release()
			panic(http.ErrAbortHandler) // no end-of-stream marker: the reader sees a truncated stream
		}
		if sink.drain() != nil {
			return
		}
		json.NewEncoder(hc.BodyWriter()).Encode(map[string]jsonlError{"error": {Code: string(steward.KindOf(err)), SQLState: sqlengine.SQLState(err), Message: steward.MessageOf(err)}})
		return
	}
	if !sink.started {
		sink.Columns(nil)
	}
	if sink.csv {
		sink.cw.Flush()
		return
	}
	if sink.arrow {
		if err := sink.ab.finish(); err != nil {
			panic(http.ErrAbortHandler)
		}
		return
	}
	if sink.drain() != nil {
		return
	}
	json.NewEncoder(hc.BodyWriter()).Encode(map[string]map[string]int64{"complete": {"rows": sum.Rows}})
}

// httpSink writes rows as they come, flushing every so often.
type httpSink struct {
	hc      huma.Context
	csv     bool
	arrow   bool
	ab      *arrowStream
	cw      *csv.Writer
	enc     *json.Encoder
	buf     []byte   // JSON lines not yet written
	rec     []string // CSV record, reused
	started bool
	n       int
	err     error
}

func (s *httpSink) Columns(cols []sqlengine.Column) error {
	s.started = true
	w := s.hc.BodyWriter()
	if s.arrow {
		s.hc.SetHeader("Content-Type", ArrowStreamType)
		s.hc.SetStatus(http.StatusOK)
		s.ab = newArrowStream(w, cols)
		return nil
	}
	if s.csv {
		s.hc.SetHeader("Content-Type", "text/csv; charset=utf-8")
		s.hc.SetStatus(http.StatusOK)
		s.cw = csv.NewWriter(w)
		names := make([]string, len(cols))
		for i, c := range cols {
			names[i] = c.Name
		}
		return s.fail(s.cw.Write(names))
	}
	s.hc.SetHeader("Content-Type", "application/jsonl")
	s.hc.SetStatus(http.StatusOK)
	s.enc = json.NewEncoder(w)
	if cols == nil {
		cols = []sqlengine.Column{}
	}
	return s.fail(s.enc.Encode(jsonlColumns{Columns: cols}))
}

func (s *httpSink) Row(vals []any) error {
	if s.arrow {
		return s.fail(s.ab.row(vals))
	}
	var err error
	if s.csv {
		if cap(s.rec) < len(vals) {
			s.rec = make([]string, len(vals))
		}
		rec := s.rec[:len(vals)]
		for i, v := range vals {
			rec[i] = ""
			if v != nil {
				rec[i] = textOf(v)
			}
		}
		err = s.cw.Write(rec)
	} else {
		s.buf = appendJSONRow(s.buf, vals)
	}
	if s.n++; err == nil && s.n%256 == 0 {
		if s.csv {
			s.cw.Flush()
			err = s.cw.Error()
		} else {
			err = s.drain()
		}
		if f, ok := s.hc.BodyWriter().(http.Flusher); ok && err == nil {
			f.Flush()
		}
	}
	return s.fail(err)
}

// drain writes the JSON lines gathered so far.
func (s *httpSink) drain() error {
	if len(s.buf) == 0 {
		return nil
	}
	_, err := s.hc.BodyWriter().Write(s.buf)
	s.buf = s.buf[:0]
	return s.fail(err)
}

func (s *httpSink) fail(err error) error {
	if err != nil {
		s.err = err
	}
	return err
}

// jsonOf makes v encodable: bytes as text, everything else as is unless
// it cannot be encoded.
func jsonOf(v any) any {
	switch x := v.(type) {
	case decimalValue:
		if s, ok := decimalText(x); ok {
			return json.Number(s)
		}
		return jsonOf(x.Float64())
	case []byte:
		return string(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Sprint(x)
		}
		return x
	case float32:
		return jsonOf(float64(x))
	case nil, string, bool, int64, int32, int16, int8, int, uint64, uint32, uint16, uint8:
		return x
	}
	if _, err := json.Marshal(v); err != nil {
		return textOf(v)
	}
	return v
}

func textOf(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Sprint(x)
		}
		return string(appendJSONFloat(nil, x))
	case float32:
		return textOf(float64(x))
	case int64, int32, int16, int8, int, uint64, uint32, uint16, uint8, bool:
		return string(appendJSONValue(nil, x)) // a number's JSON text is the text
	case time.Time:
		if y := x.Year(); y >= 0 && y < 10000 {
			return x.Format(time.RFC3339Nano)
		}
	case decimalValue:
		if s, ok := decimalText(x); ok {
			return s
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := string(b)
	if strings.HasPrefix(s, `"`) {
		var u string
		if json.Unmarshal(b, &u) == nil {
			return u
		}
	}
	return s
}

// arrowBatchRows is the most rows in one Arrow record batch.
const arrowBatchRows = 65536

// arrowStream writes a result as an Arrow IPC stream: the schema, mapped
// from the columns' DuckDB types, then a record batch every arrowBatchRows
// rows and at the end.
type arrowStream struct {
	w    io.Writer
	rb   *array.RecordBuilder
	iw   *ipc.Writer
	puts []func(array.Builder, any) error
	n    int
}

func newArrowStream(w io.Writer, cols []sqlengine.Column) *arrowStream {
	fields := make([]arrow.Field, len(cols))
	puts := make([]func(array.Builder, any) error, len(cols))
	for i, c := range cols {
		t := arrowType(c.Type)
		fields[i] = arrow.Field{Name: c.Name, Type: t, Nullable: true}
		puts[i] = arrowPut(t)
	}
	schema := arrow.NewSchema(fields, nil)
	return &arrowStream{w: w, rb: array.NewRecordBuilder(memory.DefaultAllocator, schema),
		iw: ipc.NewWriter(w, ipc.WithSchema(schema)), puts: puts}
}

func (a *arrowStream) row(vals []any) error {
	for i, v := range vals {
		b := a.rb.Field(i)
		if v == nil {
			b.AppendNull()
			continue
		}
		if err := a.puts[i](b, v); err != nil {
			return err
		}
	}
	if a.n++; a.n >= arrowBatchRows {
		return a.flush()
	}
	return nil
}

func (a *arrowStream) flush() error {
	rec := a.rb.NewRecordBatch()
	defer rec.Release()
	a.n = 0
	if err := a.iw.Write(rec); err != nil {
		return err
	}
	if f, ok := a.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

// finish writes the last batch and the end-of-stream marker.
func (a *arrowStream) finish() error {
	defer a.rb.Release()
	if a.n > 0 {
		if err := a.flush(); err != nil {
			return err
		}
	}
	return a.iw.Close() // writes the schema too if no batch was written
}

func (a *arrowStream) release() { a.rb.Release() }

// arrowType maps a DuckDB column type name to an Arrow type. Types Arrow
// has no plain equivalent for here (nested types, UUID, BIT, ...) are sent
// as text, as the CSV format writes them.
func arrowType(t string) arrow.DataType {
	u := strings.ToUpper(strings.TrimSpace(t))
	switch u {
	case "BOOLEAN":
		return arrow.FixedWidthTypes.Boolean
	case "TINYINT":
		return arrow.PrimitiveTypes.Int8
	case "SMALLINT":
		return arrow.PrimitiveTypes.Int16
	case "INTEGER":
		return arrow.PrimitiveTypes.Int32
	case "BIGINT":
		return arrow.PrimitiveTypes.Int64
	case "UTINYINT":
		return arrow.PrimitiveTypes.Uint8
	case "USMALLINT":
		return arrow.PrimitiveTypes.Uint16
	case "UINTEGER":
		return arrow.PrimitiveTypes.Uint32
	case "UBIGINT":
		return arrow.PrimitiveTypes.Uint64
	case "FLOAT":
		return arrow.PrimitiveTypes.Float32
	case "DOUBLE":
		return arrow.PrimitiveTypes.Float64
	case "HUGEINT", "UHUGEINT":
		return &arrow.Decimal128Type{Precision: 38, Scale: 0}
	case "BLOB":
		return arrow.BinaryTypes.Binary
	case "DATE":
		return arrow.FixedWidthTypes.Date32
	case "TIME":
		return arrow.FixedWidthTypes.Time64us
	case "TIMESTAMP":
		return &arrow.TimestampType{Unit: arrow.Microsecond}
	case "TIMESTAMP_S":
		return &arrow.TimestampType{Unit: arrow.Second}
	case "TIMESTAMP_MS":
		return &arrow.TimestampType{Unit: arrow.Millisecond}
	case "TIMESTAMP_NS":
		return &arrow.TimestampType{Unit: arrow.Nanosecond}
	case "TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE":
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	case "INTERVAL":
		return arrow.FixedWidthTypes.MonthDayNanoInterval
	}
	var p, s int32
	if n, err := fmt.Sscanf(u, "DECIMAL(%d,%d)", &p, &s); err == nil && n == 2 && p >= 1 && p <= 38 && s >= 0 && s <= p {
		return &arrow.Decimal128Type{Precision: p, Scale: s}
	}
	return arrow.BinaryTypes.String
}

// arrowPut returns the function that appends a non-NULL value, as the
// DuckDB driver scans it, to a builder of type t.
func arrowPut(t arrow.DataType) func(array.Builder, any) error {
	bad := func(v any) error {
		return steward.Errorf(steward.EInternal, "cannot encode a %T as Arrow %s", v, t)
	}
	switch t := t.(type) {
	case *arrow.BooleanType:
		return func(b array.Builder, v any) error {
			x, ok := v.(bool)
			if !ok {
				return bad(v)
			}
			b.(*array.BooleanBuilder).Append(x)
			return nil
		}
	case *arrow.Int8Type:
		return intPut(func(b array.Builder, x int64) { b.(*array.Int8Builder).Append(int8(x)) }, math.MinInt8, math.MaxInt8, bad)
	case *arrow.Int16Type:
		return intPut(func(b array.Builder, x int64) { b.(*array.Int16Builder).Append(int16(x)) }, math.MinInt16, math.MaxInt16, bad)
	case *arrow.Int32Type:
		return intPut(func(b array.Builder, x int64) { b.(*array.Int32Builder).Append(int32(x)) }, math.MinInt32, math.MaxInt32, bad)
	case *arrow.Int64Type:
		return intPut(func(b array.Builder, x int64) { b.(*array.Int64Builder).Append(x) }, math.MinInt64, math.MaxInt64, bad)
	case *arrow.Uint8Type:
		return uintPut(func(b array.Builder, x uint64) { b.(*array.Uint8Builder).Append(uint8(x)) }, math.MaxUint8, bad)
	case *arrow.Uint16Type:
		return uintPut(func(b array.Builder, x uint64) { b.(*array.Uint16Builder).Append(uint16(x)) }, math.MaxUint16, bad)
	case *arrow.Uint32Type:
		return uintPut(func(b array.Builder, x uint64) { b.(*array.Uint32Builder).Append(uint32(x)) }, math.MaxUint32, bad)
	case *arrow.Uint64Type:
		return uintPut(func(b array.Builder, x uint64) { b.(*array.Uint64Builder).Append(x) }, math.MaxUint64, bad)
	case *arrow.Float32Type:
		return func(b array.Builder, v any) error {
			x, ok := floatOf(v)
			if !ok {
				return bad(v)
			}
			b.(*array.Float32Builder).Append(float32(x))
			return nil
		}
	case *arrow.Float64Type:
		return func(b array.Builder, v any) error {
			x, ok := floatOf(v)
			if !ok {
				return bad(v)
			}
			b.(*array.Float64Builder).Append(x)
			return nil
		}
	case *arrow.Decimal128Type:
		return func(b array.Builder, v any) error {
			n, err := decimalOf(v, t.Precision, t.Scale)
			if err != nil {
				return bad(v)
			}
			b.(*array.Decimal128Builder).Append(n)
			return nil
		}
	case *arrow.BinaryType:
		return func(b array.Builder, v any) error {
			switch x := v.(type) {
			case []byte:
				b.(*array.BinaryBuilder).Append(x)
			case string:
				b.(*array.BinaryBuilder).AppendString(x)
			default:
				return bad(v)
			}
			return nil
		}
	case *arrow.Date32Type:
		return func(b array.Builder, v any) error {
			x, ok := v.(time.Time)
			if !ok {
				return bad(v)
			}
			y, m, d := x.Date()
			b.(*array.Date32Builder).Append(arrow.Date32FromTime(time.Date(y, m, d, 0, 0, 0, 0, time.UTC)))
			return nil
		}
	case *arrow.Time64Type:
		return func(b array.Builder, v any) error {
			x, ok := v.(time.Time)
			if !ok {
				return bad(v)
			}
			us := int64(x.Hour()*3600+x.Minute()*60+x.Second())*1e6 + int64(x.Nanosecond()/1000)
			b.(*array.Time64Builder).Append(arrow.Time64(us))
			return nil
		}
	case *arrow.TimestampType:
		return func(b array.Builder, v any) error {
			x, ok := v.(time.Time)
			if !ok {
				return bad(v)
			}
			ts, err := arrow.TimestampFromTime(x, t.Unit)
			if err != nil {
				return bad(v)
			}
			b.(*array.TimestampBuilder).Append(ts)
			return nil
		}
	case *arrow.MonthDayNanoIntervalType:
		return func(b array.Builder, v any) error {
			// The driver's Interval has exported Days, Months and Micros.
			js, err := json.Marshal(v)
			var iv struct {
				Days   int32 `json:"days"`
				Months int32 `json:"months"`
				Micros int64 `json:"micros"`
			}
			if err != nil || json.Unmarshal(js, &iv) != nil {
				return bad(v)
			}
			b.(*array.MonthDayNanoIntervalBuilder).Append(arrow.MonthDayNanoInterval{Months: iv.Months, Days: iv.Days, Nanoseconds: iv.Micros * 1000})
			return nil
		}
	}
	return func(b array.Builder, v any) error {
		switch x := v.(type) {
		case string:
			b.(*array.StringBuilder).Append(x)
		case []byte:
			if len(x) == 16 { // UUID
				b.(*array.StringBuilder).Append(fmt.Sprintf("%x-%x-%x-%x-%x", x[0:4], x[4:6], x[6:8], x[8:10], x[10:]))
			} else {
				b.(*array.StringBuilder).Append(string(x))
			}
		default:
			b.(*array.StringBuilder).Append(textOf(v))
		}
		return nil
	}
}

func intPut(put func(array.Builder, int64), lo, hi int64, bad func(any) error) func(array.Builder, any) error {
	return func(b array.Builder, v any) error {
		var x int64
		switch n := v.(type) {
		case int64:
			x = n
		case int32:
			x = int64(n)
		case int16:
			x = int64(n)
		case int8:
			x = int64(n)
		case int:
			x = int64(n)
		case uint8:
			x = int64(n)
		case uint16:
			x = int64(n)
		case uint32:
			x = int64(n)
		default:
			return bad(v)
		}
		if x < lo || x > hi {
			return bad(v)
		}
		put(b, x)
		return nil
	}
}

func uintPut(put func(array.Builder, uint64), hi uint64, bad func(any) error) func(array.Builder, any) error {
	return func(b array.Builder, v any) error {
		var x uint64
		switch n := v.(type) {
		case uint64:
			x = n
		case uint32:
			x = uint64(n)
		case uint16:
			x = uint64(n)
		case uint8:
			x = uint64(n)
		case uint:
			x = uint64(n)
		default:
			i, ok := v.(int64)
			if !ok || i < 0 {
				return bad(v)
			}
			x = uint64(i)
		}
		if x > hi {
			return bad(v)
		}
		put(b, x)
		return nil
	}
}

func floatOf(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case interface{ Float64() float64 }: // the driver's Decimal
		return x.Float64(), true
	}
	return 0, false
}

// decimalOf converts a HUGEINT (*big.Int) or the driver's Decimal (a
// struct with an unscaled Value *big.Int of the column's scale) into an
// Arrow decimal of precision p and scale s.
func decimalOf(v any, p, s int32) (decimal128.Num, error) {
	var bi *big.Int
	switch x := v.(type) {
	case *big.Int:
		bi = x
	case int64:
		bi = big.NewInt(x)
	default:
		rv := reflect.ValueOf(v)
		if rv.Kind() == reflect.Struct {
			if f := rv.FieldByName("Value"); f.IsValid() && f.CanInterface() {
				bi, _ = f.Interface().(*big.Int)
			}
		}
		if bi == nil {
			return decimal128.FromString(textOf(v), p, s)
		}
	}
	if bi == nil || bi.BitLen() > 127 {
		return decimal128.Num{}, errors.New("decimal out of range")
	}
	n := decimal128.FromBigInt(bi)
	if !n.FitsInPrecision(p) {
		return decimal128.Num{}, errors.New("decimal out of range")
	}
	return n, nil
}
