-- Dataset usage (internal/catalog usage.go), aggregated from the audit
-- trail as it is written: successful reads per dataset, UTC day (days
-- since the Unix epoch) and reader. Each replica adds its buffered counts
-- with an upsert (reads = reads + excluded.reads), so several replicas
-- share one table.
CREATE TABLE catalog_usage (
    namespace TEXT NOT NULL,
    name      TEXT NOT NULL,
    day       INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    reads     BIGINT NOT NULL,
    PRIMARY KEY (namespace, name, day, actor)
);
CREATE INDEX catalog_usage_actor ON catalog_usage (actor, day);
CREATE INDEX catalog_usage_day ON catalog_usage (day);
-- The groups readers belonged to when last seen reading (from their
-- tokens), for "popular in your groups"; day is the last day seen.
CREATE TABLE catalog_usage_groups (
    grp   TEXT NOT NULL,
    actor TEXT NOT NULL,
    day   INTEGER NOT NULL,
    PRIMARY KEY (grp, actor)
);
-- Bookmarks: a user's saved datasets; created_at is unix nanoseconds.
CREATE TABLE catalog_bookmarks (
    actor      TEXT NOT NULL,
    namespace  TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (actor, namespace, name)
);
