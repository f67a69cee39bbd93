package trino

import (
	"strings"

	"github.com/stewardhq/steward/internal/policy"
)

// quoteIdent quotes a column name as a Trino identifier.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// stringType reports whether a Trino type name is a character type (or
// unknown, which Trino's older versions leave empty).
func stringType(t string) bool {
	t = strings.ToLower(strings.TrimSpace(t))
	return t == "" || strings.HasPrefix(t, "varchar") || strings.HasPrefix(t, "char")
}

func dateType(t string) bool {
	t = strings.ToLower(strings.TrimSpace(t))
	return t == "date" || strings.HasPrefix(t, "timestamp")
}

// MaskSQL renders a Steward mask as a Trino SQL expression over the column
// named column of Trino type columnType. ok is false when the column is
// shown unmasked (MaskNone). Masks that need a character column on other
// types, and date masks on non-date types, become NULL, which Trino
// coerces to any column type.
func MaskSQL(m policy.Mask, column, columnType string) (expr string, ok bool) {
	c := quoteIdent(column)
	str := stringType(columnType)
	switch m.Type {
	case policy.MaskNone:
		return "", false
	case policy.MaskNull:
		return "NULL", true
	case policy.MaskRedact:
		if !str {
			return "NULL", true
		}
		return "regexp_replace(regexp_replace(regexp_replace(" + c + ", '[A-Z]', 'X'), '[a-z]', 'x'), '[0-9]', '0')", true
	case policy.MaskShowLast4:
		if !str {
			return "NULL", true
		}
		return "concat(regexp_replace(substr(" + c + ", 1, greatest(length(" + c + ") - 4, 0)), '.', 'x'), substr(" + c + ", greatest(length(" + c + ") - 3, 1)))", true
	case policy.MaskShowFirst4:
		if !str {
			return "NULL", true
		}
		return "concat(substr(" + c + ", 1, 4), regexp_replace(substr(" + c + ", 5), '.', 'x'))", true
	case policy.MaskHash:
		if !str {
			return "NULL", true
		}
		// lower: Trino's to_hex is upper-case; Steward's own SQL (DuckDB's
		// sha256) shows lower-case hex, and both must show the same value.
		return "lower(to_hex(sha256(to_utf8(cast(" + c + " as varchar)))))", true
	case policy.MaskDateShowYear:
		if !dateType(columnType) {
			return "NULL", true
		}
		return "date_trunc('year', " + c + ")", true
	case policy.MaskCustom:
		return strings.ReplaceAll(m.Expr, "{col}", c), true
	}
	return "NULL", true // unknown mask type: fail closed
}
