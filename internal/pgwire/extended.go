package pgwire

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/sqlengine"
)

// The extended query protocol. Parameters are rendered into the statement
// text at Bind (see literal). Describe of a statement runs it through the
// Querier as SELECT * FROM (...) LIMIT 0 with sample parameters; Describe of
// a portal starts it. A started portal streams rows from a goroutine that
// runs the query, one row at a time as Execute asks, so that a row limit
// (PortalSuspended) holds no more than a few rows in memory. Portals end
// at Sync outside a transaction block, at COMMIT or ROLLBACK inside one.

// Bounds on what one session may hold.
const (
	maxStatements = 10_000
	maxPortals    = 1_000
	maxDescribed  = 256 // cached statement descriptions
)

func (c *conn) parse(m *pgproto3.Parse) error {
	if m.Name != "" {
		if _, ok := c.stmts[m.Name]; ok {
			return sqlengine.Errorf(steward.EConflict, "42P05", "prepared statement %q already exists", m.Name)
		}
		if len(c.stmts) >= maxStatements {
			return sqlengine.Errorf(steward.ETooLarge, "53400", "too many prepared statements (%d); close some", maxStatements)
		}
	}
	if len(m.Query) > sqlengine.MaxQueryLen {
		return sqlengine.Errorf(steward.ETooLarge, sqlengine.StateLimit, "statement longer than %d bytes", sqlengine.MaxQueryLen)
	}
	phs, err := placeholders(m.Query)
	if err != nil {
		return err
	}
	n := len(m.ParameterOIDs)
	for _, ph := range phs {
		n = max(n, ph.n)
	}
	if n > 0xFFFF {
		return protoErr("too many parameters")
	}
	c.stmts[m.Name] = &statement{sql: m.Query, phs: phs, oids: inferTypes(m.Query, phs, m.ParameterOIDs, n)}
	c.be.Send(&pgproto3.ParseComplete{})
	return nil
}

func (c *conn) bind(m *pgproto3.Bind) error {
	st, ok := c.stmts[m.PreparedStatement]
	if !ok {
		return sqlengine.Errorf(steward.ENotFound, "26000", "prepared statement %q does not exist", m.PreparedStatement)
	}
	if m.DestinationPortal != "" {
		if _, ok := c.portals[m.DestinationPortal]; ok {
			return sqlengine.Errorf(steward.EConflict, "42P03", "portal %q already exists", m.DestinationPortal)
		}
		if len(c.portals) >= maxPortals {
			return sqlengine.Errorf(steward.ETooLarge, "53400", "too many open portals (%d)", maxPortals)
		}
	}
	if len(m.Parameters) != len(st.oids) {
		return protoErr("bind message supplies %d parameters, but prepared statement %q requires %d", len(m.Parameters), m.PreparedStatement, len(st.oids))
	}
	if nf := len(m.ParameterFormatCodes); nf > 1 && nf != len(m.Parameters) {
		return protoErr("bind message has %d parameter formats but %d parameters", nf, len(m.Parameters))
	}
	if nf := len(m.ResultFormatCodes); nf > 1 && nf != len(st.desc) && st.known {
		return protoErr("bind message has %d result formats but the query has %d columns", nf, len(st.desc))
	}
	for _, f := range m.ResultFormatCodes {
		if f != 0 && f != 1 {
			return protoErr("unsupported format code: %d", f)
		}
	}
	lits := make([]string, len(m.Parameters))
	for i, v := range m.Parameters {
		l, err := literal(v, st.oids[i], formatOf(m.ParameterFormatCodes, i))
		if err != nil {
			return err
		}
		lits[i] = l
	}
	sql := bindSQL(st.sql, st.phs, func(n int) string { return lits[n-1] })
	if m.DestinationPortal == "" {
		c.closePortal("")
	}
	c.portals[m.DestinationPortal] = &portal{stmt: st, sql: sql, lits: lits, formats: append([]int16(nil), m.ResultFormatCodes...)}
	c.be.Send(&pgproto3.BindComplete{})
	return nil
}

func (c *conn) describe(m *pgproto3.Describe) error {
	if m.ObjectType == 'S' {
		st, ok := c.stmts[m.Name]
		if !ok {
			return sqlengine.Errorf(steward.ENotFound, "26000", "prepared statement %q does not exist", m.Name)
		}
		if err := c.describeStatement(st); err != nil {
			return err
		}
		// A parameter whose type the statement does not fix is described
		// as 0 (unspecified): clients then encode it as its own value's
		// type, in text, and it is rendered as an untyped literal that
		// DuckDB coerces where it is used.
		c.be.Send(&pgproto3.ParameterDescription{ParameterOIDs: st.oids})
		if st.noData {
			c.be.Send(&pgproto3.NoData{})
		} else {
			c.be.Send(&pgproto3.RowDescription{Fields: fields(st.desc, nil)})
		}
		return nil
	}
	if m.ObjectType != 'P' {
		return protoErr("invalid DESCRIBE message subtype %d", m.ObjectType)
	}
	p, ok := c.portals[m.Name]
	if !ok {
		return sqlengine.Errorf(steward.ENotFound, "34000", "portal %q does not exist", m.Name)
	}
	if err := c.startPortal(p); err != nil {
		return err
	}
	if p.cols == nil && p.local == nil && p.end == nil && !p.empty {
		stop := c.watchPortal(p)
		ev := p.next()
		stop()
		switch {
		case ev.isCols:
			p.cols = unnamed(ev.cols, p.lits)
		case ev.end:
			p.end = &ev
		}
	}
	if p.end != nil && p.end.err != nil {
		return p.end.err
	}
	if p.cols == nil {
		c.be.Send(&pgproto3.NoData{})
		return nil
	}
	p.fields = fields(p.cols, p.formats)
	c.be.Send(&pgproto3.RowDescription{Fields: p.fields})
	return nil
}

// describeStatement learns the result columns of st, once.
func (c *conn) describeStatement(st *statement) error {
	if st.known {
		return nil
	}
	if isEmpty(st.sql) {
		st.noData, st.known = true, true
		return nil
	}
	res, ok, err := c.local(st.sql, false)
	if err != nil {
		return err
	}
	if ok {
		st.desc, st.noData, st.known = res.cols, res.cols == nil, true
		return nil
	}
	samples := make([]string, len(st.oids))
	for i, o := range st.oids {
		samples[i] = sampleLiteral(o)
	}
	q := strings.TrimRight(bindSQL(st.sql, st.phs, func(n int) string { return samples[n-1] }), " \t\r\n;")
	word, _, _ := strings.Cut(strings.TrimLeft(normalize(st.sql), "("), " ")
	switch word {
	case "select", "with", "values", "table", "from":
		q = "SELECT * FROM (\n" + q + "\n) AS steward_describe LIMIT 0"
	case "show", "describe", "summarize":
	default:
		st.noData, st.known = true, true // CREATE TABLE AS, INSERT, ...: no rows
		return nil
	}
	// Clients that prepare the same text again (pgx's describe-exec mode,
	// unnamed statements) are answered from the session's cache; the
	// statement itself is still decided when it runs.
	key := fmt.Sprint(st.oids) + q
	if d, ok := c.described[key]; ok {
		st.desc, st.noData, st.known = d, d == nil, true
		return nil
	}
	ctx, cancel := context.WithCancel(steward.WithPrincipal(c.ctx, c.p))
	defer cancel()
	defer c.running(cancel)()
	stop := c.pb.watch(cancel)
	defer stop()
	var sink colSink
	if _, err := c.query(ctx, q, &sink); err != nil {
		return err
	}
	sink.cols = unnamed(sink.cols, samples)
	st.desc, st.noData, st.known = sink.cols, sink.cols == nil, true
	if c.described == nil || len(c.described) >= maxDescribed {
		c.described = map[string][]sqlengine.Column{}
	}
	c.described[key] = sink.cols
	return nil
}

// colSink keeps a result's columns and drops its rows.
type colSink struct{ cols []sqlengine.Column }

func (s *colSink) Columns(cols []sqlengine.Column) error {
	s.cols = cols
	return nil
}
func (s *colSink) Row([]any) error { return nil }

func (c *conn) execute(m *pgproto3.Execute) error {
	p, ok := c.portals[m.Portal]
	if !ok {
		return sqlengine.Errorf(steward.ENotFound, "34000", "portal %q does not exist", m.Portal)
	}
	if err := c.startPortal(p); err != nil {
		return err
	}
	if p.empty {
		c.be.Send(&pgproto3.EmptyQueryResponse{})
		return nil
	}
	maxRows := int64(m.MaxRows)
	sent := int64(0)
	// Rows gather in the encoder's buffer; out hands them to the backend
	// before any other message (and, deferred, before an error).
	out := func() {
		if p.enc != nil {
			p.enc.drain(c.be)
		}
	}
	defer out()
	send := func(vals []any) error {
		if p.enc == nil {
			p.encoderFor(c)
		}
		if err := p.enc.add(vals); err != nil {
			return err
		}
		sent++
		if len(p.enc.out) >= flushSize {
			return p.enc.writeOut(c.be, c.pb)
		}
		return nil
	}
	if p.local != nil {
		for ; p.localNext < len(p.local.rows); p.localNext++ {
			if maxRows > 0 && sent >= maxRows {
				out()
				c.be.Send(&pgproto3.PortalSuspended{})
				return nil
			}
			if err := send(p.local.rows[p.localNext]); err != nil {
				return err
			}
		}
		out()
		c.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(p.local.tag)})
		return nil
	}
	if p.end == nil {
		stop := c.watchPortal(p)
		defer stop()
	}
	for p.end == nil {
		if maxRows > 0 && sent >= maxRows {
			out()
			c.be.Send(&pgproto3.PortalSuspended{})
			return nil
		}
		if len(p.batch) > 0 {
			row := p.batch[0]
			p.batch = p.batch[1:]
			if err := send(row); err != nil {
				p.stop()
				p.batch = nil
				p.end = &event{end: true, err: err}
				return err
			}
			continue
		}
		ev := p.next()
		switch {
		case ev.isCols:
			p.cols = unnamed(ev.cols, p.lits)
		case ev.end:
			p.end = &ev
		default:
			p.batch = ev.rows
		}
	}
	if p.end.err != nil {
		return p.end.err
	}
	out()
	if p.finished {
		sent = 0
	}
	p.finished = true
	if p.cols == nil && sent == 0 {
		tag := commandTag(p.sql)
		if p.done != nil {
			<-p.done // the statement has ended: its summary is final
			if p.sum != nil && p.sum.Command != "" {
				tag = p.sum.Command // "INSERT 0 n", "SELECT n" for CREATE TABLE AS
			}
		}
		c.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
		return nil
	}
	c.be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT " + strconv.FormatInt(sent, 10))})
	return nil
}

// commandTag is the tag of a statement that returned no result.
func commandTag(sql string) string {
	n := normalize(sql)
	switch {
	case strings.HasPrefix(n, "create table"):
		return "SELECT 0"
	case strings.HasPrefix(n, "insert"):
		return "INSERT 0 0"
	}
	w, _, _ := strings.Cut(n, " ")
	return strings.ToUpper(w)
}

// portal is a bound statement.
type portal struct {
	stmt    *statement
	sql     string
	lits    []string // the rendered parameters
	formats []int16

	started   bool
	empty     bool
	local     *result // a session command's result
	localNext int

	cols     []sqlengine.Column // the result's columns, once known
	fields   []pgproto3.FieldDescription
	enc      *encoder
	batch    [][]any // rows received and not yet sent
	end      *event  // the query's end, once received
	finished bool    // CommandComplete was sent

	ev     chan event
	done   chan struct{}
	cancel context.CancelFunc
	sum    *sqlengine.Summary
	err    error
}

// event is what a running portal's query produces.
type event struct {
	isCols bool
	cols   []sqlengine.Column
	rows   [][]any // a batch of rows
	end    bool
	sum    *sqlengine.Summary
	err    error
}

// startPortal runs a session command at once, or starts the query of p
// in a goroutine.
func (c *conn) startPortal(p *portal) error {
	if p.started {
		return nil
	}
	p.started = true
	if isEmpty(p.sql) {
		p.empty = true
		return nil
	}
	res, ok, err := c.local(p.sql, true)
	if err != nil {
		p.end = &event{end: true, err: err}
		return err
	}
	if ok {
		p.local, p.cols = res, res.cols
		return nil
	}
	ctx, cancel := context.WithCancel(steward.WithPrincipal(c.ctx, c.p))
	p.cancel = cancel
	p.ev = make(chan event, 8)
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		sink := &chanSink{ctx: ctx, ch: p.ev}
		sum, err := c.query(ctx, p.sql, sink)
		// The rows before an error are sent before it, as PostgreSQL does.
		if ferr := sink.flush(); err == nil {
			err = ferr
		}
		p.sum, p.err = sum, err
	}()
	return nil
}

// next returns the next event of a running portal.
func (p *portal) next() event {
	select {
	case ev := <-p.ev:
		return ev
	case <-p.done:
		select {
		case ev := <-p.ev:
			return ev
		default:
		}
		return event{end: true, sum: p.sum, err: p.err}
	}
}

// stop cancels p's query and waits for its goroutine.
func (p *portal) stop() {
	if p.cancel != nil {
		p.cancel()
		<-p.done
	}
}

// watchPortal lets a cancel request or a vanished client cancel p's query
// while the session waits for it.
func (c *conn) watchPortal(p *portal) func() {
	if p.cancel == nil {
		return func() {}
	}
	done := c.running(p.cancel)
	stop := c.pb.watch(p.cancel)
	return func() { stop(); done() }
}

// encoderFor sets up p's row encoding: as p was described, or as its
// statement was, or else as the result is.
func (p *portal) encoderFor(c *conn) {
	fs := p.fields
	if fs == nil && p.stmt.known && !p.stmt.noData && len(p.stmt.desc) == len(p.cols) {
		fs = fields(p.stmt.desc, p.formats)
	}
	if fs == nil {
		fs = fields(p.cols, p.formats)
	}
	p.enc = &encoder{fields: fs, types: duckTypes(p.cols), loc: c.loc}
}

func (c *conn) closePortal(name string) {
	if p, ok := c.portals[name]; ok {
		p.stop()
		delete(c.portals, name)
	}
}

// chanSink hands a result to the session: the columns, then the rows in
// batches of batchRows (one channel hand-over and one allocation per
// batch rather than per row); flush sends the last one.
type chanSink struct {
	ctx  context.Context
	ch   chan<- event
	flat []any   // the values of the batch's rows, one after another
	rows [][]any // the batch: slices of flat
}

const batchRows = 64

func (s *chanSink) Columns(cols []sqlengine.Column) error {
	select {
	case s.ch <- event{isCols: true, cols: cols}:
		return nil
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

func (s *chanSink) Row(vals []any) error {
	if s.rows == nil {
		s.flat = make([]any, 0, batchRows*len(vals))
		s.rows = make([][]any, 0, batchRows)
	}
	at := len(s.flat)
	s.flat = append(s.flat, vals...)
	s.rows = append(s.rows, s.flat[at:len(s.flat):len(s.flat)])
	if len(s.rows) == batchRows {
		return s.flush()
	}
	return nil
}

func (s *chanSink) flush() error {
	if len(s.rows) == 0 {
		return nil
	}
	ev := event{rows: s.rows}
	s.flat, s.rows = nil, nil
	select {
	case s.ch <- ev:
		return nil
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

// unnamed renames result columns that DuckDB named after an expression
// holding a rendered parameter ("(CAST(41 AS INTEGER) + 1)") to
// PostgreSQL's "?column?", so that parameter values do not show up as
// column names.
func unnamed(cols []sqlengine.Column, lits []string) []sqlengine.Column {
	var out []sqlengine.Column
	for i, c := range cols {
		for _, l := range lits {
			if l != "" && strings.Contains(c.Name, l) {
				if out == nil {
					out = append([]sqlengine.Column(nil), cols...)
				}
				out[i].Name = "?column?"
				break
			}
		}
	}
	if out == nil {
		return cols
	}
	return out
}
