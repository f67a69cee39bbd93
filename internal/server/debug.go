package server

// The debug listener serves net/http/pprof on debug_addr for profiling a
// running Steward. It is off unless debug_addr is set, has no
// authentication and so binds loopback only (config.Validate refuses other
// addresses; listenDebug checks the address it actually bound). Goroutine
// dumps and heap profiles can reveal request details, and the process's
// command line (/debug/pprof/cmdline) can carry secrets passed as flags, so
// that endpoint is not served at all.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/stewardhq/steward/internal/config"
)

type debugParts struct {
	ln  net.Listener
	srv *http.Server
}

// listenDebug binds debug_addr, if set. Call from New, before anything that
// cannot be undone: on error New closes what it opened.
func (s *Server) listenDebug() error {
	if s.cfg.DebugAddr == "" {
		return nil
	}
	if !config.IsLoopback(s.cfg.DebugAddr) { // config.Validate refuses it too; New may be given an unvalidated Config
		return &config.SettingError{Key: "debug_addr", Msg: fmt.Sprintf("the debug listener is unauthenticated and listens on loopback only, not %q", s.cfg.DebugAddr)}
	}
	ln, err := net.Listen("tcp", s.cfg.DebugAddr)
	if err != nil {
		return &config.SettingError{Key: "debug_addr", Msg: fmt.Sprintf("cannot listen on %s: %v", s.cfg.DebugAddr, unwrapOp(err))}
	}
	s.closers = append(s.closers, func() error { ln.Close(); return nil })
	// "localhost" is resolved by the system: make sure it meant loopback.
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		return &config.SettingError{Key: "debug_addr", Msg: fmt.Sprintf("%s bound %s, which is not loopback", s.cfg.DebugAddr, ln.Addr())}
	}
	s.debug.ln = ln
	s.debug.srv = &http.Server{
		Handler:           debugHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return nil
}

// debugHandler serves pprof on a private mux. Importing net/http/pprof also
// registers these handlers on http.DefaultServeMux, which Steward never
// serves.
func debugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // named profiles: goroutine, heap, allocs, block, mutex, threadcreate
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol) // go tool pprof POSTs here
	mux.HandleFunc("/debug/pprof/cmdline", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not served: the command line can carry secrets", http.StatusNotFound)
	})
	return mux
}

// runDebug serves the debug listener, if any, until ctx is cancelled.
// In-flight CPU profiles and traces end early when ctx is cancelled, so
// shutting the listener down never waits out a long profile.
func (s *Server) runDebug(ctx context.Context) {
	if s.debug.srv == nil {
		return
	}
	s.debug.srv.BaseContext = func(net.Listener) context.Context { return ctx }
	go func() {
		if err := s.debug.srv.Serve(s.debug.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("debug listener failed", "err", err)
		}
	}()
	s.log.Info("debug listener (pprof, unauthenticated) listening", "addr", s.debug.ln.Addr().String())
}

// debugServers is the debug listener's server, if any, for graceful
// shutdown beside the HTTP and S3 servers.
func (s *Server) debugServers() []*http.Server {
	if s.debug.srv == nil {
		return nil
	}
	return []*http.Server{s.debug.srv}
}

// DebugAddr is the debug listener's address, or "" when it is off.
func (s *Server) DebugAddr() string {
	if s.debug.ln == nil {
		return ""
	}
	return s.debug.ln.Addr().String()
}
