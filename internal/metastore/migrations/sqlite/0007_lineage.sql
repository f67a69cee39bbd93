-- Lineage graph (internal/lineage). Datasets and jobs are keyed by their
-- OpenLineage (namespace, name); times are RFC 3339 UTC text.
CREATE TABLE lineage_datasets (
    namespace   TEXT NOT NULL,
    name        TEXT NOT NULL,
    schema_json TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (namespace, name)
);
-- current_run is the job's most recently started run: its inputs and
-- outputs are the job's current edges.
CREATE TABLE lineage_jobs (
    namespace     TEXT NOT NULL,
    name          TEXT NOT NULL,
    current_run   TEXT NOT NULL DEFAULT '',
    current_start TEXT NOT NULL DEFAULT '',
    created_at    TEXT NOT NULL,
    PRIMARY KEY (namespace, name)
);
CREATE TABLE lineage_runs (
    run_id        TEXT PRIMARY KEY,
    job_namespace TEXT NOT NULL,
    job_name      TEXT NOT NULL,
    state         TEXT NOT NULL DEFAULT '',
    state_time    TEXT NOT NULL DEFAULT '',
    first_time    TEXT NOT NULL,
    producer      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX lineage_runs_job ON lineage_runs (job_namespace, job_name);
-- Seen events, for idempotent replay.
CREATE TABLE lineage_events (
    event_key   TEXT PRIMARY KEY,
    received_at TEXT NOT NULL,
    principal   TEXT NOT NULL
);
CREATE TABLE lineage_run_io (
    run_id     TEXT NOT NULL,
    direction  TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    namespace  TEXT NOT NULL,
    name       TEXT NOT NULL,
    PRIMARY KEY (run_id, direction, namespace, name)
);
-- Column lineage from the columnLineage facet of an output dataset, per
-- job: the latest facet from a job replaces that job's edges.
CREATE TABLE lineage_column_edges (
    out_namespace  TEXT NOT NULL,
    out_name       TEXT NOT NULL,
    out_field      TEXT NOT NULL,
    in_namespace   TEXT NOT NULL,
    in_name        TEXT NOT NULL,
    in_field       TEXT NOT NULL,
    job_namespace  TEXT NOT NULL,
    job_name       TEXT NOT NULL,
    run_id         TEXT NOT NULL,
    masking        INTEGER NOT NULL DEFAULT 0,
    transformation TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (out_namespace, out_name, out_field, in_namespace, in_name, in_field, job_namespace, job_name)
);
-- Own tags of datasets (field '') and columns. source is 'facet' (from
-- OpenLineage tags and ownership facets, replaced by each new facet) or
-- 'api' (set through the lineage service, e.g. by the catalog).
CREATE TABLE lineage_tags (
    namespace      TEXT NOT NULL,
    name           TEXT NOT NULL,
    field          TEXT NOT NULL,
    tag            TEXT NOT NULL,
    value          TEXT NOT NULL,
    classification INTEGER NOT NULL DEFAULT 0,
    propagate      INTEGER NOT NULL DEFAULT 1,
    source         TEXT NOT NULL,
    PRIMARY KEY (namespace, name, field, tag, value, source)
);
-- Per-edge block list: tag (or '*') does not propagate through the job.
CREATE TABLE lineage_blocks (
    job_namespace TEXT NOT NULL,
    job_name      TEXT NOT NULL,
    tag           TEXT NOT NULL,
    PRIMARY KEY (job_namespace, job_name, tag)
);
