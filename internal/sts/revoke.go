package sts

import (
	"context"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/metastore"
)

// RevokeSession revokes one session by id; every replica refuses it within
// the revocation refresh interval.
func (s *Service) RevokeSession(ctx context.Context, sessionID, by string) error {
	return s.revoke(ctx, "session", sessionID, by)
}

// RevokeUser revokes every session of username issued up to now. Sessions
// issued later (after a new login) are not affected.
func (s *Service) RevokeUser(ctx context.Context, username, by string) error {
	return s.revoke(ctx, "user", username, by)
}

func (s *Service) revoke(ctx context.Context, kind, subject, by string) error {
	if subject == "" || len(subject) > 256 {
		return steward.Errorf(steward.EInvalid, "a %s to revoke is required", kind)
	}
	d := s.ms.Dialect()
	now := s.cfg.Now()
	_, err := s.ms.Exec(ctx, `INSERT INTO sts_revocations (kind, subject, revoked_at, expires_at, revoked_by) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (kind, subject) DO UPDATE SET revoked_at = excluded.revoked_at, expires_at = excluded.expires_at, revoked_by = excluded.revoked_by`,
		kind, subject, metastore.TimeValue(d, now), metastore.TimeValue(d, now.Add(s.cfg.MaxDuration+time.Minute)), by)
	if err != nil {
		return steward.WrapError(steward.EUnavailable, "sts.revoke", err, "revocation could not be stored")
	}
	ev := steward.AuditEvent{Time: now.UTC(), RequestID: steward.RequestIDFrom(ctx), Actor: by, ActorKind: "user", Action: "sts.revoke_" + kind,
		Resource: kind + ":" + subject, Outcome: "success", ClientAddr: steward.ClientAddrFrom(ctx)}
	if err := s.auditor.Record(ctx, ev); err != nil {
		s.log.ErrorContext(ctx, "audit record of revocation failed", "err", err)
	}
	// This replica sees it at once.
	return s.refreshRevocations(ctx)
}

// revocations is one load of the revocation list.
type revocations struct {
	sessions map[string]bool      // session ids
	users    map[string]time.Time // username -> revoked at
	loaded   time.Time
}

// refreshRevocations reloads the revocation list and purges rows that no
// live session can need.
func (s *Service) refreshRevocations(ctx context.Context) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	return s.loadRevocations(ctx)
}

// loadRevocations reloads the list; the caller holds refreshMu.
func (s *Service) loadRevocations(ctx context.Context) error {
	d := s.ms.Dialect()
	now := s.cfg.Now()
	rows, err := s.ms.Query(ctx, `SELECT kind, subject, revoked_at FROM sts_revocations WHERE expires_at > ?`, metastore.TimeValue(d, now))
	if err != nil {
		return steward.WrapError(steward.EUnavailable, "sts.revocations", err, "revocation list unavailable")
	}
	defer rows.Close()
	sess, users := map[string]bool{}, map[string]time.Time{}
	for rows.Next() {
		var kind, subject string
		var at time.Time
		if err := rows.Scan(&kind, &subject, metastore.ScanTime(&at)); err != nil {
			return steward.WrapError(steward.EUnavailable, "sts.revocations", err, "revocation list unavailable")
		}
		if kind == "session" {
			sess[subject] = true
		} else {
			users[subject] = at
		}
	}
	if err := rows.Err(); err != nil {
		return steward.WrapError(steward.EUnavailable, "sts.revocations", err, "revocation list unavailable")
	}
	s.revs.Store(&revocations{sessions: sess, users: users, loaded: now})
	return nil
}

// isRevoked checks a session against the list, refreshing it when stale
// (one request reloads it, concurrent ones wait for that reload). If the
// list cannot be refreshed for longer than four intervals the answer
// fails closed. now is the request's time.
func (s *Service) isRevoked(ctx context.Context, sess *session, now time.Time) (bool, error) {
	l := s.revs.Load()
	if l == nil || now.Sub(l.loaded) >= s.cfg.RevocationRefresh {
		s.refreshMu.Lock()
		l = s.revs.Load()
		if l == nil || s.cfg.Now().Sub(l.loaded) >= s.cfg.RevocationRefresh {
			if err := s.loadRevocations(ctx); err != nil {
				if l == nil || s.cfg.Now().Sub(l.loaded) > 4*s.cfg.RevocationRefresh {
					s.refreshMu.Unlock()
					return false, err
				}
				s.log.WarnContext(ctx, "revocation list refresh failed; using the previous list", "err", err)
			}
			l = s.revs.Load()
		}
		s.refreshMu.Unlock()
	}
	if l.sessions[sess.ID] {
		return true, nil
	}
	if at, ok := l.users[sess.Username]; ok && !time.Unix(sess.IssuedAt, 0).After(at) {
		return true, nil
	}
	return false, nil
}
