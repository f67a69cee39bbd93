package api

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/stewardhq/steward/internal/sqlengine"
)

// appendJSONRow appends vals as one JSON array and a newline, exactly as
// json.Encoder.Encode(jsonOf(v)...) writes it, without reflection for the
// types most results are made of (a 500,000-row export spent most of its
// time in encoding/json).
func appendJSONRow(b []byte, vals []any) []byte {
	b = append(b, '[')
	for i, v := range vals {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONValue(b, v)
	}
	return append(b, ']', '\n')
}

// appendJSONValue appends v as encoding/json would encode jsonOf(v).
func appendJSONValue(b []byte, v any) []byte {
	if out, ok := sqlengine.AppendInteger(b, v); ok {
		return out
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, x)
	case string:
		return appendJSONString(b, x)
	case []byte:
		return appendJSONString(b, string(x))
	case float64:
		return appendJSONFloat(b, x)
	case float32:
		return appendJSONFloat(b, float64(x))
	case time.Time:
		if y := x.Year(); y >= 0 && y < 10000 {
			b = append(b, '"')
			b = x.AppendFormat(b, time.RFC3339Nano)
			return append(b, '"')
		}
	case decimalValue:
		if s, ok := decimalText(x); ok {
			return append(b, s...) // exact: 12.30, not a float's 12.3 nor the struct
		}
	}
	js, err := json.Marshal(jsonOf(v))
	if err != nil { // jsonOf made it encodable; be safe anyway
		return appendJSONString(b, textOf(v))
	}
	return append(b, js...)
}

// appendJSONFloat writes f as encoding/json writes a float64, and NaN and
// the infinities as jsonOf does (their fmt.Sprint text, quoted).
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return appendJSONString(b, strconv.FormatFloat(f, 'g', -1, 64))
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-07 -> e-7, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// decimalValue is the DuckDB driver's Decimal: a float view and its exact
// decimal text.
type decimalValue interface {
	Float64() float64
	String() string
}

// decimalText is d's exact text if it is a plain decimal number.
func decimalText(d decimalValue) (string, bool) {
	s := d.String()
	digits := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '-' && i == 0, c == '.' && digits > 0 && i < len(s)-1:
		default:
			return "", false
		}
	}
	return s, digits > 0
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does with HTML escaping on
// (json.Encoder's default): <, > and & as \u003c..., U+2028 and U+2029
// escaped, invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
