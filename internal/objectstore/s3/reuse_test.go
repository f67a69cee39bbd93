package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
	s3store "github.com/stewardhq/steward/internal/objectstore/s3"
)

// fakeUpstream is a minimal keep-alive S3 endpoint for PUT and GET of one
// body; it counts the connections clients open and the requests.
type fakeUpstream struct {
	conns, requests atomic.Int64
	body            []byte
}

func startFake(t testing.TB, body []byte) (*fakeUpstream, *s3store.Store) {
	t.Helper()
	f := &fakeUpstream{body: body}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		h := w.Header()
		h.Set("ETag", `"0123456789abcdef0123456789abcdef"`)
		h.Set("Last-Modified", "Thu, 26 Nov 2026 10:00:00 GMT")
		switch r.Method {
		case http.MethodPut:
			io.Copy(io.Discard, r.Body)
		case http.MethodGet:
			h.Set("Content-Length", strconv.Itoa(len(f.body)))
			h.Set("Content-Type", "application/octet-stream")
			w.Write(f.body)
		default:
			w.WriteHeader(http.StatusNotImplemented)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	s, err := s3store.New(context.Background(), s3store.Config{Endpoint: srv.URL, AccessKey: "AKIAFAKE", SecretKey: steward.Secret("fake-secret"), PathStyle: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return f, s
}

// Every gateway request becomes an upstream request: concurrent PUTs and
// GETs, whole or partly read, must reuse the pooled connections rather
// than dial one each.
func TestConnectionReuse(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 256) // 4 KiB
	const workers, ops = 16, 25
	for _, tc := range []struct {
		name string
		op   func(ctx context.Context, s *s3store.Store, key string) error
	}{
		{"put", func(ctx context.Context, s *s3store.Store, key string) error {
			_, err := s.Put(ctx, "bench", key, bytes.NewReader(body), int64(len(body)), objectstore.PutOptions{})
			return err
		}},
		{"get read to the end", func(ctx context.Context, s *s3store.Store, key string) error {
			rc, _, err := s.Get(ctx, "bench", key, objectstore.GetOptions{})
			if err != nil {
				return err
			}
			defer rc.Close()
			n, err := io.Copy(io.Discard, rc)
			if err == nil && n != int64(len(body)) {
				err = fmt.Errorf("read %d bytes", n)
			}
			return err
		}},
		{"get read exactly its length", func(ctx context.Context, s *s3store.Store, key string) error {
			rc, info, err := s.Get(ctx, "bench", key, objectstore.GetOptions{})
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.ReadFull(rc, make([]byte, info.Size))
			return err
		}},
		{"get closed after a small part", func(ctx context.Context, s *s3store.Store, key string) error {
			rc, _, err := s.Get(ctx, "bench", key, objectstore.GetOptions{})
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.ReadFull(rc, make([]byte, 100))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, s := startFake(t, body)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := range ops {
						if err := tc.op(context.Background(), s, fmt.Sprintf("k/%d/%d", w, i)); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			if got := f.requests.Load(); got != workers*ops {
				t.Fatalf("%d upstream requests for %d operations", got, workers*ops)
			}
			// A connection goes back to the pool just after its response
			// is delivered, so a worker's next request may dial once more.
			if c := f.conns.Load(); c > 2*workers {
				t.Errorf("%d connections opened for %d requests from %d workers", c, workers*ops, workers)
			}
		})
	}
}

// Upstream error answers to the direct GET and PUT map to the same codes
// as through the SDK client, and a GET answered 5xx is retried.
func TestDirectErrors(t *testing.T) {
	xmlErr := func(code string) string {
		return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + code + `</Code><Message>m</Message><RequestId>r</RequestId></Error>`
	}
	for _, tc := range []struct {
		name   string
		status []int // answers in turn; the last repeats
		body   string
		want   string // objectstore code; "" for success
		kind   steward.ErrorKind
	}{
		{"no such key", []int{404}, xmlErr("NoSuchKey"), objectstore.CodeNoSuchKey, steward.ENotFound},
		{"precondition", []int{412}, xmlErr("PreconditionFailed"), objectstore.CodePreconditionFailed, steward.EConflict},
		{"not modified without a body", []int{304}, "", objectstore.CodeNotModified, steward.EConflict},
		{"access denied upstream", []int{403}, xmlErr("AccessDenied"), "", steward.EInternal},
		{"transient 503 then success", []int{503, 200}, xmlErr("SlowDown"), "", ""},
		{"persistent 500", []int{500}, xmlErr("InternalError"), "", steward.EUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Has("versioning") { // asked after a 404: the bucket exists
					io.WriteString(w, `<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>`)
					return
				}
				i := min(int(n.Add(1))-1, len(tc.status)-1)
				if st := tc.status[i]; st != 200 {
					w.WriteHeader(st)
					if st != 304 && r.Method != http.MethodHead {
						io.WriteString(w, tc.body)
					}
					return
				}
				if r.Method == http.MethodGet {
					w.Header().Set("Content-Length", "2")
					w.Header().Set("X-Amz-Meta-Owner", "carol")
					io.WriteString(w, "ok")
				}
			}))
			t.Cleanup(srv.Close)
			s, err := s3store.New(context.Background(), s3store.Config{Endpoint: srv.URL, AccessKey: "AKIAFAKE", SecretKey: "fake-secret", PathStyle: true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			rc, info, err := s.Get(context.Background(), "bench", "k", objectstore.GetOptions{})
			if tc.want == "" && tc.kind == "" {
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				b, _ := io.ReadAll(rc)
				rc.Close()
				if string(b) != "ok" || info.Metadata["owner"] != "carol" {
					t.Errorf("Get = %q, %+v", b, info)
				}
				return
			}
			if err == nil {
				rc.Close()
				t.Fatalf("Get succeeded, want %s", tc.want)
			}
			var se *steward.Error
			if !errors.As(err, &se) || tc.want != "" && se.Op != tc.want || se.Kind != tc.kind {
				t.Errorf("Get error = %v (%#v), want code %q kind %v", err, se, tc.want, tc.kind)
			}
		})
	}
}
