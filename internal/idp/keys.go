package idp

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/metastore"
)

// signingKey is one RSA key of the provider. It implements op.SigningKey;
// publicKey implements op.Key.
type signingKey struct {
	kid         string
	alg         jose.SignatureAlgorithm
	priv        *rsa.PrivateKey
	activatesAt time.Time
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k *signingKey) Key() any                                    { return k.priv }
func (k *signingKey) ID() string                                  { return k.kid }

type publicKey struct{ k *signingKey }

func (k publicKey) ID() string                         { return k.k.kid }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return k.k.alg }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.k.priv.PublicKey }

// keyring caches the signing keys read from the metastore. The metastore
// is the truth; the cache lives keyCacheTTL.
type keyring struct {
	store *metastore.Store
	seal  cipher.AEAD

	mu       sync.Mutex
	keys     []*signingKey // by activatesAt, oldest first
	byKID    map[string]*signingKey
	loadedAt time.Time
}

func newKeyring(store *metastore.Store, kek []byte) (*keyring, error) {
	block, err := aes.NewCipher(derive(kek, "signing-key-seal"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &keyring{store: store, seal: aead, byKID: map[string]*signingKey{}}, nil
}

// derive returns a 32-byte subkey of kek for purpose.
func derive(kek []byte, purpose string) []byte {
	m := hmac.New(sha256.New, kek)
	m.Write([]byte("steward-idp/" + purpose))
	return m.Sum(nil)
}

func (kr *keyring) sealKey(kid string, priv *rsa.PrivateKey) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, kr.seal.NonceSize())
	rand.Read(nonce)
	ct := kr.seal.Seal(nonce, nonce, der, []byte(kid))
	return base64.StdEncoding.EncodeToString(ct), nil
}

func (kr *keyring) openKey(kid, sealed string) (*rsa.PrivateKey, error) {
	ct, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(ct) < kr.seal.NonceSize() {
		return nil, fmt.Errorf("signing key %s: malformed", kid)
	}
	n := kr.seal.NonceSize()
	der, err := kr.seal.Open(nil, ct[:n], ct[n:], []byte(kid))
	if err != nil {
		return nil, fmt.Errorf("signing key %s: cannot decrypt (wrong KeyEncryptionKey?): %w", kid, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", kid, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key %s: not RSA", kid)
	}
	return rk, nil
}

// load returns the keys, from the cache if it is fresh.
func (kr *keyring) load(ctx context.Context, now time.Time, force bool) ([]*signingKey, error) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if !force && kr.keys != nil && now.Sub(kr.loadedAt) < keyCacheTTL {
		return kr.keys, nil
	}
	rows, err := kr.store.Query(ctx, `SELECT kid, alg, private_key, activates_at FROM idp_signing_keys ORDER BY activates_at, kid`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []*signingKey
	for rows.Next() {
		var kid, alg, sealed string
		var act int64
		if err := rows.Scan(&kid, &alg, &sealed, &act); err != nil {
			return nil, err
		}
		k := kr.byKID[kid]
		if k == nil {
			priv, err := kr.openKey(kid, sealed)
			if err != nil {
				return nil, err
			}
			k = &signingKey{kid: kid, alg: jose.SignatureAlgorithm(alg), priv: priv}
			kr.byKID[kid] = k
		}
		k.activatesAt = time.UnixMilli(act)
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	kr.keys, kr.loadedAt = keys, now
	return keys, nil
}

func (kr *keyring) invalidate() {
	kr.mu.Lock()
	kr.keys = nil
	kr.mu.Unlock()
}

// current returns the key that signs now: the newest one already active.
func current(keys []*signingKey, now time.Time) *signingKey {
	for i := len(keys) - 1; i >= 0; i-- {
		if !keys[i].activatesAt.After(now) {
			return keys[i]
		}
	}
	return nil
}

// published returns the keys that belong in the JWKS: the current key,
// keys scheduled to become current, and replaced keys for retention after
// the key that replaced them became active.
func published(keys []*signingKey, now time.Time, retention time.Duration) []*signingKey {
	var out []*signingKey
	for i, k := range keys {
		if i+1 < len(keys) {
			next := keys[i+1]
			if !next.activatesAt.After(now) && now.Sub(next.activatesAt) > retention {
				continue // replaced long enough ago
			}
		}
		out = append(out, k)
	}
	return out
}

// addKey generates a key, stores it sealed and returns its kid. It runs in
// tx, which holds the rotation lock.
func (kr *keyring) addKey(ctx context.Context, tx *metastore.Tx, now, activatesAt time.Time) (string, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	kid := uuid.NewString()
	sealed, err := kr.sealKey(kid, priv)
	if err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO idp_signing_keys (kid, alg, private_key, created_at, activates_at) VALUES (?, ?, ?, ?, ?)`,
		kid, string(jose.RS256), sealed, now.UnixMilli(), activatesAt.UnixMilli()); err != nil {
		return "", err
	}
	return kid, nil
}

// lockKeys takes the rotation lock for the rest of tx, so that replicas
// rotate one at a time.
func lockKeys(ctx context.Context, tx *metastore.Tx) error {
	_, err := tx.Exec(ctx, `UPDATE idp_locks SET held = held + 1 WHERE name = 'keys'`)
	return err
}

// rotation says what maintain decided.
type rotation int

const (
	rotateNone rotation = iota
	rotateFirst
	rotateScheduled
)

// maintain makes sure a signing key exists, schedules the next key when the
// current one reaches its rotation age, and deletes keys past retention.
func (kr *keyring) maintain(ctx context.Context, now time.Time, every, retention time.Duration) (rotation, string, error) {
	var what rotation
	var kid string
	err := kr.store.InTx(ctx, func(tx *metastore.Tx) error {
		what, kid = rotateNone, ""
		if err := lockKeys(ctx, tx); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT kid, activates_at FROM idp_signing_keys ORDER BY activates_at, kid`)
		if err != nil {
			return err
		}
		type row struct {
			kid string
			act time.Time
		}
		var rs []row
		for rows.Next() {
			var r row
			var act int64
			if err := rows.Scan(&r.kid, &act); err != nil {
				rows.Close()
				return err
			}
			r.act = time.UnixMilli(act)
			rs = append(rs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(rs) == 0 {
			what = rotateFirst
			kid, err = kr.addKey(ctx, tx, now, now)
			return err
		}
		last := rs[len(rs)-1]
		if !last.act.After(now) && now.Sub(last.act) >= every-keyPrepublish {
			what = rotateScheduled
			if kid, err = kr.addKey(ctx, tx, now, now.Add(keyPrepublish)); err != nil {
				return err
			}
		}
		// Delete keys replaced more than retention ago.
		for i := 0; i+1 < len(rs); i++ {
			next := rs[i+1]
			if !next.act.After(now) && now.Sub(next.act) > retention {
				if _, err := tx.Exec(ctx, `DELETE FROM idp_signing_keys WHERE kid = ?`, rs[i].kid); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return rotateNone, "", steward.WrapError(steward.EInternal, "idp.maintainKeys", err, "cannot maintain signing keys")
	}
	if what != rotateNone {
		kr.invalidate()
	}
	return what, kid, nil
}

// rotateNow adds a key that signs from now on.
func (kr *keyring) rotateNow(ctx context.Context, now time.Time) (string, error) {
	var kid string
	err := kr.store.InTx(ctx, func(tx *metastore.Tx) error {
		if err := lockKeys(ctx, tx); err != nil {
			return err
		}
		// The new key must be the newest: it activates now, or just after
		// a key scheduled for later (which then is replaced at once).
		var last int64
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(activates_at), 0) FROM idp_signing_keys`).Scan(&last); err != nil {
			return err
		}
		act := now
		if last >= now.UnixMilli() {
			act = time.UnixMilli(last + 1)
		}
		var err error
		kid, err = kr.addKey(ctx, tx, now, act)
		return err
	})
	kr.invalidate()
	if err != nil {
		return "", steward.WrapError(steward.EInternal, "idp.RotateKeys", err, "cannot rotate signing keys")
	}
	return kid, nil
}
