package sts_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/metastore"
	"github.com/stewardhq/steward/internal/sts"
)

// resolveOK resolves and fails the test on an error.
func resolveOK(t *testing.T, s *sts.Service, akid, tok string) {
	t.Helper()
	if _, err := s.ResolveCredential(context.Background(), akid, tok); err != nil {
		t.Fatalf("resolve: %v", err)
	}
}

// flip changes the character at i of a token to another base64url one.
func flip(tok string, i int) string {
	c := byte('A')
	if tok[i] == 'A' {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}

// A session token that verified once is answered from the cache, with the
// same credential, while everything that can change about it is still
// checked on every request.
func TestSessionCache(t *testing.T) {
	ctx := context.Background()
	pol, err := sts.ParseSessionPolicy(`{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::data/*"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	// setup gives two replicas on one metastore and one clock, and a
	// session issued by a that b has verified (so b has it cached).
	setup := func(t *testing.T) (a, b *sts.Service, iss *sts.Issued, clk *clock, exec func(string)) {
		t.Helper()
		ms := openMS(t)
		clk = &clock{t: time.Now()}
		a, b = newService(t, ms, clk), newService(t, ms, clk)
		iss, err := a.Issue(ctx, alice, 30*time.Minute, "analysts", pol)
		if err != nil {
			t.Fatal(err)
		}
		resolveOK(t, b, iss.AccessKeyID, iss.SessionToken.Reveal())
		exec = func(q string) {
			t.Helper()
			if _, err := ms.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		return a, b, iss, clk, exec
	}

	t.Run("same credential from the cache", func(t *testing.T) {
		_, b, iss, _, _ := setup(t)
		tok := iss.SessionToken.Reveal()
		first, err := b.ResolveCredential(ctx, iss.AccessKeyID, tok)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			c, err := b.ResolveCredential(ctx, iss.AccessKeyID, tok)
			if err != nil {
				t.Fatal(err)
			}
			if c.SecretKey.Reveal() != iss.SecretAccessKey.Reveal() || c.AccessKeyID != iss.AccessKeyID || c.SessionToken != tok ||
				c.SessionID != iss.SessionID || !c.Expires.Equal(iss.Expiration) ||
				c.Principal.Username != "alice" || c.Principal.TokenID != iss.SessionID ||
				strings.Join(c.Principal.Groups, ",") != "analysts" || len(c.Principal.Roles) != 0 {
				t.Fatalf("cached credential differs: %+v %+v", c, c.Principal)
			}
			if c.Scope == nil || !c.Scope.Allows("s3:GetObject", "data", "k") || c.Scope.Allows("s3:PutObject", "data", "k") {
				t.Fatalf("cached credential lost its session policy")
			}
			if c.SecretKey.Reveal() != first.SecretKey.Reveal() || c.Principal.Subject != first.Principal.Subject {
				t.Fatal("cached and first credential differ")
			}
		}
	})

	t.Run("tampered token refused after the good one is cached", func(t *testing.T) {
		_, b, iss, _, _ := setup(t)
		tok := iss.SessionToken.Reveal()
		body := strings.LastIndexByte(tok, '.') + 1
		for _, i := range []int{body, body + 20, len(tok) / 2, len(tok) - 3} {
			if _, err := b.ResolveCredential(ctx, iss.AccessKeyID, flip(tok, i)); code(err) != "InvalidToken" {
				t.Errorf("byte %d flipped: %v", i, err)
			}
		}
		for _, bad := range []string{tok + "A", tok[:len(tok)-1], strings.Replace(tok, "stw1.", "stw2.", 1), flip(tok, 6)} {
			if _, err := b.ResolveCredential(ctx, iss.AccessKeyID, bad); err == nil {
				t.Errorf("accepted %q", bad)
			}
		}
		// The good token still resolves.
		resolveOK(t, b, iss.AccessKeyID, tok)
	})

	t.Run("another access key with a cached token", func(t *testing.T) {
		a, b, iss, _, _ := setup(t)
		other, err := a.Issue(ctx, alice, time.Hour, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, akid := range []string{other.AccessKeyID, "ASIAAAAAAAAAAAAAAAAA", iss.AccessKeyID[:19], ""} {
			if _, err := b.ResolveCredential(ctx, akid, iss.SessionToken.Reveal()); code(err) != "InvalidAccessKeyId" {
				t.Errorf("access key %q: %v", akid, err)
			}
		}
		resolveOK(t, b, iss.AccessKeyID, iss.SessionToken.Reveal())
	})

	t.Run("revoked session on the same replica", func(t *testing.T) {
		_, b, iss, _, _ := setup(t)
		if err := b.RevokeSession(ctx, iss.SessionID, "admin"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.ResolveCredential(ctx, iss.AccessKeyID, iss.SessionToken.Reveal()); code(err) != "ExpiredToken" {
			t.Errorf("revoked session: %v", err)
		}
	})

	t.Run("revoked session on another replica within the refresh interval", func(t *testing.T) {
		a, b, iss, clk, _ := setup(t)
		if err := a.RevokeSession(ctx, iss.SessionID, "admin"); err != nil {
			t.Fatal(err)
		}
		clk.add(15 * time.Second)
		if _, err := b.ResolveCredential(ctx, iss.AccessKeyID, iss.SessionToken.Reveal()); code(err) != "ExpiredToken" {
			t.Errorf("revoked session: %v", err)
		}
	})

	t.Run("revoked user on another replica", func(t *testing.T) {
		a, b, iss, clk, _ := setup(t)
		if err := a.RevokeUser(ctx, "alice", "admin"); err != nil {
			t.Fatal(err)
		}
		clk.add(15 * time.Second)
		if _, err := b.ResolveCredential(ctx, iss.AccessKeyID, iss.SessionToken.Reveal()); code(err) != "ExpiredToken" {
			t.Errorf("revoked user: %v", err)
		}
		// A revocation of someone else leaves the cached session working.
		iss2, err := a.Issue(ctx, &steward.Principal{Kind: steward.KindUser, Subject: "sub-b", Username: "bob"}, time.Hour, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resolveOK(t, b, iss2.AccessKeyID, iss2.SessionToken.Reveal())
		if err := a.RevokeUser(ctx, "carol", "admin"); err != nil {
			t.Fatal(err)
		}
		clk.add(15 * time.Second)
		resolveOK(t, b, iss2.AccessKeyID, iss2.SessionToken.Reveal())
	})

	t.Run("expired", func(t *testing.T) {
		_, b, iss, clk, _ := setup(t)
		clk.add(29 * time.Minute)
		resolveOK(t, b, iss.AccessKeyID, iss.SessionToken.Reveal())
		clk.add(time.Minute)
		for range 2 {
			if _, err := b.ResolveCredential(ctx, iss.AccessKeyID, iss.SessionToken.Reveal()); code(err) != "ExpiredToken" {
				t.Errorf("expired session: %v", err)
			}
		}
	})

	t.Run("retired cluster key", func(t *testing.T) {
		_, b, iss, clk, exec := setup(t)
		// The key is purged (as after its retention) and b reloads its
		// keyring (a token with an unknown key id makes it, at most
		// every two seconds).
		exec(`DELETE FROM sts_keys`)
		clk.add(3 * time.Second)
		if _, err := b.ResolveCredential(ctx, iss.AccessKeyID, "stw1.0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"); code(err) != "InvalidToken" {
			t.Fatalf("unknown key id: %v", err)
		}
		for range 2 {
			if _, err := b.ResolveCredential(ctx, iss.AccessKeyID, iss.SessionToken.Reveal()); code(err) != "InvalidToken" {
				t.Errorf("session of a retired key: %v", err)
			}
		}
	})

	t.Run("revocation while requests run", func(t *testing.T) {
		_, b, iss, _, _ := setup(t)
		tok := iss.SessionToken.Reveal()
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					c, err := b.ResolveCredential(ctx, iss.AccessKeyID, tok)
					if err == nil && c.SecretKey.Reveal() != iss.SecretAccessKey.Reveal() {
						t.Error("wrong secret")
					}
				}
			})
		}
		if err := b.RevokeSession(ctx, iss.SessionID, "admin"); err != nil {
			t.Error(err)
		}
		close(stop)
		wg.Wait()
		if _, err := b.ResolveCredential(ctx, iss.AccessKeyID, tok); code(err) != "ExpiredToken" {
			t.Errorf("after revocation: %v", err)
		}
	})
}

// A service account's key is cached for a few seconds at most: deleting,
// rotating it or deleting the account takes effect on every replica
// within that bound, and at once on the replica that does it.
func TestAccessKeyCache(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (a, b *sts.Service, id string, clk *clock, ms *metastore.Store) {
		t.Helper()
		ms = openMS(t)
		clk = &clock{t: time.Now()}
		a, b = newService(t, ms, clk), newService(t, ms, clk)
		if err := ms.CreateServiceAccount(ctx, &steward.ServiceAccount{Name: "etl", Roles: []string{"pipeline"}}, "h"); err != nil {
			t.Fatal(err)
		}
		k, secret, err := a.CreateAccessKey(ctx, "etl", "", "admin")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []*sts.Service{a, b} {
			c, err := s.ResolveCredential(ctx, k.AccessKeyID, "")
			if err != nil || c.SecretKey.Reveal() != secret.Reveal() || c.Principal.Username != "etl" || strings.Join(c.Principal.Roles, ",") != "pipeline" {
				t.Fatalf("resolve: %+v %v", c, err)
			}
		}
		return a, b, k.AccessKeyID, clk, ms
	}
	refused := func(t *testing.T, s *sts.Service, id, what string) {
		t.Helper()
		if _, err := s.ResolveCredential(ctx, id, ""); code(err) != "InvalidAccessKeyId" {
			t.Errorf("%s: %v", what, err)
		}
	}

	t.Run("deleted", func(t *testing.T) {
		a, b, id, clk, _ := setup(t)
		if err := a.DeleteAccessKey(ctx, id); err != nil {
			t.Fatal(err)
		}
		refused(t, a, id, "deleted key on the deleting replica")
		clk.add(5 * time.Second)
		refused(t, b, id, "deleted key on another replica after 5 s")
	})

	t.Run("rotated", func(t *testing.T) {
		a, b, id, clk, _ := setup(t)
		k2, secret2, err := a.RotateAccessKey(ctx, id, "admin")
		if err != nil {
			t.Fatal(err)
		}
		refused(t, a, id, "rotated-out key on the rotating replica")
		c, err := b.ResolveCredential(ctx, k2.AccessKeyID, "")
		if err != nil || c.SecretKey.Reveal() != secret2.Reveal() {
			t.Fatalf("new key on another replica: %v", err)
		}
		clk.add(5 * time.Second)
		refused(t, b, id, "rotated-out key on another replica after 5 s")
	})

	t.Run("account deleted", func(t *testing.T) {
		_, b, id, clk, ms := setup(t)
		if err := ms.DeleteServiceAccount(ctx, "etl"); err != nil {
			t.Fatal(err)
		}
		clk.add(5 * time.Second)
		refused(t, b, id, "key of a deleted account")
	})

	t.Run("unknown key", func(t *testing.T) {
		_, b, _, clk, _ := setup(t)
		for range 2 {
			refused(t, b, "AKIAAAAAAAAAAAAAAAAA", "unknown key")
			clk.add(time.Second)
		}
	})
}

// BenchmarkResolveCredential measures what the S3 gateway pays per request
// to turn an access key (and session token) into a credential:
//
//	go test ./internal/sts/ -run '^$' -bench ResolveCredential -benchmem -count 6
//
// "session" resolves one session's token again and again (every request
// of a client after its first), "session-cold" a different session each
// time (the first request of each session).
func BenchmarkResolveCredential(b *testing.B) {
	ms := openMS(b)
	ctx := context.Background()
	s, err := sts.New(sts.Config{}, ms, verifier(), kek, &recorder{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	iss, err := s.Issue(ctx, alice, time.Hour, "", nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := ms.CreateServiceAccount(ctx, &steward.ServiceAccount{Name: "etl"}, "h"); err != nil {
		b.Fatal(err)
	}
	k, _, err := s.CreateAccessKey(ctx, "etl", "", "admin")
	if err != nil {
		b.Fatal(err)
	}
	tok := iss.SessionToken.Reveal()
	b.Run("session", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.ResolveCredential(ctx, iss.AccessKeyID, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("session-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.ResolveCredential(ctx, iss.AccessKeyID, tok); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("session-cold", func(b *testing.B) {
		// Eight times the sessions the cache holds, each resolved once
		// per round: an entry survives a round with probability e^-8,
		// so nearly every resolution is a miss.
		const n = 8 * 4096
		type pair struct{ akid, tok string }
		var sessions []pair
		for range n {
			is, err := s.Issue(ctx, alice, time.Hour, "", nil)
			if err != nil {
				b.Fatal(err)
			}
			sessions = append(sessions, pair{is.AccessKeyID, is.SessionToken.Reveal()})
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			p := sessions[i%n]
			i++
			if _, err := s.ResolveCredential(ctx, p.akid, p.tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("accesskey", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.ResolveCredential(ctx, k.AccessKeyID, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
}
