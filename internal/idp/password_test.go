package idp

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stewardhq/steward"
)

func TestHashPasswordDefaults(t *testing.T) {
	saved := hashParams
	hashParams = argonParams{memory: argonMemory, time: argonTime, threads: argonThreads}
	defer func() { hashParams = saved }()
	h, err := HashPassword("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q does not use the documented parameters", h)
	}
	if ok, err := CheckPassword(h, "s3cret"); !ok || err != nil {
		t.Errorf("CheckPassword(right) = %v, %v", ok, err)
	}
}

func TestCheckPassword(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := HashPassword("correct horse")
	if h == h2 {
		t.Error("two hashes of one password are equal: salt missing")
	}
	for _, c := range []struct {
		name, hash, pw string
		ok             bool
		kind           steward.ErrorKind
	}{
		{"right", h, "correct horse", true, ""},
		{"wrong", h, "correct horsE", false, ""},
		{"empty", h, "", false, ""},
		{"empty hash", "", "x", false, steward.EInvalid},
		{"bcrypt", "$2a$10$abcdefghijklmnopqrstuu", "x", false, steward.EInvalid},
		{"argon2i", strings.Replace(h, "argon2id", "argon2i", 1), "correct horse", false, steward.EInvalid},
		{"huge memory", strings.Replace(h, "m=64", "m=4194304", 1), "x", false, steward.EInvalid},
		{"zero time", strings.Replace(h, "t=1", "t=0", 1), "x", false, steward.EInvalid},
		{"duplicate param", strings.Replace(h, "t=1", "m=64", 1), "x", false, steward.EInvalid},
		{"bad base64", h[:len(h)-2] + "!!", "x", false, steward.EInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			ok, err := CheckPassword(c.hash, c.pw)
			if ok != c.ok || steward.KindOf(err) != c.kind {
				t.Errorf("CheckPassword = %v, %v; want %v, kind %q", ok, err, c.ok, c.kind)
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	a, b := NewSecret(), NewSecret()
	raw, err := base64.RawURLEncoding.DecodeString(a.Reveal())
	if err != nil || len(raw) != 32 {
		t.Errorf("secret %d bytes, err %v", len(raw), err)
	}
	if a == b {
		t.Error("two secrets are equal")
	}
	if a.String() != "[redacted]" {
		t.Error("secret prints its value")
	}
}

func FuzzParsePHC(f *testing.F) {
	h, _ := HashPassword("pw")
	for _, s := range []string{h, "", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1,p=2$$", "$argon2id$v=19$m=01,t=1,p=1$x$y", "$$$$$", "$argon2id$v=19$m=9999999999$a$b"} {
		f.Add(s, "pw")
	}
	f.Fuzz(func(t *testing.T, hash, pw string) {
		ph, err := parsePHC(hash)
		if err != nil {
			if steward.KindOf(err) != steward.EInvalid {
				t.Fatalf("error kind %v", steward.KindOf(err))
			}
			return
		}
		// Whatever parses stays within the limits, so checking is bounded.
		if ph.memory > maxArgonMemory || ph.time > maxArgonTime || ph.threads > maxArgonThreads || ph.threads == 0 || len(ph.key) > 64 {
			t.Fatalf("out of range parameters accepted: %+v", ph.argonParams)
		}
		if ph.memory <= 1024 && ph.time <= 2 {
			CheckPassword(hash, pw)
		}
	})
}

func FuzzNormalizeUserCode(f *testing.F) {
	for _, s := range []string{"BCDF-GHJK", "bcdf ghjk", "BCDFGHJK", "", "AAAA-AAAA", "BCDF-GHJ", "ß", "BCDF--GHJK-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := normalizeUserCode(s)
		if !ok {
			return
		}
		if len(c) != 9 || c[4] != '-' {
			t.Fatalf("normalizeUserCode(%q) = %q", s, c)
		}
		again, ok := normalizeUserCode(c)
		if !ok || again != c {
			t.Fatalf("not idempotent: %q -> %q", c, again)
		}
	})
}
