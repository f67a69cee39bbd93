-- Lineage change feed (internal/lineage), so that several replicas on one
-- metastore share one graph: every transaction that changes the lineage
-- graph bumps lineage_version.version (the row lock orders the changes)
-- and appends what it did, under that version, to lineage_changes; the
-- other replicas apply the changes they have not seen (Service.Refresh).
-- Old changes are pruned: a replica that fell further behind reloads.
CREATE TABLE lineage_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO lineage_version (id, version) VALUES (1, 0);
CREATE TABLE lineage_changes (
    version INTEGER PRIMARY KEY,
    body    TEXT NOT NULL
);
