-- Data catalog (internal/catalog). catalog_state holds one row: the
-- version of the whole catalog, bumped in the same transaction as every
-- change, which replicas poll to refresh their search indexes.
CREATE TABLE catalog_state (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO catalog_state (id, version) VALUES (1, 0);
-- One row per dataset: body is the JSON of catalog.Dataset; seq is the
-- catalog version of its last change (replicas load rows with seq greater
-- than what they have).
CREATE TABLE catalog_datasets (
    namespace      TEXT NOT NULL,
    name           TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    classification INTEGER NOT NULL DEFAULT 0,
    body           TEXT NOT NULL,
    PRIMARY KEY (namespace, name)
);
CREATE INDEX catalog_datasets_seq ON catalog_datasets(seq);
-- Deleted datasets, so that replicas drop them from their indexes.
CREATE TABLE catalog_tombstones (
    namespace TEXT NOT NULL,
    name      TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
);
CREATE INDEX catalog_tombstones_seq ON catalog_tombstones(seq);
-- Datasets whose files changed (marked by the S3 gateway) and that the
-- crawler has not looked at since; changed_at is unix nanoseconds.
CREATE TABLE catalog_changes (
    namespace  TEXT NOT NULL,
    name       TEXT NOT NULL,
    changed_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
);
