// Package lineage keeps Steward's lineage graph and propagates tags and
// classifications along it. It takes OpenLineage events (RunEvent,
// DatasetEvent, JobEvent), validated against the embedded specification,
// and records jobs, runs, datasets, input/output edges and column lineage
// in the metastore; tags flow downstream through jobs and column lineage
// following Apache Atlas's semantics; every inherited tag carries its
// provenance.
//
// Rules for awkward input (documented here, tested in store_test.go):
//   - Replay: an event is identified by (runId, eventType, eventTime) for
//     run events and by a hash of its body otherwise; a replay changes
//     nothing and is reported as a duplicate.
//   - Unknown runs: a run is created by its first event, whatever its type.
//     A COMPLETE that arrives before START creates the run in state COMPLETE;
//     the late START then only adds its inputs and outputs.
//   - Out of order: a run's state is that of its latest event by eventTime;
//     a terminal state (COMPLETE, FAIL, ABORT) is not replaced by START or
//     RUNNING whatever their time. OTHER events never change the state.
//     Inputs and outputs of every event of a run are unioned.
//   - A job's current edges are those of its most recently started run
//     (by the eventTime of the run's first event); older runs keep theirs
//     for history but no longer carry tags.
//   - Cycles are accepted; traversal and propagation visit each node once.
package lineage
