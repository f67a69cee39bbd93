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

// refreshRevocations reloads the revocation list and purges rows that no
// live session can need.
func (s *Service) refreshRevocations(ctx context.Context) error {
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
	s.revMu.Lock()
	s.revoked, s.usersRev, s.revLoaded = sess, users, now
	s.revMu.Unlock()
	return nil
}

// isRevoked checks a session against the list, refreshing it when stale.
// If the list cannot be refreshed for longer than four intervals the
// answer fails closed.
func (s *Service) isRevoked(ctx context.Context, sess *session) (bool, error) {
	s.revMu.Lock()
	stale := s.cfg.Now().Sub(s.revLoaded) >= s.cfg.RevocationRefresh
	loaded := s.revLoaded
	s.revMu.Unlock()
	if stale {
		if err := s.refreshRevocations(ctx); err != nil {
			if s.cfg.Now().Sub(loaded) > 4*s.cfg.RevocationRefresh {
				return false, err
			}
			s.log.WarnContext(ctx, "revocation list refresh failed; using the previous list", "err", err)
		}
	}
	s.revMu.Lock()
	defer s.revMu.Unlock()
	if s.revoked[sess.ID] {
		return true, nil
	}
	if at, ok := s.usersRev[sess.Username]; ok && !time.Unix(sess.IssuedAt, 0).After(at) {
		return true, nil
	}
	return false, nil
}
