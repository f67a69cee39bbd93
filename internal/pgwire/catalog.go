package pgwire

import (
	"regexp"
	"strings"
)

// System catalog queries (psql's \d, pgjdbc's DatabaseMetaData, driver
// type loading) are answered by the sqlengine over a catalog of what the
// user may discover (sqlengine.CatalogBackend); the session passes the
// database the client connected to, which decides how Steward's catalogs
// map onto PostgreSQL's databases and schemas.

// arrayCast is a cast of a parameter to an array type ($1::oid[]), which
// drivers use in catalog queries (asyncpg's type introspection).
var arrayCast = regexp.MustCompile(`^\s*::\s*([A-Za-z_][A-Za-z0-9_]*)\s*\[\s*\]`)

// arrayOIDs are the array types a parameter may be described as.
var arrayOIDs = map[string]uint32{
	"oid": 1028, "int2": 1005, "int4": 1007, "integer": 1007, "int8": 1016, "bigint": 1016,
	"text": 1009, "name": 1003, "varchar": 1015,
}

// arrayParamOID returns the array type a parameter is cast to right after
// it (rest is the statement after the placeholder), or 0.
func arrayParamOID(rest string) uint32 {
	if m := arrayCast.FindStringSubmatch(rest); m != nil {
		return arrayOIDs[strings.ToLower(m[1])]
	}
	return 0
}
