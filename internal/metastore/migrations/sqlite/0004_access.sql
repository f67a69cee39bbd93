-- Access requests and resource owners (internal/policystore).
-- resource is a pattern (s3://bucket/**, dataset:ns.*, table:ns.s.t);
-- users and groups are JSON arrays of who owns it and approves requests.
CREATE TABLE resource_owners (
    resource    TEXT PRIMARY KEY,
    users       TEXT NOT NULL DEFAULT '[]',
    groups      TEXT NOT NULL DEFAULT '[]',
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
);
-- One request for time-bound access. accesses is a JSON array of access
-- names. On approval the grant is the policy policy_id, valid from
-- grant_start to grant_end.
CREATE TABLE access_requests (
    id               TEXT PRIMARY KEY,
    requester        TEXT NOT NULL,
    resource         TEXT NOT NULL,
    accesses         TEXT NOT NULL,
    duration_seconds INTEGER NOT NULL,
    justification    TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'revoked')),
    created_at       TEXT NOT NULL,
    decided_by       TEXT NOT NULL DEFAULT '',
    decided_at       TEXT,
    comment          TEXT NOT NULL DEFAULT '',
    grant_start      TEXT,
    grant_end        TEXT,
    policy_id        TEXT NOT NULL DEFAULT '',
    revoked_by       TEXT NOT NULL DEFAULT '',
    revoked_at       TEXT,
    revoke_comment   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX access_requests_requester ON access_requests(requester, created_at);
CREATE INDEX access_requests_status ON access_requests(status, created_at);
