package identity

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stewardhq/steward"
)

var refusalMessages = map[string]bool{
	"token malformed": true, "token too large": true, "unsupported signing algorithm": true,
	"token signature invalid": true, "token expired": true, "token not yet valid": true,
	"token audience not accepted": true, "token issuer not accepted": true,
	"token type not accepted": true, "token has no username": true, "token claim has the wrong type": true,
}

// FuzzVerify feeds arbitrary tokens to the verifier: it must never panic,
// must refuse with a known caller-safe message, and must never accept a
// token that the test keys did not sign.
func FuzzVerify(f *testing.F) {
	k := testKeys()
	const iss = "https://idp.example/realms/bank"
	clock := &fixedClock{t: time.Unix(1_800_000_000, 0)}
	now := clock.Now()
	keys := []testKey{k.rsaA, k.es256, k.ed}
	var set jose.JSONWebKeySet
	for _, key := range keys {
		set.Keys = append(set.Keys, key.jwk())
	}
	v, err := NewVerifierWithKeys(Config{
		Issuer: iss, Audiences: []string{"steward"}, AuthorizedParties: []string{"steward"}, Now: clock.Now,
	}, StaticKeys(set), nil)
	if err != nil {
		f.Fatal(err)
	}
	multi, err := NewMulti(nil, v)
	if err != nil {
		f.Fatal(err)
	}

	claims := keycloakClaims(iss, now)
	for _, key := range keys {
		f.Add(mint(f, key, claims))
	}
	valid := mint(f, k.rsaA, claims)
	parts := strings.Split(valid, ".")
	seeds := []string{
		"", ".", "..", "a.b.c", valid + ".", valid[:len(valid)-2],
		b64json(f, map[string]any{"alg": "none"}) + "." + parts[1] + ".",
		b64json(f, map[string]any{"alg": "HS256", "kid": "rsa-a"}) + "." + parts[1] + "." + parts[2],
		b64json(f, map[string]any{"alg": "RS256", "kid": "ec-256"}) + "." + parts[1] + "." + parts[2],
		b64json(f, map[string]any{"alg": "RS256", "crit": []string{"b64"}, "b64": false}) + "." + parts[1] + "." + parts[2],
		parts[0] + "." + b64json(f, map[string]any{"iss": iss, "exp": 1e10, "sub": "x", "preferred_username": "x", "aud": "steward"}) + "." + parts[2],
		parts[0] + "." + b64([]byte(`{"iss":"`+iss+`","exp":1e400}`)) + "." + parts[2],
		`{"payload":"` + parts[1] + `","signatures":[]}`,
		mint(f, k.rsaAttacker, claims),
	}
	for _, s := range seeds {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, token string) {
		ctx := context.Background()
		p, err := v.Verify(ctx, token)
		mp, merr := multi.Verify(ctx, token)
		if (err == nil) != (merr == nil) {
			t.Fatalf("Verifier and Multi disagree: %v / %v", err, merr)
		}
		if err != nil {
			var se *steward.Error
			if !errors.As(err, &se) || se.Kind != steward.EUnauthenticated || !refusalMessages[se.Message] {
				t.Fatalf("refusal %#v is not a known caller-safe one", err)
			}
			if len(token) > 8 && strings.Contains(se.Message, token) {
				t.Fatalf("message echoes the token")
			}
			return
		}
		if p == nil || mp == nil || p.Username == "" || p.Issuer != iss {
			t.Fatalf("accepted with principal %+v", p)
		}
		// Independent check: the token must carry a valid signature by one
		// of the test keys.
		jws, err := jose.ParseSignedCompact(token, DefaultAllowedAlgs)
		if err != nil {
			t.Fatalf("accepted a token go-jose cannot parse: %v", err)
		}
		for _, key := range keys {
			jwk := key.jwk()
			if _, err := jws.Verify(jwk.Key); err == nil {
				return
			}
		}
		t.Fatalf("accepted a token no test key signed: %q", token)
	})
}
