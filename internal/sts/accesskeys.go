package sts

import (
	"context"
	"encoding/base64"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/bounded"
	"github.com/stewardhq/steward/internal/metastore"
	"github.com/stewardhq/steward/internal/s3api"
)

// AccessKey describes a service account's long-lived access key (never
// its secret).
type AccessKey struct {
	AccessKeyID    string    `json:"access_key_id"`
	ServiceAccount string    `json:"service_account"`
	Description    string    `json:"description,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	CreatedBy      string    `json:"created_by"`
}

// accessKeyCacheTTL bounds how long a deleted key or a disabled account
// keeps working on a replica (on the replica that deletes the key, it
// stops at once); within it a key is resolved without the metastore.
const accessKeyCacheTTL = 5 * time.Second

// maxCachedKeys bounds the access-key cache (unknown keys are cached too,
// so a flood of them does not reach the metastore).
const maxCachedKeys = 10000

// accessKeyCache maps access key ids to what resolving them answered,
// credential or refusal, and when; when full, a random entry makes room.
// An id is copied when cached (it may be part of a request's header).
type accessKeyCache = bounded.Map[string, *cachedKey]

func newAccessKeyCache() *accessKeyCache {
	return bounded.New(bounded.Options[string, *cachedKey]{MaxEntries: maxCachedKeys, CloneKey: strings.Clone})
}

// maxKeysPerAccount bounds keys per service account (two allow rotation
// without downtime).
const maxKeysPerAccount = 2

func secretAAD(id string) []byte { return []byte("steward-sts-access-key:" + id) }

// CreateAccessKey creates a key for service account sa (which must exist)
// and returns it with its secret, which is shown only this once.
func (s *Service) CreateAccessKey(ctx context.Context, sa, description, by string) (*AccessKey, steward.Secret, error) {
	if _, err := s.ms.GetServiceAccount(ctx, sa); err != nil {
		return nil, "", err
	}
	if len(description) > 1024 {
		return nil, "", steward.Errorf(steward.EInvalid, "description too long")
	}
	id := "AKIA" + b32.EncodeToString(randomBytes(10))[:16]
	secret := base64.StdEncoding.EncodeToString(randomBytes(30)) // 40 characters
	sealed, err := seal(s.kek, []byte(secret), secretAAD(id))
	if err != nil {
		return nil, "", err
	}
	d := s.ms.Dialect()
	k := &AccessKey{AccessKeyID: id, ServiceAccount: sa, Description: description, CreatedAt: s.cfg.Now().UTC().Truncate(time.Microsecond), CreatedBy: by}
	err = s.ms.InTx(ctx, func(tx *metastore.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM sts_access_keys WHERE service_account = ?`, sa).Scan(&n); err != nil {
			return err
		}
		if n >= maxKeysPerAccount {
			return steward.Errorf(steward.EConflict, "service account %s already has %d access keys; delete one first", sa, n)
		}
		_, err := tx.Exec(ctx, `INSERT INTO sts_access_keys (access_key_id, service_account, secret, description, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)`,
			id, sa, base64.StdEncoding.EncodeToString(sealed), description, metastore.TimeValue(d, k.CreatedAt), by)
		return err
	})
	if err != nil {
		if steward.KindOf(err) == steward.EConflict {
			return nil, "", err
		}
		return nil, "", steward.WrapError(steward.EUnavailable, "sts.CreateAccessKey", err, "access key could not be stored")
	}
	return k, steward.Secret(secret), nil
}

// ListAccessKeys lists the keys of sa ("" for all service accounts).
func (s *Service) ListAccessKeys(ctx context.Context, sa string) ([]*AccessKey, error) {
	q := `SELECT access_key_id, service_account, description, created_at, created_by FROM sts_access_keys`
	var args []any
	if sa != "" {
		q += ` WHERE service_account = ?`
		args = append(args, sa)
	}
	rows, err := s.ms.Query(ctx, q+` ORDER BY service_account, created_at`, args...)
	if err != nil {
		return nil, steward.WrapError(steward.EUnavailable, "sts.ListAccessKeys", err, "access keys unavailable")
	}
	defer rows.Close()
	out := []*AccessKey{}
	for rows.Next() {
		k := &AccessKey{}
		if err := rows.Scan(&k.AccessKeyID, &k.ServiceAccount, &k.Description, metastore.ScanTime(&k.CreatedAt), &k.CreatedBy); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// DeleteAccessKey deletes a key; replicas stop accepting it within
// accessKeyCacheTTL.
func (s *Service) DeleteAccessKey(ctx context.Context, id string) error {
	res, err := s.ms.Exec(ctx, `DELETE FROM sts_access_keys WHERE access_key_id = ?`, id)
	if err != nil {
		return steward.WrapError(steward.EUnavailable, "sts.DeleteAccessKey", err, "access key could not be deleted")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return steward.Errorf(steward.ENotFound, "access key %s not found", id)
	}
	s.keyCache.Remove(id)
	return nil
}

// RotateAccessKey creates a new key for the account of key id and deletes
// id, returning the new key and its secret.
func (s *Service) RotateAccessKey(ctx context.Context, id, by string) (*AccessKey, steward.Secret, error) {
	var sa, desc string
	err := s.ms.QueryRow(ctx, `SELECT service_account, description FROM sts_access_keys WHERE access_key_id = ?`, id).Scan(&sa, &desc)
	if err != nil {
		return nil, "", metastore.NotFound(err, "access key")
	}
	if err := s.DeleteAccessKey(ctx, id); err != nil {
		return nil, "", err
	}
	return s.CreateAccessKey(ctx, sa, desc, by)
}

func (s *Service) resolveAccessKey(ctx context.Context, id string) (*s3api.Credential, error) {
	if !strings.HasPrefix(id, "AKIA") || len(id) != 20 {
		return nil, authErr("InvalidAccessKeyId", "unknown access key")
	}
	now := s.cfg.Now()
	c, ok := s.keyCache.Get(id)
	if ok && now.Sub(c.at) < accessKeyCacheTTL {
		return c.cred, c.err
	}
	cred, err := s.loadAccessKey(ctx, id)
	if steward.KindOf(err) == steward.EUnavailable || steward.KindOf(err) == steward.EInternal {
		return nil, err // do not cache outages
	}
	s.keyCache.Put(id, &cachedKey{cred: cred, err: err, at: now})
	return cred, err
}

func (s *Service) loadAccessKey(ctx context.Context, id string) (*s3api.Credential, error) {
	var sa, sealedB64 string
	err := s.ms.QueryRow(ctx, `SELECT service_account, secret FROM sts_access_keys WHERE access_key_id = ?`, id).Scan(&sa, &sealedB64)
	if err != nil {
		if steward.KindOf(metastore.NotFound(err, "")) == steward.ENotFound {
			return nil, authErr("InvalidAccessKeyId", "unknown access key")
		}
		return nil, steward.WrapError(steward.EUnavailable, "sts.accessKey", err, "credential store unavailable")
	}
	sealed, err := base64.StdEncoding.DecodeString(sealedB64)
	if err != nil {
		return nil, steward.WrapError(steward.EInternal, "sts.accessKey", err, "")
	}
	secret, err := open(s.kek, sealed, secretAAD(id))
	if err != nil {
		return nil, steward.WrapError(steward.EInternal, "sts.accessKey", err, "")
	}
	acct, err := s.ms.GetServiceAccount(ctx, sa)
	if err != nil {
		if steward.KindOf(err) == steward.ENotFound {
			return nil, authErr("InvalidAccessKeyId", "unknown access key")
		}
		return nil, steward.WrapError(steward.EUnavailable, "sts.accessKey", err, "credential store unavailable")
	}
	if acct.Disabled {
		return nil, authErr("InvalidAccessKeyId", "the service account is disabled")
	}
	return &s3api.Credential{
		AccessKeyID: id, SecretKey: steward.Secret(secret),
		Principal: &steward.Principal{Kind: steward.KindService, Subject: acct.Name, Username: acct.Name, Groups: acct.Groups, Roles: acct.Roles, ClientID: acct.Name},
	}, nil
}
