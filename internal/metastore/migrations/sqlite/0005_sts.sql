-- Short-term credentials (internal/sts).
-- Cluster keys seal STS session tokens and derive their secrets. key is
-- base64(nonce || AES-256-GCM(KEK, raw key)); a key is used for new
-- sessions for a day and kept for verification for the longest session
-- after that.
CREATE TABLE sts_keys (
    id          TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL,
    wrapped     TEXT NOT NULL
);
-- Revocations: kind 'session' (subject is a session id) or 'user'
-- (subject is a username: sessions issued at or before revoked_at are
-- refused). Rows can be purged after expires_at (no session issued
-- before revoked_at lives longer).
CREATE TABLE sts_revocations (
    kind        TEXT NOT NULL CHECK (kind IN ('session', 'user')),
    subject     TEXT NOT NULL,
    revoked_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    revoked_by  TEXT NOT NULL,
    PRIMARY KEY (kind, subject)
);
-- Long-lived access keys of service accounts. secret is
-- base64(nonce || AES-256-GCM(KEK, secret)) with the key id as associated
-- data: SigV4 needs the plaintext secret to verify.
CREATE TABLE sts_access_keys (
    access_key_id   TEXT PRIMARY KEY,
    service_account TEXT NOT NULL,
    secret          TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL
);
CREATE INDEX sts_access_keys_account ON sts_access_keys(service_account);
