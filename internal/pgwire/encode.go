package pgwire

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
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
// value is sent as the OID and format the client was told.
type encoder struct {
	fields []pgproto3.FieldDescription
	types  []string // DuckDB types of the actual result
	loc    *time.Location
}

func (e *encoder) row(vals []any) (*pgproto3.DataRow, error) {
	if len(vals) != len(e.fields) {
		return nil, sqlengine.Errorf(steward.EInvalid, sqlengine.StateFeature,
			"the statement's result has %d columns where it was described with %d; prepare it again", len(vals), len(e.fields))
	}
	dr := &pgproto3.DataRow{Values: make([][]byte, len(vals))}
	for i, v := range vals {
		typ := ""
		if i < len(e.types) {
			typ = e.types[i]
		}
		b, err := encodeValue(v, typ, e.fields[i].DataTypeOID, e.fields[i].Format, e.loc)
		if err != nil {
			return nil, sqlengine.Errorf(steward.EInvalid, sqlengine.StateData, "column %q: %v", e.fields[i].Name, err)
		}
		dr.Values[i] = b
	}
	return dr, nil
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
		switch oid {
		case oidInt2:
			if n < math.MinInt16 || n > math.MaxInt16 {
				return nil, fmt.Errorf("%d is out of range for smallint", n)
			}
			return binary.BigEndian.AppendUint16(nil, uint16(n)), nil
		case oidInt4:
			if n < math.MinInt32 || n > math.MaxInt32 {
				return nil, fmt.Errorf("%d is out of range for integer", n)
			}
			return binary.BigEndian.AppendUint32(nil, uint32(n)), nil
		}
		return binary.BigEndian.AppendUint64(nil, uint64(n)), nil
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
