package pgwire

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/sqlengine"
)

// Parameters of the extended protocol are never sent to DuckDB as bind
// values: they are rendered as typed, quoted SQL literals into the
// statement text, so that the sqlengine checks, authorizes and audits the
// full statement as it will run.

// PostgreSQL type OIDs Steward speaks.
const (
	oidUnknown     = 0
	oidBool        = 16
	oidBytea       = 17
	oidName        = 19
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidOID         = 26
	oidJSON        = 114
	oidFloat4      = 700
	oidFloat8      = 701
	oidUnknownLit  = 705
	oidBPChar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidInterval    = 1186
	oidNumeric     = 1700
	oidUUID        = 2950
	oidJSONB       = 3802
)

// duckType is the DuckDB type a parameter of PostgreSQL type oid is cast
// to; "" for text-like types, which are rendered as plain string literals
// (DuckDB coerces those to the type the context needs).
var duckType = map[uint32]string{
	oidBool: "BOOLEAN", oidBytea: "BLOB", oidInt8: "BIGINT", oidInt2: "SMALLINT", oidInt4: "INTEGER",
	oidOID: "UINTEGER", oidFloat4: "FLOAT", oidFloat8: "DOUBLE", oidDate: "DATE", oidTime: "TIME",
	oidTimestamp: "TIMESTAMP", oidTimestamptz: "TIMESTAMPTZ", oidInterval: "INTERVAL", oidUUID: "UUID",
	oidNumeric: "DECIMAL",
}

func textLike(oid uint32) bool {
	switch oid {
	case oidUnknown, oidUnknownLit, oidText, oidVarchar, oidBPChar, oidName, oidJSON, oidJSONB:
		return true
	}
	return false
}

// typeNames maps SQL type names as written after :: or in CAST(... AS t)
// to OIDs, for inferring the type of a parameter the client left open.
var typeNames = map[string]uint32{
	"bool": oidBool, "boolean": oidBool, "bytea": oidBytea, "blob": oidBytea,
	"int8": oidInt8, "bigint": oidInt8, "int2": oidInt2, "smallint": oidInt2,
	"int": oidInt4, "int4": oidInt4, "integer": oidInt4,
	"text": oidText, "varchar": oidVarchar, "character varying": oidVarchar, "string": oidText,
	"float4": oidFloat4, "real": oidFloat4, "float": oidFloat8, "float8": oidFloat8, "double": oidFloat8, "double precision": oidFloat8,
	"numeric": oidNumeric, "decimal": oidNumeric, "date": oidDate, "time": oidTime,
	"timestamp": oidTimestamp, "timestamp without time zone": oidTimestamp,
	"timestamptz": oidTimestamptz, "timestamp with time zone": oidTimestamptz,
	"interval": oidInterval, "uuid": oidUUID, "json": oidJSON, "jsonb": oidJSONB,
}

// placeholder is one $n in a statement.
type placeholder struct {
	start, end int // byte offsets of "$n"
	n          int // 1-based
}

// placeholders finds the $n parameters of sql outside string literals,
// quoted identifiers, dollar-quoted strings and comments.
func placeholders(sql string) ([]placeholder, error) {
	phs, _, err := lexSQL(sql)
	return phs, err
}

// splitStatements splits a simple query at the semicolons between
// statements; empty statements are dropped.
func splitStatements(sql string) []string {
	_, semis, err := lexSQL(sql)
	if err != nil || len(semis) == 0 {
		return []string{sql}
	}
	var out []string
	last := 0
	for _, i := range append(semis, len(sql)) {
		if part := sql[last:i]; !isEmpty(part) {
			out = append(out, part)
		}
		last = i + 1
	}
	if len(out) == 0 {
		return []string{sql}
	}
	return out
}

// lexSQL finds the $n parameters and the semicolons of sql outside string
// literals, quoted identifiers, dollar-quoted strings and comments.
func lexSQL(sql string) ([]placeholder, []int, error) {
	var out []placeholder
	var semis []int
	identByte := func(c byte) bool {
		return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
	}
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '\'':
			esc := i > 0 && (sql[i-1] == 'e' || sql[i-1] == 'E') && (i < 2 || !identByte(sql[i-2]))
			j := i + 1
			for ; j < len(sql); j++ {
				if esc && sql[j] == '\\' {
					j++
					continue
				}
				if sql[j] == '\'' {
					if j+1 < len(sql) && sql[j+1] == '\'' {
						j++
						continue
					}
					break
				}
			}
			if j >= len(sql) {
				return nil, nil, sqlengine.Errorf(steward.EInvalid, sqlengine.StateSyntax, "unterminated quoted string")
			}
			i = j + 1
		case c == '"':
			j := strings.IndexByte(sql[i+1:], '"')
			for j >= 0 && i+1+j+1 < len(sql) && sql[i+1+j+1] == '"' {
				k := strings.IndexByte(sql[i+1+j+2:], '"')
				if k < 0 {
					j = -1
					break
				}
				j += 2 + k
			}
			if j < 0 {
				return nil, nil, sqlengine.Errorf(steward.EInvalid, sqlengine.StateSyntax, "unterminated quoted identifier")
			}
			i += j + 2
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			j := strings.IndexByte(sql[i:], '\n')
			if j < 0 {
				return out, semis, nil
			}
			i += j + 1
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			depth, j := 1, i+2
			for ; j < len(sql) && depth > 0; j++ {
				if sql[j] == '/' && j+1 < len(sql) && sql[j+1] == '*' {
					depth++
					j++
				} else if sql[j] == '*' && j+1 < len(sql) && sql[j+1] == '/' {
					depth--
					j++
				}
			}
			if depth > 0 {
				return nil, nil, sqlengine.Errorf(steward.EInvalid, sqlengine.StateSyntax, "unterminated /* comment")
			}
			i = j
		case c == '$' && (i == 0 || !identByte(sql[i-1])):
			j := i + 1
			for j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
				j++
			}
			if j > i+1 {
				n, err := strconv.Atoi(sql[i+1 : j])
				if err != nil || n < 1 || n > math.MaxUint16 {
					return nil, nil, sqlengine.Errorf(steward.EInvalid, sqlengine.StateSyntax, "bad parameter number %s", sql[i:j])
				}
				out = append(out, placeholder{start: i, end: j, n: n})
				i = j
				continue
			}
			// A dollar-quoted string: $tag$ ... $tag$.
			for j < len(sql) && identByte(sql[j]) && sql[j] != '$' {
				j++
			}
			if j < len(sql) && sql[j] == '$' {
				tag := sql[i : j+1]
				k := strings.Index(sql[j+1:], tag)
				if k < 0 {
					return nil, nil, sqlengine.Errorf(steward.EInvalid, sqlengine.StateSyntax, "unterminated dollar-quoted string")
				}
				i = j + 1 + k + len(tag)
				continue
			}
			i++
		case c == ';':
			semis = append(semis, i)
			i++
		default:
			i++
		}
	}
	return out, semis, nil
}

var (
	castAfter  = regexp.MustCompile(`^\s*::\s*([A-Za-z_][A-Za-z0-9_]*(?:\s+[A-Za-z_][A-Za-z0-9_]*){0,3})`)
	castAround = regexp.MustCompile(`^\s+(?i:as)\s+([A-Za-z_][A-Za-z0-9_]*(?:\s+[A-Za-z_][A-Za-z0-9_]*){0,3})`)
	castBefore = regexp.MustCompile(`(?i)\bcast\s*\(\s*$`)
)

// inferTypes returns the OID of each of n parameters: the client's where
// it gave one, else the type the statement casts the parameter to, else 0
// (unknown, described to clients as text).
func inferTypes(sql string, phs []placeholder, given []uint32, n int) []uint32 {
	oids := make([]uint32, n)
	copy(oids, given)
	for _, ph := range phs {
		i := ph.n - 1
		if i >= n || oids[i] != 0 {
			continue
		}
		if a := arrayParamOID(sql[ph.end:]); a != 0 {
			oids[i] = a
			continue
		}
		var m []string
		if m = castAfter.FindStringSubmatch(sql[ph.end:]); m == nil && castBefore.MatchString(sql[:ph.start]) {
			m = castAround.FindStringSubmatch(sql[ph.end:])
		}
		if m == nil {
			continue
		}
		words := strings.Fields(strings.ToLower(m[1]))
		for k := len(words); k > 0; k-- {
			if oid, ok := typeNames[strings.Join(words[:k], " ")]; ok {
				oids[i] = oid
				break
			}
		}
	}
	return oids
}

// bindSQL renders sql with each $n replaced by lit(n).
func bindSQL(sql string, phs []placeholder, lit func(n int) string) string {
	var b strings.Builder
	last := 0
	for _, ph := range phs {
		b.WriteString(sql[last:ph.start])
		b.WriteString(lit(ph.n))
		last = ph.end
	}
	b.WriteString(sql[last:])
	return b.String()
}

// nullLiteral is a parameter of type oid as NULL, for describing a
// statement before it is bound.
func nullLiteral(oid uint32) string {
	if t := duckType[oid]; t != "" && oid != oidNumeric {
		return "CAST(NULL AS " + t + ")"
	}
	return "NULL"
}

// sampleLiteral stands for a parameter of type oid while a statement is
// described before it is bound: a value of the type rather than NULL,
// since DuckDB folds expressions over a NULL into an untyped NULL.
// Unknown types are NULL.
func sampleLiteral(oid uint32) string {
	switch oid {
	case oidUnknown, oidUnknownLit:
		return "NULL"
	case oidBool:
		return "false"
	case oidNumeric:
		return "(0)"
	case oidBytea:
		return "CAST('' AS BLOB)"
	case oidDate:
		return "CAST('2000-01-01' AS DATE)"
	case oidTime:
		return "CAST('00:00:00' AS TIME)"
	case oidTimestamp, oidTimestamptz:
		return "CAST('2000-01-01 00:00:00' AS " + duckType[oid] + ")"
	case oidInterval:
		return "CAST('0 days' AS INTERVAL)"
	case oidUUID:
		return "CAST('00000000-0000-0000-0000-000000000000' AS UUID)"
	}
	if t := duckType[oid]; t != "" {
		return "CAST(0 AS " + t + ")"
	}
	if textLike(oid) {
		return "''"
	}
	return "NULL"
}

var numericRE = regexp.MustCompile(`^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$`)

// literal renders one parameter value (nil is NULL) of type oid, in wire
// format fmtCode, as a SQL literal.
func literal(v []byte, oid uint32, fmtCode int16) (string, error) {
	if v == nil {
		return nullLiteral(oid), nil
	}
	if fmtCode != 0 && fmtCode != 1 {
		return "", protoErr("unsupported parameter format code %d", fmtCode)
	}
	bad := func(what string) error {
		return sqlengine.Errorf(steward.EInvalid, "22P03", "incorrect binary data format in a %s parameter", what)
	}
	if textLike(oid) {
		if !utf8.Valid(v) || strings.IndexByte(string(v), 0) >= 0 {
			return "", sqlengine.Errorf(steward.EInvalid, "22021", "invalid byte sequence for encoding \"UTF8\" in a parameter")
		}
		return sqlengine.QuoteString(string(v)), nil
	}
	typ, ok := duckType[oid]
	if !ok {
		return "", sqlengine.Errorf(steward.EInvalid, sqlengine.StateFeature, "parameters of type OID %d are not supported; pass them as text", oid)
	}
	var s string
	if fmtCode == 0 {
		if !utf8.Valid(v) || strings.IndexByte(string(v), 0) >= 0 {
			return "", sqlengine.Errorf(steward.EInvalid, "22021", "invalid byte sequence for encoding \"UTF8\" in a parameter")
		}
		s = string(v)
		switch oid {
		case oidBytea:
			b, err := decodeByteaText(s)
			if err != nil {
				return "", err
			}
			return blobLiteral(b), nil
		case oidNumeric:
			if numericRE.MatchString(s) {
				return "(" + strings.TrimSpace(s) + ")", nil
			}
			return "CAST(" + sqlengine.QuoteString(s) + " AS DOUBLE)", nil // NaN, Infinity; DuckDB rejects anything else
		}
		return "CAST(" + sqlengine.QuoteString(s) + " AS " + typ + ")", nil
	}
	switch oid {
	case oidBool:
		if len(v) != 1 {
			return "", bad("boolean")
		}
		return strconv.FormatBool(v[0] != 0), nil
	case oidInt2:
		if len(v) != 2 {
			return "", bad("smallint")
		}
		return "CAST(" + strconv.Itoa(int(int16(binary.BigEndian.Uint16(v)))) + " AS SMALLINT)", nil
	case oidInt4:
		if len(v) != 4 {
			return "", bad("integer")
		}
		return "CAST(" + strconv.Itoa(int(int32(binary.BigEndian.Uint32(v)))) + " AS INTEGER)", nil
	case oidOID:
		if len(v) != 4 {
			return "", bad("oid")
		}
		return "CAST(" + strconv.FormatUint(uint64(binary.BigEndian.Uint32(v)), 10) + " AS UINTEGER)", nil
	case oidInt8:
		if len(v) != 8 {
			return "", bad("bigint")
		}
		return "CAST(" + strconv.FormatInt(int64(binary.BigEndian.Uint64(v)), 10) + " AS BIGINT)", nil
	case oidFloat4:
		if len(v) != 4 {
			return "", bad("real")
		}
		return floatLiteral(float64(math.Float32frombits(binary.BigEndian.Uint32(v))), 32, "FLOAT"), nil
	case oidFloat8:
		if len(v) != 8 {
			return "", bad("double precision")
		}
		return floatLiteral(math.Float64frombits(binary.BigEndian.Uint64(v)), 64, "DOUBLE"), nil
	case oidBytea:
		return blobLiteral(v), nil
	case oidNumeric:
		s, err := decodeNumeric(v)
		if err != nil {
			return "", bad("numeric")
		}
		if numericRE.MatchString(s) {
			return "(" + s + ")", nil
		}
		return "CAST(" + sqlengine.QuoteString(s) + " AS DOUBLE)", nil
	case oidDate:
		if len(v) != 4 {
			return "", bad("date")
		}
		switch d := int32(binary.BigEndian.Uint32(v)); d {
		case math.MaxInt32:
			s = "infinity"
		case math.MinInt32:
			s = "-infinity"
		default:
			s = pgEpoch.AddDate(0, 0, int(d)).Format("2006-01-02")
		}
	case oidTime:
		if len(v) != 8 {
			return "", bad("time")
		}
		us := int64(binary.BigEndian.Uint64(v))
		if us < 0 || us > 24*3600*1e6 {
			return "", bad("time")
		}
		s = time.Time{}.Add(time.Duration(us) * time.Microsecond).Format("15:04:05.999999")
	case oidTimestamp, oidTimestamptz:
		if len(v) != 8 {
			return "", bad("timestamp")
		}
		switch us := int64(binary.BigEndian.Uint64(v)); us {
		case math.MaxInt64:
			s = "infinity"
		case math.MinInt64:
			s = "-infinity"
		default:
			t := time.UnixMicro(us + pgEpoch.UnixMicro()).UTC()
			s = t.Format("2006-01-02 15:04:05.999999")
			if oid == oidTimestamptz {
				s += "+00"
			}
		}
	case oidInterval:
		if len(v) != 16 {
			return "", bad("interval")
		}
		us := int64(binary.BigEndian.Uint64(v))
		days := int32(binary.BigEndian.Uint32(v[8:]))
		months := int32(binary.BigEndian.Uint32(v[12:]))
		s = fmt.Sprintf("%d months %d days %d microseconds", months, days, us)
	case oidUUID:
		if len(v) != 16 {
			return "", bad("uuid")
		}
		h := hex.EncodeToString(v)
		s = h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	default:
		return "", sqlengine.Errorf(steward.EInvalid, sqlengine.StateFeature, "binary parameters of type OID %d are not supported; pass them as text", oid)
	}
	return "CAST(" + sqlengine.QuoteString(s) + " AS " + typ + ")", nil
}

var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func floatLiteral(f float64, bits int, typ string) string {
	switch {
	case math.IsNaN(f):
		return "CAST('NaN' AS " + typ + ")"
	case math.IsInf(f, 1):
		return "CAST('Infinity' AS " + typ + ")"
	case math.IsInf(f, -1):
		return "CAST('-Infinity' AS " + typ + ")"
	}
	return "CAST(" + strconv.FormatFloat(f, 'g', -1, bits) + " AS " + typ + ")"
}

// blobLiteral renders bytes as a DuckDB BLOB literal with every byte
// escaped, so no byte of the value can end the literal.
func blobLiteral(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b)*4 + 20)
	sb.WriteString("CAST('")
	const digits = "0123456789ABCDEF"
	for _, c := range b {
		sb.WriteString(`\x`)
		sb.WriteByte(digits[c>>4])
		sb.WriteByte(digits[c&15])
	}
	sb.WriteString("' AS BLOB)")
	return sb.String()
}

// decodeByteaText decodes PostgreSQL's text form of bytea: hex (\x...)
// or the escape format.
func decodeByteaText(s string) ([]byte, error) {
	bad := sqlengine.Errorf(steward.EInvalid, "22P02", "invalid input syntax for type bytea")
	if h, ok := strings.CutPrefix(s, `\x`); ok {
		b, err := hex.DecodeString(h)
		if err != nil {
			return nil, bad
		}
		return b, nil
	}
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			out = append(out, s[i])
			continue
		}
		switch {
		case i+1 < len(s) && s[i+1] == '\\':
			out = append(out, '\\')
			i++
		case i+3 < len(s):
			n, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
			if err != nil {
				return nil, bad
			}
			out = append(out, byte(n))
			i += 3
		default:
			return nil, bad
		}
	}
	return out, nil
}

// decodeNumeric decodes PostgreSQL's binary numeric into decimal text.
func decodeNumeric(v []byte) (string, error) {
	if len(v) < 8 {
		return "", fmt.Errorf("short numeric")
	}
	ndigits := int(binary.BigEndian.Uint16(v))
	weight := int(int16(binary.BigEndian.Uint16(v[2:])))
	sign := binary.BigEndian.Uint16(v[4:])
	dscale := int(binary.BigEndian.Uint16(v[6:]))
	switch sign {
	case 0xC000:
		return "NaN", nil
	case 0xD000:
		return "Infinity", nil
	case 0xF000:
		return "-Infinity", nil
	case 0, 0x4000:
	default:
		return "", fmt.Errorf("bad numeric sign")
	}
	if len(v) != 8+2*ndigits || dscale > 0x3FFF || ndigits > 1000 || weight > 1000 || weight < -1000 {
		return "", fmt.Errorf("bad numeric")
	}
	var intPart, frac strings.Builder
	for i := 0; i < ndigits; i++ {
		d := binary.BigEndian.Uint16(v[8+2*i:])
		if d > 9999 {
			return "", fmt.Errorf("bad numeric digit")
		}
		ds := fmt.Sprintf("%04d", d)
		if i <= weight {
			intPart.WriteString(ds)
		} else {
			frac.WriteString(ds)
		}
	}
	ip := intPart.String()
	for i := ndigits; i <= weight; i++ {
		ip += "0000"
	}
	ip = strings.TrimLeft(ip, "0")
	if ip == "" {
		ip = "0"
	}
	fs := frac.String()
	if weight < -1 {
		fs = strings.Repeat("0000", -weight-1) + fs
	}
	if len(fs) < dscale {
		fs += strings.Repeat("0", dscale-len(fs))
	}
	fs = fs[:dscale]
	s := ip
	if fs != "" {
		s += "." + fs
	}
	if sign == 0x4000 {
		s = "-" + s
	}
	return s, nil
}

// encodeNumeric encodes decimal text as PostgreSQL's binary numeric.
func encodeNumeric(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	hdr := func(ndigits, weight int, sign uint16, dscale int) []byte {
		b := make([]byte, 8, 8+2*ndigits)
		binary.BigEndian.PutUint16(b, uint16(ndigits))
		binary.BigEndian.PutUint16(b[2:], uint16(int16(weight)))
		binary.BigEndian.PutUint16(b[4:], sign)
		binary.BigEndian.PutUint16(b[6:], uint16(dscale))
		return b
	}
	switch strings.ToLower(s) {
	case "nan":
		return hdr(0, 0, 0xC000, 0), nil
	case "infinity", "inf", "+infinity":
		return hdr(0, 0, 0xD000, 0), nil
	case "-infinity", "-inf":
		return hdr(0, 0, 0xF000, 0), nil
	}
	if !numericRE.MatchString(s) {
		return nil, fmt.Errorf("not a number: %q", s)
	}
	if strings.ContainsAny(s, "eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, err
		}
		s = strconv.FormatFloat(f, 'f', -1, 64)
	}
	var sign uint16
	switch s[0] {
	case '-':
		sign, s = 0x4000, s[1:]
	case '+':
		s = s[1:]
	}
	ip, fp, _ := strings.Cut(s, ".")
	ip = strings.TrimLeft(ip, "0")
	dscale := len(fp)
	if r := len(ip) % 4; r != 0 {
		ip = strings.Repeat("0", 4-r) + ip
	}
	if r := len(fp) % 4; r != 0 {
		fp += strings.Repeat("0", 4-r)
	}
	all := ip + fp
	weight := len(ip)/4 - 1
	digits := make([]uint16, 0, len(all)/4)
	for i := 0; i < len(all); i += 4 {
		d, _ := strconv.Atoi(all[i : i+4])
		digits = append(digits, uint16(d))
	}
	for len(digits) > 0 && digits[0] == 0 {
		digits = digits[1:]
		weight--
	}
	for len(digits) > 0 && digits[len(digits)-1] == 0 {
		digits = digits[:len(digits)-1]
	}
	if len(digits) == 0 {
		weight, sign = 0, 0
	}
	b := hdr(len(digits), weight, sign, dscale)
	for _, d := range digits {
		b = binary.BigEndian.AppendUint16(b, d)
	}
	return b, nil
}

func protoErr(format string, args ...any) error {
	return sqlengine.Errorf(steward.EInvalid, "08P01", format, args...)
}
