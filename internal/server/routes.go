package server

import (
	"context"
	"encoding/json"
	"html/template"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/api"
	"github.com/stewardhq/steward/internal/identity"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	if s.idp != nil {
		mux.Handle("/oidc/", s.idp.Handler())
	}
	mux.Handle(api.Prefix+"/", identity.Middleware(s.verifier, s.api.Handler(), identity.MiddlewareOptions{
		AllowAnonymous: true, Realm: "steward", Logger: s.log.With("component", "api"),
	}))
	// Trino's OPA access-control plugin sends no credentials of its own: the
	// endpoints answer only the networks in trino_networks.
	mux.Handle("/trino/v1/", allowNetworks(s.trinoNets, http.StripPrefix("/trino/v1", s.trinoHandler())))
	mux.HandleFunc("GET /{$}", s.home)
	return s.instrument(mux)
}

// ready reports whether every dependency answers: the metastore, the audit
// trail and the token verifier's keys.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]string{}
	ok := true
	check := func(name string, err error) {
		if err != nil {
			checks[name] = "unavailable"
			s.log.Warn("not ready", "check", name, "err", err)
			ok = false
			return
		}
		checks[name] = "ok"
	}
	check("metastore", s.store.Ping(ctx))
	check("audit", s.audit.Err())
	check("policy", s.engine.Err())
	if p, ok := s.objects.(interface{ Ping(context.Context) error }); ok {
		check("objects", p.Ping(ctx))
	}
	check("identity", s.readyV.Ready(ctx))
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(map[string]any{"ready": ok, "checks": checks})
}

var homePage = template.Must(template.New("home").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Steward</title>
<style>body{font-family:system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem;color:#1d2530}code{background:#eef1f5;padding:.1rem .3rem;border-radius:3px}</style>
</head><body>
<h1>Steward</h1>
<p>Governed data analytics: one identity, one authorization system, one audit trail.</p>
<ul>
<li>Log in from the command line: <code>steward login --server {{.URL}}</code></li>
<li>OpenID provider: <a href="{{.Issuer}}/.well-known/openid-configuration">{{.Issuer}}</a></li>
<li>REST API: <a href="/api/v1/openapi.json">/api/v1/openapi.json</a></li>
<li>Health: <a href="/healthz">/healthz</a>, <a href="/readyz">/readyz</a>, <a href="/metrics">/metrics</a></li>
</ul>
</body></html>`))

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	homePage.Execute(w, map[string]string{"URL": s.url, "Issuer": s.issuer})
}

// allowNetworks refuses requests from outside nets with 403.
func allowNetworks(nets []netip.Prefix, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		addr, err := netip.ParseAddr(host)
		if err == nil {
			addr = addr.Unmap()
			for _, n := range nets {
				if n.Contains(addr) {
					next.ServeHTTP(w, r)
					return
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`{"error":"this network may not use the Trino access-control endpoints"}` + "\n"))
	})
}

// statusWriter records the status code for metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// instrument gives every request an ID (echoed in X-Request-Id), the
// client address, a metric and a debug log line. Headers are never logged:
// they carry tokens.
func (s *Server) instrument(next http.Handler) http.Handler {
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "steward_http_requests_total", Help: "HTTP requests by area, method and status.",
	}, []string{"area", "method", "code"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "steward_http_request_duration_seconds", Help: "HTTP request latency by area.",
		Buckets: prometheus.DefBuckets,
	}, []string{"area"})
	s.reg.MustRegister(reqs, dur)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := steward.NewRequestID()
		w.Header().Set("X-Request-Id", id)
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		ctx := steward.WithClientAddr(steward.WithRequestID(r.Context(), id), host)
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(ctx))
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		a := area(r.URL.Path)
		reqs.WithLabelValues(a, methodLabel(r.Method), strconv.Itoa(sw.status)).Inc()
		dur.WithLabelValues(a).Observe(time.Since(start).Seconds())
		s.log.Debug("http", "request_id", id, "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration", time.Since(start))
	})
}

// area bounds metric label cardinality.
func area(path string) string {
	switch {
	case strings.HasPrefix(path, "/api/"):
		return "api"
	case strings.HasPrefix(path, "/trino/"):
		return "trino"
	case strings.HasPrefix(path, "/oidc/"):
		return "oidc"
	case path == "/metrics", path == "/healthz", path == "/readyz":
		return "ops"
	default:
		return "other"
	}
}

func methodLabel(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		return m
	}
	return "other"
}
