CREATE TABLE users (
    username      TEXT PRIMARY KEY,
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
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    owner       TEXT NOT NULL DEFAULT '',
    roles       TEXT NOT NULL DEFAULT '[]',
    disabled    BOOLEAN NOT NULL DEFAULT FALSE,
    secret_hash TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL,
    rotated_at  TIMESTAMPTZ NOT NULL
);
-- member is a username or a service account name; names are unique across both.
CREATE TABLE group_members (
    group_name TEXT NOT NULL REFERENCES groups(name) ON DELETE CASCADE,
    member     TEXT NOT NULL,
    PRIMARY KEY (group_name, member)
);
CREATE INDEX group_members_member ON group_members(member);
