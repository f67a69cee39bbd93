package pgwire

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

func encode(tb testing.TB, msgs ...pgproto3.FrontendMessage) []byte {
	tb.Helper()
	var out []byte
	for _, m := range msgs {
		b, err := m.Encode(nil)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

var login = []pgproto3.FrontendMessage{
	&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "alice"}},
	&pgproto3.PasswordMessage{Password: "tok-alice"},
}

// serveBytes feeds in to a fresh TCP connection, half-closes it and
// returns everything the server sent until it closed the connection.
func serveBytes(t *testing.T, s *Server, in []byte) []byte {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.ServeConn(context.Background(), c)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		c.Write(in)
		c.(*net.TCPConn).CloseWrite()
	}()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	out, err := io.ReadAll(c)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the server did not close the connection; it sent %q", out)
		}
	}
	<-done
	return out
}

// noLeaks fails if goroutines started by the test outlive it.
func noLeaks(t *testing.T, before int) {
	t.Helper()
	for i := 0; runtime.NumGoroutine() > before; i++ {
		if i == 500 {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left running (was %d):\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fuzzServer() *Server {
	s := NewServer(fakeQuerier{}, verifier(), nil)
	s.StartupTimeout = 2 * time.Second
	return s
}

// FuzzStartup feeds arbitrary bytes as the start of a connection: no
// panic, no hang, no goroutine left behind.
func FuzzStartup(f *testing.F) {
	f.Add(encode(f, login...))
	f.Add(encode(f, &pgproto3.CancelRequest{ProcessID: 1, SecretKey: []byte{1, 2, 3, 4}}))
	f.Add(append(encode(f, &pgproto3.SSLRequest{}, &pgproto3.GSSEncRequest{}), encode(f, login...)...))
	f.Add([]byte{0, 0, 0, 8, 4, 210, 22, 47})
	f.Add([]byte{0, 0, 0, 3})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 3, 0, 0})
	f.Add(encode(f, login[0], &pgproto3.Query{String: "select 1"}))
	s := fuzzServer()
	f.Fuzz(func(t *testing.T, in []byte) {
		before := runtime.NumGoroutine()
		serveBytes(t, s, in)
		noLeaks(t, before)
	})
}

// FuzzMessages feeds arbitrary messages after a good login.
func FuzzMessages(f *testing.F) {
	f.Add(encode(f, &pgproto3.Query{String: "select 1"}, &pgproto3.Terminate{}))
	f.Add(encode(f, &pgproto3.Parse{Name: "s", Query: "select $1::int, $2"}, &pgproto3.Describe{ObjectType: 'S', Name: "s"},
		&pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "s", ParameterFormatCodes: []int16{1, 0}, Parameters: [][]byte{{0, 0, 0, 1}, []byte("x")}, ResultFormatCodes: []int16{1}},
		&pgproto3.Describe{ObjectType: 'P', Name: "p"}, &pgproto3.Execute{Portal: "p", MaxRows: 1}, &pgproto3.Execute{Portal: "p"},
		&pgproto3.Close{ObjectType: 'P', Name: "p"}, &pgproto3.Close{ObjectType: 'S', Name: "s"}, &pgproto3.Sync{}))
	f.Add(encode(f, &pgproto3.Parse{Query: "select slow"}, &pgproto3.Bind{}, &pgproto3.Execute{MaxRows: 1}, &pgproto3.Flush{}))
	f.Add(encode(f, &pgproto3.Bind{PreparedStatement: "nope"}, &pgproto3.Execute{}, &pgproto3.Sync{}, &pgproto3.Query{String: "SET TimeZone = 'Europe/Paris'"}))
	f.Add(encode(f, &pgproto3.Query{String: "BEGIN"}, &pgproto3.Query{String: "select * from secret"}, &pgproto3.Query{String: "select 1"}, &pgproto3.Query{String: "ROLLBACK"}))
	f.Add([]byte{'Q', 0, 0, 0, 3})
	f.Add([]byte{'Z', 0, 0, 0, 4})
	f.Add([]byte{'B', 0, 0, 0, 6, 0, 0})
	s := fuzzServer()
	prefix := encode(f, login...)
	f.Fuzz(func(t *testing.T, in []byte) {
		before := runtime.NumGoroutine()
		serveBytes(t, s, append(append([]byte(nil), prefix...), in...))
		noLeaks(t, before)
	})
}

// TestMalformedMessage: a malformed message gets a 08P01 ErrorResponse
// and the connection closes.
func TestMalformedMessage(t *testing.T) {
	for name, in := range map[string][]byte{
		"unknown type":     {'!', 0, 0, 0, 4},
		"short length":     {'Q', 0, 0, 0, 2},
		"bad bind":         {'B', 0, 0, 0, 6, 0, 0},
		"bad startup":      nil,
		"huge startup len": nil,
	} {
		t.Run(name, func(t *testing.T) {
			msg := append(encode(t, login...), in...)
			switch name {
			case "bad startup":
				msg = []byte{0, 0, 0, 8, 0, 9, 0, 9}
			case "huge startup len":
				msg = []byte{0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0}
			}
			out := serveBytes(t, fuzzServer(), msg)
			if !containsErrorCode(out, "08P01") {
				t.Fatalf("no 08P01 ErrorResponse in %q", out)
			}
		})
	}
}

// containsErrorCode looks for an ErrorResponse with code among the
// backend messages in b (after the startup, every message is type+len).
func containsErrorCode(b []byte, code string) bool {
	for i := 0; i+5 <= len(b); {
		typ := b[i]
		n := int(b[i+1])<<24 | int(b[i+2])<<16 | int(b[i+3])<<8 | int(b[i+4])
		if n < 4 || i+1+n > len(b) {
			return false
		}
		if typ == 'E' {
			var e pgproto3.ErrorResponse
			if e.Decode(b[i+5:i+1+n]) == nil && e.Code == code {
				return true
			}
		}
		i += 1 + n
	}
	return false
}
