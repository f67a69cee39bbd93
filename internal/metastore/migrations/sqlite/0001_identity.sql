-- Timestamps are TEXT holding fixed-width UTC RFC 3339 with microseconds
-- ("2006-01-02T15:04:05.000000Z", see metastore.TimeValue), so that they sort
-- as text and parse back exactly; a TIMESTAMP declared type would make the
-- driver guess at formats on read.

-- principals is the one namespace shared by users and service accounts: a
-- name belongs to at most one of them.
CREATE TABLE principals (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('user', 'service'))
);
CREATE TABLE users (
    username      TEXT PRIMARY KEY REFERENCES principals(name) ON DELETE CASCADE,
    email         TEXT NOT NULL DEFAULT '',
    display_name  TEXT NOT NULL DEFAULT '',
    roles         TEXT NOT NULL DEFAULT '[]',
    disabled      INTEGER NOT NULL DEFAULT 0,
    password_hash TEXT NOT NULL DEFAULT '',
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE TABLE groups (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL
);
CREATE TABLE service_accounts (
    name        TEXT PRIMARY KEY REFERENCES principals(name) ON DELETE CASCADE,
    description TEXT NOT NULL DEFAULT '',
    owner       TEXT NOT NULL DEFAULT '',
    roles       TEXT NOT NULL DEFAULT '[]',
    disabled    INTEGER NOT NULL DEFAULT 0,
    secret_hash TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    rotated_at  TEXT NOT NULL
);
-- member is a username or a service account name.
CREATE TABLE group_members (
    group_name TEXT NOT NULL REFERENCES groups(name) ON DELETE CASCADE,
    member     TEXT NOT NULL REFERENCES principals(name) ON DELETE CASCADE,
    PRIMARY KEY (group_name, member)
);
CREATE INDEX group_members_member ON group_members(member);
