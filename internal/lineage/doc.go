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
// derived data, recomputed at start.
//
// Replicas (replica.go): several Steward replicas may share one metastore.
// Every transaction that changes the graph (Ingest, SetTags, SetBlocks)
// bumps the lineage version and appends what it did to a change feed in
// the same transaction; the version row's lock orders writers of all
// replicas. Refresh applies the changes other replicas committed (Run
// calls it on a ticker), and a writer whose graph is behind applies them
// inside its own transaction before computing its change. A replica
// behind by more than the feed keeps (1,000 versions) reloads.
//
// Writes: Ingest serialises writers. Concurrent calls are committed
// together (group commit): callers that arrive while a transaction runs
// share the next one, up to 2,000 events. A call returns only after the
// transaction holding its events committed, and keeps its own outcome:
// if a shared transaction fails, each call in it is retried alone, so an
// event that is refused fails only the call (the POST, or the whole batch
// of POST /lineage/batch) that carried it. The events of one call are
// accepted or refused together.
//
// JSON: tags write their classification as "C1".."C4" (omitted when
// unclassified) and read either that or the number 0..4 earlier versions
// wrote; the metastore keeps the number.
//
// Rules for awkward input (tested in store_test.go, replica_test.go and
// fuzz_test.go, whose FuzzIngest feeds arbitrary decoded events into one
// graph and checks the store reloads to the graph held in memory):
//   - Validation: the event against the spec's RunEvent, DatasetEvent or
//     JobEvent (chosen by the presence of run/eventType, then dataset),
//     and each standard facet, by its key, against its facet schema;
//     custom facets are kept as they are; an invalid event is refused
//     (400 naming the problem). A batch is accepted whole or not at all.
//     The dataQualityMetrics input facet is accepted with either
//     rowCount (spec 1-0-1) or columnMetrics (current).
//   - Replay: an event is identified by (runId, eventType, eventTime) for
//     run events and by a hash of its body otherwise; a replay changes
//     nothing and is counted as a duplicate (also within one batch, and
//     between concurrent calls: the first to commit records it).
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
