package idp

import (
	"context"
	"errors"
	"time"

	"github.com/stewardhq/steward"
)

// Login methods, as audit records name them.
const (
	methodForm     = "password-form"
	methodDevice   = "device"
	methodPassword = "password-grant"
)

var (
	errBadCredentials = steward.Errorf(steward.EUnauthenticated, "invalid username or password")
	errLocked         = steward.Errorf(steward.EUnauthenticated, "too many failed logins; try again later")
)

// authenticate checks a username and password. Unknown users, wrong
// passwords and disabled accounts take the same path (a password hash is
// always computed) and give the same error. Failures are counted per
// username; after cfg.MaxLoginFailures the username is locked for an
// exponentially growing time. Every outcome is audited, and a failed audit
// fails the login.
func (p *Provider) authenticate(ctx context.Context, username, password, method, clientID string) (*steward.User, error) {
	details := map[string]any{"method": method}
	if clientID != "" {
		details["client_id"] = clientID
	}
	fail := func(reason string, result error) (*steward.User, error) {
		if err := p.record(ctx, steward.AuditEvent{Actor: username, ActorKind: string(steward.KindUser), Action: "auth.login",
			Outcome: "failure", Reason: reason, Details: details}); err != nil {
			return nil, err
		}
		return nil, result
	}
	if username == "" || len(username) > 256 || len(password) > 1024 {
		return fail("malformed credentials", errBadCredentials)
	}
	now := p.now()
	var locked int64
	err := p.store.QueryRow(ctx, `SELECT locked_until FROM idp_login_failures WHERE username = ?`, username).Scan(&locked)
	if err == nil && locked > now.Unix() {
		return fail("locked after repeated failures", errLocked)
	}

	hash, err := p.ids.PasswordHash(ctx, username)
	known := err == nil && hash != ""
	if err != nil && steward.KindOf(err) != steward.ENotFound && steward.KindOf(err) != steward.EInvalid {
		return nil, steward.WrapError(steward.EInternal, "idp.authenticate", err, "cannot check password")
	}
	if !known {
		hash = p.dummyHash
	}
	ok, cerr := CheckPassword(hash, password)
	if cerr != nil {
		p.log.Error("malformed password hash", "user", username, "err", cerr)
	}
	var user *steward.User
	reason := "invalid credentials"
	if known && ok && cerr == nil {
		user, err = p.ids.GetUser(ctx, username)
		switch {
		case err == nil && user.Disabled:
			user, reason = nil, "account disabled"
		case err != nil && steward.KindOf(err) != steward.ENotFound:
			return nil, steward.WrapError(steward.EInternal, "idp.authenticate", err, "cannot look up user")
		}
	}
	if user == nil {
		if err := p.countFailure(ctx, username, now); err != nil {
			return nil, steward.WrapError(steward.EInternal, "idp.authenticate", err, "cannot record login failure")
		}
		return fail(reason, errBadCredentials)
	}
	if _, err := p.store.Exec(ctx, `DELETE FROM idp_login_failures WHERE username = ?`, username); err != nil {
		return nil, steward.WrapError(steward.EInternal, "idp.authenticate", err, "cannot reset login failures")
	}
	if err := p.record(ctx, steward.AuditEvent{Actor: username, ActorKind: string(steward.KindUser), Action: "auth.login",
		Outcome: "success", Details: details}); err != nil {
		return nil, err
	}
	return user, nil
}

// countFailure counts a failed login for username and locks it once the
// failures reach the limit.
func (p *Provider) countFailure(ctx context.Context, username string, now time.Time) error {
	var n int64
	err := p.store.QueryRow(ctx, `INSERT INTO idp_login_failures (username, failures, last_failure) VALUES (?, 1, ?)
		ON CONFLICT (username) DO UPDATE SET
			failures = CASE WHEN idp_login_failures.last_failure < ? THEN 1 ELSE idp_login_failures.failures + 1 END,
			last_failure = excluded.last_failure
		RETURNING failures`,
		username, now.Unix(), now.Add(-failureWindow).Unix()).Scan(&n)
	if err != nil {
		return err
	}
	if d := lockout(int(n), p.cfg.MaxLoginFailures, p.cfg.LockoutDuration); d > 0 {
		_, err = p.store.Exec(ctx, `UPDATE idp_login_failures SET locked_until = ? WHERE username = ?`, now.Add(d).Unix(), username)
	}
	return err
}

// lockout is how long a username is locked after n consecutive failures:
// nothing below max, then base doubling with every further failure, up to
// 15 minutes.
func lockout(n, max int, base time.Duration) time.Duration {
	if n < max {
		return 0
	}
	d := base
	for i := max; i < n && d < maxLockout; i++ {
		d *= 2
	}
	return min(d, maxLockout)
}

var errLoginExpired = errors.New("login request unknown or expired")
