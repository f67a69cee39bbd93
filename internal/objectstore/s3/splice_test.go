package s3store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawUpstream answers GET requests on a TCP listener the way each test
// says: serve gets the request and the connection and reports whether to
// keep reading requests on it.
func rawUpstream(t *testing.T, serve func(r *http.Request, c net.Conn) bool) *splicer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					r, err := http.ReadRequest(br)
					if err != nil || !serve(r, c) {
						return
					}
				}
			}()
		}
	}()
	u, _ := url.Parse("http://" + ln.Addr().String())
	s := newSplicer(u, nil)
	if s == nil {
		t.Fatal("no splicer for a plain-HTTP endpoint")
	}
	t.Cleanup(s.close)
	return s
}

func answer(c net.Conn, body []byte, extra string) {
	fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n", len(body), extra)
	c.Write(body)
}

func get(t *testing.T, ctx context.Context, s *splicer) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+"/b/k", nil)
	resp, err := s.do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (s *splicer) dialed() int { s.mu.Lock(); defer s.mu.Unlock(); return s.dials }

// readerFromRecorder is an io.Writer whose ReadFrom notes what it was
// handed, as a TCP connection's ReadFrom would splice from it.
type readerFromRecorder struct {
	bytes.Buffer
	src io.Reader
}

func (w *readerFromRecorder) ReadFrom(r io.Reader) (int64, error) {
	w.src = r
	return w.Buffer.ReadFrom(r)
}

func TestSplicedBody(t *testing.T) {
	body := bytes.Repeat([]byte("spliced body "), 100_000) // 1.3 MB, more than the read buffer
	s := rawUpstream(t, func(_ *http.Request, c net.Conn) bool { answer(c, body, ""); return true })
	ctx := context.Background()

	t.Run("WriteTo hands the connection to ReadFrom", func(t *testing.T) {
		resp := get(t, ctx, s)
		var w readerFromRecorder
		n, err := io.Copy(&w, resp.Body)
		resp.Body.Close()
		if err != nil || n != int64(len(body)) || !bytes.Equal(w.Bytes(), body) {
			t.Fatalf("copied %d bytes, err %v; body equal: %v", n, err, bytes.Equal(w.Bytes(), body))
		}
		lr, ok := w.src.(*io.LimitedReader)
		if !ok {
			t.Fatalf("ReadFrom got %T, want *io.LimitedReader", w.src)
		}
		if _, ok := lr.R.(*net.TCPConn); !ok {
			t.Fatalf("ReadFrom got a LimitedReader over %T, want *net.TCPConn (splice needs it)", lr.R)
		}
	})
	t.Run("Read", func(t *testing.T) {
		resp := get(t, ctx, s)
		got, err := io.ReadAll(struct{ io.Reader }{resp.Body}) // no WriteTo
		resp.Body.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("read %d bytes, err %v", len(got), err)
		}
	})
	t.Run("a Writer without ReadFrom", func(t *testing.T) {
		resp := get(t, ctx, s)
		var buf bytes.Buffer
		n, err := resp.Body.(io.WriterTo).WriteTo(struct{ io.Writer }{&buf})
		resp.Body.Close()
		if err != nil || n != int64(len(body)) || !bytes.Equal(buf.Bytes(), body) {
			t.Fatalf("wrote %d bytes, err %v", n, err)
		}
	})
	// Every body above was read whole: one connection served them all.
	if d := s.dialed(); d != 1 {
		t.Errorf("%d connections dialed for three whole bodies, want 1", d)
	}

	t.Run("a body closed far from its end closes its connection", func(t *testing.T) {
		before := s.dialed()
		resp := get(t, ctx, s)
		buf := make([]byte, 100)
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		resp = get(t, ctx, s)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if d := s.dialed() - before; d != 1 {
			t.Errorf("%d new connections, want 1 (the abandoned one is not reused)", d)
		}
	})
}

func TestSplicerRetriesAStaleConnection(t *testing.T) {
	body := []byte("fresh")
	// The upstream closes every connection after one answer, without
	// saying so: the idle connection is stale when reused.
	s := rawUpstream(t, func(_ *http.Request, c net.Conn) bool { answer(c, body, ""); return false })
	for i := range 3 {
		resp := get(t, context.Background(), s)
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(got) != "fresh" {
			t.Fatalf("GET %d: %q, %v", i, got, err)
		}
	}
}

func TestSplicerConnectionClose(t *testing.T) {
	s := rawUpstream(t, func(_ *http.Request, c net.Conn) bool {
		answer(c, []byte("bye"), "Connection: close\r\n")
		return false
	})
	for range 2 {
		resp := get(t, context.Background(), s)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	s.mu.Lock()
	idle := len(s.idle)
	s.mu.Unlock()
	if idle != 0 || s.dialed() != 2 {
		t.Errorf("%d idle connections and %d dialed after two Connection: close answers, want 0 and 2", idle, s.dialed())
	}
}

func TestSplicedBodyTruncated(t *testing.T) {
	// Content-Length says 1000; the upstream sends 600 and closes.
	s := rawUpstream(t, func(_ *http.Request, c net.Conn) bool {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n%s", strings.Repeat("x", 600))
		return false
	})
	for _, tc := range []struct {
		name string
		copy func(io.Reader) (int64, error)
	}{
		{"ReadFrom", func(r io.Reader) (int64, error) { var w readerFromRecorder; return io.Copy(&w, r) }},
		{"Write", func(r io.Reader) (int64, error) { return io.Copy(struct{ io.Writer }{io.Discard}, r) }},
		{"Read", func(r io.Reader) (int64, error) { return io.Copy(io.Discard, struct{ io.Reader }{r}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := get(t, context.Background(), s)
			n, err := tc.copy(resp.Body)
			resp.Body.Close()
			if n != 600 || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("copied %d bytes, err %v; want 600 and unexpected EOF", n, err)
			}
		})
	}
}

func TestSplicedBodyCanceled(t *testing.T) {
	release := make(chan struct{})
	// Headers and part of the body, then nothing until the test ends.
	s := rawUpstream(t, func(_ *http.Request, c net.Conn) bool {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nsome bytes")
		<-release
		return false
	})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	resp := get(t, ctx, s)
	errc := make(chan error, 1)
	go func() {
		var w readerFromRecorder
		_, err := io.Copy(&w, resp.Body)
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the copy block on the socket
	cancel()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("a canceled body copied to the end")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("canceling the request did not interrupt its body")
	}
	resp.Body.Close()
	s.mu.Lock()
	idle := len(s.idle)
	s.mu.Unlock()
	if idle != 0 {
		t.Errorf("%d idle connections after a canceled body, want 0", idle)
	}
}

func TestSplicerChunkedAnswer(t *testing.T) {
	s := rawUpstream(t, func(_ *http.Request, c net.Conn) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
		return true
	})
	resp := get(t, context.Background(), s)
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(got) != "hello world" {
		t.Fatalf("%q, %v", got, err)
	}
}

func TestSplicerOnlyForPlainHTTP(t *testing.T) {
	noProxy := func(*http.Request) (*url.URL, error) { return nil, nil }
	proxy := func(*http.Request) (*url.URL, error) { return url.Parse("http://proxy.internal:3128") }
	for _, tc := range []struct {
		endpoint string
		proxy    func(*http.Request) (*url.URL, error)
		want     bool
	}{
		{"http://127.0.0.1:9000", noProxy, true},
		{"http://s3.internal", nil, true},
		{"https://s3.internal", noProxy, false},
		{"http://s3.internal", proxy, false},
	} {
		u, _ := url.Parse(tc.endpoint)
		if got := newSplicer(u, tc.proxy) != nil; got != tc.want {
			t.Errorf("newSplicer(%s) != nil is %v, want %v", tc.endpoint, got, tc.want)
		}
	}
	if s := newSplicer(&url.URL{Scheme: "http", Host: "s3.internal"}, nil); s.addr != "s3.internal:80" {
		t.Errorf("address %q, want s3.internal:80", s.addr)
	}
}
