package audit

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stewardhq/steward"
)

var _ steward.Auditor = (*Log)(nil)

// Options tune a Log. The zero value is the durable default.
type Options struct {
	// SegmentMaxBytes is the size at which a segment file is closed and a new
	// one started (a segment may exceed it by one group commit). Default 64 MiB.
	SegmentMaxBytes int64
	// NoSync skips the fsync of each group commit: Record then returns once
	// the record is written to the operating system, which survives a crash
	// of Steward but not of the machine. For tests and benchmarks only.
	NoSync bool
	// MaxBatch caps the records in one group commit; further Records wait for
	// the writer to take the batch. Default 8192.
	MaxBatch int
	// CheckpointInterval is how often, at most, the HEAD checkpoint is
	// rewritten while records are being appended. Default 250ms.
	CheckpointInterval time.Duration

	// Test hooks: replace the segment write and fsync.
	writeFn func(f *os.File, b []byte, off int64) (int, error)
	syncFn  func(f *os.File) error
}

// Stats counts what a Log has done since Open.
type Stats struct {
	Records     uint64 // records made durable
	Commits     uint64 // group commits (one write and one fsync each)
	Bytes       uint64 // bytes appended
	Checkpoints uint64 // HEAD rewrites
}

// Log is an open audit trail that appends records. It is safe for concurrent
// use. Exactly one Log may have a directory open at a time (a lock file
// enforces this).
type Log struct {
	dir    string
	opts   Options
	logger *slog.Logger
	unlock func()

	mu      sync.Mutex
	space   sync.Cond // signalled when the writer takes a batch or the log fails
	cur     *batch    // records accumulating for the next group commit
	freeBuf []byte
	nextSeq uint64
	last    [32]byte // hash of the newest record given a seq
	h       hash.Hash
	closed  bool
	failed  error // sticky: once set, no record is accepted again

	kick chan struct{} // wakes the writer
	done chan struct{} // closed when the writer has stopped
	cerr error         // from the final flush, for Close

	// writer goroutine state
	f        *os.File
	off      int64 // end of the records in f
	alloc    int64 // size of f: records, then zeros written ahead
	cpSeq    uint64
	lastCP   time.Time
	headMu   sync.Mutex
	headSeq  uint64
	headHash [32]byte

	records, commits, bytes, checkpoints atomic.Uint64
}

type batch struct {
	buf      []byte
	n        int
	firstSeq uint64
	lastSeq  uint64
	lastHash [32]byte
	done     chan struct{}
	err      error // set before done is closed
}

func newBatch(buf []byte) *batch { return &batch{buf: buf[:0], done: make(chan struct{})} }

// Open opens (creating if needed) the audit trail in dir and starts its
// writer. On an existing trail it recovers from an unclean stop: an
// incomplete record at the end of the newest segment, which was never
// acknowledged, is cut away, logged and itself recorded as an
// "audit.recover" event. Open refuses a trail whose newest segment is
// damaged in the middle or whose end is behind its checkpoint: appending to
// it would hide the damage. Run Verify to see what is wrong.
func Open(dir string, opts Options, logger *slog.Logger) (*Log, error) {
	const op = "audit.Open"
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.SegmentMaxBytes <= 0 {
		opts.SegmentMaxBytes = 64 << 20
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 8192
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = 250 * time.Millisecond
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, steward.WrapError(steward.EInternal, op, err, "cannot create the audit directory")
	}
	unlock, err := lockDir(filepath.Join(dir, lockName))
	if err != nil {
		return nil, steward.WrapError(steward.EConflict, op, err, "the audit directory is in use by another process")
	}
	l := &Log{
		dir:    dir,
		opts:   opts,
		logger: logger,
		unlock: unlock,
		h:      newHash(),
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	l.space.L = &l.mu
	rec, err := l.recover()
	if err != nil {
		unlock()
		return nil, steward.WrapError(steward.EInternal, op, err, "the audit trail cannot be opened")
	}
	l.cur = newBatch(nil)
	l.lastCP = time.Now()
	go l.run()
	if rec != "" {
		ev := steward.AuditEvent{
			Actor: "steward", ActorKind: "system", Action: "audit.recover",
			Outcome: "success", Reason: rec,
		}
		if err := l.Record(context.Background(), ev); err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

// recover finds the end of the chain, repairs a torn tail and opens the
// newest segment for appending. It returns a description of any repair.
func (l *Log) recover() (string, error) {
	os.Remove(filepath.Join(l.dir, checkpointName+".tmp"))
	cp, cpHash, cpErr := readCheckpoint(l.dir)
	if cpErr != nil && !errors.Is(cpErr, errNoCheckpoint) {
		return "", cpErr
	}
	segs, err := listSegments(l.dir)
	if err != nil {
		return "", err
	}
	if errors.Is(cpErr, errNoCheckpoint) {
		if len(segs) > 0 {
			return "", fmt.Errorf("the checkpoint %s is missing but segments exist", checkpointName)
		}
		// A new trail: the checkpoint exists before any segment does, so
		// that a missing checkpoint always means something was removed.
		if err := writeCheckpoint(l.dir, 0, genesisHash); err != nil {
			return "", err
		}
	}

	// Walk back from the newest segment to the newest good record.
	var (
		lastSeq  uint64
		lastHash = genesisHash
		remove   []string
		cut      = -1 // index into segs of the segment to truncate
		cutAt    int64
		dropped  int64
		tail     *tailScan
	)
	for i := len(segs) - 1; i >= 0; i-- {
		ts, err := scanTail(filepath.Join(l.dir, segs[i].name), cp.Seq)
		if err != nil {
			return "", fmt.Errorf("%s: %w", segs[i].name, err)
		}
		if ts.records == 0 {
			remove = append(remove, segs[i].name)
			dropped += ts.torn
			continue
		}
		if ts.firstSeq != segs[i].first {
			return "", fmt.Errorf("%s starts with record %d", segs[i].name, ts.firstSeq)
		}
		tail = ts
		lastSeq, lastHash = ts.lastSeq, ts.lastHash
		if ts.goodEnd < ts.size {
			// Zeros written ahead, and perhaps a torn write.
			cut, cutAt = i, ts.goodEnd
			dropped += ts.torn
		}
		segs = segs[:i+1]
		break
	}
	if tail == nil {
		segs = nil
	}
	if cpErr == nil {
		if lastSeq < cp.Seq {
			return "", fmt.Errorf("the trail ends at record %d but the checkpoint says record %d was written: records were removed", lastSeq, cp.Seq)
		}
		if tail != nil && tail.haveWant && tail.wantHash != cpHash {
			return "", fmt.Errorf("record %d does not match the checkpoint", cp.Seq)
		}
	}
	// Repair only after every check passed.
	var repaired string
	if cut >= 0 {
		if err := truncateSync(filepath.Join(l.dir, segs[cut].name), cutAt); err != nil {
			return "", err
		}
		if dropped > 0 {
			repaired = fmt.Sprintf("cut %d bytes of an incomplete record from the end of %s after an unclean stop", dropped, segs[cut].name)
		}
	}
	for _, name := range remove {
		if err := os.Remove(filepath.Join(l.dir, name)); err != nil {
			return "", err
		}
		if repaired == "" {
			repaired = fmt.Sprintf("removed the segment %s that held no complete record after an unclean stop", name)
		}
	}
	if len(remove) > 0 {
		if err := syncDir(l.dir); err != nil {
			return "", err
		}
	}
	if repaired != "" {
		l.logger.Warn("audit trail recovered from an unclean stop", "dir", l.dir, "detail", repaired, "last_seq", lastSeq)
	}
	l.nextSeq, l.last = lastSeq+1, lastHash
	l.headSeq, l.headHash, l.cpSeq = lastSeq, lastHash, cp.Seq
	if len(segs) > 0 {
		name := filepath.Join(l.dir, segs[len(segs)-1].name)
		f, err := os.OpenFile(name, os.O_RDWR, 0o600)
		if err != nil {
			return "", err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return "", err
		}
		l.f, l.off, l.alloc = f, st.Size(), st.Size()
	}
	return repaired, nil
}

// tailScan is what scanTail learns about a segment.
type tailScan struct {
	size              int64
	goodEnd           int64 // offset after the last good record
	torn              int64 // bytes after goodEnd up to the last nonzero one
	records           int
	firstSeq, lastSeq uint64
	lastHash          [32]byte
	wantHash          [32]byte // hash of record wantSeq, if haveWant
	haveWant          bool
}

// scanTail checks the chain inside one segment and finds where the good
// records end. Anything after them must be a torn write: lines that are not
// well formed. A well-formed line with a wrong hash or link, or a good record
// after a bad line, is damage, not a torn write, and is an error.
func scanTail(path string, wantSeq uint64) (*tailScan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	ts := &tailScan{size: st.Size()}
	lr := newLineReader(f)
	h := newHash()
	badLine := 0
	for {
		line, terminated, tooLong, err := lr.line()
		if err == io.EOF {
			ts.torn, err = nonZeroSpan(f, ts.goodEnd)
			return ts, err
		}
		if err != nil {
			return nil, err
		}
		if tooLong || !terminated {
			if badLine == 0 {
				badLine = lr.n
			}
			continue
		}
		hd, lerr := parseHeader(line, h)
		if lerr != nil {
			if lerr.edited {
				return nil, fmt.Errorf("line %d: record %d was edited: %s", lr.n, hd.seq, lerr.msg)
			}
			if badLine == 0 {
				badLine = lr.n
			}
			continue
		}
		if badLine != 0 {
			return nil, fmt.Errorf("line %d is damaged but good records follow it", badLine)
		}
		if ts.records > 0 && (hd.seq != ts.lastSeq+1 || hd.prev != ts.lastHash) {
			return nil, fmt.Errorf("line %d: record %d does not follow record %d", lr.n, hd.seq, ts.lastSeq)
		}
		if ts.records == 0 {
			ts.firstSeq = hd.seq
		}
		ts.records++
		ts.lastSeq, ts.lastHash = hd.seq, hd.hash
		if hd.seq == wantSeq {
			ts.wantHash, ts.haveWant = hd.hash, true
		}
		ts.goodEnd = lr.next
	}
}

// nonZeroSpan returns how many bytes from off to the end of f come before
// the trailing zeros.
func nonZeroSpan(f *os.File, off int64) (int64, error) {
	buf := make([]byte, 64<<10)
	var last int64 = -1
	for pos := off; ; {
		n, err := f.ReadAt(buf, pos)
		for i := n - 1; i >= 0; i-- {
			if buf[i] != 0 {
				last = pos + int64(i)
				break
			}
		}
		pos += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	if last < 0 {
		return 0, nil
	}
	return last + 1 - off, nil
}

func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

var (
	errClosed = steward.Errorf(steward.EUnavailable, "the audit trail is closed")
)

// Record appends ev to the trail and returns once it, and every record
// before it, is durable. Concurrent Records share one write and one fsync.
// A zero ev.Time is set to now; times are stored in UTC. If Record returns
// an error the action it records must fail: the error is EInvalid for an
// event without an action or that cannot be encoded, ETooLarge for one over
// MaxEventBytes, and EUnavailable if the trail is closed or has failed. After
// a write or fsync failure every later Record fails too (fail closed). If ctx
// ends while Record waits it returns the context's error; the record may
// still be written.
func (l *Log) Record(ctx context.Context, ev steward.AuditEvent) error {
	return l.Start(ctx, ev)()
}

// Start appends ev to the trail like Record but does not wait for it: the
// returned function waits until the record is durable and returns what
// Record would have returned. It lets a caller overlap the record's fsync
// with work that has no visible effect yet (the S3 gateway streams a PUT's
// body meanwhile) and wait before the effect becomes visible. Records
// keep the order of their Start calls. The wait function may be called
// more than once.
func (l *Log) Start(ctx context.Context, ev steward.AuditEvent) func() error {
	b, err := l.enqueue(ctx, ev)
	if err != nil {
		return func() error { return err }
	}
	return func() error {
		select {
		case <-b.done:
			if b.err != nil {
				return steward.WrapError(steward.EUnavailable, "audit.Record", b.err, "the audit trail cannot be written")
			}
			return nil
		case <-ctx.Done():
			return steward.WrapError(steward.EUnavailable, "audit.Record", ctx.Err(), "request ended before it was audited")
		}
	}
}

// enqueue adds ev to the batch being gathered and returns that batch.
func (l *Log) enqueue(ctx context.Context, ev steward.AuditEvent) (*batch, error) {
	const op = "audit.Record"
	if err := ctx.Err(); err != nil {
		return nil, steward.WrapError(steward.EUnavailable, op, err, "request ended before it was audited")
	}
	if ev.Action == "" {
		return nil, steward.Errorf(steward.EInvalid, "audit event has no action")
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.Time = ev.Time.UTC().Round(0)
	body, err := json.Marshal(&ev)
	if err != nil {
		return nil, steward.WrapError(steward.EInvalid, op, err, "audit event cannot be encoded")
	}
	if len(body) > MaxEventBytes {
		return nil, steward.Errorf(steward.ETooLarge, "audit event is larger than %d bytes", MaxEventBytes)
	}

	l.mu.Lock()
	for l.failed == nil && !l.closed && l.cur.n >= l.opts.MaxBatch {
		l.space.Wait()
	}
	if l.failed != nil || l.closed {
		err := l.failed
		l.mu.Unlock()
		if err == nil {
			return nil, errClosed
		}
		return nil, steward.WrapError(steward.EUnavailable, op, err, "the audit trail cannot be written")
	}
	b := l.cur
	if b.n == 0 {
		b.firstSeq = l.nextSeq
	}
	var sum [32]byte
	b.buf, sum = appendRecord(b.buf, l.h, l.nextSeq, &l.last, body)
	b.lastSeq, b.lastHash = l.nextSeq, sum
	b.n++
	l.nextSeq++
	l.last = sum
	l.mu.Unlock()

	select {
	case l.kick <- struct{}{}:
	default:
	}
	return b, nil
}

// Head returns the newest durable record's seq and hash (0 and 64 zeros for
// an empty trail). Exporting it elsewhere (another system, a ticket, a
// signed message) lets Verify's result be checked against a value an
// attacker with write access to the directory cannot change.
func (l *Log) Head() (seq uint64, hash string) {
	l.headMu.Lock()
	defer l.headMu.Unlock()
	return l.headSeq, hex.EncodeToString(l.headHash[:])
}

// Stats returns counters since Open.
func (l *Log) Stats() Stats {
	return Stats{
		Records:     l.records.Load(),
		Commits:     l.commits.Load(),
		Bytes:       l.bytes.Load(),
		Checkpoints: l.checkpoints.Load(),
	}
}

// Close writes what is pending, updates the checkpoint and stops the log.
// Records after Close fail with EUnavailable. Close is idempotent.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.done
		return nil
	}
	l.closed = true
	l.space.Broadcast()
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	<-l.done
	l.unlock()
	if l.cerr != nil {
		return steward.WrapError(steward.EInternal, "audit.Close", l.cerr, "the audit trail was not closed cleanly")
	}
	return nil
}

// run is the writer: it takes the accumulated batch, writes it with one
// write and one fsync, and wakes its Records.
func (l *Log) run() {
	defer close(l.done)
	tick := time.NewTicker(l.opts.CheckpointInterval)
	defer tick.Stop()
	for {
		select {
		case <-l.kick:
		case <-tick.C:
		}
		l.mu.Lock()
		b := l.cur
		if b.n > 0 {
			l.cur = newBatch(l.freeBuf)
			l.freeBuf = nil
			l.space.Broadcast()
		} else {
			b = nil
		}
		closing, failed := l.closed, l.failed
		l.mu.Unlock()

		if b != nil {
			if failed == nil {
				failed = l.commit(b)
				if failed != nil {
					l.fail(failed)
				}
			}
			b.err = failed
			close(b.done)
			l.mu.Lock()
			if l.freeBuf == nil && cap(b.buf) <= 4<<20 {
				l.freeBuf = b.buf[:0]
			}
			l.mu.Unlock()
			b.buf = nil
			if failed == nil && !closing {
				l.gather(b.n)
			}
		}
		if failed == nil && (closing || time.Since(l.lastCP) >= l.opts.CheckpointInterval) {
			if err := l.checkpoint(); err != nil {
				l.fail(err)
				failed = err
			}
		}
		if closing {
			if l.f != nil {
				if failed == nil {
					if err := l.trim(); err != nil {
						l.cerr = err
					}
				}
				if err := l.f.Close(); err != nil && l.cerr == nil {
					l.cerr = err
				}
				l.f = nil
			}
			if l.cerr == nil {
				l.cerr = failed
			}
			return
		}
	}
}

// gather lets the writers just released by a commit of released records
// come back with their next records before the writer takes a batch.
// Without it the first returning writer triggers a commit on its own and the
// writers split into cohorts that alternate, halving each group commit. It
// yields the processor rather than sleeping, and stops as soon as the batch
// stops growing, so an idle or lightly loaded log does not wait.
func (l *Log) gather(released int) {
	if released < 2 {
		return
	}
	prev := -1
	for range 32 {
		l.mu.Lock()
		n := l.cur.n
		l.mu.Unlock()
		if n >= released || n == prev && n > 0 {
			return
		}
		prev = n
		runtime.Gosched()
	}
}

// commit appends b to the current segment, starting a new one if the
// current one is full, and makes it durable.
//
// Segments are written ahead with zeros (see extend), so a commit overwrites
// zeros in place and its fdatasync need not commit file-size metadata: on
// ext4 that makes the per-commit flush several times cheaper than fsync
// after an append.
func (l *Log) commit(b *batch) error {
	n := int64(len(b.buf))
	if l.f == nil || (l.off > 0 && l.off+n > l.opts.SegmentMaxBytes) {
		if err := l.rotate(b.firstSeq); err != nil {
			return err
		}
	}
	if l.off+n > l.alloc {
		if err := l.extend(l.off + n); err != nil {
			return fmt.Errorf("preallocating an audit segment: %w", err)
		}
	}
	w, err := l.write(b.buf, l.off)
	if err == nil && w < len(b.buf) {
		err = fmt.Errorf("short write: %d of %d bytes", w, len(b.buf))
	}
	if err != nil {
		// Best effort: put the zeros back so the segment ends on a record
		// boundary. Open would cut a partial batch away anyway.
		l.f.WriteAt(make([]byte, w), l.off)
		return fmt.Errorf("writing %d audit records: %w", b.n, err)
	}
	l.off += n
	if !l.opts.NoSync {
		if err := l.sync(); err != nil {
			return fmt.Errorf("syncing %d audit records: %w", b.n, err)
		}
	}
	l.headMu.Lock()
	l.headSeq, l.headHash = b.lastSeq, b.lastHash
	l.headMu.Unlock()
	l.records.Add(uint64(b.n))
	l.commits.Add(1)
	l.bytes.Add(uint64(n))
	return nil
}

// zeros is the source for writing segments ahead.
var zeros = make([]byte, 64<<10)

// extendChunk is how far ahead of the records a segment is zero-filled.
const extendChunk = 4 << 20

// extend grows the segment with zeros to at least need bytes, a chunk at a
// time, and makes the new size durable.
func (l *Log) extend(need int64) error {
	target := min(l.alloc+extendChunk, l.opts.SegmentMaxBytes)
	target = max(target, need)
	for l.alloc < target {
		k := min(int64(len(zeros)), target-l.alloc)
		w, err := l.f.WriteAt(zeros[:k], l.alloc)
		l.alloc += int64(w)
		if err != nil {
			return err
		}
	}
	return l.f.Sync()
}

// trim cuts the zeros written ahead off the segment and makes it durable,
// so that only the segment being written ever has them.
func (l *Log) trim() error {
	if l.alloc > l.off {
		if err := l.f.Truncate(l.off); err != nil {
			return err
		}
		l.alloc = l.off
		return l.f.Sync()
	}
	if l.opts.NoSync {
		return l.f.Sync()
	}
	return nil
}

func (l *Log) write(p []byte, off int64) (int, error) {
	if l.opts.writeFn != nil {
		return l.opts.writeFn(l.f, p, off)
	}
	return l.f.WriteAt(p, off)
}

func (l *Log) sync() error {
	if l.opts.syncFn != nil {
		return l.opts.syncFn(l.f)
	}
	return datasync(l.f)
}

// rotate closes the current segment and creates the one starting at seq.
func (l *Log) rotate(seq uint64) error {
	if l.f != nil {
		if err := l.trim(); err != nil {
			return err
		}
		if err := l.f.Close(); err != nil {
			return err
		}
		l.f = nil
	}
	f, err := os.OpenFile(filepath.Join(l.dir, segmentName(seq)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := syncDir(l.dir); err != nil {
		f.Close()
		return err
	}
	l.f, l.off, l.alloc = f, 0, 0
	return nil
}

// checkpoint rewrites HEAD if records were made durable since the last one.
func (l *Log) checkpoint() error {
	l.lastCP = time.Now()
	l.headMu.Lock()
	seq, sum := l.headSeq, l.headHash
	l.headMu.Unlock()
	if seq == l.cpSeq {
		return nil
	}
	if l.opts.NoSync && l.f != nil {
		// HEAD must never be ahead of what a crash would keep.
		if err := l.sync(); err != nil {
			return err
		}
	}
	if err := writeCheckpoint(l.dir, seq, sum); err != nil {
		return fmt.Errorf("writing the audit checkpoint: %w", err)
	}
	l.cpSeq = seq
	l.checkpoints.Add(1)
	return nil
}

// fail makes the log refuse every further record and fails the records
// already waiting for the next commit.
func (l *Log) fail(err error) {
	l.logger.Error("audit trail failed; refusing further records", "dir", l.dir, "err", err)
	l.mu.Lock()
	if l.failed == nil {
		l.failed = err
	}
	pending := l.cur
	l.cur = newBatch(nil)
	l.space.Broadcast()
	l.mu.Unlock()
	if pending.n > 0 {
		pending.err = err
		close(pending.done)
	}
}

// Err reports why the log refuses records (failed or closed), or nil while
// it accepts them. Readiness probes use it.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.failed != nil:
		return l.failed
	case l.closed:
		return steward.Errorf(steward.EUnavailable, "audit trail closed")
	}
	return nil
}
