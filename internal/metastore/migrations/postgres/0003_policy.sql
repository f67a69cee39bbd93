-- Authorization policies (internal/policystore). policy_set holds one row:
-- the version of the whole policy set, bumped in the same transaction as
-- every change, which replicas poll to refresh their engines.
CREATE TABLE policy_set (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO policy_set (id, version) VALUES (1, 0);
-- body is the JSON of policy.Policy; version is the policy's own version.
-- managed_by is '' for policies written by admins and 'access-request' for
-- time-bound grants, which apply and prune leave alone.
CREATE TABLE policies (
    id          TEXT PRIMARY KEY,
    version     BIGINT NOT NULL,
    body        TEXT NOT NULL,
    managed_by  TEXT NOT NULL DEFAULT '',
    updated_at  TIMESTAMPTZ NOT NULL,
    updated_by  TEXT NOT NULL
);
-- Every change to a policy: who, when, the set version it produced, the new
-- body (NULL for a delete) and the field-level difference (JSON).
CREATE TABLE policy_history (
    seq         BIGSERIAL PRIMARY KEY,
    set_version BIGINT NOT NULL,
    policy_id   TEXT NOT NULL,
    version     BIGINT NOT NULL,
    op          TEXT NOT NULL CHECK (op IN ('create', 'update', 'delete')),
    body        TEXT,
    diff        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    changed_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX policy_history_policy ON policy_history(policy_id, seq);
