package policystore

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stewardhq/steward/internal/policy"
)

// DefaultRefreshInterval is how often Run polls the policy-set version.
const DefaultRefreshInterval = 250 * time.Millisecond

// Holder holds this replica's compiled policy engine and refreshes it by
// policy-set version. Deciding (Engine().Decide) takes no lock. Before the
// first successful Refresh the engine is nil, which denies everything.
type Holder struct {
	store *Store
	log   *slog.Logger
	eng   policy.Atomic

	mu      sync.Mutex   // one reload at a time
	failed  atomic.Int64 // the version that last failed to compile, to not retry it in a loop
	lastErr atomic.Pointer[error]
}

// NewHolder returns a Holder that loads from s.
func NewHolder(s *Store, log *slog.Logger) *Holder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Holder{store: s, log: log}
	h.failed.Store(-1)
	return h
}

// Engine returns the current engine (nil before the first load).
func (h *Holder) Engine() *policy.Engine { return h.eng.Load() }

// Version returns the version of the current engine, or -1 before the
// first load.
func (h *Holder) Version() int64 {
	if e := h.eng.Load(); e != nil {
		return e.Version()
	}
	return -1
}

// Decide decides req with the current engine.
func (h *Holder) Decide(req *policy.Request, d *policy.Decision) { h.eng.Load().Decide(req, d) }

// Err returns the last refresh error, or nil once a refresh succeeded.
func (h *Holder) Err() error {
	if p := h.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Refresh polls the policy-set version and, if it is newer than the
// engine's, loads and compiles the set and installs it. It reports whether
// it installed a new engine. A stored set that does not compile (which
// writers prevent) keeps the current engine and is reported once.
func (h *Holder) Refresh(ctx context.Context) (bool, error) {
	v, err := h.store.Version(ctx)
	if err != nil {
		h.setErr(err)
		return false, err
	}
	if v <= h.Version() || v == h.failed.Load() {
		h.setErr(nil)
		return false, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if v <= h.Version() {
		return false, nil
	}
	setVersion, ps, err := h.store.Load(ctx)
	if err != nil {
		h.setErr(err)
		return false, err
	}
	e, err := policy.Compile(ps, policy.Options{Version: setVersion})
	if err != nil {
		h.failed.Store(setVersion)
		h.log.ErrorContext(ctx, "stored policy set does not compile; keeping the previous engine", "version", setVersion, "err", err)
		h.setErr(err)
		return false, err
	}
	installed := h.eng.Store(e)
	if installed {
		h.log.InfoContext(ctx, "policy engine refreshed", "version", setVersion, "policies", e.Len())
	}
	h.setErr(nil)
	return installed, nil
}

func (h *Holder) setErr(err error) {
	if err == nil {
		h.lastErr.Store(nil)
		return
	}
	h.lastErr.Store(&err)
}

// Run refreshes every interval (DefaultRefreshInterval if zero) until ctx
// is done. Errors are logged and retried at the next tick.
func (h *Holder) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultRefreshInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	logged := false
	for {
		if _, err := h.Refresh(ctx); err != nil && ctx.Err() == nil {
			if !logged {
				h.log.WarnContext(ctx, "policy refresh failed", "err", err)
				logged = true
			}
		} else {
			logged = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
