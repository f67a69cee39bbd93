package api

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"testing"
	"time"
)

// jsonReference is what the JSON-lines sink wrote before appendJSONRow:
// encoding/json over jsonOf of each value.
func jsonReference(t testing.TB, vals []any) []byte {
	row := make([]any, len(vals))
	for i, v := range vals {
		row[i] = jsonOf(v)
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(row); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAppendJSONRowMatchesEncodingJSON(t *testing.T) {
	ts := time.Date(2026, 11, 26, 12, 30, 45, 123456789, time.FixedZone("x", 5*3600+1800))
	cases := [][]any{
		{nil, true, false, "", "plain", "quote\" back\\slash", "<a href='x'>&amp;</a>", "ctl\x00\x01\x08\x0c\n\r\t\x1f\x7f"},
		{"unicode é 漢字 😀", "line\u2028sep\u2029", "bad\xffutf8\xc3", []byte("bytes\n")},
		{int64(math.MinInt64), int64(math.MaxInt64), int32(-7), int16(300), int8(-1), 42, uint64(math.MaxUint64), uint32(7), uint16(8), uint8(9)},
		{0.0, math.Copysign(0, -1), 1.0, -2.5, 0.1, 1e20, 1e21, 1e-6, 1e-7, 123456789.125, math.MaxFloat64, math.SmallestNonzeroFloat64, -3.0e-9},
		{float32(0.1), float32(-1e-7), math.NaN(), math.Inf(1), math.Inf(-1)},
		{ts, ts.UTC(), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(12345, 1, 1, 0, 0, 0, 0, time.UTC)},
		{big.NewInt(12345), map[string]any{"k": []any{1, "v"}}, []any{int32(1), nil}, [16]byte{1, 2, 3}},
		{},
	}
	for _, c := range cases {
		got := appendJSONRow(nil, c)
		if want := jsonReference(t, c); !bytes.Equal(got, want) {
			t.Errorf("row %v:\n got %s\nwant %s", c, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a", "<>&", "\u2028", "\xff", "\x00\"\\", "é漢😀"} {
		f.Add(s, 1.5, int64(-3))
	}
	f.Fuzz(func(t *testing.T, s string, x float64, n int64) {
		vals := []any{s, []byte(s), x, float32(x), n}
		if got, want := appendJSONRow(nil, vals), jsonReference(t, vals); !bytes.Equal(got, want) {
			t.Fatalf("got %s\nwant %s", got, want)
		}
	})
}

// TestTextOfFastPaths: CSV cells of numbers, booleans and times are what
// the JSON-based conversion gave (NaN and the infinities as their names).
func TestTextOfFastPaths(t *testing.T) {
	ts := time.Date(2026, 11, 26, 12, 30, 45, 120000000, time.FixedZone("x", -3600))
	for _, v := range []any{int64(-5), int32(7), uint8(200), true, 0.1, 1e21, float32(0.25), math.NaN(), math.Inf(-1), ts} {
		want := ""
		switch v.(type) {
		case float64, float32:
			want = string(jsonReference(t, []any{v}))
			want = want[1 : len(want)-2] // [x]\n -> x
			if want[0] == '"' {
				want = want[1 : len(want)-1]
			}
		case time.Time:
			b, _ := json.Marshal(v)
			want = string(b[1 : len(b)-1])
		default:
			b, _ := json.Marshal(v)
			want = string(b)
		}
		if got := textOf(v); got != want {
			t.Errorf("textOf(%v) = %q, want %q", v, got, want)
		}
	}
}

// driverDecimal has the shape of the DuckDB driver's Decimal: no JSON
// method, so encoding/json alone would write {"Width":...} for it.
type driverDecimal struct {
	Width, Scale uint8
	Value        *big.Int
}

func (d driverDecimal) Float64() float64 {
	f, _ := new(big.Float).Quo(new(big.Float).SetInt(d.Value), big.NewFloat(math.Pow10(int(d.Scale)))).Float64()
	return f
}

func (d driverDecimal) String() string {
	s := new(big.Float).Quo(new(big.Float).SetInt(d.Value), big.NewFloat(math.Pow10(int(d.Scale)))).Text('f', int(d.Scale))
	return s
}

// TestDecimalsAreNumbers: a DECIMAL column reaches JSON lines as an exact
// number and CSV as its text, not as the driver's struct.
func TestDecimalsAreNumbers(t *testing.T) {
	for _, c := range []struct {
		d    driverDecimal
		want string
	}{
		{driverDecimal{10, 2, big.NewInt(123450)}, "1234.50"},
		{driverDecimal{10, 2, big.NewInt(-5)}, "-0.05"},
		{driverDecimal{18, 0, big.NewInt(42)}, "42"},
	} {
		if got := string(appendJSONValue(nil, c.d)); got != c.want {
			t.Errorf("JSON of %v = %s, want %s", c.d.Value, got, c.want)
		}
		if got := string(jsonReference(t, []any{c.d})); got != "["+c.want+"]\n" {
			t.Errorf("encoding/json of jsonOf(%v) = %s", c.d.Value, got)
		}
		if got := textOf(c.d); got != c.want {
			t.Errorf("CSV of %v = %s, want %s", c.d.Value, got, c.want)
		}
	}
}
