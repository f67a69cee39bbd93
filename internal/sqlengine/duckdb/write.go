package duckdb

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/sqlengine"
)

var (
	_ sqlengine.Materializer = (*Backend)(nil)
	_ sqlengine.Deriver      = (*Backend)(nil)
)

// Materialize implements sqlengine.Materializer. The user's query is only
// ever nested as a subquery of a SELECT that Steward writes; that SELECT
// is checked again as a whole (one plain SELECT, nothing outside the
// sandbox), and the COPY around it names a file Steward chose inside the
// query's directory, the only directory the sandbox may touch.
func (b *Backend) Materialize(ctx context.Context, r *sqlengine.Run, out string, shape []sqlengine.Shape) ([]sqlengine.Column, int64, error) {
	dir := strings.TrimSuffix(r.Dir, "/") + "/"
	if filepath.Dir(out)+"/" != dir || !strings.HasSuffix(out, ".parquet") {
		return nil, 0, steward.Errorf(steward.EInternal, "output file outside the query directory")
	}
	inner := "(\n" + r.Query + "\n)"
	probe := "SELECT * FROM " + inner + " AS _steward_src LIMIT 0"
	if err := b.recheck(ctx, probe); err != nil {
		return nil, 0, err
	}
	in, _, err := b.sandbox(ctx, r)
	if err != nil {
		return nil, 0, err
	}
	// Closed before returning: the written file is complete and no engine
	// holds it when the caller commits it.
	defer in.close()
	conn := in.conn
	rows, err := conn.QueryContext(ctx, probe)
	if err != nil {
		return nil, 0, b.engineErr(ctx, err, dir)
	}
	cts, err := rows.ColumnTypes()
	if err != nil {
		rows.Close()
		return nil, 0, b.engineErr(ctx, err, dir)
	}
	cols := make([]sqlengine.Column, len(cts))
	for i, ct := range cts {
		cols[i] = sqlengine.Column{Name: ct.Name(), Type: ct.DatabaseTypeName()}
	}
	rows.Close()
	if len(cols) == 0 {
		return nil, 0, sqlengine.Errorf(steward.EInvalid, sqlengine.StateSyntax, "the query returns no columns")
	}
	sel := "SELECT * FROM " + inner + " AS _steward_src"
	if shape != nil {
		used := 0
		var items, names []string
		for i := range cols {
			names = append(names, q("c"+strconv.Itoa(i+1)))
		}
		for _, sh := range shape {
			if !safeType.MatchString(sh.Type) {
				return nil, 0, sqlengine.Errorf(steward.EInvalid, sqlengine.StateFeature, "column %s has type %q, which INSERT cannot write", sh.Name, sh.Type)
			}
			src := "NULL"
			if sh.From > 0 {
				used++
				if sh.From > len(cols) {
					return nil, 0, sqlengine.Errorf(steward.EInvalid, sqlengine.StateSyntax, "INSERT has more target columns than expressions")
				}
				src = q("c" + strconv.Itoa(sh.From))
			}
			items = append(items, "CAST("+src+" AS "+sh.Type+") AS "+q(sh.Name))
		}
		if used < len(cols) {
			return nil, 0, sqlengine.Errorf(steward.EInvalid, sqlengine.StateSyntax, "INSERT has more expressions than target columns")
		}
		sel = "SELECT " + strings.Join(items, ", ") + " FROM " + inner + " AS _steward_src(" + strings.Join(names, ", ") + ")"
	}
	if err := b.recheck(ctx, sel); err != nil {
		return nil, 0, err
	}
	res, err := conn.ExecContext(ctx, "COPY ("+sel+") TO "+lit(out)+" (FORMAT parquet)")
	if err != nil {
		return nil, 0, b.engineErr(ctx, err, dir)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, 0, steward.WrapError(steward.EInternal, "duckdb.Materialize", err, "cannot count the rows written")
	}
	return cols, n, nil
}

// recheck parses the SELECT Steward built around the user's query and
// checks it as a query.
func (b *Backend) recheck(ctx context.Context, sel string) error {
	_, err := b.Analyze(ctx, sel)
	return err
}

// Derive implements sqlengine.Deriver.
func (b *Backend) Derive(ctx context.Context, query string) (*sqlengine.Derivation, error) {
	db, err := b.parserDB()
	if err != nil {
		return nil, steward.WrapError(steward.EInternal, "duckdb.Derive", err, "SQL engine unavailable")
	}
	var js string
	if err := db.QueryRowContext(ctx, "SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", query).Scan(&js); err != nil {
		return nil, steward.WrapError(steward.EInternal, "duckdb.Derive", err, "cannot parse statement")
	}
	return DeriveJSON([]byte(js)), nil
}

// DeriveJSON reads the output of json_serialize_sql for one plain SELECT
// whose FROM clause holds only tables and joins (no CTEs, subqueries, set
// operations or USING joins under a star) and returns what each
// select-list entry derives from; nil for anything else.
func DeriveJSON(js []byte) *sqlengine.Derivation {
	var top struct {
		Error      bool `json:"error"`
		Statements []struct {
			Node *selectNode `json:"node"`
		} `json:"statements"`
	}
	if err := json.Unmarshal(js, &top); err != nil || top.Error || len(top.Statements) != 1 || top.Statements[0].Node == nil {
		return nil
	}
	n := top.Statements[0].Node
	if n.Type != "SELECT_NODE" || len(n.CTEMap.Map) > 0 {
		return nil
	}
	d := &sqlengine.Derivation{}
	using := false
	if len(n.From) > 0 && string(n.From) != "null" {
		if !fromTables(n.From, d, &using, 0) {
			return nil
		}
	}
	for _, raw := range n.SelectList {
		var e struct {
			Class        string   `json:"class"`
			RelationName string   `json:"relation_name"`
			ExcludeList  []any    `json:"exclude_list"`
			ReplaceList  []any    `json:"replace_list"`
			RenameList   []any    `json:"rename_list"`
			QExclude     []any    `json:"qualified_exclude_list"`
			Columns      bool     `json:"columns"`
			Expr         any      `json:"expr"`
			ColumnNames  []string `json:"column_names"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil
		}
		if e.Class == "STAR" {
			if len(e.ExcludeList)+len(e.ReplaceList)+len(e.RenameList)+len(e.QExclude) > 0 || e.Columns || e.Expr != nil || using && e.RelationName == "" {
				return nil
			}
			d.Outputs = append(d.Outputs, sqlengine.OutputColumn{Star: true, StarOf: e.RelationName})
			continue
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil
		}
		oc := sqlengine.OutputColumn{}
		refs(v, &oc, 0)
		d.Outputs = append(d.Outputs, oc)
	}
	return d
}

type selectNode struct {
	Type   string `json:"type"`
	CTEMap struct {
		Map []json.RawMessage `json:"map"`
	} `json:"cte_map"`
	SelectList []json.RawMessage `json:"select_list"`
	From       json.RawMessage   `json:"from_table"`
}

// fromTables collects the tables of a FROM clause made of tables and
// joins; false for anything else.
func fromTables(raw json.RawMessage, d *sqlengine.Derivation, using *bool, depth int) bool {
	if depth > maxDepth {
		return false
	}
	var t struct {
		Type    string            `json:"type"`
		Alias   string            `json:"alias"`
		Catalog string            `json:"catalog_name"`
		Schema  string            `json:"schema_name"`
		Table   string            `json:"table_name"`
		ColAls  []string          `json:"column_name_alias"`
		Left    json.RawMessage   `json:"left"`
		Right   json.RawMessage   `json:"right"`
		Using   []string          `json:"using_columns"`
		RefType string            `json:"ref_type"`
		Values  []json.RawMessage `json:"values"`
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return false
	}
	switch t.Type {
	case "BASE_TABLE":
		if len(t.ColAls) > 0 {
			return false
		}
		var ref sqlengine.TableRef
		for _, p := range []string{t.Catalog, t.Schema, t.Table} {
			if p != "" {
				ref = append(ref, p)
			}
		}
		d.From = append(d.From, sqlengine.FromTable{Table: ref, Alias: t.Alias})
		return true
	case "JOIN":
		if len(t.Using) > 0 || t.RefType == "NATURAL" {
			*using = true
		}
		return fromTables(t.Left, d, using, depth+1) && fromTables(t.Right, d, using, depth+1)
	case "EXPRESSION_LIST", "EMPTY":
		return true // VALUES (constants only), or no FROM
	}
	return false
}

// refs collects the column references of an expression; a subquery makes
// the entry unknown.
func refs(v any, oc *sqlengine.OutputColumn, depth int) {
	if depth > maxDepth {
		oc.Unknown = true
		return
	}
	switch n := v.(type) {
	case []any:
		for _, c := range n {
			refs(c, oc, depth+1)
		}
	case map[string]any:
		class, _ := n["class"].(string)
		switch class {
		case "SUBQUERY":
			oc.Unknown = true
			return
		case "COLUMN_REF":
			var names []string
			if l, ok := n["column_names"].([]any); ok {
				for _, x := range l {
					if s, ok := x.(string); ok {
						names = append(names, s)
					}
				}
			}
			if len(names) == 0 {
				oc.Unknown = true
				return
			}
			oc.Refs = append(oc.Refs, names)
			return
		case "CONSTANT":
			return
		}
		if t, _ := n["type"].(string); t == "SELECT_NODE" || t == "SET_OPERATION_NODE" {
			oc.Unknown = true
			return
		}
		for _, c := range n {
			refs(c, oc, depth+1)
		}
	}
}
