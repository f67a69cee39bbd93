// Package lineage keeps Steward's lineage graph and propagates tags and
// classifications along it. It takes OpenLineage events (RunEvent,
// DatasetEvent, JobEvent), validated against the embedded specification
// (spec/, Apache-2.0), and records jobs, runs, datasets, input/output edges
// and column lineage in the metastore; tags flow downstream through jobs
// and column lineage following Apache Atlas's semantics; every inherited
// tag carries its provenance.
//
// The graph is held in memory (loaded from the metastore by New/Reload)
// and changed only after the metastore commit, so inherited tags are
// derived data, recomputed at start. A replica sees other replicas'
// ingests only after Reload (known limit: no change feed yet).
//
// Rules for awkward input (tested in store_test.go):
//   - Validation: the event against the spec's RunEvent, DatasetEvent or
//     JobEvent (chosen by the presence of run/eventType, then dataset),
//     and each standard facet, by its key, against its facet schema;
//     custom facets are kept as they are. A batch is accepted whole or not
//     at all. The dataQualityMetrics input facet is accepted with either
//     rowCount (spec 1-0-1) or columnMetrics (current).
//   - Replay: an event is identified by (runId, eventType, eventTime) for
//     run events and by a hash of its body otherwise; a replay changes
//     nothing and is counted as a duplicate.
//   - Unknown runs: a run is created by its first event, whatever its type.
//     A COMPLETE that arrives before START creates the run in state COMPLETE;
//     the late START then only adds its inputs and outputs. A run id that
//     belongs to another job is refused (conflict).
//   - Out of order: a run's state is that of its latest event by eventTime,
//     except that a terminal state (COMPLETE, FAIL, ABORT) is not replaced
//     by START or RUNNING; OTHER never changes the state. A run starts at
//     its earliest eventTime. Inputs and outputs of every event of a run
//     are unioned.
//   - A job's current edges are those of its most recently started run;
//     older runs keep theirs for history but no longer carry tags (this is
//     how an edge is removed). A JobEvent's inputs and outputs count as a
//     run of the job starting at the event's time.
//   - Cycles are accepted; traversal visits each node once and propagation
//     is a monotone fixpoint, so both terminate.
//
// Propagation:
//   - Own tags come from the OpenLineage tags facet (key, value, field; a
//     value C1..C4 gives the tag that classification), the ownership facet
//     (tags "owner" that do not propagate), and SetTags (the catalog or the
//     API). Each tag has a propagate flag (Atlas's), true by default.
//   - Dataset tags flow from a job's inputs to its outputs. Column tags flow
//     along column lineage edges; into an output without any column lineage
//     they flow to the whole output dataset (no column-level knowledge, so
//     the conservative choice). The columnLineage facet's dataset-wide
//     "dataset" list (filters, joins, sorts) makes no column edges.
//   - A job's block list stops the named tags ("*": all) on its edges; a
//     column transformation with masking=true carries no tags.
//   - Changes are recomputed by reachability: everything downstream of the
//     change is cleared and refilled from what still reaches it, so a tag
//     that no path provides any more disappears.
//   - An output inherits in the same call that records the first event
//     naming it (START included): there is no window in which it is less
//     restricted than its inputs.
package lineage
