// Package pgwire is the PostgreSQL wire-protocol front of Steward's
// governed SQL: psql, DBeaver/JDBC, pgx, psycopg, asyncpg, Npgsql and BI
// tools connect to it. The password is an OpenID Connect access token (or
// a service account's key), verified like every other token; each query
// goes to the sqlengine (which decides, masks, filters and audits). It
// speaks protocol 3.0: TLS on SSLRequest when configured, the simple and
// the extended query protocol (parameters rendered as quoted, typed
// literals into the statement, so the sqlengine sees the whole statement),
// text and binary results for common types, SQLSTATE errors and
// CancelRequest. Session commands drivers send (SET and SHOW of harmless
// settings, transaction control, version(), current_setting) are answered
// here and never reach DuckDB. Message encoding is pgproto3's.
package pgwire

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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

	mu         sync.Mutex
	tls        *tls.Config
	requireTLS bool
	sessions   map[uint32]*session
	wg         sync.WaitGroup
}

// NewServer returns a Server that verifies passwords with v and runs
// queries with q.
func NewServer(q Querier, v identity.TokenVerifier, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{q: q, v: v, log: log, StartupTimeout: 30 * time.Second, sessions: map[uint32]*session{}}
}

// SetTLS makes the server accept TLS (answering SSLRequest with 'S')
// with cfg; nil turns TLS off. If requireRemote, a client that is not on
// a loopback address must use TLS. Safe to call while serving; it applies
// to new connections.
func (s *Server) SetTLS(cfg *tls.Config, requireRemote bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tls, s.requireTLS = cfg, requireRemote && cfg != nil
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
	log := s.log.With("client", c.RemoteAddr().String())

	c.SetDeadline(time.Now().Add(s.StartupTimeout))
	pb := &pushback{Conn: c}
	be, p, params, ok := s.startup(ctx, pb, log)
	if !ok {
		return
	}
	c.SetDeadline(time.Time{})
	sess := s.register()
	defer s.unregister(sess)

	cn := &conn{s: s, ctx: ctx, be: be, pb: pb, sess: sess, p: p, addr: c.RemoteAddr().String(),
		database: params["database"], log: log.With("user", p.Username), tx: 'I', loc: time.UTC,
		settings: defaultSettings(p.Username, params["application_name"]),
		stmts:    map[string]*statement{}, portals: map[string]*portal{}}
	if cn.database == "" {
		cn.database = p.Username
	}
	defer func() {
		for name := range cn.portals {
			cn.closePortal(name)
		}
	}()
	for _, kv := range [][2]string{
		{"server_version", "16.0 (Steward)"}, {"server_encoding", "UTF8"}, {"client_encoding", "UTF8"},
		{"DateStyle", "ISO, MDY"}, {"IntervalStyle", "postgres"}, {"integer_datetimes", "on"}, {"standard_conforming_strings", "on"},
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
	cn.loop()
}

// startup runs the handshake: TLS (SSLRequest), GSSAPI refusal, cancel
// requests, the startup message and cleartext-password (token)
// authentication. On TLS it swaps pb's connection for the TLS one.
func (s *Server) startup(ctx context.Context, pb *pushback, log *slog.Logger) (*pgproto3.Backend, *steward.Principal, map[string]string, bool) {
	be := pgproto3.NewBackend(pb, pb)
	be.SetMaxBodyLen(sqlengine.MaxQueryLen + 1024)
	fatal := func(code, msg string) {
		be.Send(errResp("FATAL", code, msg))
		be.Flush()
	}
	s.mu.Lock()
	tlsConf, requireTLS := s.tls, s.requireTLS
	s.mu.Unlock()
	secure := false
	for {
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			log.Debug("pgwire startup", "err", err)
			if !ioError(err) {
				fatal("08P01", "invalid startup packet")
			}
			return nil, nil, nil, false
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest:
			if secure {
				fatal("08P01", "SSLRequest after TLS was set up")
				return nil, nil, nil, false
			}
			if tlsConf == nil {
				if _, err := pb.Write([]byte{'N'}); err != nil {
					return nil, nil, nil, false
				}
				continue
			}
			if _, err := pb.Write([]byte{'S'}); err != nil {
				return nil, nil, nil, false
			}
			tc := tls.Server(pb.Conn, tlsConf)
			if err := tc.HandshakeContext(ctx); err != nil {
				log.Debug("pgwire TLS handshake", "err", err)
				return nil, nil, nil, false
			}
			pb.Conn = tc
			secure = true
			be = pgproto3.NewBackend(pb, pb)
			be.SetMaxBodyLen(sqlengine.MaxQueryLen + 1024)
		case *pgproto3.GSSEncRequest:
			if _, err := pb.Write([]byte{'N'}); err != nil {
				return nil, nil, nil, false
			}
		case *pgproto3.CancelRequest:
			s.cancel(m.ProcessID, m.SecretKey)
			return nil, nil, nil, false
		case *pgproto3.StartupMessage:
			params := m.Parameters
			if requireTLS && !secure && !isLoopback(pb.Conn.RemoteAddr()) {
				fatal("28000", "this server requires TLS for connections from other hosts (sslmode=require)")
				return nil, nil, nil, false
			}
			if err := be.SetAuthType(pgproto3.AuthTypeCleartextPassword); err != nil {
				return nil, nil, nil, false
			}
			be.Send(&pgproto3.AuthenticationCleartextPassword{})
			if be.Flush() != nil {
				return nil, nil, nil, false
			}
			msg, err := be.Receive()
			if err != nil {
				if !ioError(err) {
					fatal("08P01", "invalid password packet")
				}
				return nil, nil, nil, false
			}
			pw, ok := msg.(*pgproto3.PasswordMessage)
			if !ok {
				fatal("08P01", "expected a password message")
				return nil, nil, nil, false
			}
			user := params["user"]
			p, err := s.v.Verify(ctx, pw.Password)
			if err == nil && user != "" && user != p.Username {
				err = steward.Errorf(steward.EUnauthenticated, "token is for %s", p.Username)
			}
			if err != nil {
				log.Info("pgwire authentication failed", "user", user, "err", err)
				fatal(sqlengine.StateAuth, "password authentication failed for user \""+user+"\" (the password is an OpenID access token: steward token)")
				return nil, nil, nil, false
			}
			be.Send(&pgproto3.AuthenticationOk{})
			return be, p, params, true
		default:
			fatal("08P01", "unexpected startup message")
			return nil, nil, nil, false
		}
	}
}

func isLoopback(a net.Addr) bool {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.IsLoopback()
	}
	_, isUnix := a.(*net.UnixAddr)
	return isUnix
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

func errResp(sev, code, msg string) *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{Severity: sev, SeverityUnlocalized: sev, Code: code, Message: msg}
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
	if out, ok := sqlengine.AppendInteger(nil, v); ok {
		return out
	}
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
