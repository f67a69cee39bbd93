package sqlengine

// Writing results: CREATE TABLE name AS query and INSERT INTO name
// [(columns)] query write the query's result as Parquet into the table's
// area of the object store.
//
// Target names follow the catalog's naming rule reversed: the first
// segment is the bucket, the others the key prefix, so bank.sales.x is
// the dataset (s3://bank, sales/x) with files under bank/sales/x/. Every
// segment is a plain word (letters, digits, "_" and "-", not starting
// with "_" or "-"); the bucket follows S3's naming rules and has no dot.
//
// Authorization, decided before anything runs:
//   - the query: select on every input table and column, exactly as for
//     a query (masks and row filters apply to what is written);
//   - CREATE TABLE: create on the table and write on its S3 path
//     (bucket/prefix/part-<uuid>.parquet), with the tags and
//     classification the new table will inherit from its inputs; the
//     table must not exist (42P07) and nothing may be stored under its
//     prefix yet;
//   - INSERT: the table must exist (42P01); the user owns it or is
//     granted write on the table; and write on its S3 path.
//
// The query runs in the same sandbox as any query and writes one Parquet
// file into the query's own directory (the user never names a path).
// Then, in this order, so that no one can read the data with less
// protection than its inputs': (a) lineage is recorded with column
// lineage (the table inherits its inputs' tags before anything exists),
// (b) the catalog entry is created (owner: the user; format parquet; no
// tags or classification of its own: what it inherits stays lineage's,
// so it follows the inputs) or updated, and (c) the
// file is stored through the object store under a new unique name, so an
// INSERT appends and a failure leaves no partial file visible.
//
// Limits: the query's timeout and memory limit apply to the whole write;
// the row limit bounds results returned, not rows written.

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
	"github.com/stewardhq/steward/internal/policy"
)

// SQLSTATEs of writes: PostgreSQL's duplicate_table and
// invalid_schema_name.
const (
	StateDuplicateTable  = "42P07"
	StateUndefinedSchema = "3F000"
)

// ColumnLineage is one column-level dependency of a write: Output (a
// column of the written table) derives from InputColumn of the table
// named Input. Masking says the value passed through a mask the policy
// applied (the written column holds only masked values).
type ColumnLineage struct {
	Output      string
	Input       string
	InputColumn string
	Masking     bool
}

// Lineage records writes. The lineage service implements it (see
// internal/server).
type Lineage interface {
	// RecordWrite records that p wrote target from inputs with column
	// lineage cols. The target must inherit its inputs' tags before it
	// returns.
	RecordWrite(ctx context.Context, p *steward.Principal, target *Table, inputs []*Table, cols []ColumnLineage) error
}

// Registrar keeps the catalog entries of written tables. The catalog
// implements it (see internal/server).
type Registrar interface {
	// Create registers t (a new table: Name, Bucket, Prefix, Format,
	// Columns, Classification set) with p as its owner. EConflict if it
	// exists. What t inherits (Classification: its inputs' highest) came
	// through RecordWrite; the entry need not store it as its own.
	Create(ctx context.Context, p *steward.Principal, t *Table) error
	// Appended records that p added rows to the existing table t; cls is
	// the highest classification of t and the new inputs (inherited
	// through RecordWrite, which ran first).
	Appended(ctx context.Context, p *steward.Principal, t *Table, cls policy.Classification) error
	// Remove deletes the catalog entry of a table whose creation failed.
	Remove(ctx context.Context, t *Table) error
	// Owns reports whether p owns the table named name.
	Owns(ctx context.Context, p *steward.Principal, name string) (bool, error)
}

// ObjectWriter stores written files; objectstore.Store implements it.
// Put must be atomic and durable when it returns.
type ObjectWriter interface {
	Put(ctx context.Context, bucket, key string, body io.Reader, size int64, opts objectstore.PutOptions) (objectstore.ObjectInfo, error)
}

// Shape is one column of a file an INSERT writes: Name and Type are the
// target table's; From is the 1-based position of the query's result
// column that fills it, or 0 for NULL.
type Shape struct {
	Name, Type string
	From       int
}

// Materializer is a Backend that can write a query's result as a Parquet
// file instead of returning it.
type Materializer interface {
	// Materialize runs r.Query where only r.Views exist and writes its
	// result as one Parquet file at out, a path inside r.Dir. With shape
	// (INSERT), the file has shape's columns, cast to their types, and the
	// result must have as many columns as shape uses (42601 otherwise).
	// It returns the query's result columns (as named and typed by the
	// engine) and the number of rows written.
	Materialize(ctx context.Context, r *Run, out string, shape []Shape) ([]Column, int64, error)
}

// Deriver is a Backend that can say which input columns each result
// column of a query derives from.
type Deriver interface {
	// Derive returns the derivation of query's result, or nil when the
	// query's shape is not one it can follow (then every result column
	// is taken to derive from every input column).
	Derive(ctx context.Context, query string) (*Derivation, error)
}

// Derivation is what a query's result columns are made of.
type Derivation struct {
	From    []FromTable    // the FROM clause's tables, left to right
	Outputs []OutputColumn // one per select-list entry, in order
}

// FromTable is a table of a FROM clause and its alias ("" for none).
type FromTable struct {
	Table TableRef
	Alias string
}

// OutputColumn is one select-list entry.
type OutputColumn struct {
	// Refs are the column references in the entry's expression, as
	// written (["c", "email"], ["email"], ["c", "addr", "city"]).
	Refs [][]string
	// Star: the entry is * (StarOf "") or alias.* (StarOf the alias or
	// table name): one result column per column of those tables.
	Star   bool
	StarOf string
	// Unknown: the expression holds something that cannot be followed
	// (a subquery); the column derives from every input column.
	Unknown bool
}

var segmentRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

// targetOf maps a statement's target name to the table it writes.
func targetOf(parts []string) (*Table, error) {
	name := strings.Join(parts, ".")
	if len(parts) < 2 {
		return nil, Errorf(steward.EInvalid, StateSyntax, "table name %q needs at least a bucket and a name (bucket.schema.table)", name)
	}
	for _, p := range parts {
		if !segmentRe.MatchString(p) || len(p) > 255 {
			return nil, Errorf(steward.EInvalid, StateSyntax, "table name part %q: use letters, digits, '_' and '-'", p)
		}
	}
	if err := objectstore.ValidBucketName(parts[0]); err != nil || strings.Contains(parts[0], ".") {
		return nil, Errorf(steward.EInvalid, StateSyntax, "table name %q: %q is not a valid bucket name", name, parts[0])
	}
	return &Table{Name: name, Bucket: parts[0], Prefix: strings.Join(parts[1:], "/"), Format: "parquet"}, nil
}

// write runs a CREATE TABLE AS or INSERT.
func (s *Service) write(ctx context.Context, req Request, ws *WriteStatement, lim Limits, sum *Summary) error {
	mat, ok := s.c.Backend.(Materializer)
	if !ok || s.c.Lineage == nil || s.c.Registrar == nil || s.c.Writer == nil {
		return Errorf(steward.EPermission, StateFeature, "writing tables is not available on this server")
	}
	p := req.Principal
	ss := s.session(req)
	tparts, err := ss.qualifyTarget(ctx, ws.Target)
	if err != nil {
		return err
	}
	target, err := targetOf(tparts)
	if err != nil {
		return err
	}
	sum.Written = target.Name
	an, err := s.c.Backend.Analyze(ctx, ws.Query)
	if err != nil {
		return err
	}
	db, full, err := ss.inDatabase(ctx, an)
	if err != nil {
		return err
	}
	views, inputs, err := s.authorize(ctx, req, an, sum)
	if err != nil {
		return err
	}
	// What the written table will carry: every input's tags, the highest
	// classification.
	var inhTags []policy.Tag
	inhCls := policy.Unclassified
	for _, t := range inputs {
		inhTags = append(inhTags, t.Tags...)
		for _, c := range t.Columns {
			inhTags = append(inhTags, c.Tags...)
		}
		inhCls = max(inhCls, t.Classification)
	}
	file := "part-" + uuid.NewString() + ".parquet"
	key := target.Prefix + "/" + file
	var existing *Table
	if ws.Kind == WriteCreate {
		if !s.allowed(req, policy.AccessCreate, policy.Resource{Kind: policy.ResourceTable, Name: target.Name}, inhTags, inhCls) {
			return Errorf(steward.EPermission, StatePrivilege, "permission denied to create table %s", target.Name)
		}
		if _, err := s.c.Tables.Table(ctx, target.Name); err == nil {
			return Errorf(steward.EConflict, StateDuplicateTable, "relation %q already exists", target.Name)
		} else if steward.KindOf(err) != steward.ENotFound {
			return err
		}
		res, err := s.c.Objects.List(ctx, target.Bucket, objectstore.ListOptions{Prefix: target.Prefix + "/", MaxKeys: 1})
		if steward.KindOf(err) == steward.ENotFound {
			return Errorf(steward.ENotFound, StateUndefinedSchema, "bucket %q does not exist; tables are created in existing buckets", target.Bucket)
		} else if err != nil {
			return steward.WrapError(steward.EUnavailable, "sqlengine.write", err, "cannot check the table's location")
		}
		if len(res.Objects) > 0 {
			return Errorf(steward.EConflict, StateDuplicateTable, "relation %q already exists (files are stored under s3://%s/%s/)", target.Name, target.Bucket, target.Prefix)
		}
	} else {
		existing, err = s.c.Tables.Table(ctx, target.Name)
		if steward.KindOf(err) == steward.ENotFound {
			return Errorf(steward.ENotFound, StateUndefinedTable, "relation %q does not exist", target.Name)
		} else if err != nil {
			return err
		}
		if existing.Bucket != target.Bucket || strings.Trim(existing.Prefix, "/") != target.Prefix {
			return Errorf(steward.EPermission, StateFeature, "table %s is not stored where SQL writes", target.Name)
		}
		tags := append(slices.Clip(existing.Tags), inhTags...)
		cls := max(existing.Classification, inhCls)
		owns, err := s.c.Registrar.Owns(ctx, p, target.Name)
		if err != nil {
			return err
		}
		if !owns && !s.allowed(req, policy.AccessWrite, policy.Resource{Kind: policy.ResourceTable, Name: target.Name}, tags, cls) {
			return Errorf(steward.EPermission, StatePrivilege, "permission denied for table %s: only its owners or those granted write may insert", target.Name)
		}
		if existing.Format != "parquet" || len(existing.Partitions) > 0 {
			return Errorf(steward.EPermission, StateFeature, "INSERT writes only into unpartitioned Parquet tables; %s is not one", target.Name)
		}
		inhTags, inhCls = tags, cls
	}
	if !s.allowed(req, policy.AccessWrite, policy.Resource{Kind: policy.ResourceObject, Path: target.Bucket + "/" + key}, inhTags, inhCls) {
		return Errorf(steward.EPermission, StatePrivilege, "permission denied to write s3://%s/%s/", target.Bucket, target.Prefix)
	}
	var shape []Shape
	if ws.Kind == WriteInsert {
		if shape, err = insertShape(existing, ws.Columns); err != nil {
			return err
		}
	}
	// Fail closed: the authorization is on the trail before anything runs.
	if err := s.audit(ctx, "sql.authorize", req, sum, nil); err != nil {
		return err
	}

	dir, err := os.MkdirTemp(s.c.TempDir, "steward-sql-")
	if err != nil {
		return steward.WrapError(steward.EInternal, "sqlengine.write", err, "cannot stage data")
	}
	defer os.RemoveAll(dir)
	for i := range views {
		files, err := stage(ctx, s.c.Objects, s.c.Cache, inputs[i], dir, i)
		if err != nil {
			return err
		}
		views[i].Files = files
	}
	out := filepath.Join(dir, file)
	cols, n, err := mat.Materialize(ctx, &Run{Query: ws.Query, Dir: dir, Views: views, Limits: lim, Database: db}, out, shape)
	if err != nil {
		return err
	}
	var der *Derivation
	if d, ok := s.c.Backend.(Deriver); ok {
		if der, err = d.Derive(ctx, ws.Query); err != nil {
			return err
		}
		if der != nil && full != nil {
			// The FROM tables as authorized: short names in full. A
			// derivation has no CTEs, so every FROM name is a table.
			for i, ft := range der.From {
				if r, ok := full[strings.ToLower(ft.Table.Name())]; ok {
					der.From[i].Table = r
				}
			}
		}
	}
	// The written columns: the result's, or the target's for INSERT.
	written := cols
	if ws.Kind == WriteInsert {
		written = existing.Columns
	}
	lin := columnLineage(der, cols, views, inputs, sum)
	if ws.Kind == WriteInsert {
		lin = reshape(lin, cols, shape)
	} else {
		for i := range lin {
			n, _ := strconv.Atoi(strings.TrimPrefix(lin[i].Output, "\x00"))
			lin[i].Output = cols[n].Name
		}
	}
	target.Columns = written
	target.Classification = inhCls

	// (a) lineage, (b) catalog, (c) bytes: never data with fewer tags
	// than its inputs.
	if err := s.c.Lineage.RecordWrite(ctx, p, target, inputs, lin); err != nil {
		return steward.WrapError(steward.KindOf(err), "sqlengine.write", err, "cannot record lineage; nothing was written")
	}
	if ws.Kind == WriteCreate {
		if err := s.c.Registrar.Create(ctx, p, target); err != nil {
			if steward.KindOf(err) == steward.EConflict {
				return Errorf(steward.EConflict, StateDuplicateTable, "relation %q already exists", target.Name)
			}
			return err
		}
	} else if err := s.c.Registrar.Appended(ctx, p, existing, inhCls); err != nil {
		return err
	}
	f, err := os.Open(out)
	if err != nil {
		return s.undo(ctx, ws, target, steward.WrapError(steward.EInternal, "sqlengine.write", err, "cannot read the written result"))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return s.undo(ctx, ws, target, steward.WrapError(steward.EInternal, "sqlengine.write", err, "cannot read the written result"))
	}
	if _, err := s.c.Writer.Put(ctx, target.Bucket, key, f, st.Size(), objectstore.PutOptions{ContentType: "application/vnd.apache.parquet"}); err != nil {
		return s.undo(ctx, ws, target, steward.WrapError(steward.KindOf(err), "sqlengine.write", err, "cannot store the table's data"))
	}
	sum.Rows = n
	sum.RowsWritten = n
	if ws.Kind == WriteCreate {
		sum.Command = "SELECT " + strconv.FormatInt(n, 10)
	} else {
		sum.Command = "INSERT 0 " + strconv.FormatInt(n, 10)
	}
	return nil
}

// undo removes the catalog entry of a table whose creation failed, so the
// name can be used again; an INSERT that failed changed nothing visible.
func (s *Service) undo(ctx context.Context, ws *WriteStatement, t *Table, err error) error {
	if ws.Kind == WriteCreate {
		if rerr := s.c.Registrar.Remove(context.WithoutCancel(ctx), t); rerr != nil {
			s.c.Logger.ErrorContext(ctx, "cannot remove the entry of a failed CREATE TABLE", "table", t.Name, "err", rerr)
		}
	}
	return err
}

func (s *Service) allowed(req Request, a policy.Access, res policy.Resource, tags []policy.Tag, cls policy.Classification) bool {
	p := req.Principal
	r := policy.Request{User: p.Username, Groups: p.Groups, Roles: p.Roles, Access: a, Resource: res,
		Tags: tags, Classification: cls, Time: s.c.Now(), ClientIP: clientIP(req.ClientAddr)}
	var d policy.Decision
	s.c.Decider.Decide(&r, &d)
	return d.Allowed
}

// insertShape maps an INSERT's column list onto the target's columns.
func insertShape(t *Table, list []string) ([]Shape, error) {
	if len(t.Columns) == 0 {
		return nil, Errorf(steward.EInvalid, StateFeature, "table %s has no known columns yet", t.Name)
	}
	shape := make([]Shape, len(t.Columns))
	for i, c := range t.Columns {
		shape[i] = Shape{Name: c.Name, Type: c.Type}
		if list == nil {
			shape[i].From = i + 1
		}
	}
	for j, name := range list {
		i := slices.IndexFunc(t.Columns, func(c Column) bool { return strings.EqualFold(c.Name, name) })
		if i < 0 {
			return nil, Errorf(steward.EInvalid, StateUndefinedCol, "column %q of relation %q does not exist", name, t.Name)
		}
		if shape[i].From != 0 {
			return nil, Errorf(steward.EInvalid, "42701", "column %q specified more than once", name)
		}
		shape[i].From = j + 1
	}
	return shape, nil
}

// reshape renames lineage from result columns to the target columns they
// fill.
func reshape(lin []ColumnLineage, cols []Column, shape []Shape) []ColumnLineage {
	var out []ColumnLineage
	for _, sh := range shape {
		if sh.From < 1 || sh.From > len(cols) {
			continue
		}
		for _, e := range lin {
			if e.Output == resultKey(sh.From-1) {
				e.Output = sh.Name
				out = append(out, e)
			}
		}
	}
	return out
}

// resultKey names result column i in lineage before INSERT renames it.
func resultKey(i int) string { return "\x00" + strconv.Itoa(i) }

// input is one input table as the sandbox showed it.
type input struct {
	name   string
	ref    []string // lower-cased name parts
	cols   []string // visible columns
	masked map[string]bool
}

// columnLineage says which visible input columns each result column
// derives from. Where the derivation is unknown it over-approximates:
// the column derives from every visible column of every input (more tags
// flow, never fewer). A column whose value passed a mask is a masking
// edge. Outputs are keyed by result position (resultKey).
func columnLineage(der *Derivation, cols []Column, views []View, tables []*Table, sum *Summary) []ColumnLineage {
	ins := make([]input, len(tables))
	for i, t := range tables {
		in := input{name: t.Name, masked: map[string]bool{}}
		for _, p := range strings.Split(t.Name, ".") {
			in.ref = append(in.ref, strings.ToLower(p))
		}
		for _, c := range views[i].Columns {
			in.cols = append(in.cols, c.Name)
			if m := sum.Masks[t.Name+"#"+c.Name]; m != "" && m != string(policy.MaskNone) {
				in.masked[c.Name] = true
			}
		}
		ins[i] = in
	}
	everything := func() [][2]int {
		var all [][2]int
		for i, in := range ins {
			for j := range in.cols {
				all = append(all, [2]int{i, j})
			}
		}
		return all
	}
	deps := make([][][2]int, len(cols))
	known := false
	if der != nil {
		if exp, ok := expand(der, ins); ok && len(exp) == len(cols) {
			known = true
			for i, oc := range exp {
				if oc.Unknown {
					deps[i] = everything()
					continue
				}
				for _, ref := range oc.Refs {
					r := resolve(der, ins, ref)
					if r == nil {
						deps[i] = everything()
						break
					}
					deps[i] = append(deps[i], r...)
				}
			}
		}
	}
	if !known {
		for i := range deps {
			deps[i] = everything()
		}
	}
	var out []ColumnLineage
	for i := range cols {
		seen := map[[2]int]bool{}
		for _, d := range deps[i] {
			if seen[d] {
				continue
			}
			seen[d] = true
			in := ins[d[0]]
			col := in.cols[d[1]]
			out = append(out, ColumnLineage{Output: resultKey(i), Input: in.name, InputColumn: col, Masking: in.masked[col]})
		}
	}
	return out
}

// expand turns stars into one output per column of the tables they cover.
func expand(der *Derivation, ins []input) ([]OutputColumn, bool) {
	var out []OutputColumn
	for _, oc := range der.Outputs {
		if !oc.Star {
			out = append(out, oc)
			continue
		}
		matched := false
		for _, ft := range der.From {
			if oc.StarOf != "" && !qualifies(ft, []string{oc.StarOf}) {
				continue
			}
			in := findInput(ins, ft.Table)
			if in == nil {
				return nil, false
			}
			matched = true
			for _, c := range in.cols {
				out = append(out, OutputColumn{Refs: [][]string{append(slices.Clip(lowerAll(ft.Table)), c)}})
			}
		}
		if !matched {
			return nil, false
		}
	}
	return out, true
}

func lowerAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

func findInput(ins []input, ref TableRef) *input {
	want := strings.ToLower(ref.Name())
	for i := range ins {
		if strings.ToLower(ins[i].name) == want {
			return &ins[i]
		}
	}
	return nil
}

// qualifies reports whether qualifier q (as written before a column)
// names FROM table ft: its alias, or, without one, the table's name or a
// suffix of its dotted name.
func qualifies(ft FromTable, q []string) bool {
	if ft.Alias != "" {
		return len(q) == 1 && strings.EqualFold(q[0], ft.Alias)
	}
	if len(q) > len(ft.Table) {
		return false
	}
	tail := ft.Table[len(ft.Table)-len(q):]
	for i := range q {
		if !strings.EqualFold(q[i], tail[i]) {
			return false
		}
	}
	return true
}

// resolve finds the input columns a reference may name, trying every
// reading (qualified by 1 to 3 parts, or a bare column with struct field
// access); nil when none resolves.
func resolve(der *Derivation, ins []input, ref []string) [][2]int {
	var out [][2]int
	colIn := func(ii int, name string) {
		for j, c := range ins[ii].cols {
			if strings.EqualFold(c, name) {
				out = append(out, [2]int{ii, j})
			}
		}
	}
	for k := 1; k <= 3 && k < len(ref); k++ {
		for _, ft := range der.From {
			if !qualifies(ft, ref[:k]) {
				continue
			}
			if in := findInput(ins, ft.Table); in != nil {
				colIn(indexOf(ins, in), ref[k])
			}
		}
	}
	for _, ft := range der.From {
		if in := findInput(ins, ft.Table); in != nil {
			colIn(indexOf(ins, in), ref[0])
		}
	}
	return out
}

func indexOf(ins []input, in *input) int {
	for i := range ins {
		if &ins[i] == in {
			return i
		}
	}
	return -1
}
