package pgwire

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/sqlengine"
)

// conn is one authenticated client session.
type conn struct {
	s        *Server
	ctx      context.Context
	be       *pgproto3.Backend
	pb       *pushback
	sess     *session
	p        *steward.Principal
	addr     string
	database string
	log      *slog.Logger

	tx          byte // 'I' idle, 'T' in a transaction block, 'E' in a failed one
	skip        bool // an extended-protocol error was sent: discard until Sync
	settings    map[string]string
	loc         *time.Location
	statusQueue [][2]string // ParameterStatus to send

	stmts     map[string]*statement
	portals   map[string]*portal
	described map[string][]sqlengine.Column // statement text -> result columns
}

// statement is a parsed (prepared) statement.
type statement struct {
	sql    string
	phs    []placeholder
	oids   []uint32 // per parameter; 0 is unknown (described as text)
	desc   []sqlengine.Column
	noData bool // described: returns no rows
	known  bool // desc/noData are set
}

// loop reads and answers messages until the client leaves.
func (c *conn) loop() {
	for {
		msg, err := c.be.Receive()
		if err != nil {
			if !ioError(err) && c.ctx.Err() == nil {
				c.log.Debug("pgwire malformed message", "err", err)
				c.be.Send(errResp("FATAL", "08P01", "invalid message: "+err.Error()))
				c.be.Flush()
			}
			return
		}
		if c.skip {
			switch msg.(type) {
			case *pgproto3.Sync, *pgproto3.Terminate:
			default:
				continue
			}
		}
		flush := false
		switch m := msg.(type) {
		case *pgproto3.Query:
			c.simpleQuery(m.String)
			c.endOfCommand()
			c.be.Send(&pgproto3.ReadyForQuery{TxStatus: c.tx})
			flush = true
		case *pgproto3.Parse:
			c.try(c.parse(m))
		case *pgproto3.Bind:
			c.try(c.bind(m))
		case *pgproto3.Describe:
			c.try(c.describe(m))
		case *pgproto3.Execute:
			c.try(c.execute(m))
		case *pgproto3.Close:
			if m.ObjectType == 'S' {
				delete(c.stmts, m.Name)
			} else {
				c.closePortal(m.Name)
			}
			c.be.Send(&pgproto3.CloseComplete{})
		case *pgproto3.Sync:
			c.skip = false
			c.endOfCommand()
			c.be.Send(&pgproto3.ReadyForQuery{TxStatus: c.tx})
			flush = true
		case *pgproto3.Flush:
			flush = true
		case *pgproto3.Terminate:
			return
		case *pgproto3.CopyData, *pgproto3.CopyDone, *pgproto3.CopyFail:
			// Not in a COPY: ignored, as PostgreSQL does.
		case *pgproto3.FunctionCall:
			c.try(sqlengine.Errorf(steward.EInvalid, sqlengine.StateFeature, "the function call protocol is not supported"))
		default:
			c.be.Send(errResp("FATAL", "08P01", "unexpected message "+strings.TrimPrefix(typeName(msg), "*pgproto3.")))
			c.be.Flush()
			return
		}
		if flush {
			if c.be.Flush() != nil {
				return
			}
		}
	}
}

func typeName(m any) string {
	switch m.(type) {
	case *pgproto3.PasswordMessage:
		return "PasswordMessage"
	case *pgproto3.SASLInitialResponse, *pgproto3.SASLResponse, *pgproto3.GSSResponse:
		return "authentication message"
	}
	return "message"
}

// ioError says whether err is the connection failing or ending rather
// than a malformed message.
func ioError(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne)
}

// endOfCommand ends the implicit transaction of a Sync or simple query:
// outside a transaction block, portals end with it.
func (c *conn) endOfCommand() {
	if c.tx == 'I' {
		for name := range c.portals {
			c.closePortal(name)
		}
	}
	for _, kv := range c.statusQueue {
		c.be.Send(&pgproto3.ParameterStatus{Name: kv[0], Value: kv[1]})
	}
	c.statusQueue = nil
}

// try reports an extended-protocol error, if any, and discards messages
// until Sync.
func (c *conn) try(err error) {
	if err == nil {
		return
	}
	c.sendErr(err)
	c.skip = true
	// Sent now: a client that ended with Flush, not Sync, waits for it,
	// and the Flush will be discarded with everything else until Sync.
	c.be.Flush()
}

func (c *conn) sendErr(err error) {
	if c.tx == 'T' {
		c.tx = 'E'
	}
	c.be.Send(errResp("ERROR", sqlengine.SQLState(err), steward.MessageOf(err)))
}

// discard drops every statement and portal and resets settings.
func (c *conn) discard() {
	for name := range c.portals {
		c.closePortal(name)
	}
	c.stmts = map[string]*statement{}
	c.described = nil
	c.settings = defaultSettings(c.p.Username, c.settings["application_name"])
	c.loc = time.UTC
}

// query runs sql through the Querier as the session's principal; the
// session's cancel request and a vanished client cancel it.
func (c *conn) query(ctx context.Context, sql string, sink sqlengine.RowSink) (*sqlengine.Summary, error) {
	sum, err := c.s.q.Query(ctx, sqlengine.Request{Principal: c.p, SQL: sql, ClientAddr: c.addr, Database: c.database}, sink)
	if err != nil {
		switch sqlengine.SQLState(err) {
		case sqlengine.StateUndefinedTable, sqlengine.StatePrivilege:
			if pgCatalog.MatchString(sql) {
				err = sqlengine.Errorf(steward.EInvalid, sqlengine.StateFeature,
					"this PostgreSQL catalog query is not supported by Steward (%s)", steward.MessageOf(err))
			}
		}
	}
	return sum, err
}

// running marks cancel as the session's running query (for cancel
// requests) until the returned function is called.
func (c *conn) running(cancel context.CancelFunc) func() {
	c.sess.mu.Lock()
	c.sess.cancel = cancel
	c.sess.mu.Unlock()
	return func() {
		c.sess.mu.Lock()
		c.sess.cancel = nil
		c.sess.mu.Unlock()
	}
}

func isEmpty(sql string) bool {
	return normalize(sql+"\n") == ""
}

// simpleQuery runs a Query message: text results, each of its
// statements in turn until one fails.
func (c *conn) simpleQuery(sql string) {
	if isEmpty(sql) {
		c.be.Send(&pgproto3.EmptyQueryResponse{})
		return
	}
	for _, stmt := range splitStatements(sql) {
		if !c.simpleStatement(stmt) {
			return
		}
	}
}

// simpleStatement runs one statement of a simple query; false if it
// failed.
func (c *conn) simpleStatement(sql string) bool {
	res, ok, err := c.local(sql, true)
	if err != nil {
		c.sendErr(err)
		return false
	}
	if ok {
		if res.cols != nil {
			c.be.Send(&pgproto3.RowDescription{Fields: fields(res.cols, nil)})
			enc := &encoder{fields: fields(res.cols, nil), loc: c.loc}
			for _, r := range res.rows {
				if _, err := enc.send(c.be, r); err != nil {
					c.sendErr(err)
					return false
				}
			}
		}
		c.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(res.tag)})
		return true
	}
	qctx, cancel := context.WithCancel(steward.WithPrincipal(c.ctx, c.p))
	defer cancel()
	defer c.running(cancel)()
	stopWatch := c.pb.watch(cancel)
	defer stopWatch()
	sink := &rowWriter{be: c.be, w: c.pb, loc: c.loc}
	sum, err := c.query(qctx, sql, sink)
	sink.drain()
	if sink.err != nil && !errors.Is(sink.err, errEncode) {
		return false // the client is gone
	}
	if sink.encErr != nil {
		err = sink.encErr
	}
	if err != nil {
		c.sendErr(err)
		return false
	}
	if !sink.described && (sum == nil || sum.Written == "") {
		c.be.Send(&pgproto3.RowDescription{}) // a query without columns; writes return no rows at all
	}
	tag := "SELECT 0"
	if sum != nil {
		tag = "SELECT " + strconv.FormatInt(sum.Rows, 10)
		if sum.Command != "" {
			tag = sum.Command // "INSERT 0 n" for INSERT
		}
	}
	c.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
	return true
}

var errEncode = errors.New("encode")

// rowWriter sends a result as RowDescription and DataRows in text format.
// Rows gather in its own buffer and are written to the client whenever
// flushSize bytes have gathered (memory stays flat, writes are large):
// the first time through the backend, with the RowDescription before
// them, then straight to the connection (w), which spares the backend's
// buffer growing anew after every flush. drain hands the rest to the
// backend to go out with the CommandComplete or error that follows.
type rowWriter struct {
	be        *pgproto3.Backend
	w         io.Writer
	loc       *time.Location
	enc       *encoder
	buf       []byte
	direct    bool // the backend's buffer is written: rows may go straight to w
	described bool
	err       error
	encErr    error
}

func (w *rowWriter) Columns(cols []sqlengine.Column) error {
	fs := fields(cols, nil)
	w.enc = &encoder{fields: fs, types: duckTypes(cols), loc: w.loc}
	w.described = true
	w.be.Send(&pgproto3.RowDescription{Fields: fs})
	return nil
}

func duckTypes(cols []sqlengine.Column) []string {
	ts := make([]string, len(cols))
	for i, c := range cols {
		ts[i] = strings.ToUpper(c.Type)
	}
	return ts
}

func (w *rowWriter) Row(vals []any) error {
	if w.enc == nil {
		w.Columns(make([]sqlengine.Column, len(vals)))
	}
	b, err := w.enc.appendRow(w.buf, vals)
	if err != nil {
		w.encErr, w.err = err, errEncode
		return err
	}
	w.buf = b
	if len(b) < flushSize {
		return nil
	}
	if w.direct && w.w != nil {
		_, err = w.w.Write(b)
	} else {
		w.be.Send(rawMessages(b))
		err = w.be.Flush()
		w.direct = true
	}
	w.buf = b[:0]
	if err != nil {
		w.err = err
	}
	return err
}

// drain hands the rows not yet written to the backend.
func (w *rowWriter) drain() {
	if len(w.buf) > 0 {
		w.be.Send(rawMessages(w.buf))
		w.buf = w.buf[:0]
	}
}
