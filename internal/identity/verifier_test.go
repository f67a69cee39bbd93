package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stewardhq/steward"
)

func TestVerifyKeycloakShapedTokens(t *testing.T) {
	k := testKeys()
	ps := testKey{k.rsaB.priv, jose.PS256, "ps-256"}
	f := newFakeIssuer(t, k.rsaA, k.es256, k.es384, k.ed, ps)
	v := newTestVerifier(t, f.config())
	now := time.Now()

	for _, key := range []testKey{k.rsaA, k.es256, k.es384, k.ed, ps} {
		t.Run(string(key.alg), func(t *testing.T) {
			tok := mint(t, key, keycloakClaims(f.issuer, now))
			p, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			want := &steward.Principal{
				Kind:      steward.KindUser,
				Subject:   "8c1f6d0e-3c9a-4a57-9d0a-3e4b2f1c6a7d",
				Username:  "alice",
				Groups:    []string{"analysts", "risk/modelling", "traders"},
				Roles:     []string{"default-roles-bank", "offline_access", "uma_authorization", "analyst"},
				Issuer:    f.issuer,
				ClientID:  "steward",
				TokenID:   "onrtac:3f1b9a9e-6d3c-4f1e-9b1a-0c9f0b8f7a11",
				IssuedAt:  time.Unix(now.Unix(), 0).UTC(),
				ExpiresAt: time.Unix(now.Add(5*time.Minute).Unix(), 0).UTC(),
			}
			if !principalsEqual(p, want) {
				t.Fatalf("got %+v\nwant %+v", p, want)
			}
		})
	}
	if n := f.discoveryHits.Load(); n != 1 {
		t.Errorf("discovery fetched %d times, want 1", n)
	}
	if n := f.jwksHits.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times, want 1", n)
	}
}

func principalsEqual(a, b *steward.Principal) bool {
	return a.Kind == b.Kind && a.Subject == b.Subject && a.Username == b.Username &&
		slices.Equal(a.Groups, b.Groups) && slices.Equal(a.Roles, b.Roles) &&
		a.Issuer == b.Issuer && a.ClientID == b.ClientID && a.TokenID == b.TokenID &&
		a.IssuedAt.Equal(b.IssuedAt) && a.ExpiresAt.Equal(b.ExpiresAt)
}

func TestVerifyClaimMapping(t *testing.T) {
	k := testKeys()
	f := newFakeIssuer(t, k.es256)
	now := time.Now()
	mod := func(edit func(c map[string]any)) map[string]any {
		c := keycloakClaims(f.issuer, now)
		edit(c)
		return c
	}
	tests := []struct {
		name   string
		cfg    func(*Config)
		claims map[string]any
		check  func(t *testing.T, p *steward.Principal)
	}{
		{
			name: "keycloak service account",
			claims: mod(func(c map[string]any) {
				c["preferred_username"] = "service-account-etl"
				c["azp"] = "etl"
				c["client_id"] = "etl"
				c["aud"] = []string{"steward", "account"}
				delete(c, "groups")
			}),
			check: func(t *testing.T, p *steward.Principal) {
				if p.Kind != steward.KindService || p.Username != "service-account-etl" || p.ClientID != "etl" || p.Groups != nil {
					t.Fatalf("got %+v", p)
				}
			},
		},
		{
			name: "built-in provider service claim",
			claims: mod(func(c map[string]any) {
				c["preferred_username"] = "lineage-bot"
				c["steward_kind"] = "service"
			}),
			check: func(t *testing.T, p *steward.Principal) {
				if p.Kind != steward.KindService {
					t.Fatalf("kind %q, want service", p.Kind)
				}
			},
		},
		{
			name:   "keep group slash",
			cfg:    func(c *Config) { c.KeepGroupsSlash = true },
			claims: keycloakClaims(f.issuer, now),
			check: func(t *testing.T, p *steward.Principal) {
				if !slices.Equal(p.Groups, []string{"/analysts", "/risk/modelling", "traders"}) {
					t.Fatalf("groups %q", p.Groups)
				}
			},
		},
		{
			name: "configured claims and client roles",
			cfg: func(c *Config) {
				c.UsernameClaim = "email"
				c.GroupsClaim = "https://bank.example/groups" // literal dotted name
				c.RolesClaim = "resource_access.account.roles"
			},
			claims: mod(func(c map[string]any) { c["https://bank.example/groups"] = []string{"g1"} }),
			check: func(t *testing.T, p *steward.Principal) {
				if p.Username != "alice@bank.example" || !slices.Equal(p.Groups, []string{"g1"}) ||
					!slices.Equal(p.Roles, []string{"manage-account", "manage-account-links", "view-profile"}) {
					t.Fatalf("got %+v", p)
				}
			},
		},
		{
			name:   "no aud, azp accepted",
			claims: mod(func(c map[string]any) { delete(c, "aud") }),
			check:  func(t *testing.T, p *steward.Principal) {},
		},
		{
			name:   "aud accepted without azp",
			claims: mod(func(c map[string]any) { delete(c, "azp"); c["aud"] = []string{"x", "steward"} }),
			check: func(t *testing.T, p *steward.Principal) {
				if p.ClientID != "" {
					t.Fatalf("client %q", p.ClientID)
				}
			},
		},
		{
			name:   "absent groups and roles",
			claims: mod(func(c map[string]any) { delete(c, "groups"); delete(c, "realm_access") }),
			check: func(t *testing.T, p *steward.Principal) {
				if p.Groups != nil || p.Roles != nil {
					t.Fatalf("got %+v", p)
				}
			},
		},
		{
			name:   "single string group",
			claims: mod(func(c map[string]any) { c["groups"] = "/solo" }),
			check: func(t *testing.T, p *steward.Principal) {
				if !slices.Equal(p.Groups, []string{"solo"}) {
					t.Fatalf("groups %q", p.Groups)
				}
			},
		},
		{
			name:   "fractional times",
			claims: mod(func(c map[string]any) { c["exp"] = float64(now.Add(time.Minute).Unix()) + 0.5 }),
			check:  func(t *testing.T, p *steward.Principal) {},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := f.config()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			if cfg.Audiences[0] == "steward" && tc.name == "keycloak service account" {
				cfg.AuthorizedParties = nil // accepted by aud alone
			}
			v := newTestVerifier(t, cfg)
			p, err := v.Verify(context.Background(), mint(t, k.es256, tc.claims))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, p)
		})
	}
}

// TestVerifyRefusals is the table of tokens that must be refused, each with
// its caller-safe message.
func TestVerifyRefusals(t *testing.T) {
	k := testKeys()
	f := newFakeIssuer(t, k.rsaA, k.es256)
	// Keys that exist only to be refused: weak, encryption-only, wrong alg.
	f.mu.Lock()
	weak := k.rsaWeak.jwk()
	enc := k.rsaB.jwk()
	enc.KeyID, enc.Use, enc.Algorithm = "enc-key", "enc", "RSA-OAEP"
	pinned := k.rsaB.jwk()
	pinned.KeyID, pinned.Algorithm = "pinned-rs512", "RS512"
	f.keys = append(f.keys, weak, enc, pinned)
	f.mu.Unlock()

	cfg := f.config()
	v := newTestVerifier(t, cfg)
	now := time.Now()
	good := func() map[string]any { return keycloakClaims(f.issuer, now) }
	with := func(edit func(c map[string]any)) map[string]any {
		c := good()
		edit(c)
		return c
	}
	valid := mint(t, k.rsaA, good())
	parts := strings.Split(valid, ".")

	pubDER, err := x509.MarshalPKIXPublicKey(&k.rsaA.priv.(*rsa.PrivateKey).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	jwkJSON, err := k.rsaA.jwk().MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	hmacWith := func(secret []byte) string {
		return mint(t, testKey{priv: secret, alg: jose.HS256, kid: "rsa-a"}, good())
	}
	// An ECDSA signature under a header claiming RS256 and the EC key's kid.
	rsHeaderECSig := func() string {
		in := b64json(t, map[string]any{"alg": "RS256", "kid": "ec-256", "typ": "JWT"}) + "." + b64json(t, good())
		h := sha256.Sum256([]byte(in))
		sig, err := ecdsa.SignASN1(rand.Reader, k.es256.priv.(*ecdsa.PrivateKey), h[:])
		if err != nil {
			t.Fatal(err)
		}
		return in + "." + b64(sig)
	}
	// An RS256 signature by the real key, but with the header claiming ES256.
	esHeaderRSASig := func() string {
		in := b64json(t, map[string]any{"alg": "ES256", "kid": "rsa-a"}) + "." + b64json(t, good())
		h := sha256.Sum256([]byte(in))
		sig, err := rsa.SignPKCS1v15(rand.Reader, k.rsaA.priv.(*rsa.PrivateKey), crypto.SHA256, h[:])
		if err != nil {
			t.Fatal(err)
		}
		return in + "." + b64(sig)
	}
	twoSigs := func() string {
		s, err := jose.NewMultiSigner([]jose.SigningKey{
			{Algorithm: jose.RS256, Key: k.rsaA.priv},
			{Algorithm: jose.ES256, Key: k.es256.priv},
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		jws, err := s.Sign([]byte(b64json(t, good())))
		if err != nil {
			t.Fatal(err)
		}
		return jws.FullSerialize()
	}
	flipLastSigByte := func(tok string) string {
		p := strings.Split(tok, ".")
		sig := []byte(p[2])
		if sig[0] == 'A' {
			sig[0] = 'B'
		} else {
			sig[0] = 'A'
		}
		return p[0] + "." + p[1] + "." + string(sig)
	}
	embedded := mint(t, testKey{k.rsaAttacker.priv, jose.RS256, "attacker"}, good(), func(o *jose.SignerOptions) {
		o.EmbedJWK = true
	})

	tests := []struct {
		name  string
		token string
		msg   string
	}{
		{"alg none", b64json(t, map[string]any{"alg": "none", "typ": "JWT"}) + "." + b64json(t, good()) + ".", "unsupported signing algorithm"},
		{"alg none with kid", b64json(t, map[string]any{"alg": "none", "kid": "rsa-a"}) + "." + b64json(t, good()) + ".", "unsupported signing algorithm"},
		{"alg None casing", b64json(t, map[string]any{"alg": "None"}) + "." + parts[1] + "." + parts[2], "unsupported signing algorithm"},
		{"HS256 keyed with public key PEM", hmacWith(pubPEM), "unsupported signing algorithm"},
		{"HS256 keyed with public JWK JSON", hmacWith(jwkJSON), "unsupported signing algorithm"},
		{"RS256 header with EC key and signature", rsHeaderECSig(), "token signature invalid"},
		{"ES256 header with RSA key", esHeaderRSASig(), "token signature invalid"},
		{"expired", mint(t, k.rsaA, with(func(c map[string]any) { c["exp"] = now.Add(-time.Hour).Unix() })), "token expired"},
		{"expired beyond skew", mint(t, k.rsaA, with(func(c map[string]any) { c["exp"] = now.Add(-31 * time.Second).Unix() })), "token expired"},
		{"nbf beyond skew", mint(t, k.rsaA, with(func(c map[string]any) { c["nbf"] = now.Add(5 * time.Minute).Unix() })), "token not yet valid"},
		{"iat in the future", mint(t, k.rsaA, with(func(c map[string]any) { c["iat"] = now.Add(time.Hour).Unix() })), "token not yet valid"},
		{"wrong aud and azp", mint(t, k.rsaA, with(func(c map[string]any) { c["aud"] = "other"; c["azp"] = "other" })), "token audience not accepted"},
		{"aud array without ours", mint(t, k.rsaA, with(func(c map[string]any) { c["aud"] = []string{"a", "b"}; delete(c, "azp") })), "token audience not accepted"},
		{"no aud no azp", mint(t, k.rsaA, with(func(c map[string]any) { delete(c, "aud"); delete(c, "azp") })), "token audience not accepted"},
		{"wrong iss", mint(t, k.rsaA, with(func(c map[string]any) { c["iss"] = "http://evil.example/realms/bank" })), "token issuer not accepted"},
		{"iss with trailing slash", mint(t, k.rsaA, with(func(c map[string]any) { c["iss"] = f.issuer + "/" })), "token issuer not accepted"},
		{"no iss", mint(t, k.rsaA, with(func(c map[string]any) { delete(c, "iss") })), "token issuer not accepted"},
		{"missing exp", mint(t, k.rsaA, with(func(c map[string]any) { delete(c, "exp") })), "token malformed"},
		{"exp as string", mint(t, k.rsaA, with(func(c map[string]any) { c["exp"] = "9999999999" })), "token malformed"},
		{"exp negative", mint(t, k.rsaA, with(func(c map[string]any) { c["exp"] = -1 })), "token malformed"},
		{"exp huge", mint(t, k.rsaA, with(func(c map[string]any) { c["exp"] = 1e300 })), "token malformed"},
		{"no sub", mint(t, k.rsaA, with(func(c map[string]any) { delete(c, "sub") })), "token malformed"},
		{"aud number", mint(t, k.rsaA, with(func(c map[string]any) { c["aud"] = 7 })), "token malformed"},
		{"refresh token type", mint(t, k.rsaA, with(func(c map[string]any) { c["typ"] = "Refresh" })), "token type not accepted"},
		{"no username", mint(t, k.rsaA, with(func(c map[string]any) { delete(c, "preferred_username") })), "token has no username"},
		{"empty username", mint(t, k.rsaA, with(func(c map[string]any) { c["preferred_username"] = "" })), "token has no username"},
		{"username not string", mint(t, k.rsaA, with(func(c map[string]any) { c["preferred_username"] = []string{"a"} })), "token claim has the wrong type"},
		{"username with control", mint(t, k.rsaA, with(func(c map[string]any) { c["preferred_username"] = "al\nice" })), "token claim has the wrong type"},
		{"groups object", mint(t, k.rsaA, with(func(c map[string]any) { c["groups"] = map[string]any{"a": 1} })), "token claim has the wrong type"},
		{"groups with number", mint(t, k.rsaA, with(func(c map[string]any) { c["groups"] = []any{"a", 1} })), "token claim has the wrong type"},
		{"roles not a list", mint(t, k.rsaA, with(func(c map[string]any) { c["realm_access"] = map[string]any{"roles": true} })), "token claim has the wrong type"},
		{"unknown kid", mint(t, testKey{k.rsaAttacker.priv, jose.RS256, "nope"}, good()), "token signature invalid"},
		{"known kid, other key", mint(t, k.rsaAttacker, good()), "token signature invalid"},
		{"embedded jwk of attacker", embedded, "token signature invalid"},
		{"weak RSA key", mint(t, k.rsaWeak, good()), "token signature invalid"},
		{"encryption key", mint(t, testKey{k.rsaB.priv, jose.RS256, "enc-key"}, good()), "token signature invalid"},
		{"key pinned to another alg", mint(t, testKey{k.rsaB.priv, jose.RS256, "pinned-rs512"}, good()), "token signature invalid"},
		{"tampered payload", parts[0] + "." + b64json(t, with(func(c map[string]any) { c["preferred_username"] = "admin" })) + "." + parts[2], "token signature invalid"},
		{"tampered signature", flipLastSigByte(valid), "token signature invalid"},
		{"empty signature", parts[0] + "." + parts[1] + ".", "token signature invalid"},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(mint(t, k.rsaA, with(func(c map[string]any) { c["jti"] = "x" })), ".")[2], "token signature invalid"},
		{"two signatures JSON serialization", twoSigs(), "token malformed"},
		{"flattened JSON serialization", `{"protected":"` + parts[0] + `","payload":"` + parts[1] + `","signature":"` + parts[2] + `"}`, "token malformed"},
		{"crit header", mint(t, k.rsaA, good(), func(o *jose.SignerOptions) { o.WithCritical("exp").WithHeader("exp", 1) }), "token malformed"},
		{"b64 false", mint(t, k.rsaA, good(), func(o *jose.SignerOptions) { o.WithBase64(false) }), "token malformed"},
		{"oversized", mint(t, k.rsaA, with(func(c map[string]any) { c["pad"] = strings.Repeat("x", MaxTokenSize) })), "token too large"},
		{"garbage", "not a token", "token malformed"},
		{"empty", "", "token malformed"},
		{"dots", "..", "token malformed"},
		{"four parts", valid + ".x", "token malformed"},
		{"JWE shape", "a.b.c.d.e", "token malformed"},
		{"padding", valid + "=", "token malformed"},
		{"whitespace inside", parts[0] + ". " + parts[1] + "." + parts[2], "token malformed"},
		{"header not base64", "!!!." + parts[1] + "." + parts[2], "token malformed"},
		{"header not JSON", b64([]byte("nope")) + "." + parts[1] + "." + parts[2], "token malformed"},
		{"header array", b64([]byte(`["alg"]`)) + "." + parts[1] + "." + parts[2], "token malformed"},
		{"header alg number", b64([]byte(`{"alg":256}`)) + "." + parts[1] + "." + parts[2], "token malformed"},
		{"payload not JSON", mint(t, k.rsaA, "just a string"), "token malformed"},
		{"payload JSON array", mint(t, k.rsaA, []int{1}), "token malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), tc.token)
			if p != nil {
				t.Fatalf("accepted: %+v", p)
			}
			wantRefusal(t, err, steward.EUnauthenticated, tc.msg, f.srv.URL, "alice", tc.token)
		})
	}

	t.Run("valid control", func(t *testing.T) {
		if _, err := v.Verify(context.Background(), valid); err != nil {
			t.Fatal(err)
		}
	})
}

func TestVerifySkew(t *testing.T) {
	k := testKeys()
	f := newFakeIssuer(t, k.es256)
	clock := newClock()
	cfg := f.config()
	cfg.Now = clock.Now
	v := newTestVerifier(t, cfg)
	now := clock.Now()
	for _, tc := range []struct {
		name string
		edit func(c map[string]any)
		ok   bool
	}{
		{"exp just passed, within skew", func(c map[string]any) { c["exp"] = now.Add(-29 * time.Second).Unix() }, true},
		{"exp passed beyond skew", func(c map[string]any) { c["exp"] = now.Add(-31 * time.Second).Unix() }, false},
		{"nbf ahead within skew", func(c map[string]any) { c["nbf"] = now.Add(29 * time.Second).Unix() }, true},
		{"nbf ahead beyond skew", func(c map[string]any) { c["nbf"] = now.Add(31 * time.Second).Unix() }, false},
		{"iat ahead within skew", func(c map[string]any) { c["iat"] = now.Add(29 * time.Second).Unix() }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := keycloakClaims(f.issuer, now)
			tc.edit(c)
			_, err := v.Verify(context.Background(), mint(t, k.es256, c))
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestVerifyWithoutKid(t *testing.T) {
	k := testKeys()
	noKid := func(o *jose.SignerOptions) { delete(o.ExtraHeaders, "kid") }
	claims := keycloakClaims("https://idp.example/realms/bank", time.Now())
	cfg := Config{Issuer: "https://idp.example/realms/bank", Audiences: []string{"steward"}, AuthorizedParties: []string{"steward"}}

	one, err := NewVerifierWithKeys(cfg, StaticKeys(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.rsaA.jwk(), k.es256.jwk()}}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := one.Verify(context.Background(), mint(t, k.rsaA, claims, noKid)); err != nil {
		t.Fatalf("single RSA key without kid: %v", err)
	}
	two, err := NewVerifierWithKeys(cfg, StaticKeys(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.rsaA.jwk(), k.rsaB.jwk()}}), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = two.Verify(context.Background(), mint(t, k.rsaA, claims, noKid))
	wantRefusal(t, err, steward.EUnauthenticated, "token signature invalid")
}

func TestStaticKeysAcceptPrivateKeys(t *testing.T) {
	k := testKeys()
	priv := jose.JSONWebKey{Key: k.ed.priv, KeyID: "ed", Algorithm: "EdDSA", Use: "sig"}
	hmac := jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "h"}
	src := StaticKeys(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{priv, hmac}})
	set, _ := src.Keys(context.Background())
	if len(set.Keys) != 1 || !set.Keys[0].IsPublic() {
		t.Fatalf("keys %+v, want the one public key", set.Keys)
	}
	cfg := Config{Issuer: "http://127.0.0.1:1/", Audiences: []string{"steward"}}
	v, err := NewVerifierWithKeys(cfg, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := keycloakClaims(cfg.Issuer, time.Now())
	c["aud"] = "steward"
	if _, err := v.Verify(context.Background(), mint(t, k.ed, c)); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidation(t *testing.T) {
	base := Config{Issuer: "https://idp.example/realms/bank", Audiences: []string{"steward"}}
	tests := []struct {
		name string
		edit func(c *Config)
		ok   bool
	}{
		{"defaults", func(c *Config) {}, true},
		{"azp only", func(c *Config) { c.Audiences = nil; c.AuthorizedParties = []string{"steward"} }, true},
		{"neither aud nor azp", func(c *Config) { c.Audiences = []string{" "} }, false},
		{"no issuer", func(c *Config) { c.Issuer = "" }, false},
		{"relative issuer", func(c *Config) { c.Issuer = "/realms/bank" }, false},
		{"issuer with query", func(c *Config) { c.Issuer = "https://idp.example/?x=1" }, false},
		{"ftp issuer", func(c *Config) { c.Issuer = "ftp://idp.example" }, false},
		{"HS256 allowed", func(c *Config) { c.AllowedAlgs = []jose.SignatureAlgorithm{jose.HS256} }, false},
		{"none allowed", func(c *Config) { c.AllowedAlgs = []jose.SignatureAlgorithm{"none"} }, false},
		{"negative skew", func(c *Config) { c.ClockSkew = -time.Second }, false},
		{"http JWKS for https issuer", func(c *Config) { c.JWKSURL = "http://idp.example/certs" }, false},
		{"huge skew is capped", func(c *Config) { c.ClockSkew = time.Hour }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			c.Audiences = slices.Clone(base.Audiences)
			tc.edit(&c)
			got, err := c.withDefaults()
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && steward.KindOf(err) != steward.EInvalid {
				t.Fatalf("kind %s", steward.KindOf(err))
			}
			if err == nil && (got.ClockSkew > MaxClockSkew || got.ClockSkew <= 0) {
				t.Fatalf("skew %v", got.ClockSkew)
			}
		})
	}
	d, _ := base.withDefaults()
	if d.UsernameClaim != "preferred_username" || d.GroupsClaim != "groups" || d.RolesClaim != "realm_access.roles" ||
		d.ClockSkew != 30*time.Second || d.MinRefreshInterval != 10*time.Second || len(d.AllowedAlgs) != 10 {
		t.Fatalf("defaults %+v", d)
	}
}
