package pgwire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/identity"
	"github.com/stewardhq/steward/internal/sqlengine"
)

type fakeQuerier struct{}

// canceled learns of every slow query that ended by cancellation.
var canceled = make(chan struct{}, 16)

func (fakeQuerier) Query(ctx context.Context, r sqlengine.Request, sink sqlengine.RowSink) (*sqlengine.Summary, error) {
	switch {
	case strings.Contains(r.SQL, "slow"):
		<-ctx.Done()
		canceled <- struct{}{}
		return nil, sqlengine.Errorf(steward.EInvalid, sqlengine.StateCanceled, "canceling statement due to user request")
	case strings.Contains(r.SQL, "secret"):
		return nil, sqlengine.Errorf(steward.EPermission, sqlengine.StatePrivilege, "permission denied for table bank.crm.secret")
	case strings.Contains(r.SQL, "nothere"):
		return nil, sqlengine.Errorf(steward.ENotFound, sqlengine.StateUndefinedTable, "relation \"nothere\" does not exist")
	}
	sink.Columns([]sqlengine.Column{{Name: "id", Type: "INTEGER"}, {Name: "who", Type: "VARCHAR"}, {Name: "ok", Type: "BOOLEAN"},
		{Name: "amount", Type: "DOUBLE"}, {Name: "d", Type: "DATE"}, {Name: "n", Type: "VARCHAR"}})
	d := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	sink.Row([]any{int32(1), r.Principal.Username, true, 2.5, d, nil})
	sink.Row([]any{int32(2), "x'y", false, -1.0, d, nil})
	return &sqlengine.Summary{Rows: 2}, nil
}

func verifier() identity.TokenVerifier {
	return identity.TokenVerifierFunc(func(_ context.Context, tok string) (*steward.Principal, error) {
		if u, ok := strings.CutPrefix(tok, "tok-"); ok {
			return &steward.Principal{Kind: steward.KindUser, Username: u}, nil
		}
		return nil, steward.Errorf(steward.EUnauthenticated, "bad token")
	})
}

func start(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := NewServer(fakeQuerier{}, verifier(), nil)
	done := make(chan struct{})
	go func() { s.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

func connect(t *testing.T, addr, user, pw string) (*pgx.Conn, error) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=steward sslmode=disable", host, port, user, pw))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	c, err := pgx.ConnectConfig(context.Background(), cfg)
	if err == nil {
		t.Cleanup(func() { c.Close(context.Background()) })
	}
	return c, err
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func TestPgx(t *testing.T) {
	addr := start(t)
	ctx := context.Background()
	t.Run("bad token", func(t *testing.T) {
		_, err := connect(t, addr, "alice", "wrong")
		if pgCode(err) != "28P01" {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("token for someone else", func(t *testing.T) {
		_, err := connect(t, addr, "bob", "tok-alice")
		if pgCode(err) != "28P01" {
			t.Fatalf("got %v", err)
		}
	})
	c, err := connect(t, addr, "alice", "tok-alice")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("rows", func(t *testing.T) {
		var id int32
		var who string
		var ok bool
		var amount float64
		var d time.Time
		var n *string
		if err := c.QueryRow(ctx, "SELECT 1").Scan(&id, &who, &ok, &amount, &d, &n); err != nil {
			t.Fatal(err)
		}
		if id != 1 || who != "alice" || !ok || amount != 2.5 || !d.Equal(time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)) || n != nil {
			t.Errorf("got %v %v %v %v %v %v", id, who, ok, amount, d, n)
		}
	})
	for _, tc := range []struct{ q, code string }{{"select * from secret", "42501"}, {"select * from nothere", "42P01"}} {
		t.Run(tc.q, func(t *testing.T) {
			_, err := c.Exec(ctx, tc.q)
			if pgCode(err) != tc.code {
				t.Fatalf("got %v", err)
			}
		})
	}
	t.Run("cancel", func(t *testing.T) {
		errc := make(chan error, 1)
		go func() { _, err := c.Exec(ctx, "select slow"); errc <- err }()
		var err error
		for i := 0; ; i++ {
			time.Sleep(20 * time.Millisecond)
			if cerr := c.PgConn().CancelRequest(ctx); cerr != nil {
				t.Fatal(cerr)
			}
			select {
			case err = <-errc:
			case <-time.After(time.Second):
				continue
			}
			break
		}
		if pgCode(err) != "57014" {
			t.Fatalf("got %v", err)
		}
		var id int32
		if err := c.QueryRow(ctx, "SELECT 1").Scan(&id, new(string), new(bool), new(float64), new(time.Time), new(*string)); err != nil || id != 1 {
			t.Fatalf("connection unusable after cancel: %v", err)
		}
	})
	t.Run("extended protocol", func(t *testing.T) {
		var id int32
		if err := c.QueryRow(ctx, "select $1::int", pgx.QueryExecModeDescribeExec, 1).Scan(&id, new(string), new(bool), new(float64), new(time.Time), new(*string)); err != nil || id != 1 {
			t.Fatalf("got %v %v", id, err)
		}
		if _, err := c.Exec(ctx, "select 1"); err != nil {
			t.Fatalf("connection unusable: %v", err)
		}
	})
}

// TestClientGoneCancels: a client that disappears mid-query cancels it.
func TestClientGoneCancels(t *testing.T) {
	addr := start(t)
	host, port, _ := net.SplitHostPort(addr)
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%s user=alice password=tok-alice sslmode=disable", host, port))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	c, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for len(canceled) > 0 {
		<-canceled
	}
	go c.Exec(context.Background(), "select slow")
	time.Sleep(50 * time.Millisecond)
	c.PgConn().Conn().Close()
	<-canceled // the server cancelled the query; a hang here fails the test by timeout
}

func TestPsql(t *testing.T) {
	if _, err := os.Stat("/usr/bin/psql"); err != nil {
		t.Fatal("psql is not installed (Debian postgresql-client)")
	}
	addr := start(t)
	host, port, _ := net.SplitHostPort(addr)
	psql := func(pw, q string) (string, error) {
		cmd := exec.Command("/usr/bin/psql", "-X", "-A", "-t", "-h", host, "-p", port, "-U", "alice", "-d", "steward", "-c", q)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+pw, "PGSSLMODE=prefer", "PGCONNECT_TIMEOUT=10")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := psql("tok-alice", "select 1")
	if err != nil || !strings.Contains(out, "1|alice|t|2.5|2024-03-01|") || !strings.Contains(out, "2|x'y|f|-1|2024-03-01|") {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	out, err = psql("tok-alice", "select * from secret")
	if err == nil || !strings.Contains(out, "permission denied for table bank.crm.secret") {
		t.Fatalf("psql denial: %v\n%s", err, out)
	}
	out, err = psql("nope", "select 1")
	if err == nil || !strings.Contains(out, "password authentication failed") {
		t.Fatalf("psql bad password: %v\n%s", err, out)
	}
}
