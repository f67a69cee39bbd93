package pgwire

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/sqlengine"
)

// fields describes cols with the given result format codes (none: all
// text; one: all that one; else one per column).
func fields(cols []sqlengine.Column, formats []int16) []pgproto3.FieldDescription {
	fs := make([]pgproto3.FieldDescription, len(cols))
	for i, c := range cols {
		oid, size := TypeOID(c.Type)
		fs[i] = pgproto3.FieldDescription{Name: []byte(c.Name), DataTypeOID: oid, DataTypeSize: size, TypeModifier: -1, Format: formatOf(formats, i)}
	}
	return fs
}

func formatOf(formats []int16, i int) int16 {
	switch {
	case len(formats) == 0:
		return 0
	case len(formats) == 1:
		return formats[0]
	case i < len(formats):
		return formats[i]
	}
	return 0
}

// encoder turns result rows into DataRows for a described result: each
// value is sent as the OID and format the client was told. It appends
// each row's bytes straight into the backend's write buffer (send), so a
// row costs no message value, no per-value slices and no copy.
type encoder struct {
	fields []pgproto3.FieldDescription
	types  []string // DuckDB types of the actual result
	loc    *time.Location

	cols []colEnc // per column, made at the first row
	msg  dataRow

	out    []byte // DataRows gathered by add
	direct bool   // be's buffer is written: out may go straight to the client
}

// colEnc is what the encoder knows of one column.
type colEnc struct {
	typ    string
	oid    uint32
	format int16
	tz     bool     // TIMESTAMPTZ: shown in the session's time zone
	clock  timeKind // how a time.Time of this column reads as text

	// The Go type of the column's decimals (the DuckDB driver's Decimal,
	// read without linking the driver) and its Scale and Value fields.
	decType          reflect.Type
	decScale, decVal int
}

type timeKind uint8

const (
	clockTimestamp timeKind = iota
	clockDate
	clockTime
	clockTimestamptz
)

// flushSize is how many bytes of DataRows a result writer lets gather
// before it writes them to the client: large writes, flat memory.
const flushSize = 64 << 10

func (e *encoder) init() {
	e.cols = make([]colEnc, len(e.fields))
	for i, f := range e.fields {
		c := &e.cols[i]
		if i < len(e.types) {
			c.typ = e.types[i]
		}
		c.oid, c.format = f.DataTypeOID, f.Format
		switch c.typ {
		case "TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE":
			c.tz, c.clock = true, clockTimestamptz
		case "DATE":
			c.clock = clockDate
		case "TIME":
			c.clock = clockTime
		}
	}
	e.msg.e = e
}

// send appends one DataRow for vals to be's write buffer and returns how
// many bytes the buffer then holds. A value that cannot be encoded sends
// nothing and returns the error.
func (e *encoder) send(be *pgproto3.Backend, vals []any) (int, error) {
	if e.cols == nil {
		e.init()
	}
	e.msg.vals, e.msg.err, e.msg.end = vals, nil, 0
	be.Send(&e.msg)
	e.msg.vals = nil
	return e.msg.end, e.msg.err
}

// dataRow is a DataRow message encoded from Go values as the backend
// buffers it; an encoding error leaves the buffer as it was and is kept
// in err (the backend would otherwise fail the connection).
type dataRow struct {
	e    *encoder
	vals []any
	err  error
	end  int
}

func (*dataRow) Backend() {}

func (*dataRow) Decode([]byte) error {
	return errors.New("pgwire: a DataRow is only sent")
}

func (m *dataRow) Encode(dst []byte) ([]byte, error) {
	out, err := m.e.appendRow(dst, m.vals)
	m.err, m.end = err, len(out)
	return out, nil
}

// add appends a DataRow for vals to the encoder's own buffer (out); a
// value that cannot be encoded appends nothing and returns the error.
func (e *encoder) add(vals []any) error {
	b, err := e.appendRow(e.out, vals)
	e.out = b
	return err
}

// writeOut writes the rows in out to the client: the first time through
// be, after the messages be holds, then straight to w (be's buffer would
// otherwise grow anew from 1 KiB after every flush).
func (e *encoder) writeOut(be *pgproto3.Backend, w io.Writer) error {
	var err error
	if e.direct && w != nil {
		_, err = w.Write(e.out)
	} else {
		be.Send(rawMessages(e.out))
		err = be.Flush()
		e.direct = true
	}
	e.out = e.out[:0]
	return err
}

// drain hands the rows in out to be, ahead of whatever is sent next.
func (e *encoder) drain(be *pgproto3.Backend) {
	if len(e.out) > 0 {
		be.Send(rawMessages(e.out))
		e.out = e.out[:0]
	}
	e.direct = false
}

// rawMessages is encoded backend messages, sent as they are.
type rawMessages []byte

func (rawMessages) Backend() {}

func (rawMessages) Decode([]byte) error {
	return errors.New("pgwire: encoded messages are only sent")
}

func (m rawMessages) Encode(dst []byte) ([]byte, error) { return append(dst, m...), nil }

// appendRow appends a DataRow message for vals to dst; on error dst is
// returned unchanged.
func (e *encoder) appendRow(dst []byte, vals []any) ([]byte, error) {
	if len(vals) != len(e.fields) {
		return dst, sqlengine.Errorf(steward.EInvalid, sqlengine.StateFeature,
			"the statement's result has %d columns where it was described with %d; prepare it again", len(vals), len(e.fields))
	}
	if e.cols == nil {
		e.init()
	}
	start := len(dst)
	dst = append(dst, 'D', 0, 0, 0, 0, byte(len(vals)>>8), byte(len(vals)))
	for i, v := range vals {
		if v == nil {
			dst = append(dst, 0xff, 0xff, 0xff, 0xff)
			continue
		}
		at := len(dst)
		dst = append(dst, 0, 0, 0, 0)
		var err error
		if dst, err = e.appendValue(dst, &e.cols[i], v); err != nil {
			return dst[:start], sqlengine.Errorf(steward.EInvalid, sqlengine.StateData, "column %q: %v", e.fields[i].Name, err)
		}
		binary.BigEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
	}
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-1))
	return dst, nil
}

// appendValue appends v (not nil) as c's OID in c's format.
func (e *encoder) appendValue(dst []byte, c *colEnc, v any) ([]byte, error) {
	if c.format == 1 {
		switch c.oid {
		case oidBool, oidInt2, oidInt4, oidInt8, oidFloat4, oidFloat8, oidNumeric, oidBytea, oidUUID,
			oidDate, oidTimestamp, oidTimestamptz, oidTime, oidInterval:
			return e.appendBinary(dst, c, v)
		}
	}
	// Text, and text-like types in binary (the same bytes).
	return e.appendText(dst, c, v), nil
}

// appendText appends v in PostgreSQL's text format; the common types
// without allocating, the rest as TextValue renders them.
func (e *encoder) appendText(dst []byte, c *colEnc, v any) []byte {
	if out, ok := sqlengine.AppendInteger(dst, v); ok {
		return out
	}
	switch x := v.(type) {
	case string:
		return append(dst, x...)
	case float64:
		return appendFloat(dst, x, 64)
	case float32:
		return appendFloat(dst, float64(x), 32)
	case bool:
		if x {
			return append(dst, 't')
		}
		return append(dst, 'f')
	case time.Time:
		if c.tz && e.loc != nil {
			x = x.In(e.loc)
		}
		return appendTimeText(dst, c.clock, x)
	case *big.Int:
		return x.Append(dst, 10)
	case []byte:
		if c.typ == "UUID" && len(x) == 16 {
			return appendUUID(dst, x)
		}
		dst = append(dst, '\\', 'x')
		return hex.AppendEncode(dst, x)
	}
	if scale, val, ok := c.decimal(v); ok {
		return appendDecimal(dst, scale, val)
	}
	if months, days, us, ok := intervalParts(v); ok {
		return append(dst, intervalText(months, days, us)...)
	}
	return append(dst, TextValue(v, c.typ)...)
}

// appendBinary appends v in PostgreSQL's binary format for c.oid.
func (e *encoder) appendBinary(dst []byte, c *colEnc, v any) ([]byte, error) {
	switch c.oid {
	case oidInt2, oidInt4, oidInt8:
		n, ok := toInt64(v)
		if !ok {
			break
		}
		return appendIntBinary(dst, c.oid, n)
	case oidFloat8:
		if f, ok := v.(float64); ok {
			return binary.BigEndian.AppendUint64(dst, math.Float64bits(f)), nil
		}
	case oidNumeric:
		if scale, val, ok := c.decimal(v); ok {
			// The digits and scale PostgreSQL would send: 12.30, not 12.3.
			return appendNumeric(dst, scale, val), nil
		}
	case oidTimestamp, oidTimestamptz, oidDate:
		t, ok := v.(time.Time)
		if !ok {
			break
		}
		if c.tz && e.loc != nil {
			t = t.In(e.loc)
		}
		switch c.oid {
		case oidDate:
			y, m, d := t.Date()
			days := (time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() - pgEpochUnix) / 86400
			return binary.BigEndian.AppendUint32(dst, uint32(int32(days))), nil
		case oidTimestamp:
			// The wall clock, as if it were UTC.
			_, off := t.Zone()
			t = t.Add(time.Duration(off) * time.Second)
		}
		us := t.Unix()*1e6 + int64(t.Nanosecond()/1000) - pgEpochUnix*1e6
		return binary.BigEndian.AppendUint64(dst, uint64(us)), nil
	}
	b, err := encodeValue(v, c.typ, c.oid, 1, e.loc)
	return append(dst, b...), err
}

var pgEpochUnix = pgEpoch.Unix()

// appendIntBinary appends n as the binary smallint, integer or bigint oid
// names, or fails if n is out of that type's range.
func appendIntBinary(dst []byte, oid uint32, n int64) ([]byte, error) {
	switch oid {
	case oidInt2:
		if n < math.MinInt16 || n > math.MaxInt16 {
			return dst, fmt.Errorf("%d is out of range for smallint", n)
		}
		return binary.BigEndian.AppendUint16(dst, uint16(n)), nil
	case oidInt4:
		if n < math.MinInt32 || n > math.MaxInt32 {
			return dst, fmt.Errorf("%d is out of range for integer", n)
		}
		return binary.BigEndian.AppendUint32(dst, uint32(n)), nil
	}
	return binary.BigEndian.AppendUint64(dst, uint64(n)), nil
}

// appendFloat appends f as PostgreSQL prints a float: the shortest text
// that reads back the same, Infinity and NaN spelt out.
func appendFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bits)
}

// appendDecimal appends the unscaled val with scale digits after the
// point, as PostgreSQL prints a numeric(p, scale): 12.30, -0.05, 0.00.
func appendDecimal(dst []byte, scale int, val *big.Int) []byte {
	var buf [48]byte
	var digits []byte
	if val.IsInt64() {
		n := val.Int64()
		if n < 0 {
			dst = append(dst, '-')
			digits = strconv.AppendUint(buf[:0], uint64(-n), 10) // -MinInt64 wraps to its own magnitude
		} else {
			digits = strconv.AppendUint(buf[:0], uint64(n), 10)
		}
	} else {
		digits = val.Append(buf[:0], 10)
		if digits[0] == '-' {
			dst = append(dst, '-')
			digits = digits[1:]
		}
	}
	if scale <= 0 {
		return append(dst, digits...)
	}
	if len(digits) <= scale {
		dst = append(dst, '0', '.')
		for range scale - len(digits) {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	dst = append(dst, digits[:len(digits)-scale]...)
	dst = append(dst, '.')
	return append(dst, digits[len(digits)-scale:]...)
}

// appendNumeric appends the unscaled val with scale digits after the
// point in PostgreSQL's binary numeric format: digit count, weight, sign
// and display scale, then base-10000 digits, the point between two of
// them; leading and trailing zero digits are left out.
func appendNumeric(dst []byte, scale int, val *big.Int) []byte {
	var buf [96]byte
	var sign uint16
	dec := buf[:0]
	if val.IsInt64() {
		n := val.Int64()
		if n < 0 {
			sign = 0x4000
			dec = strconv.AppendUint(dec, uint64(-n), 10)
		} else {
			dec = strconv.AppendUint(dec, uint64(n), 10)
		}
	} else {
		dec = val.Append(dec, 10)
		if dec[0] == '-' {
			sign, dec = 0x4000, dec[1:]
		}
	}
	if scale < 0 {
		scale = 0
	}
	// digit(i) is the decimal digit at place i: 0 the units, 1 the tens,
	// -1 the tenths.
	digit := func(i int) uint16 {
		k := len(dec) - 1 - scale - i
		if k < 0 || k >= len(dec) {
			return 0
		}
		return uint16(dec[k] - '0')
	}
	// Groups of four places: group g covers places 4g .. 4g+3.
	hi := (len(dec) - scale - 1) / 4 // the highest group with a digit
	if len(dec)-scale-1 < 0 {
		hi = -1
	}
	lo := -((scale + 3) / 4) // the lowest group the scale reaches
	group := func(g int) uint16 {
		return digit(4*g+3)*1000 + digit(4*g+2)*100 + digit(4*g+1)*10 + digit(4*g)
	}
	for hi >= lo && group(hi) == 0 {
		hi--
	}
	for lo <= hi && group(lo) == 0 {
		lo++
	}
	ndigits, weight := hi-lo+1, hi
	if ndigits <= 0 {
		ndigits, weight, sign = 0, 0, 0
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(ndigits))
	dst = binary.BigEndian.AppendUint16(dst, uint16(int16(weight)))
	dst = binary.BigEndian.AppendUint16(dst, sign)
	dst = binary.BigEndian.AppendUint16(dst, uint16(scale))
	for g := hi; g >= lo && ndigits > 0; g-- {
		dst = binary.BigEndian.AppendUint16(dst, group(g))
	}
	return dst
}

// decimal reads v as the DuckDB driver's Decimal (a struct with Width,
// Scale and an unscaled *big.Int Value), remembering the type per column.
func (c *colEnc) decimal(v any) (scale int, val *big.Int, ok bool) {
	t := reflect.TypeOf(v)
	if t != c.decType {
		if t.Kind() != reflect.Struct || t.NumField() != 3 {
			return 0, nil, false
		}
		w, okW := t.FieldByName("Width")
		s, okS := t.FieldByName("Scale")
		d, okV := t.FieldByName("Value")
		if !okW || !okS || !okV || w.Type.Kind() != reflect.Uint8 || s.Type.Kind() != reflect.Uint8 || d.Type != bigIntPtr {
			return 0, nil, false
		}
		c.decType, c.decScale, c.decVal = t, s.Index[0], d.Index[0]
	}
	rv := reflect.ValueOf(v)
	val, _ = rv.Field(c.decVal).Interface().(*big.Int)
	if val == nil {
		return 0, nil, false
	}
	return int(rv.Field(c.decScale).Uint()), val, true
}

var bigIntPtr = reflect.TypeFor[*big.Int]()

func appendUUID(dst []byte, b []byte) []byte {
	dst = hex.AppendEncode(dst, b[:4])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[4:6])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[6:8])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[8:10])
	dst = append(dst, '-')
	return hex.AppendEncode(dst, b[10:])
}

// appendTimeText appends t as PostgreSQL prints a date, time, timestamp
// or timestamptz (ISO style): 2024-03-01 12:00:00.5+05:30. Years outside
// 0-9999 are left to time.Format.
func appendTimeText(dst []byte, kind timeKind, t time.Time) []byte {
	if kind == clockTime {
		return appendClock(dst, t)
	}
	y, m, d := t.Date()
	if y < 0 || y > 9999 {
		switch kind {
		case clockDate:
			return t.AppendFormat(dst, "2006-01-02")
		case clockTimestamptz:
			return t.AppendFormat(dst, "2006-01-02 15:04:05.999999-07")
		}
		return t.AppendFormat(dst, "2006-01-02 15:04:05.999999")
	}
	dst = append(dst, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10))
	if kind == clockDate {
		return dst
	}
	dst = append(dst, ' ')
	dst = appendClock(dst, t)
	if kind != clockTimestamptz {
		return dst
	}
	_, off := t.Zone()
	if off < 0 {
		dst, off = append(dst, '-'), -off
	} else {
		dst = append(dst, '+')
	}
	dst = append2(dst, off/3600)
	if mm, ss := off/60%60, off%60; mm != 0 || ss != 0 {
		dst = append2(append(dst, ':'), mm)
		if ss != 0 {
			dst = append2(append(dst, ':'), ss)
		}
	}
	return dst
}

// appendClock appends hh:mm:ss and, when not zero, the microseconds with
// trailing zeros dropped.
func appendClock(dst []byte, t time.Time) []byte {
	h, mi, s := t.Clock()
	dst = append2(dst, h)
	dst = append2(append(dst, ':'), mi)
	dst = append2(append(dst, ':'), s)
	us := t.Nanosecond() / 1000
	if us == 0 {
		return dst
	}
	var frac [6]byte
	for i := 5; i >= 0; i-- {
		frac[i] = byte('0' + us%10)
		us /= 10
	}
	n := 6
	for frac[n-1] == '0' {
		n--
	}
	return append(append(dst, '.'), frac[:n]...)
}

func append2(dst []byte, n int) []byte {
	return append(dst, byte('0'+n/10), byte('0'+n%10))
}

// encodeValue renders v (nil is NULL) as PostgreSQL type oid in format
// (0 text, 1 binary); typ is the DuckDB type of the value.
func encodeValue(v any, typ string, oid uint32, format int16, loc *time.Location) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	if t, ok := v.(time.Time); ok && loc != nil && (typ == "TIMESTAMPTZ" || typ == "TIMESTAMP WITH TIME ZONE") {
		v = t.In(loc)
	}
	if months, days, us, ok := intervalParts(v); ok {
		if format == 1 && oid == oidInterval {
			b := binary.BigEndian.AppendUint64(nil, uint64(us))
			b = binary.BigEndian.AppendUint32(b, uint32(days))
			return binary.BigEndian.AppendUint32(b, uint32(months)), nil
		}
		return []byte(intervalText(months, days, us)), nil
	}
	if format == 0 {
		return TextValue(v, typ), nil
	}
	switch oid {
	case oidBool:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("%T is not a boolean", v)
		}
		if b {
			return []byte{1}, nil
		}
		return []byte{0}, nil
	case oidInt2, oidInt4, oidInt8:
		n, ok := toInt64(v)
		if !ok {
			return nil, fmt.Errorf("%T is not an integer", v)
		}
		return appendIntBinary(nil, oid, n)
	case oidFloat4, oidFloat8:
		var f float64
		switch x := v.(type) {
		case float64:
			f = x
		case float32:
			f = float64(x)
		default:
			n, ok := toInt64(v)
			if !ok {
				return nil, fmt.Errorf("%T is not a number", v)
			}
			f = float64(n)
		}
		if oid == oidFloat4 {
			return binary.BigEndian.AppendUint32(nil, math.Float32bits(float32(f))), nil
		}
		return binary.BigEndian.AppendUint64(nil, math.Float64bits(f)), nil
	case oidNumeric:
		return encodeNumeric(string(TextValue(v, typ)))
	case oidBytea:
		switch x := v.(type) {
		case []byte:
			return x, nil
		case string:
			return []byte(x), nil
		}
		return nil, fmt.Errorf("%T is not bytes", v)
	case oidUUID:
		switch x := v.(type) {
		case []byte:
			if len(x) == 16 {
				return x, nil
			}
		case string:
			if b, err := hex.DecodeString(strings.ReplaceAll(x, "-", "")); err == nil && len(b) == 16 {
				return b, nil
			}
		case fmt.Stringer:
			if b, err := hex.DecodeString(strings.ReplaceAll(x.String(), "-", "")); err == nil && len(b) == 16 {
				return b, nil
			}
		case [16]byte:
			return x[:], nil
		}
		return nil, fmt.Errorf("%T is not a UUID", v)
	case oidDate, oidTimestamp, oidTimestamptz, oidTime:
		t, ok := v.(time.Time)
		if !ok {
			return nil, fmt.Errorf("%T is not a time", v)
		}
		switch oid {
		case oidDate:
			y, m, d := t.Date()
			days := (time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() - pgEpoch.Unix()) / 86400
			return binary.BigEndian.AppendUint32(nil, uint32(int32(days))), nil
		case oidTime:
			us := int64(t.Hour())*3600e6 + int64(t.Minute())*60e6 + int64(t.Second())*1e6 + int64(t.Nanosecond()/1000)
			return binary.BigEndian.AppendUint64(nil, uint64(us)), nil
		case oidTimestamp:
			// The wall clock, as if it were UTC.
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
		}
		us := t.Unix()*1e6 + int64(t.Nanosecond()/1000) - pgEpoch.Unix()*1e6
		return binary.BigEndian.AppendUint64(nil, uint64(us)), nil
	}
	// Text-like types have the same bytes in both formats.
	return TextValue(v, typ), nil
}

func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case int16:
		return int64(x), true
	case int8:
		return int64(x), true
	case int:
		return int64(x), true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	case *big.Int:
		if x.IsInt64() {
			return x.Int64(), true
		}
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// intervalParts reads an interval value as the DuckDB driver returns it
// (a struct with Months, Days and Micros), without linking the driver.
func intervalParts(v any) (months, days int32, micros int64, ok bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Struct || rv.NumField() != 3 {
		return 0, 0, 0, false
	}
	m, d, us := rv.FieldByName("Months"), rv.FieldByName("Days"), rv.FieldByName("Micros")
	if !m.IsValid() || !d.IsValid() || !us.IsValid() || !m.CanInt() || !d.CanInt() || !us.CanInt() {
		return 0, 0, 0, false
	}
	return int32(m.Int()), int32(d.Int()), us.Int(), true
}

// intervalText renders an interval in PostgreSQL's default style:
// "1 year 2 mons 3 days 04:05:06.5".
func intervalText(months, days int32, us int64) string {
	var parts []string
	plural := func(n int64, unit string) string {
		if n == 1 || n == -1 {
			return strconv.FormatInt(n, 10) + " " + unit
		}
		return strconv.FormatInt(n, 10) + " " + unit + "s"
	}
	if y := int64(months / 12); y != 0 {
		parts = append(parts, plural(y, "year"))
	}
	if m := int64(months % 12); m != 0 {
		parts = append(parts, plural(m, "mon"))
	}
	if days != 0 {
		parts = append(parts, plural(int64(days), "day"))
	}
	if us != 0 || len(parts) == 0 {
		sign := ""
		if us < 0 {
			sign, us = "-", -us
		}
		h, rem := us/3600e6, us%3600e6
		m, rem := rem/60e6, rem%60e6
		s, frac := rem/1e6, rem%1e6
		t := fmt.Sprintf("%s%02d:%02d:%02d", sign, h, m, s)
		if frac != 0 {
			t += strings.TrimRight(fmt.Sprintf(".%06d", frac), "0")
		}
		parts = append(parts, t)
	}
	return strings.Join(parts, " ")
}
