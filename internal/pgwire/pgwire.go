// Package pgwire is the PostgreSQL wire-protocol front of Steward's
// governed SQL: psql, DBeaver, BI tools and psycopg connect to it. The
// password is an OpenID Connect access token, verified like every other
// token; each query goes to the sqlengine (which decides, masks, filters
// and audits). It speaks protocol 3.0 with the simple query protocol, text
// results, SQLSTATE errors and CancelRequest. Message encoding is
// pgproto3's.
package pgwire

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/identity"
	"github.com/stewardhq/steward/internal/sqlengine"
)

// Querier runs one governed query; *sqlengine.Service implements it.
type Querier interface {
	Query(ctx context.Context, req sqlengine.Request, sink sqlengine.RowSink) (*sqlengine.Summary, error)
}

// Server accepts PostgreSQL connections.
type Server struct {
	q   Querier
	v   identity.TokenVerifier
	log *slog.Logger

	// StartupTimeout bounds the handshake.
	StartupTimeout time.Duration

	mu       sync.Mutex
	sessions map[uint32]*session
	wg       sync.WaitGroup
}

// NewServer returns a Server that verifies passwords with v and runs
// queries with q.
func NewServer(q Querier, v identity.TokenVerifier, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{q: q, v: v, log: log, StartupTimeout: 30 * time.Second, sessions: map[uint32]*session{}}
}

// Serve accepts connections on ln until ctx is done, then closes ln and
// every connection, cancels their queries and waits for them.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	defer s.wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.ServeConn(ctx, c)
		}()
	}
}

type session struct {
	pid    uint32
	secret []byte

	mu     sync.Mutex
	cancel context.CancelFunc // of the running query, if any
}

// ServeConn serves one client connection until it ends; it closes c.
func (s *Server) ServeConn(ctx context.Context, c net.Conn) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-ctx.Done()
		c.Close()
	}()
	defer c.Close()
	pb := &pushback{Conn: c}
	be := pgproto3.NewBackend(pb, c)
	be.SetMaxBodyLen(sqlengine.MaxQueryLen + 1024)
	log := s.log.With("client", c.RemoteAddr().String())

	c.SetDeadline(time.Now().Add(s.StartupTimeout))
	p, params, ok := s.startup(ctx, be, c, log)
	if !ok {
		return
	}
	c.SetDeadline(time.Time{})
	sess := s.register()
	defer s.unregister(sess)

	for _, kv := range [][2]string{
		{"server_version", "16.0 (Steward)"}, {"server_encoding", "UTF8"}, {"client_encoding", "UTF8"},
		{"DateStyle", "ISO, MDY"}, {"integer_datetimes", "on"}, {"standard_conforming_strings", "on"},
		{"TimeZone", "UTC"}, {"application_name", params["application_name"]}, {"is_superuser", "off"},
		{"session_authorization", p.Username},
	} {
		be.Send(&pgproto3.ParameterStatus{Name: kv[0], Value: kv[1]})
	}
	be.Send(&pgproto3.BackendKeyData{ProcessID: sess.pid, SecretKey: sess.secret})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if be.Flush() != nil {
		return
	}
	log = log.With("user", p.Username)
	extendedErr := false // an extended-protocol error was sent; skip until Sync
	for {
		msg, err := be.Receive()
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				log.Debug("pgwire receive", "err", err)
			}
			return
		}
		switch m := msg.(type) {
		case *pgproto3.Query:
			s.simpleQuery(ctx, be, pb, sess, p, c.RemoteAddr().String(), m.String)
			be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		case *pgproto3.Terminate:
			return
		case *pgproto3.Sync:
			extendedErr = false
			be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		case *pgproto3.Parse, *pgproto3.Bind, *pgproto3.Describe, *pgproto3.Execute, *pgproto3.Close, *pgproto3.Flush:
			if !extendedErr {
				extendedErr = true
				be.Send(errResp("ERROR", sqlengine.StateFeature, "the extended query protocol is not supported yet; use the simple query protocol"))
			}
		default:
			be.Send(errResp("FATAL", "08P01", fmt.Sprintf("unexpected message %T", msg)))
			be.Flush()
			return
		}
		if be.Flush() != nil {
			return
		}
	}
}

// startup runs the handshake: SSL refusal, cancel requests, the startup
// message and cleartext-password (token) authentication.
func (s *Server) startup(ctx context.Context, be *pgproto3.Backend, c net.Conn, log *slog.Logger) (*steward.Principal, map[string]string, bool) {
	for {
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			log.Debug("pgwire startup", "err", err)
			return nil, nil, false
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest, *pgproto3.GSSEncRequest:
			if _, err := c.Write([]byte{'N'}); err != nil {
				return nil, nil, false
			}
		case *pgproto3.CancelRequest:
			s.cancel(m.ProcessID, m.SecretKey)
			return nil, nil, false
		case *pgproto3.StartupMessage:
			params := m.Parameters
			if err := be.SetAuthType(pgproto3.AuthTypeCleartextPassword); err != nil {
				return nil, nil, false
			}
			be.Send(&pgproto3.AuthenticationCleartextPassword{})
			if be.Flush() != nil {
				return nil, nil, false
			}
			msg, err := be.Receive()
			if err != nil {
				return nil, nil, false
			}
			pw, ok := msg.(*pgproto3.PasswordMessage)
			if !ok {
				be.Send(errResp("FATAL", "08P01", "expected a password message"))
				be.Flush()
				return nil, nil, false
			}
			user := params["user"]
			p, err := s.v.Verify(ctx, pw.Password)
			if err == nil && user != "" && user != p.Username {
				err = steward.Errorf(steward.EUnauthenticated, "token is for %s", p.Username)
			}
			if err != nil {
				log.Info("pgwire authentication failed", "user", user, "err", err)
				be.Send(errResp("FATAL", sqlengine.StateAuth, "password authentication failed for user \""+user+"\" (the password is an OpenID access token: steward token)"))
				be.Flush()
				return nil, nil, false
			}
			be.Send(&pgproto3.AuthenticationOk{})
			return p, params, true
		default:
			return nil, nil, false
		}
	}
}

func (s *Server) register() *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		var b [8]byte
		rand.Read(b[:])
		pid := binary.BigEndian.Uint32(b[:4]) & 0x7fffffff
		if pid == 0 || s.sessions[pid] != nil {
			continue
		}
		sess := &session{pid: pid, secret: append([]byte(nil), b[4:]...)}
		s.sessions[pid] = sess
		return sess
	}
}

func (s *Server) unregister(sess *session) {
	s.mu.Lock()
	delete(s.sessions, sess.pid)
	s.mu.Unlock()
}

// cancel cancels the running query of the session with pid if the secret
// matches.
func (s *Server) cancel(pid uint32, secret []byte) {
	s.mu.Lock()
	sess := s.sessions[pid]
	s.mu.Unlock()
	if sess == nil || string(sess.secret) != string(secret) {
		return
	}
	sess.mu.Lock()
	if sess.cancel != nil {
		sess.cancel()
	}
	sess.mu.Unlock()
}

func (s *Server) simpleQuery(ctx context.Context, be *pgproto3.Backend, pb *pushback, sess *session, p *steward.Principal, addr, q string) {
	if strings.TrimSpace(strings.TrimRight(strings.TrimSpace(q), ";")) == "" {
		be.Send(&pgproto3.EmptyQueryResponse{})
		return
	}
	qctx, cancel := context.WithCancel(steward.WithPrincipal(ctx, p))
	defer cancel()
	sess.mu.Lock()
	sess.cancel = cancel
	sess.mu.Unlock()
	defer func() {
		sess.mu.Lock()
		sess.cancel = nil
		sess.mu.Unlock()
	}()
	stopWatch := pb.watch(cancel)
	defer stopWatch()
	sink := &rowWriter{be: be}
	sum, err := s.q.Query(qctx, sqlengine.Request{Principal: p, SQL: q, ClientAddr: addr}, sink)
	if sink.err != nil {
		return // the client is gone
	}
	if err != nil {
		be.Send(errResp("ERROR", sqlengine.SQLState(err), steward.MessageOf(err)))
		return
	}
	if !sink.described {
		be.Send(&pgproto3.RowDescription{})
	}
	n := int64(0)
	if sum != nil {
		n = sum.Rows
	}
	be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT " + strconv.FormatInt(n, 10))})
}

func errResp(sev, code, msg string) *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{Severity: sev, SeverityUnlocalized: sev, Code: code, Message: msg}
}

// rowWriter sends a result as RowDescription and DataRows in text format,
// flushing as it goes so that memory stays flat.
type rowWriter struct {
	be        *pgproto3.Backend
	types     []string
	described bool
	pending   int
	err       error
}

func (w *rowWriter) Columns(cols []sqlengine.Column) error {
	rd := &pgproto3.RowDescription{Fields: make([]pgproto3.FieldDescription, len(cols))}
	w.types = make([]string, len(cols))
	for i, c := range cols {
		oid, size := TypeOID(c.Type)
		rd.Fields[i] = pgproto3.FieldDescription{Name: []byte(c.Name), DataTypeOID: oid, DataTypeSize: size, TypeModifier: -1}
		w.types[i] = strings.ToUpper(c.Type)
	}
	w.described = true
	w.be.Send(rd)
	return nil
}

func (w *rowWriter) Row(vals []any) error {
	dr := &pgproto3.DataRow{Values: make([][]byte, len(vals))}
	for i, v := range vals {
		typ := ""
		if i < len(w.types) {
			typ = w.types[i]
		}
		dr.Values[i] = TextValue(v, typ)
	}
	w.be.Send(dr)
	if w.pending++; w.pending >= 256 {
		w.pending = 0
		if err := w.be.Flush(); err != nil {
			w.err = err
			return err
		}
	}
	return nil
}

// TypeOID maps a DuckDB type name to a PostgreSQL type OID and size.
func TypeOID(t string) (uint32, int16) {
	t = strings.ToUpper(t)
	switch {
	case t == "BOOLEAN":
		return 16, 1
	case t == "TINYINT" || t == "SMALLINT" || t == "UTINYINT":
		return 21, 2
	case t == "INTEGER" || t == "USMALLINT":
		return 23, 4
	case t == "BIGINT" || t == "UINTEGER":
		return 20, 8
	case t == "HUGEINT" || t == "UBIGINT" || t == "UHUGEINT" || strings.HasPrefix(t, "DECIMAL"):
		return 1700, -1
	case t == "FLOAT":
		return 700, 4
	case t == "DOUBLE":
		return 701, 8
	case t == "BLOB":
		return 17, -1
	case t == "DATE":
		return 1082, 4
	case t == "TIME":
		return 1083, 8
	case t == "TIMESTAMP" || t == "TIMESTAMP_S" || t == "TIMESTAMP_MS" || t == "TIMESTAMP_NS":
		return 1114, 8
	case t == "TIMESTAMPTZ" || t == "TIMESTAMP WITH TIME ZONE":
		return 1184, 8
	case t == "INTERVAL":
		return 1186, 16
	case t == "UUID":
		return 2950, 16
	case t == "JSON":
		return 114, -1
	}
	return 25, -1 // text
}

// TextValue renders v in PostgreSQL's text format; nil is NULL.
func TextValue(v any, typ string) []byte {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return []byte(x)
	case []byte:
		if typ == "UUID" && len(x) == 16 {
			h := hex.EncodeToString(x)
			return []byte(h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:])
		}
		return []byte(`\x` + hex.EncodeToString(x))
	case bool:
		if x {
			return []byte("t")
		}
		return []byte("f")
	case int64:
		return strconv.AppendInt(nil, x, 10)
	case int32:
		return strconv.AppendInt(nil, int64(x), 10)
	case int16:
		return strconv.AppendInt(nil, int64(x), 10)
	case int8:
		return strconv.AppendInt(nil, int64(x), 10)
	case int:
		return strconv.AppendInt(nil, int64(x), 10)
	case uint64:
		return strconv.AppendUint(nil, x, 10)
	case uint32:
		return strconv.AppendUint(nil, uint64(x), 10)
	case uint16:
		return strconv.AppendUint(nil, uint64(x), 10)
	case uint8:
		return strconv.AppendUint(nil, uint64(x), 10)
	case float64:
		return strconv.AppendFloat(nil, x, 'g', -1, 64)
	case float32:
		return strconv.AppendFloat(nil, float64(x), 'g', -1, 32)
	case *big.Int:
		return []byte(x.String())
	case time.Time:
		switch typ {
		case "DATE":
			return []byte(x.Format("2006-01-02"))
		case "TIME":
			return []byte(x.Format("15:04:05.999999"))
		case "TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE":
			return []byte(x.Format("2006-01-02 15:04:05.999999-07"))
		}
		return []byte(x.Format("2006-01-02 15:04:05.999999"))
	case fmt.Stringer:
		return []byte(x.String())
	case map[string]any, []any:
		if b, err := json.Marshal(x); err == nil {
			return b
		}
	}
	return []byte(fmt.Sprint(v))
}

// pushback is the connection as the protocol reader sees it, with room for
// a byte read while a query ran.
type pushback struct {
	net.Conn
	mu      sync.Mutex
	pending []byte
}

func (p *pushback) Read(b []byte) (int, error) {
	p.mu.Lock()
	if len(p.pending) > 0 {
		n := copy(b, p.pending)
		p.pending = p.pending[n:]
		p.mu.Unlock()
		return n, nil
	}
	p.mu.Unlock()
	return p.Conn.Read(b)
}

// watch cancels a running query when the client goes away: it reads one
// byte while the query runs (a client sends nothing then, except to
// leave); a byte that does arrive is kept for the protocol reader. The
// returned function stops watching.
func (p *pushback) watch(cancel context.CancelFunc) func() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		var b [1]byte
		n, err := p.Conn.Read(b[:])
		if n > 0 {
			p.mu.Lock()
			p.pending = append(p.pending, b[0])
			p.mu.Unlock()
			return
		}
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			cancel()
		}
	}()
	return func() {
		p.Conn.SetReadDeadline(time.Now())
		<-done
		p.Conn.SetReadDeadline(time.Time{})
	}
}
