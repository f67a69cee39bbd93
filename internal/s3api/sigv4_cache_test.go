package s3api

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/stewardhq/steward"
)

// sharedCred resolves every access key to one shared *Credential, as
// internal/sts does for the requests of one session.
type sharedCred struct{ c *Credential }

func (s sharedCred) ResolveCredential(_ context.Context, akid, _ string) (*Credential, error) {
	if akid != s.c.AccessKeyID {
		e := steward.Errorf(steward.EUnauthenticated, "unknown")
		e.Op = "InvalidAccessKeyId"
		return nil, e
	}
	return s.c, nil
}

// The signing key kept on a credential is the one the derivation gives
// for the scope asked, whatever scopes came before, from any goroutine.
func TestCredentialSigningKey(t *testing.T) {
	const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	c := &Credential{AccessKeyID: "AKIDEXAMPLE", SecretKey: secret}
	scopes := []struct{ date, region, service string }{
		{"20261126", "us-east-1", "s3"},
		{"20261126", "us-east-1", "s3"},
		{"20261127", "us-east-1", "s3"},
		{"20261126", "us-east-1", "s3"},
		{"20261126", "eu-west-1", "s3"},
		{"20261126", "us-east-1", "sts"},
	}
	for _, sc := range scopes {
		t.Run(sc.date+"/"+sc.region+"/"+sc.service, func(t *testing.T) {
			want := signingKey(secret, sc.date, sc.region, sc.service)
			if got := c.signingKey(sc.date, sc.region, sc.service); !bytes.Equal(got, want) {
				t.Errorf("key %x, want %x", got, want)
			}
		})
	}
	t.Run("concurrent scopes", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 8 {
			sc := scopes[i%len(scopes)]
			want := signingKey(secret, sc.date, sc.region, sc.service)
			wg.Go(func() {
				for range 200 {
					if got := c.signingKey(sc.date, sc.region, sc.service); !bytes.Equal(got, want) {
						t.Errorf("key %x, want %x", got, want)
						return
					}
				}
			})
		}
		wg.Wait()
	})
	t.Run("a copy with another secret", func(t *testing.T) {
		c.signingKey("20261126", "us-east-1", "s3")
		cp := &Credential{AccessKeyID: c.AccessKeyID, SecretKey: "another-secret"}
		cp.derived.Store(c.derived.Load())
		want := signingKey("another-secret", "20261126", "us-east-1", "s3")
		if got := cp.signingKey("20261126", "us-east-1", "s3"); !bytes.Equal(got, want) {
			t.Errorf("the copy used the original's key")
		}
	})
}

// Requests verified with one shared credential: the right secret passes
// across changes of date, the wrong one is refused however often the
// right one was used before.
func TestVerifySharedCredential(t *testing.T) {
	const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	cred := &Credential{AccessKeyID: "AKIDEXAMPLE", SecretKey: secret, Principal: &steward.Principal{Username: "alice"}}
	now := time.Date(2026, 11, 26, 23, 58, 0, 0, time.UTC)
	v := &verifier{region: "us-east-1", creds: sharedCred{cred}, now: func() time.Time { return now }}
	sign := func(t *testing.T, secret string, at time.Time) *http.Request {
		t.Helper()
		r, _ := http.NewRequest("GET", "http://localhost/data/k", nil)
		r.Header.Set("X-Amz-Content-Sha256", emptySHA256)
		signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
		if err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: secret}, r, emptySHA256, "s3", "us-east-1", at); err != nil {
			t.Fatal(err)
		}
		return r
	}
	cases := []struct {
		name   string
		secret string
		at     time.Duration // from now
		ok     bool
	}{
		{"right secret", secret, 0, true},
		{"again", secret, time.Second, true},
		{"wrong secret", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEz", time.Second, false},
		{"next day", secret, 3 * time.Minute, true},
		{"wrong secret next day", "x", 3 * time.Minute, false},
		{"previous day again", secret, -time.Minute, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := v.verify(context.Background(), sign(t, tc.secret, now.Add(tc.at)))
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				d := now.Add(tc.at).Format(shortDateFormat)
				if want := signingKey(secret, d, "us-east-1", "s3"); !bytes.Equal(a.key, want) || a.cred != cred {
					t.Errorf("auth result key %x for %s, want %x", a.key, d, want)
				}
				return
			}
			if err != errSignatureMismatch {
				t.Fatalf("got %v, want SignatureDoesNotMatch", err)
			}
		})
	}
}

// BenchmarkSigningKey measures the SigV4 signing-key derivation a request
// needs before its signature can be checked, and the key kept on a
// credential that the requests of one session share:
//
//	go test ./internal/s3api/ -run '^$' -bench SigningKey -benchmem -count 6
func BenchmarkSigningKey(b *testing.B) {
	const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	b.Run("derive", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			signingKey(secret, "20261126", "us-east-1", "s3")
		}
	})
	b.Run("credential", func(b *testing.B) {
		c := &Credential{AccessKeyID: "AKIDEXAMPLE", SecretKey: secret}
		b.ReportAllocs()
		for b.Loop() {
			c.signingKey("20261126", "us-east-1", "s3")
		}
	})
}
