package idp

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/stewardhq/steward"
)

// Password hashing parameters: argon2id with 19 MiB of memory, 2 passes and
// one lane (the OWASP password storage recommendation), a 16-byte random
// salt and a 32-byte key. Hashes are stored in the PHC string format
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
//
// with salt and key in unpadded standard base64. CheckPassword reads the
// parameters from the hash, so they can be raised later without
// invalidating stored hashes.
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonSaltLen = 16
	argonKeyLen  = 32

	// Limits on parameters read from a stored hash, so that a corrupt or
	// hostile hash cannot make a login exhaust memory or CPU.
	maxArgonMemory  = 1 << 20 // 1 GiB in KiB
	maxArgonTime    = 16
	maxArgonThreads = 64
)

// hashParams are the parameters HashPassword uses. Tests in this package
// may lower them; production code never changes them.
var hashParams = argonParams{memory: argonMemory, time: argonTime, threads: argonThreads}

type argonParams struct {
	memory  uint32
	time    uint32
	threads uint8
}

// HashPassword hashes pw with argon2id and returns the PHC string. It is
// also used for service account secrets.
func HashPassword(pw string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", steward.WrapError(steward.EInternal, "idp.HashPassword", err, "cannot hash password")
	}
	p := hashParams
	key := argon2.IDKey([]byte(pw), salt, p.time, p.memory, p.threads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.memory, p.time, p.threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// CheckPassword reports whether pw matches hash, comparing in constant
// time. It returns an EInvalid error if hash is not a well-formed argon2id
// PHC string.
func CheckPassword(hash, pw string) (bool, error) {
	ph, err := parsePHC(hash)
	if err != nil {
		return false, err
	}
	key := argon2.IDKey([]byte(pw), ph.salt, ph.time, ph.memory, ph.threads, uint32(len(ph.key)))
	return subtle.ConstantTimeCompare(key, ph.key) == 1, nil
}

// NewSecret returns a new random secret for a service account: 32 bytes
// from crypto/rand in unpadded base64url.
func NewSecret() steward.Secret {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand.Read panics rather than return an error)
	return steward.Secret(base64.RawURLEncoding.EncodeToString(b))
}

type phcHash struct {
	argonParams
	salt, key []byte
}

func errHash(msg string) error {
	return steward.Errorf(steward.EInvalid, "malformed password hash: %s", msg)
}

// parsePHC parses an argon2id PHC string.
func parsePHC(s string) (*phcHash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return nil, errHash("wrong number of fields")
	}
	if parts[1] != "argon2id" {
		return nil, errHash("not argon2id")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return nil, errHash("unsupported version")
	}
	var h phcHash
	seen := map[string]bool{}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || seen[k] {
			return nil, errHash("bad parameters")
		}
		seen[k] = true
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || (len(v) > 1 && v[0] == '0') {
			return nil, errHash("bad parameter value")
		}
		switch k {
		case "m":
			h.memory = uint32(n)
		case "t":
			h.time = uint32(n)
		case "p":
			if n > maxArgonThreads {
				return nil, errHash("parameter out of range")
			}
			h.threads = uint8(n)
		default:
			return nil, errHash("unknown parameter")
		}
	}
	if len(seen) != 3 {
		return nil, errHash("missing parameter")
	}
	if h.time < 1 || h.time > maxArgonTime || h.threads < 1 || h.memory < 8*uint32(h.threads) || h.memory > maxArgonMemory {
		return nil, errHash("parameter out of range")
	}
	var err error
	if h.salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4]); err != nil || len(h.salt) < 8 || len(h.salt) > 64 {
		return nil, errHash("bad salt")
	}
	if h.key, err = base64.RawStdEncoding.Strict().DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return nil, errHash("bad key")
	}
	return &h, nil
}
