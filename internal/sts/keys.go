package sts

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/metastore"
)

// keyring holds the cluster keys this replica knows.
type keyring struct {
	ms       *metastore.Store
	kek      []byte
	rotate   time.Duration // how long a key is used for new sessions
	keep     time.Duration // how long after that it still verifies
	now      func() time.Time
	mu       sync.RWMutex
	keys     map[string][]byte
	created  map[string]time.Time
	current  string
	loadedAt time.Time
}

func keyAAD(id string) []byte { return []byte("steward-sts-cluster-key:" + id) }

// load reads every stored key that may still verify a session.
func (k *keyring) load(ctx context.Context) error {
	cutoff := k.now().Add(-(k.rotate + k.keep))
	rows, err := k.ms.Query(ctx, `SELECT id, created_at, wrapped FROM sts_keys WHERE created_at > ?`, metastore.TimeValue(k.ms.Dialect(), cutoff))
	if err != nil {
		return steward.WrapError(steward.EUnavailable, "sts.keys", err, "credential keys unavailable")
	}
	defer rows.Close()
	keys, created := map[string][]byte{}, map[string]time.Time{}
	cur, curAt := "", time.Time{}
	for rows.Next() {
		var id, wrapped string
		var at time.Time
		if err := rows.Scan(&id, metastore.ScanTime(&at), &wrapped); err != nil {
			return steward.WrapError(steward.EInternal, "sts.keys", err, "")
		}
		sealed, err := base64.StdEncoding.DecodeString(wrapped)
		if err != nil {
			return steward.WrapError(steward.EInternal, "sts.keys", err, "")
		}
		raw, err := open(k.kek, sealed, keyAAD(id))
		if err != nil {
			return steward.WrapError(steward.EInternal, "sts.keys", fmt.Errorf("cluster key %s does not open with this key-encryption key: %w", id, err), "")
		}
		keys[id], created[id] = raw, at
		if at.After(curAt) {
			cur, curAt = id, at
		}
	}
	if err := rows.Err(); err != nil {
		return steward.WrapError(steward.EUnavailable, "sts.keys", err, "credential keys unavailable")
	}
	k.mu.Lock()
	k.keys, k.created, k.current, k.loadedAt = keys, created, cur, k.now()
	k.mu.Unlock()
	return nil
}

// signing returns the key new sessions are sealed with, making a new one
// when the current one is older than the rotation period.
func (k *keyring) signing(ctx context.Context) (string, []byte, error) {
	k.mu.RLock()
	id, key, at := k.current, k.keys[k.current], k.created[k.current]
	k.mu.RUnlock()
	if id != "" && k.now().Sub(at) < k.rotate {
		return id, key, nil
	}
	if err := k.load(ctx); err != nil {
		return "", nil, err
	}
	k.mu.RLock()
	id, key, at = k.current, k.keys[k.current], k.created[k.current]
	k.mu.RUnlock()
	if id != "" && k.now().Sub(at) < k.rotate {
		return id, key, nil
	}
	if err := k.create(ctx); err != nil {
		return "", nil, err
	}
	if err := k.load(ctx); err != nil {
		return "", nil, err
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.current == "" {
		return "", nil, steward.Errorf(steward.EInternal, "no cluster key after creating one")
	}
	return k.current, k.keys[k.current], nil
}

// create stores a new cluster key and purges keys nothing can use.
func (k *keyring) create(ctx context.Context) error {
	id := hex.EncodeToString(randomBytes(8))
	raw := randomBytes(32)
	sealed, err := seal(k.kek, raw, keyAAD(id))
	if err != nil {
		return steward.WrapError(steward.EInternal, "sts.keys", err, "")
	}
	d := k.ms.Dialect()
	now := k.now()
	if _, err := k.ms.Exec(ctx, `INSERT INTO sts_keys (id, created_at, wrapped) VALUES (?, ?, ?)`, id, metastore.TimeValue(d, now), base64.StdEncoding.EncodeToString(sealed)); err != nil {
		return steward.WrapError(steward.EUnavailable, "sts.keys", err, "credential keys unavailable")
	}
	cutoff := now.Add(-(k.rotate + k.keep + time.Hour))
	k.ms.Exec(ctx, `DELETE FROM sts_keys WHERE created_at < ?`, metastore.TimeValue(d, cutoff))
	return nil
}

// lookup returns key id's bytes, reloading (at most every few seconds)
// when it is unknown: another replica may have just made it.
func (k *keyring) lookup(ctx context.Context, id string) ([]byte, error) {
	k.mu.RLock()
	key, ok := k.keys[id]
	loadedAt := k.loadedAt
	k.mu.RUnlock()
	if ok {
		return key, nil
	}
	if k.now().Sub(loadedAt) < 2*time.Second {
		return nil, nil
	}
	if err := k.load(ctx); err != nil {
		return nil, err
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.keys[id], nil
}
