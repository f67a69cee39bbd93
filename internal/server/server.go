// Package server wires Steward's components into one process: the
// metastore, the audit trail, the built-in OpenID provider, the token
// verifier, the REST API and the HTTP server with health, readiness and
// metrics endpoints. cmd/steward and the end-to-end tests use the same
// wiring.
//
// Start order: data dir, metastore (migrated), audit trail, identity
// provider, verifier, API, listeners. Stop order (on context cancel, e.g.
// SIGTERM): stop accepting and drain in-flight HTTP requests within the
// grace period, stop background workers, close the audit trail (flushing
// and checkpointing it), close the metastore.
package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/api"
	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/identity"
	"github.com/stewardhq/steward/internal/idp"
	"github.com/stewardhq/steward/internal/metastore"
	"github.com/stewardhq/steward/internal/objectstore"
	fsstore "github.com/stewardhq/steward/internal/objectstore/fs"
	s3store "github.com/stewardhq/steward/internal/objectstore/s3"
	"github.com/stewardhq/steward/internal/policystore"
	"github.com/stewardhq/steward/internal/s3api"
	"github.com/stewardhq/steward/internal/sts"
)

// Server is a running Steward.
type Server struct {
	cfg       config.Config
	log       *slog.Logger
	reg       *prometheus.Registry
	store     *metastore.Store
	audit     *audit.Log
	idp       *idp.Provider
	verifier  identity.TokenVerifier
	readyV    interface{ Ready(context.Context) error }
	api       *api.API
	policies  *policystore.Store
	engine    *policystore.Holder // this replica's policy engine, refreshed by version
	httpLn    net.Listener
	s3Ln      net.Listener
	trinoNets []netip.Prefix
	s3URL     string
	s3Srv     *http.Server
	objects   objectstore.Store
	sts       *sts.Service
	httpSrv   *http.Server
	url       string
	issuer    string

	closeOnce sync.Once
	closers   []func() error

	sql sqlParts // sql.go

	cat catalogParts // catalog.go

	lin lineageParts // lineage.go

	debug debugParts // debug.go
}

// Options are what New needs beside the configuration.
type Options struct {
	Logger  *slog.Logger
	Version string
	// Stdout receives the one-time demo password notice (never the logs).
	Stdout io.Writer
	// Listener, if set, is used instead of listening on cfg.HTTPAddr (tests).
	Listener net.Listener
	// S3Listener, if set, is used instead of listening on cfg.S3Addr.
	S3Listener net.Listener
}

// New opens every component and binds the listeners. Any error names the
// setting or component at fault; on error everything opened is closed.
func New(ctx context.Context, cfg config.Config, opts Options) (_ *Server, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Stdout == nil {
		opts.Stdout = io.Discard
	}
	s := &Server{cfg: cfg, log: opts.Logger, reg: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if err := cfg.CheckDataDir(); err != nil {
		return nil, err
	}
	// Bind the HTTP port first: the URL it yields is the issuer's base.
	ln := opts.Listener
	if ln == nil {
		ln, err = net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return nil, &config.SettingError{Key: "http_addr", Msg: fmt.Sprintf("cannot listen on %s: %v", cfg.HTTPAddr, unwrapOp(err))}
		}
	}
	s.httpLn = ln
	s.closers = append(s.closers, func() error { ln.Close(); return nil })
	s.url = cfg.ExternalURL()
	if cfg.PublicURL == "" {
		s.url = "http://" + ln.Addr().String()
	}
	s3ln := opts.S3Listener
	if s3ln == nil {
		s3ln, err = net.Listen("tcp", cfg.S3Addr)
		if err != nil {
			return nil, &config.SettingError{Key: "s3_addr", Msg: fmt.Sprintf("cannot listen on %s: %v", cfg.S3Addr, unwrapOp(err))}
		}
	}
	s.s3Ln = s3ln
	s.closers = append(s.closers, func() error { s3ln.Close(); return nil })
	s.s3URL = "http://" + s3ln.Addr().String()
	if err := s.listenDebug(); err != nil {
		return nil, err
	}
	for _, n := range cfg.TrinoNetworks {
		s.trinoNets = append(s.trinoNets, netip.MustParsePrefix(n))
	}
	kek, err := keyEncryptionKey(cfg.DataDir)
	if err != nil {
		return nil, &config.SettingError{Key: "data_dir", Msg: err.Error()}
	}

	s.store, err = metastore.Open(ctx, cfg.Metastore, cfg.DataDir)
	if err != nil {
		return nil, &config.SettingError{Key: "metastore", Msg: err.Error()}
	}
	s.closers = append(s.closers, s.store.Close)

	s.audit, err = audit.Open(cfg.AuditDir(), audit.Options{SegmentMaxBytes: cfg.Audit.SegmentMaxBytes}, s.log.With("component", "audit"))
	if err != nil {
		return nil, &config.SettingError{Key: "audit.dir", Msg: err.Error()}
	}
	s.closers = append(s.closers, s.audit.Close)

	// Policies: the engine is loaded before serving and refreshed by
	// policy-set version in Run (internal/policystore).
	s.policies = policystore.New(s.store)
	s.engine = policystore.NewHolder(s.policies, s.log.With("component", "policy"))
	if _, err := s.engine.Refresh(ctx); err != nil {
		return nil, fmt.Errorf("policy engine: %w", err)
	}

	idm, err := identity.NewMetrics(s.reg)
	if err != nil {
		return nil, err
	}
	var verifiers []*identity.Verifier
	if cfg.OIDC.Builtin {
		s.issuer = s.url + "/oidc"
		s.idp, err = idp.New(ctx, idp.Config{
			Issuer:             s.issuer,
			AllowPasswordGrant: cfg.OIDC.PasswordGrant,
			AccessTokenTTL:     cfg.OIDC.AccessTokenTTL,
			RefreshTokenTTL:    cfg.OIDC.RefreshTokenTTL,
			KeyRotation:        cfg.OIDC.KeyRotation,
			PortalRedirectURIs: []string{s.url + "/portal/callback"},
			KeyEncryptionKey:   kek,
			Insecure:           true,
		}, s.store, s.store, s.audit, s.log)
		if err != nil {
			return nil, fmt.Errorf("built-in OpenID provider: %w", err)
		}
		v, err := identity.NewVerifierWithKeys(identity.Config{
			Issuer:    s.issuer,
			Audiences: []string{"steward"},
			Metrics:   idm,
		}, identity.KeySourceFunc(s.idp.Keys), s.log.With("component", "identity"))
		if err != nil {
			return nil, err
		}
		verifiers = append(verifiers, v)
	} else {
		s.issuer = cfg.OIDC.Issuer
	}
	if cfg.OIDC.Issuer != "" {
		v, err := identity.NewVerifier(ctx, identity.Config{
			Issuer:            cfg.OIDC.Issuer,
			Audiences:         cfg.OIDC.Audiences,
			AuthorizedParties: cfg.OIDC.AuthorizedParties,
			UsernameClaim:     cfg.OIDC.UsernameClaim,
			GroupsClaim:       cfg.OIDC.GroupsClaim,
			RolesClaim:        cfg.OIDC.RolesClaim,
			Metrics:           idm,
		}, s.log.With("component", "identity"))
		if err != nil {
			return nil, &config.SettingError{Key: "oidc.issuer", Msg: err.Error()}
		}
		verifiers = append(verifiers, v)
	}
	multi, err := identity.NewMulti(idm, verifiers...)
	if err != nil {
		return nil, err
	}
	s.verifier, s.readyV = revocationChecker{Multi: multi, idp: s.idp, issuer: s.issuer}, multi

	// The S3 gateway: short-term credentials, SigV4, authorization by the
	// policy engine, audit, and the local object store.
	if up := cfg.Objects.Upstream; up.Endpoint != "" {
		// Forward mode: authenticate, authorize and audit here, then
		// re-sign and stream to the upstream S3.
		st, err := s3store.New(ctx, s3store.Config{Endpoint: up.Endpoint, Region: up.Region, AccessKey: up.AccessKey,
			SecretKey: steward.Secret(up.SecretKey), PathStyle: up.PathStyle, BucketPrefix: up.BucketPrefix}, s.log)
		if err != nil {
			return nil, &config.SettingError{Key: "objects.upstream.endpoint", Msg: err.Error()}
		}
		s.objects = st
		s.closers = append(s.closers, st.Close)
	} else {
		st, err := fsstore.Open(filepath.Join(cfg.DataDir, "objects"), s.log)
		if err != nil {
			return nil, &config.SettingError{Key: "data_dir", Msg: "object store: " + err.Error()}
		}
		s.objects = st
		s.closers = append(s.closers, st.Close)
	}
	if err := s.wireCatalog(ctx); err != nil {
		return nil, err
	}
	s.sts, err = sts.New(sts.Config{}, s.store, s.verifier, kek, s.audit, s.log.With("component", "sts"))
	if err != nil {
		return nil, fmt.Errorf("sts: %w", err)
	}
	s.s3Srv = &http.Server{
		Handler: s3api.New(s3api.Config{BeforeCopy: s.recordCopy}, s.gatewayStore(), s.sts, s3api.EngineAuthorizer{Engine: s.engine}, effectiveTags{s}, s.dataAuditor(),
			s.log.With("component", "s3")),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}

	if cfg.Demo {
		if err := s.seedDemo(ctx, opts.Stdout); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		if err := s.seedCatalogDemo(ctx); err != nil {
			return nil, fmt.Errorf("demo catalog: %w", err)
		}
	}

	cliClient := cfg.OIDC.CLIClientID
	if cfg.OIDC.Builtin {
		cliClient = "steward-cli"
	}
	sqlSvc, err := s.wireSQL()
	if err != nil {
		return nil, err
	}
	s.api = api.New(api.Deps{
		Identities:    s.store,
		Auditor:       s.audit,
		Audit:         auditReader{dir: cfg.AuditDir()},
		Hasher:        hasher{},
		Token:         api.TokenInfo{Issuer: s.issuer, CLIClientID: cliClient, PortalClientID: "steward-portal", Builtin: cfg.OIDC.Builtin},
		S3Endpoint:    s.s3URL,
		S3Credentials: s.sts,
		AdminGroup:    cfg.AdminGroup,
		Version:       opts.Version,
		Logger:        s.log.With("component", "api"),

		// Policy administration, access requests and decisions.
		Policies:     s.policies,
		PolicyEngine: s.engine,

		SQL: sqlSvc, // sql.go

		Catalog: s.cat.svc,
		Usage:   s.cat.usage,
	})
	if err := s.wireLineage(ctx); err != nil {
		return nil, err
	}
	s.httpSrv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	return s, nil
}

// URL is the base URL of the HTTP server.
func (s *Server) URL() string { return s.url }

// S3URL is the base URL of the S3 gateway.
func (s *Server) S3URL() string { return s.s3URL }

// Issuer is the OpenID issuer users log in with.
func (s *Server) Issuer() string { return s.issuer }

// Store gives tests access to the metastore.
func (s *Server) Store() *metastore.Store { return s.store }

// PolicyEngine is this replica's policy engine, for components that decide.
func (s *Server) PolicyEngine() *policystore.Holder { return s.engine }

// Run serves until ctx is cancelled, then shuts down gracefully: in-flight
// requests get cfg.ShutdownGrace to finish. It returns nil after a clean
// shutdown.
func (s *Server) Run(ctx context.Context) error {
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	if s.idp != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.idp.Run(bg) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); s.engine.Run(bg, policystore.DefaultRefreshInterval) }()
	wg.Add(1)
	go func() { defer wg.Done(); s.sts.Run(bg) }()
	s.runSQL(bg, &wg)
	s.runCatalog(bg, &wg)
	s.syncCatalogTags(bg, &wg)
	s.runLineage(bg, &wg)
	errc := make(chan error, 2)
	go func() { errc <- s.httpSrv.Serve(s.httpLn) }()
	go func() { errc <- s.s3Srv.Serve(s.s3Ln) }()
	s.runDebug(ctx)
	s.log.Info("steward started", "http", s.url, "s3", s.s3URL, "issuer", s.issuer, "data_dir", s.cfg.DataDir, "metastore", string(s.store.Dialect()))

	var serveErr error
	select {
	case <-ctx.Done():
		s.log.Info("shutting down", "grace", s.cfg.ShutdownGrace)
	case serveErr = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	defer cancel()
	var sd sync.WaitGroup
	for _, srv := range append([]*http.Server{s.httpSrv, s.s3Srv}, s.debugServers()...) {
		sd.Add(1)
		go func() {
			defer sd.Done()
			if err := srv.Shutdown(sctx); err != nil {
				s.log.Warn("shutdown grace period ended with requests in flight", "err", err)
				srv.Close()
			}
		}()
	}
	sd.Wait()
	stopBG()
	wg.Wait()
	cerr := s.Close()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	s.log.Info("stopped")
	return cerr
}

// Close releases everything in reverse order of opening.
func (s *Server) Close() error {
	var errs []error
	s.closeOnce.Do(func() {
		for i := len(s.closers) - 1; i >= 0; i-- {
			if err := s.closers[i](); err != nil {
				errs = append(errs, err)
			}
		}
	})
	return errors.Join(errs...)
}

func unwrapOp(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

// keyEncryptionKey loads (or creates) the 32-byte key that encrypts the
// built-in provider's signing keys at rest. Replicas sharing a PostgreSQL
// metastore must share this file.
func keyEncryptionKey(dataDir string) ([]byte, error) {
	p := filepath.Join(dataDir, "keys", "kek")
	b, err := os.ReadFile(p)
	if err == nil {
		if len(b) != 32 {
			return nil, fmt.Errorf("%s: want 32 bytes, found %d", p, len(b))
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, err
	}
	b = make([]byte, 32)
	rand.Read(b)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return b, f.Close()
}

var _ = steward.KindUser
