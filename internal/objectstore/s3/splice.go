package s3store

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"
)

// The spliced GET: an object read through forward mode is, byte for byte,
// the upstream's response body copied to the S3 client's connection. Over
// net/http's client that copy goes through user space twice (read from
// the upstream socket, write to the client's). splicer sends GETs to a
// plain-HTTP upstream over connections of its own instead, so that once
// the response headers are read the rest of the body is a *net.TCPConn
// behind an io.LimitedReader: handed to the gateway's response writer,
// whose connection's ReadFrom moves it socket to socket with splice(2)
// and never into this process. TLS upstreams, proxies and custom HTTP
// clients keep net/http.

// Bounds of the splicer's idle connections.
const (
	spliceMaxIdle     = 256
	spliceIdleTimeout = 90 * time.Second
)

// splicer is a minimal HTTP/1.1 client for GET requests to one
// plain-HTTP host, keeping its connections alive between requests.
type splicer struct {
	addr   string
	dialer net.Dialer

	mu   sync.Mutex
	idle []*rawConn
	// dials counts the connections opened (tests).
	dials int
}

// rawConn is one connection to the upstream with its buffers.
type rawConn struct {
	c    *net.TCPConn
	br   *bufio.Reader
	bw   *bufio.Writer
	used time.Time // when it went idle
}

// newSplicer returns a splicer for endpoint, or nil when the endpoint
// cannot be spliced (not plain http, or reached through the proxy that
// proxy, the HTTP transport's, names).
func newSplicer(endpoint *url.URL, proxy func(*http.Request) (*url.URL, error)) *splicer {
	if endpoint.Scheme != "http" {
		return nil
	}
	if proxy != nil {
		if p, err := proxy(&http.Request{URL: endpoint}); err != nil || p != nil {
			return nil
		}
	}
	host := endpoint.Host
	if endpoint.Port() == "" {
		host = net.JoinHostPort(endpoint.Hostname(), "80")
	}
	return &splicer{addr: host, dialer: net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}}
}

// get returns an idle connection (reused true) or a new one.
func (s *splicer) get(ctx context.Context) (*rawConn, bool, error) {
	s.mu.Lock()
	for len(s.idle) > 0 {
		rc := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		if time.Since(rc.used) < spliceIdleTimeout {
			s.mu.Unlock()
			return rc, true, nil
		}
		rc.c.Close()
	}
	s.dials++
	s.mu.Unlock()
	c, err := s.dialer.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, false, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return nil, false, errors.New("s3store: upstream connection is not TCP")
	}
	return &rawConn{c: tc, br: bufio.NewReaderSize(tc, 32<<10), bw: bufio.NewWriterSize(tc, 4<<10)}, false, nil
}

// put keeps rc for the next request, or closes it when the pool is full.
func (s *splicer) put(rc *rawConn) {
	rc.used = time.Now()
	s.mu.Lock()
	if len(s.idle) < spliceMaxIdle {
		s.idle = append(s.idle, rc)
		rc = nil
	}
	s.mu.Unlock()
	if rc != nil {
		rc.c.Close()
	}
}

// close closes the idle connections.
func (s *splicer) close() {
	s.mu.Lock()
	idle := s.idle
	s.idle = nil
	s.mu.Unlock()
	for _, rc := range idle {
		rc.c.Close()
	}
}

// do sends req (a GET without a body) and returns the response, whose
// Body must be closed. A request that fails on a reused connection
// before its answer (the upstream closed it while it was idle) is sent
// once more on a new one: a GET may be repeated.
func (s *splicer) do(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet || req.Body != nil && req.Body != http.NoBody {
		return nil, errors.New("s3store: the splicer sends only GET requests without a body")
	}
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		rc, reused, err := s.get(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := s.roundTrip(ctx, rc, req)
		if err == nil {
			return resp, nil
		}
		rc.c.Close()
		if !reused || attempt > 0 || ctx.Err() != nil || !stale(err) {
			return nil, err
		}
	}
}

// stale reports whether err is what a request on a connection the peer
// had closed meets.
func stale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// aLongTimeAgo is a deadline in the past: it interrupts every blocked
// read and write on a connection.
var aLongTimeAgo = time.Unix(1, 0)

func (s *splicer) roundTrip(ctx context.Context, rc *rawConn, req *http.Request) (*http.Response, error) {
	// A canceled request interrupts the connection's reads and writes,
	// until the body is done with it (stop).
	stop := context.AfterFunc(ctx, func() { rc.c.SetDeadline(aLongTimeAgo) })
	err := req.Write(rc.bw)
	if err == nil {
		err = rc.bw.Flush()
	}
	var resp *http.Response
	if err == nil {
		resp, err = http.ReadResponse(rc.br, req)
	}
	if err != nil {
		stop()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, err
	}
	if resp.ContentLength < 0 || len(resp.TransferEncoding) > 0 {
		// No length to splice by: net/http's body reader, and the
		// connection is not reused.
		resp.Body = &closingBody{ReadCloser: resp.Body, rc: rc, stop: stop}
		return resp, nil
	}
	resp.Body = &splicedBody{s: s, rc: rc, stop: stop, left: resp.ContentLength, reuse: !resp.Close}
	return resp, nil
}

// closingBody closes its connection with the body.
type closingBody struct {
	io.ReadCloser
	rc   *rawConn
	stop func() bool
}

func (b *closingBody) Close() error {
	err := b.ReadCloser.Close()
	b.stop()
	b.rc.c.Close()
	return err
}

// splicedBody is a response body of known length on a splicer's
// connection. It must be used by one goroutine at a time.
type splicedBody struct {
	s     *splicer
	rc    *rawConn
	stop  func() bool
	left  int64 // bytes of the body not yet read from the connection
	reuse bool  // the upstream keeps the connection open
	done  bool
}

func (b *splicedBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		b.finish(true)
		return 0, io.EOF
	}
	if b.done {
		return 0, errors.New("s3store: read of a closed body")
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.br.Read(p)
	b.left -= int64(n)
	if err == io.EOF && b.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		b.finish(false)
	}
	return n, err
}

// WriteTo writes the rest of the body to w: the bytes already buffered,
// then the connection itself through w's ReadFrom, where a TCP
// connection splices it.
func (b *splicedBody) WriteTo(w io.Writer) (int64, error) {
	if b.done {
		return 0, errors.New("s3store: read of a closed body")
	}
	var total int64
	if n := min(int64(b.rc.br.Buffered()), b.left); n > 0 {
		buf, _ := b.rc.br.Peek(int(n))
		m, err := w.Write(buf)
		b.rc.br.Discard(m)
		b.left -= int64(m)
		total += int64(m)
		if err != nil {
			b.finish(false)
			return total, err
		}
	}
	if b.left > 0 {
		var n int64
		var err error
		lr := &io.LimitedReader{R: b.rc.c, N: b.left}
		if rf, ok := w.(io.ReaderFrom); ok {
			n, err = rf.ReadFrom(lr)
		} else {
			n, err = pooledCopy(w, lr)
		}
		b.left = lr.N
		total += n
		if err == nil && b.left > 0 {
			err = io.ErrUnexpectedEOF // the upstream closed early
		}
		if err != nil {
			b.finish(false)
			return total, err
		}
	}
	b.finish(true)
	return total, nil
}

// Close ends the body: a body read to its end, or close enough to it
// (drainLimit), leaves its connection for the next request.
func (b *splicedBody) Close() error {
	if b.done {
		return nil
	}
	if b.left > 0 && b.left <= drainLimit {
		n, _ := io.CopyN(io.Discard, b.rc.br, b.left)
		b.left -= n
	}
	b.finish(b.left == 0)
	return nil
}

// finish gives the connection back (ok: the body was read whole) or
// closes it.
func (b *splicedBody) finish(ok bool) {
	if b.done {
		return
	}
	b.done = true
	// stop is false when a cancellation already set the deadline: the
	// connection is then unusable.
	if b.stop() && ok && b.reuse && b.rc.br.Buffered() == 0 {
		b.s.put(b.rc)
		return
	}
	b.rc.c.Close()
}
