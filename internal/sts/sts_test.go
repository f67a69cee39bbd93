package sts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/identity"
	"github.com/stewardhq/steward/internal/metastore"
	"github.com/stewardhq/steward/internal/sts"
)

type recorder struct {
	mu     sync.Mutex
	events []steward.AuditEvent
}

func (r *recorder) Record(_ context.Context, ev steward.AuditEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	return nil
}

var alice = &steward.Principal{Kind: steward.KindUser, Subject: "sub-a", Username: "alice", Groups: []string{"analysts", "staff"}, Roles: []string{"reader"}, Issuer: "https://idp"}

func verifier() identity.TokenVerifier {
	return identity.TokenVerifierFunc(func(_ context.Context, tok string) (*steward.Principal, error) {
		if tok == "good" {
			c := *alice
			return &c, nil
		}
		return nil, steward.Errorf(steward.EUnauthenticated, "invalid token")
	})
}

var kek = bytes.Repeat([]byte{7}, 32)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newService(t *testing.T, ms *metastore.Store, clk *clock) *sts.Service {
	t.Helper()
	s, err := sts.New(sts.Config{Now: clk.now}, ms, verifier(), kek, &recorder{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openMS(t testing.TB) *metastore.Store {
	t.Helper()
	ms, err := metastore.Open(context.Background(), "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	return ms
}

func code(err error) string {
	var se *steward.Error
	if errors.As(err, &se) {
		return se.Op
	}
	return ""
}

// Two replicas share only the metastore: a session issued by one verifies
// on the other, and a revocation on one reaches the other within the
// refresh interval.
func TestSessionsAcrossReplicas(t *testing.T) {
	ms := openMS(t)
	clk := &clock{t: time.Now()}
	a, b := newService(t, ms, clk), newService(t, ms, clk)
	ctx := context.Background()
	iss, err := a.Issue(ctx, alice, time.Hour, "analysts", nil)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := b.ResolveCredential(ctx, iss.AccessKeyID, iss.SessionToken.Reveal())
	if err != nil {
		t.Fatalf("replica b: %v", err)
	}
	if cred.SecretKey.Reveal() != iss.SecretAccessKey.Reveal() || cred.Principal.Username != "alice" ||
		strings.Join(cred.Principal.Groups, ",") != "analysts" || len(cred.Principal.Roles) != 0 {
		t.Fatalf("replica b resolved %+v", cred.Principal)
	}
	// Tampering with the token or pairing it with another key id fails.
	tok := iss.SessionToken.Reveal()
	bad := tok[:len(tok)-2] + "AA"
	if _, err := b.ResolveCredential(ctx, iss.AccessKeyID, bad); code(err) != "InvalidToken" {
		t.Errorf("tampered token: %v", err)
	}
	if _, err := b.ResolveCredential(ctx, "ASIAAAAAAAAAAAAAAAAA", tok); code(err) != "InvalidAccessKeyId" {
		t.Errorf("foreign access key: %v", err)
	}
	// Revoke the user on a; b refuses within the refresh interval.
	if err := a.RevokeUser(ctx, "alice", "admin"); err != nil {
		t.Fatal(err)
	}
	clk.add(16 * time.Second)
	if _, err := b.ResolveCredential(ctx, iss.AccessKeyID, tok); code(err) != "ExpiredToken" {
		t.Errorf("revoked user on replica b: %v", err)
	}
	// A session issued after the revocation works.
	clk.add(time.Second)
	iss2, _ := a.Issue(ctx, alice, time.Hour, "", nil)
	if _, err := b.ResolveCredential(ctx, iss2.AccessKeyID, iss2.SessionToken.Reveal()); err != nil {
		t.Errorf("new session after revocation: %v", err)
	}
	if err := b.RevokeSession(ctx, iss2.SessionID, "admin"); err != nil {
		t.Fatal(err)
	}
	clk.add(16 * time.Second)
	if _, err := a.ResolveCredential(ctx, iss2.AccessKeyID, iss2.SessionToken.Reveal()); code(err) != "ExpiredToken" {
		t.Errorf("revoked session: %v", err)
	}
	// Expiry.
	iss3, _ := a.Issue(ctx, alice, 15*time.Minute, "", nil)
	clk.add(16 * time.Minute)
	if _, err := b.ResolveCredential(ctx, iss3.AccessKeyID, iss3.SessionToken.Reveal()); code(err) != "ExpiredToken" {
		t.Errorf("expired session: %v", err)
	}
	// Key rotation: after a day a new key seals, the old one still opens.
	iss4, _ := a.Issue(ctx, alice, 12*time.Hour, "", nil)
	clk.add(25 * time.Hour)
	iss5, _ := b.Issue(ctx, alice, time.Hour, "", nil)
	kid := func(tok string) string { return strings.Split(tok, ".")[1] }
	if kid(iss4.SessionToken.Reveal()) == kid(iss5.SessionToken.Reveal()) {
		t.Error("the cluster key did not rotate after a day")
	}
	if _, err := a.ResolveCredential(ctx, iss5.AccessKeyID, iss5.SessionToken.Reveal()); err != nil {
		t.Errorf("replica a with b's new key: %v", err)
	}
}

func TestAssumeRoleWithWebIdentityHTTP(t *testing.T) {
	ms := openMS(t)
	clk := &clock{t: time.Now()}
	s := newService(t, ms, clk)
	srv := httptest.NewServer(http.HandlerFunc(s.ServeSTS))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	cases := []struct {
		name string
		o    sts.AssumeOptions
		tok  string
		want string // error code or "" for success
	}{
		{"default", sts.AssumeOptions{}, "good", ""},
		{"role of the user", sts.AssumeOptions{RoleARN: "arn:aws:iam::steward:role/analysts", Duration: 2 * time.Hour}, "good", ""},
		{"all roles", sts.AssumeOptions{RoleARN: "arn:aws:iam::steward:role/*"}, "good", ""},
		{"bad token", sts.AssumeOptions{}, "forged", "InvalidIdentityToken"},
		{"role not held", sts.AssumeOptions{RoleARN: "arn:aws:iam::steward:role/admins"}, "good", "AccessDenied"},
		{"foreign role arn", sts.AssumeOptions{RoleARN: "arn:aws:iam::123456789012:role/analysts"}, "good", "AccessDenied"},
		{"too short", sts.AssumeOptions{Duration: 10 * time.Minute}, "good", "ValidationError"},
		{"too long", sts.AssumeOptions{Duration: 13 * time.Hour}, "good", "ValidationError"},
		{"session policy", sts.AssumeOptions{Policy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":"arn:aws:s3:::data/public/*"}]}`}, "good", ""},
		{"deny in session policy", sts.AssumeOptions{Policy: `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"*"}]}`}, "good", "MalformedPolicyDocument"},
		{"broken policy", sts.AssumeOptions{Policy: `{"Statement":`}, "good", "MalformedPolicyDocument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := sts.CredentialProcess(ctx, srv.Client(), srv.URL, tc.tok, tc.o, &out)
			if tc.want != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.want+":") {
					t.Fatalf("got %v, want %s", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var cp struct {
				Version                                    int
				AccessKeyId, SecretAccessKey, SessionToken string
				Expiration                                 time.Time
			}
			if err := json.Unmarshal(out.Bytes(), &cp); err != nil || cp.Version != 1 || !strings.HasPrefix(cp.AccessKeyId, "ASIA") || len(cp.SecretAccessKey) != 40 {
				t.Fatalf("credential_process output %s: %v", out.String(), err)
			}
			cred, err := s.ResolveCredential(ctx, cp.AccessKeyId, cp.SessionToken)
			if err != nil || cred.SecretKey.Reveal() != cp.SecretAccessKey {
				t.Fatalf("resolve: %v", err)
			}
			want := time.Hour
			if tc.o.Duration > 0 {
				want = tc.o.Duration
			}
			if d := cp.Expiration.Sub(clk.now()); d < want-time.Minute || d > want+time.Minute {
				t.Errorf("expiration in %v, want %v", d, want)
			}
			if tc.o.Policy != "" {
				if cred.Scope == nil || !cred.Scope.Allows("s3:GetObject", "data", "public/x") || cred.Scope.Allows("s3:GetObject", "data", "private/x") || cred.Scope.Allows("s3:PutObject", "data", "public/x") {
					t.Errorf("session policy scope wrong: %+v", cred.Scope)
				}
			}
		})
	}
}

func TestAccessKeys(t *testing.T) {
	ms := openMS(t)
	s := newService(t, ms, &clock{t: time.Now()})
	ctx := context.Background()
	if _, _, err := s.CreateAccessKey(ctx, "ghost", "", "admin"); steward.KindOf(err) != steward.ENotFound {
		t.Fatalf("key for a missing account: %v", err)
	}
	if err := ms.CreateServiceAccount(ctx, &steward.ServiceAccount{Name: "etl"}, "h"); err != nil {
		t.Fatal(err)
	}
	k, secret, err := s.CreateAccessKey(ctx, "etl", "nightly", "admin")
	if err != nil {
		t.Fatal(err)
	}
	// The secret is stored encrypted, never in the clear.
	var stored string
	ms.QueryRow(ctx, `SELECT secret FROM sts_access_keys WHERE access_key_id = ?`, k.AccessKeyID).Scan(&stored)
	if strings.Contains(stored, secret.Reveal()) {
		t.Fatal("secret stored in the clear")
	}
	cred, err := s.ResolveCredential(ctx, k.AccessKeyID, "")
	if err != nil || cred.SecretKey.Reveal() != secret.Reveal() || cred.Principal.Kind != steward.KindService || cred.Principal.Username != "etl" {
		t.Fatalf("resolve: %+v %v", cred, err)
	}
	k2, _, err := s.RotateAccessKey(ctx, k.AccessKeyID, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ResolveCredential(ctx, k.AccessKeyID, ""); code(err) != "InvalidAccessKeyId" {
		t.Errorf("rotated-out key: %v", err)
	}
	ks, _ := s.ListAccessKeys(ctx, "etl")
	if len(ks) != 1 || ks[0].AccessKeyID != k2.AccessKeyID {
		t.Errorf("list: %+v", ks)
	}
	// Another KEK cannot open the secrets.
	other, _ := sts.New(sts.Config{}, ms, verifier(), bytes.Repeat([]byte{9}, 32), &recorder{}, nil)
	if _, err := other.ResolveCredential(ctx, k2.AccessKeyID, ""); err == nil {
		t.Error("a different KEK opened the secret")
	}
}

func TestParseSessionPolicy(t *testing.T) {
	p, err := sts.ParseSessionPolicy(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["s3:Get*","s3:ListBucket"],"Resource":["arn:aws:s3:::data","arn:aws:s3:::data/team/*"]}}`)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		action, bucket, key string
		want                bool
	}{
		{"s3:GetObject", "data", "team/a", true},
		{"s3:GetObject", "data", "other/a", false},
		{"s3:PutObject", "data", "team/a", false},
		{"s3:ListBucket", "data", "anything/", true},
		{"s3:ListBucket", "other", "", false},
		{"s3:GetObject", "data2", "team/a", false},
	}
	for _, c := range cases {
		if got := p.Allows(c.action, c.bucket, c.key); got != c.want {
			t.Errorf("Allows(%s, %s, %s) = %v", c.action, c.bucket, c.key, got)
		}
	}
	for _, bad := range []string{
		`{"Statement":[{"Effect":"Allow","Action":"ec2:*","Resource":"*"}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:iam::x"}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{}}]}`,
		`{"Statement":[]}`, `[]`, `{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}],"Extra":1}`,
	} {
		if _, err := sts.ParseSessionPolicy(bad); code(err) != "MalformedPolicyDocument" {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func FuzzParseSessionPolicy(f *testing.F) {
	f.Add(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/*"}]}`)
	f.Add(`{"Statement":{"Effect":"Allow","Action":["s3:Get*"],"Resource":["*"]}}`)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := sts.ParseSessionPolicy(s)
		if err == nil {
			p.Allows("s3:GetObject", "b", "k")
		}
	})
}

func FuzzResolveCredential(f *testing.F) {
	ms, err := metastore.Open(context.Background(), "", f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	defer ms.Close()
	s, _ := sts.New(sts.Config{}, ms, verifier(), kek, &recorder{}, nil)
	iss, _ := s.Issue(context.Background(), alice, time.Hour, "", nil)
	f.Add(iss.AccessKeyID, iss.SessionToken.Reveal())
	f.Add("AKIAAAAAAAAAAAAAAAAA", "")
	f.Add("ASIA", "stw1.0123456789abcdef.AAAA")
	f.Fuzz(func(t *testing.T, akid, tok string) {
		cred, err := s.ResolveCredential(context.Background(), akid, tok)
		if err == nil && (akid != iss.AccessKeyID || tok != iss.SessionToken.Reveal()) {
			t.Fatalf("accepted a credential that was never issued: %q %q %+v", akid, tok, cred)
		}
	})
}
