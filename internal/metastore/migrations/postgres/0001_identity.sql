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
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    password_hash TEXT NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE TABLE groups (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE TABLE service_accounts (
    name        TEXT PRIMARY KEY REFERENCES principals(name) ON DELETE CASCADE,
    description TEXT NOT NULL DEFAULT '',
    owner       TEXT NOT NULL DEFAULT '',
    roles       TEXT NOT NULL DEFAULT '[]',
    disabled    BOOLEAN NOT NULL DEFAULT FALSE,
    secret_hash TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL,
    rotated_at  TIMESTAMPTZ NOT NULL
);
-- member is a username or a service account name.
CREATE TABLE group_members (
    group_name TEXT NOT NULL REFERENCES groups(name) ON DELETE CASCADE,
    member     TEXT NOT NULL REFERENCES principals(name) ON DELETE CASCADE,
    PRIMARY KEY (group_name, member)
);
CREATE INDEX group_members_member ON group_members(member);
