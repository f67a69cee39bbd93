package idp

import (
	"context"
	"testing"
	"time"
)

// BenchmarkHashPassword measures one argon2id hash with the production
// parameters: the cost of every password login and client secret check.
func BenchmarkHashPassword(b *testing.B) {
	saved := hashParams
	hashParams = argonParams{memory: argonMemory, time: argonTime, threads: argonThreads}
	defer func() { hashParams = saved }()
	for b.Loop() {
		if _, err := HashPassword("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPasswordGrant measures a whole password grant over HTTP (with
// the test's cheap hash parameters): form parsing, throttle check, audit,
// claims lookup, JWT signing with RS256.
func BenchmarkPasswordGrant(b *testing.B) {
	e := newEnv(b)
	cfg := e.oauth(CLIClientID)
	for b.Loop() {
		if _, err := cfg.PasswordCredentialsToken(e.ctx, "alice", alicePassword); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCleanupAndRun(t *testing.T) {
	e := newEnv(t)
	past := time.Now().Add(-48 * time.Hour).Unix()
	for _, q := range []string{
		`INSERT INTO idp_auth_requests (id, data, expires_at) VALUES ('old', '{}', ?)`,
		`INSERT INTO idp_revoked_tokens (jti, expires_at) VALUES ('old', ?)`,
		`INSERT INTO idp_login_failures (username, failures, locked_until, last_failure) VALUES ('old', 9, ?, 0)`,
	} {
		if _, err := e.store.Exec(e.ctx, q, past); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.p.cleanup(e.ctx); err != nil {
		t.Fatal(err)
	}
	for _, tbl := range []string{"idp_auth_requests", "idp_revoked_tokens", "idp_login_failures"} {
		var n int
		e.store.QueryRow(e.ctx, `SELECT COUNT(*) FROM `+tbl).Scan(&n)
		if n != 0 {
			t.Errorf("%s: %d expired rows left", tbl, n)
		}
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { e.p.Run(ctx); close(done) }()
	cancel()
	<-done
}
