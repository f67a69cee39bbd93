-- Built-in OpenID provider (internal/idp). Times are Unix seconds, except
-- the signing keys' created_at and activates_at, which are Unix milliseconds.
CREATE TABLE idp_signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL,
    private_key  TEXT NOT NULL, -- AES-256-GCM sealed PKCS#8, base64
    created_at   BIGINT NOT NULL,
    activates_at BIGINT NOT NULL
);
-- A row to lock so that replicas rotate keys one at a time.
CREATE TABLE idp_locks (
    name TEXT PRIMARY KEY,
    held BIGINT NOT NULL DEFAULT 0
);
INSERT INTO idp_locks (name) VALUES ('keys');
CREATE TABLE idp_auth_requests (
    id         TEXT PRIMARY KEY,
    data       TEXT NOT NULL, -- JSON of the request and its login state
    expires_at BIGINT NOT NULL
);
CREATE INDEX idp_auth_requests_expires ON idp_auth_requests(expires_at);
CREATE TABLE idp_auth_codes (
    code_hash       TEXT PRIMARY KEY, -- SHA-256 of the code, hex
    auth_request_id TEXT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX idp_auth_codes_request ON idp_auth_codes(auth_request_id);
CREATE TABLE idp_device_codes (
    device_code_hash TEXT PRIMARY KEY, -- SHA-256 of the device code, hex
    user_code        TEXT NOT NULL UNIQUE,
    client_id        TEXT NOT NULL,
    scopes           TEXT NOT NULL DEFAULT '[]',
    state            TEXT NOT NULL DEFAULT 'pending', -- pending, approved, denied, consumed
    subject          TEXT NOT NULL DEFAULT '',
    auth_time        BIGINT NOT NULL DEFAULT 0,
    expires_at       BIGINT NOT NULL
);
CREATE TABLE idp_refresh_tokens (
    token_hash TEXT PRIMARY KEY, -- SHA-256 of the token, hex
    id         TEXT NOT NULL UNIQUE,
    family_id  TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    scopes     TEXT NOT NULL DEFAULT '[]',
    amr        TEXT NOT NULL DEFAULT '[]',
    auth_time  BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used       BIGINT NOT NULL DEFAULT 0,
    revoked    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX idp_refresh_tokens_family ON idp_refresh_tokens(family_id);
CREATE INDEX idp_refresh_tokens_expires ON idp_refresh_tokens(expires_at);
CREATE TABLE idp_revoked_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE TABLE idp_login_failures (
    username     TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT NOT NULL DEFAULT 0,
    last_failure BIGINT NOT NULL DEFAULT 0
);
