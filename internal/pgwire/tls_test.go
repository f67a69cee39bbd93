package pgwire

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/stewardhq/steward/internal/testutil/certtest"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string) { return certtest.SelfSigned(t) }

func startTLS(t *testing.T, requireRemote bool) (string, *Server) {
	t.Helper()
	cert, key := selfSigned(t)
	conf, err := LoadTLS(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(fakeQuerier{}, verifier(), nil)
	s.SetTLS(conf, requireRemote)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String(), s
}

func TestTLS(t *testing.T) {
	addr, _ := startTLS(t, true)
	ctx := context.Background()
	for _, mode := range []string{"require", "prefer"} {
		t.Run("pgx sslmode="+mode, func(t *testing.T) {
			c, err := pgx.Connect(ctx, strings.Replace(connString(addr, "alice", "tok-alice"), "sslmode=disable", "sslmode="+mode, 1))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			if _, ok := c.PgConn().Conn().(*tls.Conn); !ok {
				t.Fatalf("connection is not TLS: %T", c.PgConn().Conn())
			}
			var id int32
			if err := c.QueryRow(ctx, "select $1::int", 1).Scan(&id, new(string), new(bool), new(float64), new(time.Time), new(*string)); err != nil || id != 1 {
				t.Fatalf("query over TLS: %v", err)
			}
		})
	}
	t.Run("loopback may skip TLS", func(t *testing.T) {
		c, err := pgx.Connect(ctx, connString(addr, "alice", "tok-alice"))
		if err != nil {
			t.Fatal(err)
		}
		c.Close(ctx)
	})
	t.Run("psql sslmode=require", func(t *testing.T) {
		if _, err := os.Stat("/usr/bin/psql"); err != nil {
			t.Fatal("psql is not installed (Debian postgresql-client; scripts/test-deps.sh installs it)")
		}
		host, port, _ := net.SplitHostPort(addr)
		cmd := exec.Command("/usr/bin/psql", "-X", "-A", "-t", "-h", host, "-p", port, "-U", "alice", "-d", "steward", "-c", "select 1")
		cmd.Env = append(os.Environ(), "PGPASSWORD=tok-alice", "PGSSLMODE=require", "PGCONNECT_TIMEOUT=10")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "1|alice|t|2.5|2024-03-01|") {
			t.Fatalf("psql over TLS: %v\n%s", err, out)
		}
	})
}

// TestTLSRequiredForRemote: a client that is not on loopback (here a
// pipe) must use TLS when the server requires it.
func TestTLSRequiredForRemote(t *testing.T) {
	_, s := startTLS(t, true)
	a, b := net.Pipe()
	done := make(chan struct{})
	go func() { s.ServeConn(context.Background(), a); close(done) }()
	defer func() { b.Close(); <-done }()
	fe := pgproto3.NewFrontend(b, b)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "alice"}})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	msg, err := fe.Receive()
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := msg.(*pgproto3.ErrorResponse); !ok || e.Code != "28000" {
		t.Fatalf("got %#v", msg)
	}
}

func TestLoadTLSErrors(t *testing.T) {
	if _, err := LoadTLS("/nonexistent/cert.pem", "/nonexistent/key.pem"); err == nil {
		t.Fatal("no error for missing files")
	}
}
