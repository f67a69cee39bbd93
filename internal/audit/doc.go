// Package audit is Steward's audit trail: an append-only, tamper-evident log
// of logins, token and credential issuance, admin changes and every access
// decision. *Log implements steward.Auditor.
//
// # Durability
//
// Record returns only after its record, and every record before it, has
// been written and fsynced. Concurrent Records are group-committed: one
// writer goroutine takes everything that accumulated while the previous
// fsync ran and writes it with one write and one fsync. If a write or fsync
// fails, every waiting Record and every later one returns an error (fail
// closed): the log never continues past a record that may be lost, so the
// action it would have recorded fails instead.
//
// # Format
//
// The trail is a directory of segment files audit-<first seq, 12 digits>.jsonl
// plus a checkpoint file HEAD and a LOCK file. A segment holds one record per
// line:
//
//	{"seq":N,"prev":"<64 hex>","hash":"<64 hex>","time":...,"actor":...,...}
//
// seq counts from 1 with no gaps across all segments. prev is the hash of
// record N-1 (64 zeros for record 1), so the chain continues across segment
// boundaries. hash is the hex SHA-256 of the line's exact bytes, without its
// newline and with the `"hash":"<64 hex>",` field cut out. Hashing the bytes
// as stored, not a re-encoding, leaves no room for two encodings of one
// record; the fixed field order makes the cut unambiguous. The rest of the
// line is the JSON of a steward.AuditEvent.
//
// HEAD holds the seq and hash of a record known to be durable. The writer
// replaces it atomically (temporary file, fsync, rename, directory fsync) at
// most every Options.CheckpointInterval while records arrive, and on Close.
// It is written before the first segment exists, so it is never legitimately
// absent.
//
// A segment is closed once it reaches Options.SegmentMaxBytes; the next
// group commit starts a new one. The segment being written is filled with
// zeros a few MiB ahead of its records, so that each commit overwrites zeros
// in place and needs only an fdatasync, not a file-size change and journal
// commit; the zeros are cut off when the segment is closed. Readers treat
// trailing zeros as unused space, never as records.
//
// # Crashes
//
// A crash or kill can leave at most an incomplete final write at the end of
// the newest segment (or an empty newest segment); it was never
// acknowledged. Verify reports it as Report.TornTailBytes, not as a problem, and Open cuts it away, logs that and
// records an "audit.recover" event, then continues the chain. Open refuses a
// trail whose newest segment is damaged before its end, or whose end is
// behind HEAD, rather than append to a chain it cannot vouch for.
//
// # What Verify detects
//
// Verify reads every segment and reports the first problem, naming its kind,
// segment file, line and seq:
//
//   - edited: any change to a record's bytes (its hash no longer matches), or
//     a record changed and given a freshly computed hash (the next record's
//     prev no longer matches it);
//   - deleted: a missing record or run of records, including a whole segment
//     from the middle or the start (the seq sequence has a gap);
//   - inserted: a copied or forged record (its seq repeats);
//   - reordered: records present but out of order;
//   - truncated: the trail ends before the record in HEAD (records or whole
//     segments removed from the end), or HEAD is missing;
//   - malformed: a line that is not a record, a misnamed segment, a bad HEAD.
//
// What it cannot detect from the directory alone:
//
//   - Records removed from the end that were appended after HEAD was last
//     written (up to CheckpointInterval of records, or all since the last
//     clean Close after a crash), together with rolling HEAD back.
//   - A rewrite by someone who can write every file: removing or changing
//     records and recomputing every later hash and HEAD yields a chain that
//     is valid by construction. No scheme kept wholly in one writable place
//     can prevent that. What defeats it is anchoring: export (*Log).Head (or
//     Report.LastHash) regularly to somewhere the attacker cannot write (a
//     separate system, a write-once bucket, a signed ticket) and check that
//     the chain still passes through each exported seq and hash.
//   - Retention: removing old segments on purpose looks like deletion at the
//     start; this package does not prune.
//
// Query streams records matching a Filter; it does not check hashes.
package audit
