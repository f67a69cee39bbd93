package sqlengine

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/policy"
)

// Config holds a Service's dependencies. Every field but Limits, TempDir
// and Now is required.
type Config struct {
	Tables  TableSource
	Decider Decider
	Objects ObjectReader
	Backend Backend
	Auditor steward.Auditor
	Logger  *slog.Logger
	Limits  Limits // defaults per query; zero fields take DefaultLimits
	// GroupLimits are limits per group: a query runs with the most
	// generous limit, field by field, among the groups of its user that
	// have one (zero fields count as Limits'); without any, Limits.
	GroupLimits map[string]Limits
	// Lineage, Registrar and Writer enable CREATE TABLE AS and INSERT
	// (with a Backend that is a Materializer); see write.go.
	Lineage   Lineage
	Registrar Registrar
	Writer    ObjectWriter
	TempDir   string // where per-query staging directories go; "" is os.TempDir()
	Cache     *Cache // remote objects' local copies (forward mode), on TempDir's file system
	Now       func() time.Time
}

// Service runs governed queries.
type Service struct {
	c Config
}

// New returns a Service over c's dependencies.
func New(c Config) *Service {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Limits = c.Limits.or(DefaultLimits)
	return &Service{c: c}
}

// Request is one query.
type Request struct {
	Principal  *steward.Principal
	SQL        string
	ClientAddr string // for policy IP conditions and audit
	RequestID  string
	Limits     Limits // overrides of the service's defaults (lower only)
	// Database is the database a PostgreSQL client connected to (or a
	// REST or CLI caller named): when it is a catalog the user can see,
	// short table names resolve in it (database.go); system catalog
	// queries show its schemas as PostgreSQL's.
	Database string
}

// Summary says what a query touched and returned; it is what is audited.
type Summary struct {
	Tables  []string          `json:"tables"`
	Columns []string          `json:"columns"` // "table#column" visible to the query
	Denied  []string          `json:"denied_columns,omitempty"`
	Masks   map[string]string `json:"masks,omitempty"` // "table#column" -> mask type
	Filters map[string]string `json:"row_filters,omitempty"`
	Rows    int64             `json:"rows"`
	// Written is the table a CREATE TABLE AS or INSERT wrote, and
	// RowsWritten how many rows (also in Rows).
	Written     string `json:"written,omitempty"`
	RowsWritten int64  `json:"rows_written,omitempty"`
	// Command is the PostgreSQL command tag: "SELECT n" for queries and
	// CREATE TABLE AS, "INSERT 0 n" for INSERT.
	Command  string        `json:"command,omitempty"`
	Duration time.Duration `json:"-"`
}

// MaxQueryLen bounds statement text.
const MaxQueryLen = 1 << 20

// Query checks, authorizes and runs req, streaming the result to sink. It
// returns a *steward.Error carrying a SQLSTATE (see SQLState).
func (s *Service) Query(ctx context.Context, req Request, sink RowSink) (*Summary, error) {
	start := s.c.Now()
	sum := &Summary{}
	p := req.Principal
	if p == nil {
		return sum, Errorf(steward.EUnauthenticated, StateAuth, "authentication required")
	}
	lim := s.limits(p, req.Limits)
	ctx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()

	err := s.query(ctx, req, lim, sink, sum)
	sum.Duration = s.c.Now().Sub(start)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) && err != nil {
		err = Errorf(steward.EInvalid, StateCanceled, "canceling statement due to statement timeout (%s)", lim.Timeout)
	} else if ctx.Err() != nil && err != nil {
		err = Errorf(steward.EInvalid, StateCanceled, "canceling statement due to user request")
	}
	if aerr := s.audit(context.WithoutCancel(ctx), "sql.query", req, sum, err); aerr != nil && err == nil {
		err = aerr
	}
	return sum, err
}

func (s *Service) limits(p *steward.Principal, l Limits) Limits {
	d := GroupLimits(s.c.GroupLimits, p.Groups, s.c.Limits)
	l = l.or(d)
	l.Timeout = min(l.Timeout, d.Timeout)
	l.MaxRows = min(l.MaxRows, d.MaxRows)
	l.Threads = min(l.Threads, d.Threads)
	return l
}

func (s *Service) query(ctx context.Context, req Request, lim Limits, sink RowSink, sum *Summary) error {
	q := strings.TrimSpace(req.SQL)
	if len(q) > MaxQueryLen {
		return Errorf(steward.ETooLarge, StateLimit, "statement longer than %d bytes", MaxQueryLen)
	}
	if isShowTables(q) {
		return s.showTables(ctx, req.Principal, sink, sum)
	}
	ws, err := ParseWrite(q)
	if err != nil {
		return err
	}
	if ws != nil {
		return s.write(ctx, req, ws, lim, sum)
	}
	if done, err := s.catalogQuery(ctx, req, q, lim, sink, sum); done || err != nil {
		return err
	}
	an, err := s.c.Backend.Analyze(ctx, q)
	if err != nil {
		return err
	}
	db, _, err := s.session(req).inDatabase(ctx, an)
	if err != nil {
		return err
	}
	views, tables, err := s.authorize(ctx, req, an, sum)
	if err != nil {
		return err
	}
	// Fail closed: the authorization is on the trail before any row leaves.
	if err := s.audit(ctx, "sql.authorize", req, sum, nil); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(s.c.TempDir, "steward-sql-")
	if err != nil {
		return steward.WrapError(steward.EInternal, "sqlengine.Query", err, "cannot stage data")
	}
	defer os.RemoveAll(dir)
	for i := range views {
		files, err := stage(ctx, s.c.Objects, s.c.Cache, tables[i], dir, i)
		if err != nil {
			return err
		}
		views[i].Files = files
	}
	n, err := s.c.Backend.Run(ctx, &Run{Query: q, Dir: dir, Views: views, Limits: lim, Database: db}, &limitSink{RowSink: sink, max: lim.MaxRows})
	sum.Rows = n
	sum.Command = "SELECT " + strconv.FormatInt(n, 10)
	return err
}

// authorize resolves and decides every table and column the statement
// names and builds the views the sandbox will hold.
func (s *Service) authorize(ctx context.Context, req Request, an *Analysis, sum *Summary) ([]View, []*Table, error) {
	var views []View
	var tables []*Table
	seen := map[string]bool{}
	now := s.c.Now()
	ip := clientIP(req.ClientAddr)
	p := req.Principal
	for _, ref := range an.Tables {
		name := ref.Name()
		if seen[name] {
			continue
		}
		seen[name] = true
		cat, sch, tbl, ok := SplitName(name)
		if !ok {
			return nil, nil, Errorf(steward.ENotFound, StateUndefinedTable, "relation %q does not exist", name)
		}
		t, err := s.c.Tables.Table(ctx, name)
		if err != nil {
			if steward.KindOf(err) == steward.ENotFound {
				return nil, nil, Errorf(steward.ENotFound, StateUndefinedTable, "relation %q does not exist", name)
			}
			return nil, nil, err
		}
		sum.Tables = append(sum.Tables, name)
		r := selectRequest(p, name, t, now, ip)
		var d policy.Decision
		s.c.Decider.Decide(&r, &d)
		if !d.Allowed {
			// A table the user may not select must not be distinguishable
			// from one that exists but is denied: both name the table.
			return nil, nil, Errorf(steward.EPermission, StatePrivilege, "permission denied for table %s", name)
		}
		if len(t.Columns) == 0 {
			// Registered, but its files not yet crawled (the catalog
			// crawls a few seconds after a write): say so, rather than
			// call every column denied. The user may select the table.
			return nil, nil, Errorf(steward.EUnavailable, StateNotReady, "table %s has no known columns yet: the catalog has not read its files; try again shortly", name)
		}
		v := View{Catalog: cat, Schema: sch, Table: tbl, Format: t.Format, Hive: len(t.Partitions) > 0}
		for _, f := range d.RowFilters {
			v.Filters = append(v.Filters, f)
			if sum.Filters == nil {
				sum.Filters = map[string]string{}
			}
			if prev := sum.Filters[name]; prev != "" {
				f = prev + " AND " + f
			}
			sum.Filters[name] = f
		}
		for _, c := range t.Columns {
			cd := s.decideColumn(r, t, c)
			key := name + "#" + c.Name
			if !cd.Allowed {
				sum.Denied = append(sum.Denied, key)
				continue
			}
			expr := QuoteIdent(c.Name)
			if len(cd.Masks) > 0 {
				expr = cd.Masks[0].SQL(expr)
				if sum.Masks == nil {
					sum.Masks = map[string]string{}
				}
				sum.Masks[key] = string(cd.Masks[0].Type)
			}
			v.Columns = append(v.Columns, ViewColumn{Name: c.Name, Type: c.Type, Expr: expr})
			sum.Columns = append(sum.Columns, key)
		}
		if len(v.Columns) == 0 {
			return nil, nil, Errorf(steward.EPermission, StatePrivilege, "permission denied for every column of table %s", name)
		}
		views = append(views, v)
		tables = append(tables, t)
	}
	return views, tables, nil
}

// selectRequest asks for select on table t, named name (its columns
// decided by decideColumn).
func selectRequest(p *steward.Principal, name string, t *Table, now time.Time, ip netip.Addr) policy.Request {
	return policy.Request{User: p.Username, Groups: p.Groups, Roles: p.Roles, Access: policy.AccessSelect,
		Resource: policy.Resource{Kind: policy.ResourceTable, Name: name}, Tags: t.Tags,
		Classification: t.Classification, Time: now, ClientIP: ip}
}

// decideColumn decides select on column c of t, r being t's request: the
// column's tags join the table's.
func (s *Service) decideColumn(r policy.Request, t *Table, c Column) policy.Decision {
	r.Resource.Column = c.Name
	r.Tags = append(slices.Clip(t.Tags), c.Tags...)
	var d policy.Decision
	s.c.Decider.Decide(&r, &d)
	return d
}

func clientIP(addr string) netip.Addr {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr()
	}
	if a, err := netip.ParseAddr(addr); err == nil {
		return a
	}
	return netip.Addr{}
}

func (s *Service) audit(ctx context.Context, action string, req Request, sum *Summary, qerr error) error {
	if s.c.Auditor == nil {
		return steward.Errorf(steward.EUnavailable, "audit is not configured")
	}
	p := req.Principal
	ev := steward.AuditEvent{Time: s.c.Now(), RequestID: req.RequestID, Actor: p.Username, ActorKind: string(p.Kind),
		Action: action, Resource: strings.Join(sum.Tables, ","), Decision: "allow", Outcome: "success", ClientAddr: req.ClientAddr,
		Details: map[string]any{"query": clip(req.SQL), "tables": sum.Tables, "columns": sum.Columns}}
	if req.Database != "" {
		// The query's short names resolve in it (tables are audited in full).
		ev.Details["database"] = req.Database
	}
	if len(sum.Denied) > 0 {
		ev.Details["denied_columns"] = sum.Denied
	}
	if len(sum.Masks) > 0 {
		ev.Details["masks"] = sum.Masks
	}
	if len(sum.Filters) > 0 {
		ev.Details["row_filters"] = sum.Filters
	}
	if sum.Written != "" {
		ev.Details["written"] = sum.Written
	}
	if action == "sql.query" {
		ev.Details["rows"] = sum.Rows
		ev.Details["duration_ms"] = sum.Duration.Milliseconds()
		if sum.Written != "" {
			ev.Details["rows_written"] = sum.RowsWritten
		}
	}
	if qerr != nil {
		ev.Outcome, ev.Reason = "failure", steward.MessageOf(qerr)
		ev.Details["sqlstate"] = SQLState(qerr)
		if SQLState(qerr) == StatePrivilege {
			ev.Decision = "deny"
		}
	}
	if err := s.c.Auditor.Record(ctx, ev); err != nil {
		s.c.Logger.ErrorContext(ctx, "audit record failed", "action", action, "err", err)
		return steward.WrapError(steward.EUnavailable, "sqlengine.audit", err, "audit unavailable")
	}
	return nil
}

func clip(s string) string {
	if len(s) > 8<<10 {
		return s[:8<<10] + "…"
	}
	return s
}

// limitSink stops a result at max rows.
type limitSink struct {
	RowSink
	max, n int64
}

func (l *limitSink) Row(v []any) error {
	if l.n >= l.max {
		return Errorf(steward.ETooLarge, StateLimit, "result exceeds the limit of %d rows; add a LIMIT or aggregate", l.max)
	}
	l.n++
	return l.RowSink.Row(v)
}

func isShowTables(q string) bool {
	q = strings.TrimSuffix(strings.TrimSpace(q), ";")
	return strings.EqualFold(strings.Join(strings.Fields(q), " "), "show tables")
}

// showTables lists what the principal may discover.
func (s *Service) showTables(ctx context.Context, p *steward.Principal, sink RowSink, sum *Summary) error {
	ts, err := s.c.Tables.Tables(ctx, p)
	if err != nil {
		return err
	}
	if err := sink.Columns([]Column{{Name: "name", Type: "VARCHAR"}, {Name: "format", Type: "VARCHAR"}}); err != nil {
		return err
	}
	for _, t := range ts {
		if err := sink.Row([]any{t.Name, t.Format}); err != nil {
			return err
		}
		sum.Rows++
	}
	return nil
}

// GroupLimits returns the limits for a member of groups: the most
// generous, field by field, among the groups that have limits in byGroup
// (a group's zero fields count as def's), or def when none has.
func GroupLimits(byGroup map[string]Limits, groups []string, def Limits) Limits {
	var out Limits
	found := false
	for _, g := range groups {
		gl, ok := byGroup[g]
		if !ok {
			continue
		}
		gl = gl.or(def)
		if !found {
			out, found = gl, true
			continue
		}
		out.Timeout = max(out.Timeout, gl.Timeout)
		out.MaxRows = max(out.MaxRows, gl.MaxRows)
		out.Threads = max(out.Threads, gl.Threads)
		if a, aerr := ParseSize(out.Memory); aerr == nil {
			if b, berr := ParseSize(gl.Memory); berr == nil && b > a {
				out.Memory = gl.Memory
			}
		}
	}
	if !found {
		return def
	}
	return out
}

// ParseSize parses a memory size as DuckDB writes it ("512MB", "1GB",
// "2GiB", "1.5 GB") into bytes.
func ParseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" || f < 0 {
		return 0, steward.Errorf(steward.EInvalid, "memory size %q: want a number and a unit such as 512MB or 2GB", s)
	}
	mult := map[string]float64{"": 1, "B": 1, "BYTES": 1,
		"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40}[unit]
	if mult == 0 {
		return 0, steward.Errorf(steward.EInvalid, "memory size %q: unknown unit %q (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", s, unit)
	}
	v := f * mult
	if v > 1<<62 {
		return 0, steward.Errorf(steward.EInvalid, "memory size %q is too large", s)
	}
	return int64(v), nil
}
