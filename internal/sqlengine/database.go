package sqlengine

import (
	"context"
	"strings"

	"github.com/stewardhq/steward"
)

// The database a client connected to. A PostgreSQL client names a
// database when it connects (psql -d bank); when that database is one of
// Steward's SQL catalogs that the user can see (the first part of a table
// name: "bank" of bank.pay.transactions), the session behaves as
// PostgreSQL's would in that database with search_path = public:
//
//   - schema.table names database.schema.table (pay.transactions is
//     bank.pay.transactions);
//   - table alone names database.public.table (transactions is
//     bank.public.transactions; 42P01 if there is none);
//   - three-part names are unchanged.
//
// Any other database (the default is the user's name) changes nothing.
// Names are qualified when the statement is analyzed, so that
// authorization, masks, row filters, audit and lineage see the full name,
// and the sandbox runs USE database.public, so that DuckDB binds each
// short name to the view Steward built for its full name. Where DuckDB
// could bind a two-part name differently (its first part names a catalog
// the sandbox attaches, or one of DuckDB's own catalogs or system schemas:
// a.b might be catalog a, schema main, table b, and information_schema.x
// is DuckDB's own), the statement is refused with 42P09 and the user
// writes the three-part name.

// DefaultSchema is the schema a one-part table name resolves to in a
// catalog's database (PostgreSQL's search_path = public).
const DefaultSchema = "public"

// StateAmbiguous is the SQLSTATE of a table name that could name two
// relations.
const StateAmbiguous = "42P09"

// duckdbNames are DuckDB's own catalogs and system schemas: a two-part
// name starting with one of them is not qualified.
var duckdbNames = map[string]bool{"memory": true, "system": true, "temp": true,
	"main": true, "information_schema": true, "pg_catalog": true}

// Qualify returns refs with every name of fewer than three parts
// resolved in database db (a catalog): schema.table as db.schema.table,
// table as db.public.table. A two-part name whose first part is a catalog
// another reference names, db itself, or one of DuckDB's own catalogs or
// system schemas is ambiguous: EInvalid with SQLSTATE 42P09.
func Qualify(refs []TableRef, db string) ([]TableRef, error) {
	cats := map[string]bool{strings.ToLower(db): true}
	for _, r := range refs {
		if len(r) >= 3 {
			cats[strings.ToLower(r[0])] = true
		}
	}
	out := make([]TableRef, len(refs))
	for i, r := range refs {
		switch len(r) {
		case 1:
			out[i] = TableRef{db, DefaultSchema, r[0]}
		case 2:
			if l := strings.ToLower(r[0]); cats[l] || duckdbNames[l] {
				return nil, Errorf(steward.EInvalid, StateAmbiguous,
					"table name %s is ambiguous in database %s: write it with three parts (%s.%s)", r.Name(), db, db, r.Name())
			}
			out[i] = TableRef{db, r[0], r[1]}
		default:
			out[i] = r
		}
	}
	return out, nil
}

// session resolves a statement's short names in its request's database.
// Whether that database is a catalog is asked at most once per statement
// (a CREATE TABLE AS asks for its target and for the names it reads).
type session struct {
	s       *Service
	req     Request
	checked bool
	isCat   bool
}

func (s *Service) session(req Request) *session { return &session{s: s, req: req} }

// isCatalog says whether the request's database is a catalog its user may
// see: the first part of a table the user may discover. It is the rule
// the system catalogs follow (a client connected to such a database sees
// its schemas as PostgreSQL's), so \d and queries agree.
func (ss *session) isCatalog(ctx context.Context) (bool, error) {
	if ss.checked {
		return ss.isCat, nil
	}
	db := ss.req.Database
	if db == "" || duckdbNames[strings.ToLower(db)] || strings.Contains(db, ".") {
		ss.checked = true
		return false, nil
	}
	ts, err := ss.s.c.Tables.Tables(ctx, ss.req.Principal)
	if err != nil {
		return false, err
	}
	ss.checked = true
	for _, t := range ts {
		if cat, _, _, ok := SplitName(t.Name); ok && cat == db {
			ss.isCat = true
			break
		}
	}
	return ss.isCat, nil
}

// inDatabase resolves an's short table names in req's database when that
// database is a catalog; it returns the catalog the sandbox must USE
// ("" when nothing was qualified) and the full name of each name as
// written (lower-cased), for lineage.
func (ss *session) inDatabase(ctx context.Context, an *Analysis) (string, map[string]TableRef, error) {
	req := ss.req
	short := false
	for _, r := range an.Tables {
		short = short || len(r) < 3
	}
	if !short || req.Database == "" {
		return "", nil, nil
	}
	ok, err := ss.isCatalog(ctx)
	if err != nil || !ok {
		return "", nil, err
	}
	q, err := Qualify(an.Tables, req.Database)
	if err != nil {
		return "", nil, err
	}
	full := make(map[string]TableRef, len(q))
	for i, r := range an.Tables {
		full[strings.ToLower(r.Name())] = q[i]
	}
	an.Tables = q
	return req.Database, full, nil
}

// qualifyTarget resolves a writing statement's target in req's database
// as inDatabase resolves names it reads (schema.table and table gain the
// database, and public), refusing the same ambiguous names, so that a
// table is read back by the name it was created with.
func (ss *session) qualifyTarget(ctx context.Context, target []string) ([]string, error) {
	req := ss.req
	if len(target) >= 3 || len(target) == 0 || req.Database == "" {
		return target, nil
	}
	ok, err := ss.isCatalog(ctx)
	if err != nil || !ok {
		return target, err
	}
	q, err := Qualify([]TableRef{target}, req.Database)
	if err != nil {
		return nil, err
	}
	return q[0], nil
}
