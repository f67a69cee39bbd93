package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"regexp"
	"sort"
	"strings"

	duckdbdrv "github.com/duckdb/duckdb-go/v2"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/sqlengine"
)

// PostgreSQL system catalog queries (psql's \dt and \d, pgjdbc's
// DatabaseMetaData, driver type loading) run in a fresh sandboxed DuckDB
// (external access off, configuration locked) that holds PostgreSQL-shaped
// catalog tables (catalog_tables.go) filled with the user's discoverable
// tables and nothing else, PostgreSQL's catalog functions as macros, and
// each discoverable table as an EMPTY DuckDB table for information_schema.
// DuckDB's own pg_catalog emulation answers few of psql's queries (no
// pg_get_userbyid, pg_policy, pg_inherits, regclass, OPERATOR(...)), so
// the query is first patched as text, outside literals and quoted names:
// OPERATOR(pg_catalog.~) becomes ~, COLLATE pg_catalog.default goes, and
// the pg_catalog and information_schema qualifiers go, so that names
// resolve to Steward's tables and macros (searched before DuckDB's).
//
// PostgreSQL's databases and schemas map onto Steward's names like this:
// a client connected to a database named like a catalog (psql -d bank)
// sees that catalog's schemas as PostgreSQL schemas (\d crm.people,
// \d bank.crm.people); connected to any other database, it sees every
// catalog, each schema named catalog.schema ("bank.crm").

var _ sqlengine.CatalogBackend = (*Backend)(nil)

// CatalogQuery implements sqlengine.CatalogBackend.
func (b *Backend) CatalogQuery(ctx context.Context, query string) (bool, error) {
	names, err := b.systemRefs(ctx, query)
	return names != nil, err
}

// systemRefs returns the system relations query reads (nil if it is not
// a catalog query).
func (b *Backend) systemRefs(ctx context.Context, query string) (map[string]bool, error) {
	db, err := b.parserDB()
	if err != nil {
		return nil, steward.WrapError(steward.EInternal, "duckdb.CatalogQuery", err, "SQL engine unavailable")
	}
	var js string
	if err := db.QueryRowContext(ctx, "SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", pgSyntax(query)).Scan(&js); err != nil {
		return nil, steward.WrapError(steward.EInternal, "duckdb.CatalogQuery", err, "cannot parse statement")
	}
	an, err := Check([]byte(js))
	if err != nil {
		return nil, nil // not a query Steward runs; the normal path says why
	}
	names := map[string]bool{}
	other := 0
	for _, ref := range an.Tables {
		name, ok := systemName(ref)
		switch {
		case ok && name == "":
			return nil, sqlengine.Errorf(steward.EInvalid, sqlengine.StateFeature,
				"relation %s is not available in Steward's PostgreSQL catalog", ref.Name())
		case ok:
			names[name] = true
		default:
			other++
		}
	}
	if len(names) > 0 && other > 0 {
		return nil, sqlengine.Errorf(steward.EInvalid, sqlengine.StateFeature,
			"a query cannot read PostgreSQL system catalogs and Steward tables together")
	}
	if len(names) == 0 && (other > 0 || !callsCatalogFunction(query)) {
		return nil, nil
	}
	return names, nil
}

// callsCatalogFunction says whether query calls one of PostgreSQL's
// catalog functions (SELECT pg_catalog.format_type(23, -1) reads no
// relation, yet needs the catalog's answer).
func callsCatalogFunction(query string) bool {
	l := strings.ToLower(query)
	for _, m := range catalogMacros {
		name, _, _ := strings.Cut(m, "(")
		if strings.HasPrefix(name, "pg_") || name == "format_type" || strings.HasSuffix(name, "_description") {
			if strings.Contains(l, name+"(") {
				return true
			}
		}
	}
	return false
}

// systemName says whether ref names a system relation (pg_catalog.x,
// information_schema.x, or a bare pg_x) and returns its name if Steward
// provides it ("" if it does not).
func systemName(ref sqlengine.TableRef) (string, bool) {
	var schema, name string
	switch len(ref) {
	case 1:
		name = strings.ToLower(ref[0])
		if !strings.HasPrefix(name, "pg_") {
			return "", false
		}
		schema = "pg_catalog"
	case 2:
		schema, name = strings.ToLower(ref[0]), strings.ToLower(ref[1])
	default:
		return "", false
	}
	switch schema {
	case "pg_catalog":
		if pgTableSet[name] {
			return name, true
		}
		return "", true
	case "information_schema":
		if _, ok := infoViews[name]; ok {
			return name, true
		}
		return "", true
	}
	return "", false
}

// reservedDB are the databases every DuckDB instance has.
var reservedDB = map[string]bool{"memory": true, "system": true, "temp": true}

var pgTableSet = func() map[string]bool {
	m := map[string]bool{}
	for _, t := range pgTables {
		m[t[0]] = true
	}
	return m
}()

// infoViews are the information_schema views a catalog query may read,
// each with the column that names its catalog ("" if none); rows of
// Steward's own helper database are left out.
var infoViews = map[string]string{
	"tables": "table_catalog", "columns": "table_catalog", "views": "table_catalog", "schemata": "catalog_name",
	"table_constraints": "constraint_catalog", "key_column_usage": "constraint_catalog",
	"referential_constraints": "constraint_catalog", "check_constraints": "constraint_catalog",
	"constraint_column_usage": "table_catalog", "constraint_table_usage": "table_catalog", "character_sets": "",
}

// RunCatalog implements sqlengine.CatalogBackend.
func (b *Backend) RunCatalog(ctx context.Context, r *sqlengine.CatalogRun, sink sqlengine.RowSink) (int64, error) {
	query := pgSyntax(r.Query)
	// The checks of any query, again on the text that runs.
	names, err := b.systemRefs(ctx, r.Query)
	if err != nil || names == nil {
		if err == nil {
			err = sqlengine.Errorf(steward.EInvalid, sqlengine.StateFeature, "not a PostgreSQL system catalog query")
		}
		return 0, err
	}
	cat := buildCatalog(r, names, strings.ToLower(query))
	query = unqualify(query, cat.relOID)
	in, err := b.fresh(ctx)
	if err != nil {
		return 0, steward.WrapError(steward.EInternal, "duckdb.RunCatalog", err, "SQL engine unavailable")
	}
	defer b.release(in)
	mem, err := sqlengine.ParseSize(r.Limits.Memory)
	if err != nil || mem <= 0 {
		mem, _ = sqlengine.ParseSize(sqlengine.DefaultLimits.Memory)
	}
	setup := []string{
		"SET enable_external_access=false",
		"SET threads=1",
		fmt.Sprintf("SET memory_limit='%dB'", mem),
		"SET lock_configuration=true",
	}
	setup = append(setup, cat.sql...)
	if _, err := in.conn.ExecContext(ctx, strings.Join(setup, ";\n")); err != nil {
		if ctx.Err() != nil {
			return 0, sqlengine.Errorf(steward.EInvalid, sqlengine.StateCanceled, "canceling statement due to user request")
		}
		b.log.ErrorContext(ctx, "catalog sandbox setup failed", "err", err)
		return 0, steward.WrapError(steward.EInternal, "duckdb.RunCatalog", err, "cannot build the PostgreSQL catalog")
	}
	if err := appendRows(ctx, in.conn, cat.bulk); err != nil {
		if ctx.Err() != nil {
			return 0, sqlengine.Errorf(steward.EInvalid, sqlengine.StateCanceled, "canceling statement due to user request")
		}
		b.log.ErrorContext(ctx, "catalog sandbox rows failed", "err", err)
		return 0, steward.WrapError(steward.EInternal, "duckdb.RunCatalog", err, "cannot build the PostgreSQL catalog")
	}
	rows, err := in.conn.QueryContext(ctx, query)
	if err != nil {
		return 0, catalogErr(ctx, err)
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return 0, catalogErr(ctx, err)
	}
	cols := make([]sqlengine.Column, len(cts))
	for i, ct := range cts {
		cols[i] = sqlengine.Column{Name: ct.Name(), Type: ct.DatabaseTypeName()}
	}
	if err := sink.Columns(cols); err != nil {
		return 0, err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, catalogErr(ctx, err)
		}
		if err := sink.Row(vals); err != nil {
			return n, err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, catalogErr(ctx, err)
	}
	return n, nil
}

// catalogErr reports a catalog query DuckDB could not run as a feature
// Steward does not support (SQLSTATE 0A000), with DuckDB's reason.
func catalogErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return sqlengine.Errorf(steward.EInvalid, sqlengine.StateCanceled, "canceling statement due to user request")
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i > 0 {
		msg = msg[:i]
	}
	return &steward.Error{Kind: steward.EInvalid, Op: sqlengine.StateFeature,
		Message: "this PostgreSQL catalog query is not supported by Steward: " + msg, Err: err}
}

// segment is a piece of statement text: code, or a literal, quoted
// identifier or comment that is kept as it is.
type segment struct {
	text string
	code bool
}

// segments splits sql into code and the rest.
func segments(sql string) []segment {
	var out []segment
	start := 0
	emit := func(end int, code bool) {
		if end > start {
			out = append(out, segment{sql[start:end], code})
		}
		start = end
	}
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '\'':
			emit(i, true)
			escapes := i > 0 && (sql[i-1] == 'E' || sql[i-1] == 'e')
			j := i + 1
			for j < len(sql) {
				if escapes && sql[j] == '\\' {
					j += 2
					continue
				}
				if sql[j] == '\'' {
					if j+1 < len(sql) && sql[j+1] == '\'' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			i = min(j+1, len(sql))
			emit(i, false)
		case c == '"':
			emit(i, true)
			j := i + 1
			for j < len(sql) {
				if sql[j] == '"' {
					if j+1 < len(sql) && sql[j+1] == '"' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			i = min(j+1, len(sql))
			emit(i, false)
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			emit(i, true)
			j := strings.IndexByte(sql[i:], '\n')
			if j < 0 {
				i = len(sql)
			} else {
				i += j
			}
			emit(i, false)
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			emit(i, true)
			j := strings.Index(sql[i+2:], "*/")
			if j < 0 {
				i = len(sql)
			} else {
				i += j + 4
			}
			emit(i, false)
		default:
			i++
		}
	}
	emit(len(sql), true)
	return out
}

var (
	operatorRE = regexp.MustCompile(`(?i)\bOPERATOR\s*\(\s*(?:pg_catalog\s*\.\s*)?([~!<>=*+\-/%^|&#@]+)\s*\)`)
	collateRE  = regexp.MustCompile(`(?i)\bCOLLATE\s+(?:pg_catalog\s*\.\s*)?(?:default\b|"default")`)
	castRE     = regexp.MustCompile(`(?i)(::\s*|\bAS\s+)pg_catalog\s*\.\s*`)
	qualRE     = regexp.MustCompile(`(?i)\b(?:pg_catalog|information_schema)\s*\.\s*`)
	regclassRE = regexp.MustCompile(`(?i)^\s*::\s*(regclass|regtype|regproc)\b`)
)

// pgSyntax rewrites PostgreSQL syntax DuckDB does not parse: OPERATOR(...),
// COLLATE default and casts to pg_catalog types.
func pgSyntax(sql string) string {
	// COLLATE pg_catalog."default" spans a quoted name: handled first.
	sql = strings.NewReplacer(`COLLATE pg_catalog."default"`, "", `collate pg_catalog."default"`, "").Replace(sql)
	var b strings.Builder
	for _, s := range segments(sql) {
		if !s.code {
			b.WriteString(s.text)
			continue
		}
		t := operatorRE.ReplaceAllString(s.text, " $1 ")
		t = collateRE.ReplaceAllString(t, "")
		t = castRE.ReplaceAllString(t, "$1")
		b.WriteString(t)
	}
	return b.String()
}

// unqualify drops the pg_catalog and information_schema qualifiers (also
// quoted ones) and turns 'name'::regclass into the relation's oid and
// 'name'::regtype into the type's.
func unqualify(sql string, relOID func(string) int64) string {
	segs := segments(sql)
	var b strings.Builder
	for i := 0; i < len(segs); i++ {
		s := segs[i]
		if !s.code {
			if m := regclassRE.FindStringSubmatch(next(segs, i)); m != nil && len(s.text) >= 2 && s.text[0] == '\'' {
				name := strings.ReplaceAll(s.text[1:len(s.text)-1], "''", "'")
				switch strings.ToLower(m[1]) {
				case "regtype":
					fmt.Fprintf(&b, "%d", typeOID(name))
				case "regproc":
					fmt.Fprintf(&b, "%d", procOID[strings.TrimPrefix(strings.ToLower(name), "pg_catalog.")])
				default:
					fmt.Fprintf(&b, "%d", relOID(name))
				}
				segs[i+1].text = regclassRE.ReplaceAllString(segs[i+1].text, "")
				continue
			}
			if l := strings.ToLower(s.text); (l == `"pg_catalog"` || l == `"information_schema"`) && i+1 < len(segs) && segs[i+1].code && strings.HasPrefix(segs[i+1].text, ".") {
				segs[i+1].text = segs[i+1].text[1:]
				continue
			}
			b.WriteString(s.text)
			continue
		}
		b.WriteString(qualRE.ReplaceAllString(s.text, ""))
	}
	return aliasSeries(b.String())
}

// next is the code right after segment i, or "".
func next(segs []segment, i int) string {
	if i+1 < len(segs) && segs[i+1].code {
		return segs[i+1].text
	}
	return ""
}

// procOID are the functions of pg_proc: each type's input and receive
// function (PostgreSQL's oids for the array ones, made-up ones above
// PostgreSQL's range for the rest).
var procOID = func() map[string]int64 {
	m := map[string]int64{"array_in": 750, "array_recv": 2400}
	for _, t := range pgTypes {
		m[t.name+"in"] = 100000 + t.oid
		m[t.name+"recv"] = 200000 + t.oid
	}
	return m
}()

// typeOID returns the oid of a PostgreSQL type named as in SQL (int4,
// integer, pg_catalog.text, character varying[]), or 0.
func typeOID(name string) int64 {
	n := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), "pg_catalog.")))
	arr := strings.HasSuffix(n, "[]")
	n = strings.TrimSpace(strings.TrimSuffix(n, "[]"))
	for _, t := range pgTypes {
		if t.name == n || t.format == n || n == "int" && t.oid == 23 || n == "varchar" && t.oid == 1043 {
			if arr {
				return t.array
			}
			return t.oid
		}
	}
	return 0
}

var seriesRE = regexp.MustCompile(`(?i)(?:\bfrom|\bjoin|,)\s*generate_series\s*\(`)

// aliasSeries names the column of generate_series(...) s in FROM after its
// alias, as PostgreSQL does (psql indexes an array with it: prattrs[s]);
// DuckDB would take s for the whole row.
func aliasSeries(sql string) string {
	var b strings.Builder
	for {
		loc := seriesRE.FindStringIndex(sql)
		if loc == nil {
			b.WriteString(sql)
			return b.String()
		}
		depth, end := 1, -1
		for i := loc[1]; i < len(sql) && end < 0; i++ {
			switch sql[i] {
			case '(':
				depth++
			case ')':
				if depth--; depth == 0 {
					end = i + 1
				}
			}
		}
		if end < 0 {
			b.WriteString(sql)
			return b.String()
		}
		b.WriteString(sql[:end])
		rest := sql[end:]
		if m := aliasRE.FindStringSubmatch(rest); m != nil && !sqlKeyword[strings.ToLower(m[2])] &&
			!strings.HasPrefix(strings.TrimSpace(rest[len(m[0]):]), "(") {
			b.WriteString(m[0] + "(" + m[2] + ")")
			rest = rest[len(m[0]):]
		}
		sql = rest
	}
}

var (
	aliasRE    = regexp.MustCompile(`(?i)^(\s+(?:as\s+)?)([a-z_][a-z0-9_]*)\b`)
	sqlKeyword = map[string]bool{"where": true, "join": true, "left": true, "right": true, "inner": true, "full": true, "cross": true,
		"on": true, "group": true, "order": true, "limit": true, "union": true, "natural": true, "using": true, "having": true, "window": true}
)

// pgType is a PostgreSQL type as the catalog shows it.
type pgType struct {
	oid      int64
	name     string // typname
	format   string // format_type's name
	length   int
	category string
	array    int64 // the array type's oid
	elem     int64 // for array types, the element type
}

var pgTypes = []pgType{
	{16, "bool", "boolean", 1, "B", 1000, 0},
	{17, "bytea", "bytea", -1, "U", 1001, 0},
	{18, "char", `"char"`, 1, "Z", 1002, 0},
	{19, "name", "name", 64, "S", 1003, 0},
	{20, "int8", "bigint", 8, "N", 1016, 0},
	{21, "int2", "smallint", 2, "N", 1005, 0},
	{23, "int4", "integer", 4, "N", 1007, 0},
	{24, "regproc", "regproc", 4, "N", 1008, 0},
	{25, "text", "text", -1, "S", 1009, 0},
	{26, "oid", "oid", 4, "N", 1028, 0},
	{114, "json", "json", -1, "U", 199, 0},
	{700, "float4", "real", 4, "N", 1021, 0},
	{701, "float8", "double precision", 8, "N", 1022, 0},
	{1042, "bpchar", "character", -1, "S", 1014, 0},
	{1043, "varchar", "character varying", -1, "S", 1015, 0},
	{1082, "date", "date", 4, "D", 1182, 0},
	{1083, "time", "time without time zone", 8, "D", 1183, 0},
	{1114, "timestamp", "timestamp without time zone", 8, "D", 1115, 0},
	{1184, "timestamptz", "timestamp with time zone", 8, "D", 1185, 0},
	{1186, "interval", "interval", 16, "T", 1187, 0},
	{1700, "numeric", "numeric", -1, "N", 1231, 0},
	{2205, "regclass", "regclass", 4, "N", 2210, 0},
	{2206, "regtype", "regtype", 4, "N", 2211, 0},
	{2950, "uuid", "uuid", 16, "U", 2951, 0},
	{3802, "jsonb", "jsonb", -1, "U", 3807, 0},
	{2249, "record", "record", -1, "P", 2287, 0},
	{2277, "anyarray", "anyarray", -1, "P", 0, 0},
	{2278, "void", "void", 4, "P", 0, 0},
	{705, "unknown", "unknown", -2, "X", 0, 0},
}

// pgTypeOf maps a DuckDB column type to a PostgreSQL type oid and typmod,
// as the wire protocol describes result columns.
func pgTypeOf(t string) (int64, int) {
	u := strings.ToUpper(strings.TrimSpace(t))
	switch {
	case u == "BOOLEAN":
		return 16, -1
	case u == "TINYINT" || u == "SMALLINT" || u == "UTINYINT":
		return 21, -1
	case u == "INTEGER" || u == "USMALLINT":
		return 23, -1
	case u == "BIGINT" || u == "UINTEGER":
		return 20, -1
	case strings.HasPrefix(u, "DECIMAL(") || strings.HasPrefix(u, "NUMERIC("):
		var p, s int
		if _, err := fmt.Sscanf(u[strings.IndexByte(u, '(')+1:], "%d,%d", &p, &s); err == nil {
			return 1700, (p<<16 | s) + 4
		}
		return 1700, -1
	case u == "HUGEINT" || u == "UBIGINT" || u == "UHUGEINT" || u == "DECIMAL":
		return 1700, -1
	case u == "FLOAT" || u == "REAL":
		return 700, -1
	case u == "DOUBLE":
		return 701, -1
	case u == "BLOB":
		return 17, -1
	case u == "DATE":
		return 1082, -1
	case u == "TIME":
		return 1083, -1
	case u == "TIMESTAMP" || u == "TIMESTAMP_S" || u == "TIMESTAMP_MS" || u == "TIMESTAMP_NS":
		return 1114, -1
	case u == "TIMESTAMPTZ" || u == "TIMESTAMP WITH TIME ZONE":
		return 1184, -1
	case u == "INTERVAL":
		return 1186, -1
	case u == "UUID":
		return 2950, -1
	case u == "JSON":
		return 114, -1
	}
	return 25, -1
}

// Fixed oids, as PostgreSQL numbers them; Steward's own objects start at
// firstOID.
const (
	ownerOID     = 10
	nsPgCatalog  = 11
	nsInfoSchema = 13000
	firstOID     = 16384
	relPgClass   = 1259
	collDefault  = 100
	stewardOwner = "steward"
)

// catalog is the setup SQL of one catalog query's sandbox.
type catalog struct {
	sql  []string
	bulk []*bulkRows      // rows added after sql has run
	rels map[string]int64 // "ns.rel" and "rel" -> oid
}

func (c *catalog) relOID(name string) int64 {
	switch strings.ToLower(strings.TrimPrefix(name, "pg_catalog.")) {
	case "pg_class":
		return relPgClass
	case "pg_type":
		return 1247
	case "pg_attribute":
		return 1249
	case "pg_proc":
		return 1255
	case "pg_namespace":
		return 2615
	case "pg_constraint":
		return 2606
	case "pg_database":
		return 1262
	}
	return c.rels[name]
}

// buildCatalog renders, as SQL, the catalog of r.Tables that a query
// reading the system relations names needs; text is the query, lower
// case. Only what the query names is built (each statement costs about a
// millisecond): its relations, and the types and functions its text
// mentions, with the relations those functions read.
func buildCatalog(r *sqlengine.CatalogRun, names map[string]bool, text string) *catalog {
	c := &catalog{rels: map[string]int64{}}
	add := func(s string, args ...any) { c.sql = append(c.sql, fmt.Sprintf(s, args...)) }
	var macros []string
	for _, m := range catalogMacros {
		name, _, _ := strings.Cut(m, "(")
		if strings.Contains(text, name) || name == "regexp_full_match" && strings.Contains(text, "~") {
			macros = append(macros, m)
			for _, dep := range macroReads[name] {
				names[dep] = true
			}
		}
	}
	need := func(table string) bool { return names[table] }
	// Types that PostgreSQL's catalog queries cast to.
	for _, t := range []string{"regclass", "regtype", "regnamespace", "regrole", "regoper", "regoperator", "regconfig", "regdictionary", "regcollation", "xid", "cid", "tid"} {
		if strings.Contains(text, t) {
			add("CREATE TYPE %s AS BIGINT", t)
		}
	}
	for _, t := range []string{"regproc", "regprocedure"} {
		if strings.Contains(text, t) {
			add("CREATE TYPE %s AS BIGINT", t)
		}
	}
	for _, t := range []string{"name", "aclitem", "pg_node_tree", "pg_lsn"} {
		if strings.Contains(text, t) {
			add("CREATE TYPE %s AS VARCHAR", t)
		}
	}
	if strings.Contains(text, "int2vector") {
		add("CREATE TYPE int2vector AS SMALLINT[]")
	}
	if strings.Contains(text, "oidvector") {
		add("CREATE TYPE oidvector AS BIGINT[]")
	}
	for _, t := range pgTables {
		if need(t[0]) {
			add("CREATE TABLE %s(%s)", t[0], t[1])
		}
	}
	if need("steward_type_format") {
		add("CREATE TABLE steward_type_format(oid BIGINT, fmt VARCHAR)")
	}
	infoNeeded := false
	for v := range infoViews {
		infoNeeded = infoNeeded || need(v)
	}

	// Which tables show, and under which namespace.
	catalogs := map[string]bool{}
	for _, t := range r.Tables {
		catalogs[t.Catalog] = true
	}
	nsName := func(t sqlengine.CatalogTable) (string, bool) {
		if catalogs[r.Database] {
			return t.Schema, t.Catalog == r.Database
		}
		return t.Catalog + "." + t.Schema, true
	}
	tables := append([]sqlengine.CatalogTable(nil), r.Tables...)
	sort.Slice(tables, func(i, j int) bool {
		a, b := tables[i], tables[j]
		if a.Catalog != b.Catalog {
			return a.Catalog < b.Catalog
		}
		if a.Schema != b.Schema {
			return a.Schema < b.Schema
		}
		return a.Table < b.Table
	})
	next := int64(firstOID)
	oid := func() int64 { next++; return next - 1 }
	lit := sqlengine.QuoteString
	user := r.User
	if user == "" {
		user = stewardOwner
	}

	// Databases: the one connected to, and every catalog.
	dbs := []string{}
	if r.Database != "" {
		dbs = append(dbs, r.Database)
	}
	for name := range catalogs {
		if name != r.Database {
			dbs = append(dbs, name)
		}
	}
	sort.Strings(dbs[min(1, len(dbs)):])
	for i, d := range dbs {
		if !need("pg_database") {
			break
		}
		add("INSERT INTO pg_database(oid, datname, datdba, encoding, datlocprovider, datallowconn, datconnlimit, dattablespace, datcollate, datctype) VALUES (%d, %s, %d, 6, 'c', true, -1, 1663, 'C', 'C')",
			int64(firstOID-100+i), lit(d), ownerOID)
	}
	if need("pg_roles") {
		add("INSERT INTO pg_roles(oid, rolname, rolinherit, rolcanlogin, rolconnlimit) VALUES (%d, %s, true, false, -1)", ownerOID, lit(stewardOwner))
		if user != stewardOwner {
			add("INSERT INTO pg_roles(oid, rolname, rolinherit, rolcanlogin, rolconnlimit) VALUES (%d, %s, true, true, -1)", firstOID-1, lit(user))
		}
	}
	if need("pg_user") && user != stewardOwner {
		add("INSERT INTO pg_user(usename, usesysid) VALUES (%s, %d)", lit(user), firstOID-1)
	}
	if need("pg_tablespace") {
		add("INSERT INTO pg_tablespace(oid, spcname, spcowner) VALUES (1663, 'pg_default', %d), (1664, 'pg_global', %d)", ownerOID, ownerOID)
	}
	if need("pg_am") {
		add("INSERT INTO pg_am(oid, amname, amhandler, amtype) VALUES (2, 'heap', 0, 't'), (403, 'btree', 0, 'i')")
	}
	if need("pg_collation") {
		add("INSERT INTO pg_collation(oid, collname, collnamespace, collowner, collprovider, collisdeterministic, collencoding) VALUES (%d, 'default', %d, %d, 'd', true, -1), (950, 'C', %d, %d, 'c', true, -1)",
			collDefault, nsPgCatalog, ownerOID, nsPgCatalog, ownerOID)
	}
	if need("pg_namespace") {
		add("INSERT INTO pg_namespace(oid, nspname, nspowner) VALUES (%d, 'pg_catalog', %d), (%d, 'information_schema', %d)", nsPgCatalog, ownerOID, nsInfoSchema, ownerOID)
	}

	// Types.
	// Types, and their input and receive functions (regproc columns hold
	// pg_proc oids: drivers tell arrays by typinput = array_in or by
	// typreceive's proname = array_recv).
	var tv, fv, pv []string
	for _, t := range pgTypes {
		typtype := "b"
		if t.category == "P" {
			typtype = "p"
		}
		tv = append(tv, fmt.Sprintf("(%d, %s, %d, %d, %d, %t, %s, %s, true, ',', %d, %d, %d, %d, 'i', 'p', -1, %d)",
			t.oid, lit(t.name), nsPgCatalog, ownerOID, t.length, t.length > 0 && t.length <= 8, lit(typtype), lit(t.category), t.elem, t.array,
			procOID[t.name+"in"], procOID[t.name+"recv"], collOf(t)))
		fv = append(fv, fmt.Sprintf("(%d, %s)", t.oid, lit(t.format)))
		if t.array != 0 {
			tv = append(tv, fmt.Sprintf("(%d, %s, %d, %d, -1, false, 'b', 'A', true, ',', %d, 0, %d, %d, 'd', 'x', -1, %d)",
				t.array, lit("_"+t.name), nsPgCatalog, ownerOID, t.oid, procOID["array_in"], procOID["array_recv"], collOf(t)))
			fv = append(fv, fmt.Sprintf("(%d, %s)", t.array, lit(t.format+"[]")))
		}
	}
	for name, oid := range procOID {
		pv = append(pv, fmt.Sprintf("(%d, %s, %d, %d)", oid, lit(name), nsPgCatalog, ownerOID))
	}
	sort.Strings(pv)
	if need("pg_type") {
		add("INSERT INTO pg_type(oid, typname, typnamespace, typowner, typlen, typbyval, typtype, typcategory, typisdefined, typdelim, typelem, typarray, typinput, typreceive, typalign, typstorage, typtypmod, typcollation) VALUES %s", strings.Join(tv, ", "))
	}
	if need("pg_proc") {
		add("INSERT INTO pg_proc(oid, proname, pronamespace, proowner) VALUES %s", strings.Join(pv, ", "))
	}
	if need("steward_type_format") {
		add("INSERT INTO steward_type_format VALUES %s", strings.Join(fv, ", "))
	}

	// Namespaces, tables and columns, and the empty tables information_schema reads.
	nsRows := &bulkRows{table: "pg_namespace", cols: []string{"oid BIGINT", "nspname VARCHAR", "nspowner BIGINT"}}
	classRows := &bulkRows{table: "pg_class", cols: []string{"oid BIGINT", "relname VARCHAR", "relnamespace BIGINT", "relowner BIGINT",
		"relam BIGINT", "reltuples FLOAT", "relpersistence VARCHAR", "relkind VARCHAR", "relnatts SMALLINT", "relispopulated BOOLEAN", "relreplident VARCHAR"}}
	tablesRows := &bulkRows{table: "pg_tables", cols: []string{"schemaname VARCHAR", "tablename VARCHAR", "tableowner VARCHAR"}}
	attRows := &bulkRows{table: "pg_attribute", cols: []string{"attrelid BIGINT", "attname VARCHAR", "atttypid BIGINT", "attstattarget INTEGER",
		"attlen SMALLINT", "attnum SMALLINT", "attcacheoff INTEGER", "atttypmod INTEGER", "attbyval BOOLEAN", "attalign VARCHAR", "attstorage VARCHAR",
		"attcompression VARCHAR", "attidentity VARCHAR", "attgenerated VARCHAR", "attislocal BOOLEAN", "attcollation BIGINT"}}
	nsOID := map[string]int64{}
	attached := map[string]bool{}
	schemas := map[string]bool{}
	var schemaKeys []string
	for _, t := range tables {
		ns, show := nsName(t)
		if !show {
			continue
		}
		if _, ok := nsOID[ns]; !ok {
			nsOID[ns] = oid()
			nsRows.add(nsOID[ns], ns, ownerOID)
		}
		rel := oid()
		c.rels[ns+"."+t.Table] = rel
		c.rels[q(ns)+"."+q(t.Table)] = rel
		if _, dup := c.rels[t.Table]; !dup {
			c.rels[t.Table] = rel
		}
		classRows.add(rel, t.Table, nsOID[ns], ownerOID, 2, -1, "p", "r", len(t.Columns), true, "d")
		tablesRows.add(ns, t.Table, stewardOwner)
		var cols []string
		for i, col := range t.Columns {
			typ, mod := pgTypeOf(col.Type)
			var length int
			var coll int64
			for _, pt := range pgTypes {
				if pt.oid == typ {
					length, coll = pt.length, collOf(pt)
				}
			}
			storage := "p"
			if length < 0 {
				storage = "x"
			}
			attRows.add(rel, col.Name, typ, -1, length, i+1, -1, mod, length > 0 && length <= 8, "i", storage, "", "", "", true, coll)
			ct := col.Type
			if !safeType.MatchString(ct) {
				ct = "VARCHAR"
			}
			cols = append(cols, q(col.Name)+" "+ct)
		}
		if l := strings.ToLower(t.Schema); !infoNeeded || reservedDB[strings.ToLower(t.Catalog)] || l == "pg_catalog" || l == "information_schema" {
			continue // named like DuckDB's own databases or schemas: left out of information_schema
		}
		if !attached[t.Catalog] {
			attached[t.Catalog] = true
			add("ATTACH ':memory:' AS %s", q(t.Catalog))
		}
		if k := t.Catalog + "." + t.Schema; !schemas[k] {
			schemas[k] = true
			schemaKeys = append(schemaKeys, lit(k))
			add("CREATE SCHEMA IF NOT EXISTS %s.%s", q(t.Catalog), q(t.Schema))
		}
		if len(cols) > 0 {
			add("CREATE TABLE %s.%s.%s(%s)", q(t.Catalog), q(t.Schema), q(t.Table), strings.Join(cols, ", "))
		}
	}
	for _, j := range []*bulkRows{nsRows, classRows, tablesRows, attRows} {
		if need(j.table) && len(j.rows) > 0 {
			c.bulk = append(c.bulk, j)
		}
	}
	var visible []string
	for ns := range nsOID {
		visible = append(visible, ns)
	}
	sort.Strings(visible)

	// information_schema: DuckDB's views over the empty tables, without
	// the rows of this sandbox's own catalog.
	for v, col := range infoViews {
		if !need(v) {
			continue
		}
		where := ""
		if col != "" {
			where = " WHERE " + col + " NOT IN ('memory', 'system', 'temp')"
		}
		if v == "schemata" {
			where = " WHERE catalog_name || '.' || schema_name IN (" + strings.Join(append(schemaKeys, "''"), ", ") + ")"
		}
		add("CREATE VIEW %s AS SELECT * FROM system.information_schema.%s%s", q(v), q(v), where)
	}

	// PostgreSQL's catalog functions, as far as the catalog tells.
	first := "main"
	if len(visible) > 0 {
		first = visible[0]
	}
	for _, m := range macros {
		switch {
		case strings.HasPrefix(m, "current_database("):
			m += lit(r.Database)
		case strings.HasPrefix(m, "current_schema("):
			m += lit(first)
		case strings.HasPrefix(m, "current_schemas("):
			m += "CASE WHEN implicit THEN ['pg_catalog', " + lit(first) + "] ELSE [" + lit(first) + "] END"
		}
		add("CREATE MACRO %s", m)
	}
	c.sql = mergeInserts(c.sql)
	return c
}

// bulkRows are rows for one catalog table, added with DuckDB's appender
// after the setup: DuckDB binds a VALUES list of thousands of rows slowly
// (10,000 pg_attribute rows took 11 s as VALUES, 1 s from a JSON literal).
type bulkRows struct {
	table string
	cols  []string // "name TYPE", in the order of add's values
	rows  [][]driver.Value
}

func (j *bulkRows) add(vals ...any) {
	row := make([]driver.Value, len(vals))
	for i, v := range vals {
		_, typ, _ := strings.Cut(j.cols[i], " ")
		switch n := v.(type) {
		case int:
			v = int64(n)
		case int64:
		default:
			row[i] = v
			continue
		}
		n := v.(int64)
		switch typ {
		case "SMALLINT":
			v = int16(n)
		case "INTEGER":
			v = int32(n)
		case "FLOAT":
			v = float32(n)
		}
		row[i] = v
	}
	j.rows = append(j.rows, row)
}

func (j *bulkRows) names() []string {
	out := make([]string, len(j.cols))
	for i, c := range j.cols {
		out[i], _, _ = strings.Cut(c, " ")
	}
	return out
}

// appendRows adds each bulkRows' rows to its table in the default database.
func appendRows(ctx context.Context, conn *sql.Conn, bulk []*bulkRows) error {
	return conn.Raw(func(dc any) error {
		dconn, ok := dc.(driver.Conn)
		if !ok {
			return fmt.Errorf("unexpected driver connection %T", dc)
		}
		for _, b := range bulk {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			app, err := duckdbdrv.NewAppenderWithColumns(dconn, "", "main", b.table, b.names())
			if err != nil {
				return err
			}
			for _, r := range b.rows {
				if err := app.AppendRow(r...); err != nil {
					app.Close()
					return err
				}
			}
			if err := app.Close(); err != nil {
				return err
			}
		}
		return nil
	})
}

// mergeInserts makes the INSERTs into one table with one column list a
// single statement, where the first of them was: each statement costs
// about a millisecond, so a catalog of a thousand tables would otherwise
// take seconds to build.
func mergeInserts(stmts []string) []string {
	out := make([]string, 0, len(stmts))
	at := map[string]int{}
	for _, st := range stmts {
		prefix, values, ok := strings.Cut(st, ") VALUES ")
		if !ok || !strings.HasPrefix(st, "INSERT INTO ") {
			out = append(out, st)
			continue
		}
		if i, seen := at[prefix]; seen {
			out[i] += ", " + values
			continue
		}
		at[prefix] = len(out)
		out = append(out, st)
	}
	return out
}

func collOf(t pgType) int64 {
	if t.category == "S" {
		return collDefault
	}
	return 0
}

// catalogMacros are PostgreSQL's catalog functions as DuckDB macros (name
// first); current_database, current_schema and current_schemas get their
// bodies per query.
var catalogMacros = []string{
	"pg_get_userbyid(u) AS CASE WHEN u = " + fmt.Sprint(ownerOID) + " THEN " + sqlengine.QuoteString(stewardOwner) + " ELSE (SELECT first(rolname) FROM pg_roles WHERE oid = u) END",
	"pg_table_is_visible(x) AS true",
	"pg_type_is_visible(x) AS true",
	"pg_function_is_visible(x) AS true",
	"pg_table_size(x) AS 0",
	"pg_indexes_size(x) AS 0",
	"pg_total_relation_size(x) AS 0",
	"pg_relation_size(x) AS 0, (x, f) AS 0",
	"pg_size_pretty(x) AS x || ' bytes'",
	"obj_description(x) AS NULL::VARCHAR, (x, c) AS NULL::VARCHAR",
	"col_description(x, n) AS NULL::VARCHAR",
	"shobj_description(x, c) AS NULL::VARCHAR",
	"format_type(t, m) AS (SELECT first(CASE WHEN t = 1700 AND m > 4 THEN 'numeric(' || ((m - 4) >> 16) || ',' || ((m - 4) & 65535) || ')' ELSE fmt END) FROM steward_type_format WHERE oid = t)",
	"pg_get_expr(e, r) AS NULL::VARCHAR, (e, r, p) AS NULL::VARCHAR",
	"pg_get_constraintdef(x) AS NULL::VARCHAR, (x, p) AS NULL::VARCHAR",
	"pg_get_indexdef(x) AS NULL::VARCHAR, (x, n, p) AS NULL::VARCHAR",
	"pg_get_viewdef(x) AS NULL::VARCHAR, (x, p) AS NULL::VARCHAR",
	"pg_get_triggerdef(x) AS NULL::VARCHAR, (x, p) AS NULL::VARCHAR",
	"pg_get_ruledef(x) AS NULL::VARCHAR, (x, p) AS NULL::VARCHAR",
	"pg_get_partkeydef(x) AS NULL::VARCHAR",
	"pg_get_statisticsobjdef_columns(x) AS NULL::VARCHAR",
	"pg_get_function_identity_arguments(x) AS ''",
	"pg_get_function_arguments(x) AS ''",
	"pg_get_function_result(x) AS NULL::VARCHAR",
	"pg_tablespace_location(x) AS ''",
	"pg_database_size(x) AS 0",
	"pg_get_serial_sequence(t, c) AS NULL::VARCHAR",
	"pg_relation_is_publishable(x) AS false",
	"pg_encoding_to_char(x) AS 'UTF8'",
	"pg_is_in_recovery() AS false",
	"pg_backend_pid() AS 0",
	"array_upper(a, d) AS CASE WHEN len(a) > 0 THEN len(a) END",
	"array_lower(a, d) AS CASE WHEN len(a) > 0 THEN 1 END",
	"current_database() AS ", // + the database
	"current_schema() AS ",   // + the first schema
	"current_schemas(implicit) AS ",
	"version() AS 'PostgreSQL 16.0 (Steward governed SQL on DuckDB)'",
	"has_table_privilege(a, b) AS true, (a, b, c) AS true",
	"has_schema_privilege(a, b) AS true, (a, b, c) AS true",
	"has_database_privilege(a, b) AS true, (a, b, c) AS true",
	"has_column_privilege(a, b, c) AS true, (a, b, c, d) AS true",
	"pg_has_role(a, b) AS false, (a, b, c) AS false",
	"quote_ident(x) AS '\"' || replace(x, '\"', '\"\"') || '\"'",
	"_pg_expandarray(a) AS {'x': NULL::INTEGER, 'n': NULL::INTEGER}",
	// PostgreSQL's ~ finds a match anywhere; DuckDB's matches the whole.
	"regexp_full_match(s, p) AS regexp_matches(s, p)",
}

// macroReads are the relations a macro reads.
var macroReads = map[string][]string{
	"pg_get_userbyid": {"pg_roles"},
	"format_type":     {"steward_type_format"},
}
