package identity

import (
	"context"
	"testing"
	"time"
)

// benchmarkVerify measures Verify with a warm key cache: parse, key lookup,
// signature check and claim mapping.
func benchmarkVerify(b *testing.B, key testKey) {
	f := newFakeIssuer(b, key)
	tok := mint(b, key, keycloakClaims(f.issuer, time.Now().Add(time.Hour)))
	ctx := context.Background()
	cfg := f.config()
	cfg.Now = func() time.Time { return time.Now().Add(time.Hour) }
	v, err := NewVerifier(ctx, cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyRS256(b *testing.B) { benchmarkVerify(b, testKeys().rsaA) }
func BenchmarkVerifyES256(b *testing.B) { benchmarkVerify(b, testKeys().es256) }
func BenchmarkVerifyEdDSA(b *testing.B) { benchmarkVerify(b, testKeys().ed) }
