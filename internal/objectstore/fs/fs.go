// Package fs is Steward's embedded object store: objects live as files in
// a local directory and an ordered SQLite index (one database for all
// buckets) maps bucket, key and version to them.
//
// Layout of the store directory:
//
//	index.db       SQLite (WAL, synchronous=FULL): buckets, versions, uploads,
//	               parts, and the bytes of objects up to InlineMax (inline)
//	data/xx/<id>   bytes of larger objects and of parts, named by a random id
//	               (never by key)
//	staging/       left from older versions (writes in flight used it), emptied by Open
//	LOCK           held (flock) by the one process that has the store open
//	CLEAN          written by Close, so that the next Open can skip the orphan scan
//
// Keys never become paths, so no key can reach outside the directory. A
// small write is one index transaction holding its bytes. A larger write
// streams the body through its hashers into a new file in data/ under
// a fresh random name, fsyncs it and its directory, and only then commits
// the index row in a transaction: until that commit no reader can find the
// file, and a crash at any point leaves either the old object or the new
// one, plus at worst an unreferenced data file that the next Open removes
// (Close marks the store clean only when no write is in flight). A replaced or deleted object's file is removed after
// the commit; a reader that loses that race looks the key up again.
package fs

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
)

var _ objectstore.Store = (*Store)(nil)

// Store is a local filesystem object store. It is safe for concurrent use;
// one process at a time may have a directory open.
type Store struct {
	dir     string
	staging string
	data    string
	db      *sql.DB
	log     *slog.Logger
	unlock  func() error
	noSync  bool // tests only: skip fsync of data files and the index

	stLatest, stVersion         *sql.Stmt
	stLatestData, stVersionData *sql.Stmt // the same, with an inline object's bytes

	// Write transactions go to one committer goroutine, which runs all
	// those waiting in one SQLite transaction (one fsync), each in its own
	// savepoint: group commit.
	txq       chan *txReq
	closing   chan struct{}
	committed chan struct{} // closed when the committer has stopped
	closeOnce sync.Once

	// The checkpointer copies the WAL into the database beside the
	// committer, which nudges it every ckptEvery commits (adapted by the
	// checkpointer so that a checkpoint finds about checkpointFrames).
	nudge        chan struct{}
	checkpointed chan struct{} // closed when the checkpointer has stopped
	commits      int64
	ckptEvery    atomic.Int64

	// written holds, by cache key, the latest row a write of the
	// committer's current batch made (wrote); only the committer touches it.
	written map[string]row

	// vmemo holds the buckets' versioning as read in the committer's
	// current transaction (txVersioning); only the committer touches it.
	vmemo map[string]objectstore.Versioning

	// unsettled counts writes whose data file is neither referenced by a
	// committed row nor removed yet; Close marks the store clean only at 0.
	unsettled atomic.Int64

	stmu  sync.Mutex
	stmts map[string]*sql.Stmt // prepared hot-path statements, by text

	bmu     sync.RWMutex
	buckets map[string]objectstore.BucketInfo // cache of the buckets table

	cache *rowCache // latest rows of recently read keys
}

const schema = `
CREATE TABLE IF NOT EXISTS buckets(
	name TEXT PRIMARY KEY,
	created INTEGER NOT NULL,
	versioning TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS versions(
	id INTEGER PRIMARY KEY,
	bucket TEXT NOT NULL,
	key BLOB NOT NULL,
	version_id TEXT NOT NULL,
	latest INTEGER NOT NULL,
	delete_marker INTEGER NOT NULL,
	size INTEGER NOT NULL,
	etag TEXT NOT NULL,
	mtime INTEGER NOT NULL,
	content_type TEXT NOT NULL,
	meta TEXT NOT NULL,
	checksums TEXT NOT NULL,
	tags TEXT NOT NULL,
	file TEXT NOT NULL,
	data BLOB
);
CREATE INDEX IF NOT EXISTS versions_order ON versions(bucket, key, id DESC);
CREATE UNIQUE INDEX IF NOT EXISTS versions_vid ON versions(bucket, key, version_id);
CREATE INDEX IF NOT EXISTS versions_file ON versions(file) WHERE file <> '';
CREATE TABLE IF NOT EXISTS uploads(
	upload_id TEXT PRIMARY KEY,
	bucket TEXT NOT NULL,
	key BLOB NOT NULL,
	initiated INTEGER NOT NULL,
	opts TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_key ON uploads(bucket, key, initiated);
CREATE TABLE IF NOT EXISTS parts(
	upload_id TEXT NOT NULL,
	number INTEGER NOT NULL,
	etag TEXT NOT NULL,
	size INTEGER NOT NULL,
	mtime INTEGER NOT NULL,
	checksums TEXT NOT NULL,
	file TEXT NOT NULL,
	PRIMARY KEY(upload_id, number)
);
CREATE INDEX IF NOT EXISTS parts_file ON parts(file);
CREATE TABLE IF NOT EXISTS completed_uploads(
	upload_id TEXT PRIMARY KEY,
	bucket TEXT NOT NULL,
	key BLOB NOT NULL,
	etag TEXT NOT NULL,
	version_id TEXT NOT NULL,
	completed INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS completed_uploads_time ON completed_uploads(completed);
`

// Open opens (creating if needed) the store in dir. It takes an exclusive
// lock on the directory, empties the staging area and, if the previous
// process did not Close cleanly, removes data files that no index row
// references.
func Open(dir string, logger *slog.Logger) (*Store, error) {
	return open(dir, logger, false)
}

func open(dir string, logger *slog.Logger, noSync bool) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		dir:       dir,
		staging:   filepath.Join(dir, "staging"),
		data:      filepath.Join(dir, "data"),
		log:       logger.With("component", "objectstore.fs"),
		buckets:   map[string]objectstore.BucketInfo{},
		txq:       make(chan *txReq),
		closing:   make(chan struct{}),
		committed: make(chan struct{}),
		cache:     newRowCache(defaultCacheBytes),

		nudge:        make(chan struct{}, 1),
		checkpointed: make(chan struct{}),
	}
	for _, d := range []string{dir, s.staging, s.data} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("objectstore/fs: %w", err)
		}
	}
	unlock, err := lockDir(filepath.Join(dir, "LOCK"))
	if err != nil {
		return nil, fmt.Errorf("objectstore/fs: %s is in use by another process: %w", dir, err)
	}
	s.unlock = unlock
	if err := s.open(); err != nil {
		s.unlock()
		if s.db != nil {
			s.db.Close()
		}
		return nil, err
	}
	s.ckptEvery.Store(64)
	go s.committer()
	go s.checkpointer()
	return s, nil
}

func (s *Store) open() error {
	// Remember whether the last run closed cleanly, and forget it durably
	// before anything is written, so that a crash from now on is noticed.
	clean := false
	cleanPath := filepath.Join(s.dir, "CLEAN")
	if err := os.Remove(cleanPath); err == nil {
		clean = true
		if err := syncDir(s.dir); err != nil {
			return fmt.Errorf("objectstore/fs: %w", err)
		}
	}
	for i := 0; i < 256; i++ {
		if err := os.MkdirAll(filepath.Join(s.data, fmt.Sprintf("%02x", i)), 0o700); err != nil {
			return fmt.Errorf("objectstore/fs: %w", err)
		}
	}
	if err := s.cleanStaging(); err != nil {
		return err
	}
	q := url.Values{}
	sync := "synchronous(FULL)"
	if s.noSync {
		sync = "synchronous(OFF)"
	}
	// Checkpoints (copying the WAL into the database, with two fsyncs)
	// run in their own goroutine (checkpointer), not in whichever commit
	// crosses SQLite's threshold: a commit holds every writer of its batch.
	// Each connection has its own page cache: 1 MiB each (SQLite's default
	// is 2 MiB) holds the index's upper levels; hot rows are in the row
	// cache, in front of SQLite.
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", sync, "wal_autocheckpoint(0)", "cache_size(-1024)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+filepath.Join(s.dir, "index.db")+"?"+q.Encode())
	if err != nil {
		return fmt.Errorf("objectstore/fs: open index: %w", err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	s.db = db
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("objectstore/fs: create index schema: %w", err)
	}
	// Stores made before inline objects lack the column.
	var hasData bool
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) > 0 FROM pragma_table_info('versions') WHERE name = 'data'`).Scan(&hasData); err != nil {
		return fmt.Errorf("objectstore/fs: %w", err)
	}
	if !hasData {
		if _, err := db.ExecContext(ctx, `ALTER TABLE versions ADD COLUMN data BLOB`); err != nil {
			return fmt.Errorf("objectstore/fs: add inline data to the index: %w", err)
		}
	}
	// The latest version of a key is its newest row (the highest id), so
	// versions_order finds it; the partial index that older stores kept
	// for it cost every write a third index entry (a fifth more WAL pages
	// per 4 KiB PUT).
	if _, err := db.ExecContext(ctx, `DROP INDEX IF EXISTS versions_latest`); err != nil {
		return fmt.Errorf("objectstore/fs: %w", err)
	}
	if s.stLatestData, err = db.PrepareContext(ctx, qLatestData); err != nil {
		return fmt.Errorf("objectstore/fs: %w", err)
	}
	if s.stVersionData, err = db.PrepareContext(ctx, qVersionData); err != nil {
		return fmt.Errorf("objectstore/fs: %w", err)
	}
	if s.stLatest, err = db.PrepareContext(ctx, qLatest); err != nil {
		return fmt.Errorf("objectstore/fs: %w", err)
	}
	if s.stVersion, err = db.PrepareContext(ctx, qVersion); err != nil {
		return fmt.Errorf("objectstore/fs: %w", err)
	}
	if err := s.loadBuckets(ctx); err != nil {
		return err
	}
	if !clean {
		if err := s.removeOrphans(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the index and releases the directory; it marks the store
// cleanly closed so that the next Open need not scan for orphans.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() { err = s.close() })
	return err
}

func (s *Store) close() error {
	close(s.closing)
	<-s.committed
	<-s.checkpointed
	s.stmu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	s.stmts = nil
	s.stmu.Unlock()
	err := s.db.Close()
	if err == nil && s.unsettled.Load() == 0 {
		if f, ferr := os.Create(filepath.Join(s.dir, "CLEAN")); ferr == nil {
			f.Sync()
			f.Close()
			syncDir(s.dir)
		}
	}
	if uerr := s.unlock(); err == nil {
		err = uerr
	}
	return err
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) cleanStaging() error {
	ents, err := os.ReadDir(s.staging)
	if err != nil {
		return fmt.Errorf("objectstore/fs: %w", err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(s.staging, e.Name())); err != nil {
			return fmt.Errorf("objectstore/fs: clean staging: %w", err)
		}
	}
	if len(ents) > 0 {
		s.log.Info("removed interrupted writes from staging", "files", len(ents))
	}
	return nil
}

// removeOrphans deletes data files that no version or part references: the
// debris of a crash between a file's rename and its index commit, or
// between a delete's commit and the file's removal.
func (s *Store) removeOrphans(ctx context.Context) error {
	stmt, err := s.db.PrepareContext(ctx, `SELECT EXISTS(SELECT 1 FROM versions WHERE file = ?) OR EXISTS(SELECT 1 FROM parts WHERE file = ?)`)
	if err != nil {
		return fmt.Errorf("objectstore/fs: %w", err)
	}
	defer stmt.Close()
	removed := 0
	for i := 0; i < 256; i++ {
		shard := filepath.Join(s.data, fmt.Sprintf("%02x", i))
		ents, err := os.ReadDir(shard)
		if err != nil {
			return fmt.Errorf("objectstore/fs: %w", err)
		}
		for _, e := range ents {
			var used bool
			if err := stmt.QueryRowContext(ctx, e.Name(), e.Name()).Scan(&used); err != nil {
				return fmt.Errorf("objectstore/fs: orphan scan: %w", err)
			}
			if !used {
				if err := os.RemoveAll(filepath.Join(shard, e.Name())); err != nil {
					return fmt.Errorf("objectstore/fs: remove orphan: %w", err)
				}
				removed++
			}
		}
	}
	if removed > 0 {
		s.log.Info("recovered after unclean shutdown", "orphans_removed", removed)
	}
	return nil
}

func (s *Store) loadBuckets(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT name, created, versioning FROM buckets`)
	if err != nil {
		return fmt.Errorf("objectstore/fs: load buckets: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var b objectstore.BucketInfo
		var created int64
		var v string
		if err := rows.Scan(&b.Name, &created, &v); err != nil {
			return fmt.Errorf("objectstore/fs: load buckets: %w", err)
		}
		b.Created = time.Unix(0, created).UTC()
		b.Versioning = objectstore.Versioning(v)
		s.buckets[b.Name] = b
	}
	return rows.Err()
}

// refreshBucket copies a bucket's committed row into the cache. Reading
// under the cache lock orders racing refreshes: the last one reads last.
func (s *Store) refreshBucket(ctx context.Context, name string) error {
	s.bmu.Lock()
	defer s.bmu.Unlock()
	var created int64
	var v string
	err := s.db.QueryRowContext(context.WithoutCancel(ctx), `SELECT created, versioning FROM buckets WHERE name = ?`, name).Scan(&created, &v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		delete(s.buckets, name)
	case err != nil:
		return internal("fs.refreshBucket", err)
	default:
		s.buckets[name] = objectstore.BucketInfo{Name: name, Created: time.Unix(0, created).UTC(), Versioning: objectstore.Versioning(v)}
	}
	return nil
}

func (s *Store) bucket(name string) (objectstore.BucketInfo, error) {
	s.bmu.RLock()
	b, ok := s.buckets[name]
	s.bmu.RUnlock()
	if !ok {
		return b, errNoSuchBucket(name)
	}
	return b, nil
}

func errNoSuchBucket(name string) error {
	return objectstore.Errorf(steward.ENotFound, objectstore.CodeNoSuchBucket, "the specified bucket does not exist")
}

func internal(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *steward.Error
	if errors.As(err, &se) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return steward.WrapError(steward.EUnavailable, op, err, "request cancelled")
	}
	return steward.WrapError(steward.EInternal, op, err, "internal error")
}

type txReq struct {
	fn    func(ctx context.Context, tx *sql.Tx) error
	keys  []string        // cache keys whose versions fn may change
	ready <-chan struct{} // if set, fn may run only once it is closed
	done  chan error
}

// isReady reports whether r may run now.
func (r *txReq) isReady() bool {
	if r.ready == nil {
		return true
	}
	select {
	case <-r.ready:
		return true
	default:
		return false
	}
}

// maxBatch bounds how many writes share one commit.
const maxBatch = 128

var errClosed = steward.Errorf(steward.EUnavailable, "object store is closed")

// writeTx runs fn in a write transaction, possibly shared with other
// writers (fn's effects are its own: a failing fn is rolled back to its
// savepoint). fn gets a context that is never cancelled: interrupting a
// statement would roll back the whole shared transaction.
func (s *Store) writeTx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return s.writeTxFor(ctx, nil, fn)
}

// writeTxFor is writeTx for a write that may change the versions of the
// keys named by cacheKey in keys: every such write must name them, so
// that the row cache never serves a version the index no longer has.
func (s *Store) writeTxFor(ctx context.Context, keys []string, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return s.writeTxWhen(ctx, keys, nil, fn)
}

// writeTxWhen is writeTxFor for a write that may run only once ready is
// closed (nil: at once). It is queued at once: the committer commits the
// writes that are ready and keeps the others for a later batch, so a
// write waiting for something else (its audit record) neither holds up
// the writes around it nor waits for its turn only after that.
func (s *Store) writeTxWhen(ctx context.Context, keys []string, ready <-chan struct{}, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req := &txReq{fn: fn, keys: keys, ready: ready, done: make(chan error, 1)}
	select {
	case s.txq <- req:
	case <-s.closing:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-req.done
}

// prepared returns the statement q, prepared once per store (and once per
// connection by database/sql), or nil if it cannot be prepared: the
// statements every write runs are not parsed again for each one.
func (s *Store) prepared(ctx context.Context, q string) *sql.Stmt {
	s.stmu.Lock()
	defer s.stmu.Unlock()
	if st, ok := s.stmts[q]; ok {
		return st
	}
	st, err := s.db.PrepareContext(ctx, q)
	if err != nil {
		return nil // the unprepared path reports the error
	}
	if s.stmts == nil {
		s.stmts = map[string]*sql.Stmt{}
	}
	s.stmts[q] = st
	return st
}

// txExec runs q in tx as a prepared statement.
func (s *Store) txExec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	if st := s.prepared(ctx, q); st != nil {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, q, args...)
}

// txQueryRow runs q in tx as a prepared statement.
func (s *Store) txQueryRow(ctx context.Context, tx *sql.Tx, q string, args ...any) *sql.Row {
	if st := s.prepared(ctx, q); st != nil {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, q, args...)
}

func (s *Store) committer() {
	defer close(s.committed)
	var waiting []*txReq // received, not ready yet
	defer func() {
		for _, r := range waiting {
			r.done <- errClosed
		}
	}()
	for {
		if len(waiting) == 0 {
			select {
			case r := <-s.txq:
				waiting = append(waiting, r)
			case <-s.closing:
				return
			}
		}
	more:
		for len(waiting) < maxBatch {
			select {
			case r := <-s.txq:
				waiting = append(waiting, r)
			default:
				break more
			}
		}
		// The ready ones, in arrival order, form the batch; the others
		// wait for the next one.
		var batch []*txReq
		rest := waiting[:0]
		for _, r := range waiting {
			if r.isReady() {
				batch = append(batch, r)
			} else {
				rest = append(rest, r)
			}
		}
		waiting = rest
		if len(batch) == 0 {
			select {
			case <-waiting[0].ready:
			case r := <-s.txq:
				waiting = append(waiting, r)
			case <-s.closing:
				return
			}
			continue
		}
		s.commitBatch(batch)
	}
}

func (s *Store) commitBatch(batch []*txReq) {
	ctx := context.Background()
	var keys []string
	for _, r := range batch {
		keys = append(keys, r.keys...)
	}
	if len(keys) > 0 {
		// Before anything is written: from here until the commit is
		// over, readers of these keys go to the index.
		s.cache.begin(keys)
	}
	// answer ends the keys' pending state, caching the rows the batch
	// wrote if it committed, and only then tells each writer its
	// outcome: an acknowledged write is already in the cache.
	answer := func(committed bool, errOf func(i int) error) {
		if len(keys) > 0 {
			if !committed {
				clear(s.written)
			}
			s.cache.end(keys, s.written)
			clear(s.written)
		}
		for i, r := range batch {
			r.done <- errOf(i)
		}
	}
	errs := make([]error, len(batch))
	fail := func(err error) { answer(false, func(int) error { return err }) }
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		fail(err)
		return
	}
	s.vmemo = nil
	defer func() { s.vmemo = nil }()
	run := func(r *txReq) error {
		if r.keys == nil {
			// Only writes that name no key change buckets: the memo
			// is not trusted across them.
			s.vmemo = nil
			defer func() { s.vmemo = nil }()
		}
		for _, k := range r.keys {
			delete(s.written, k) // r may change it; it says so if it wrote a row
		}
		return r.fn(ctx, tx)
	}
	for i, r := range batch {
		if len(batch) == 1 {
			errs[i] = run(r)
			continue
		}
		if _, err := s.txExec(ctx, tx, `SAVEPOINT w`); err != nil {
			tx.Rollback()
			fail(err)
			return
		}
		if errs[i] = run(r); errs[i] != nil {
			if _, err := s.txExec(ctx, tx, `ROLLBACK TO w`); err != nil {
				tx.Rollback()
				fail(err)
				return
			}
		}
		if _, err := s.txExec(ctx, tx, `RELEASE w`); err != nil {
			tx.Rollback()
			fail(err)
			return
		}
	}
	if len(batch) == 1 && errs[0] != nil {
		tx.Rollback()
		fail(errs[0])
		return
	}
	if err := tx.Commit(); err != nil {
		fail(err)
		return
	}
	answer(true, func(i int) error { return errs[i] })
	if s.commits++; s.commits >= s.ckptEvery.Load() {
		s.commits = 0
		select {
		case s.nudge <- struct{}{}:
		default: // one is pending already
		}
	}
}

// wrote records, from inside a write of the current batch, that r is now
// k's latest row; after the commit it is cached.
func (s *Store) wrote(k string, r row) {
	if s.written == nil {
		s.written = map[string]row{}
	}
	s.written[k] = r
}

// txVersioning is bucket's versioning in the committer's transaction
// tx (NoSuchBucket), read once per bucket and batch: writes that change a
// bucket name no key and clear the memo.
func (s *Store) txVersioning(ctx context.Context, tx *sql.Tx, bucket string) (objectstore.Versioning, error) {
	if v, ok := s.vmemo[bucket]; ok {
		return v, nil
	}
	var vs string
	if err := s.txQueryRow(ctx, tx, `SELECT versioning FROM buckets WHERE name = ?`, bucket).Scan(&vs); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return "", errNoSuchBucket(bucket)
		}
		return "", err
	}
	if s.vmemo == nil {
		s.vmemo = map[string]objectstore.Versioning{}
	}
	s.vmemo[bucket] = objectstore.Versioning(vs)
	return objectstore.Versioning(vs), nil
}

const (
	// checkpointFrames is how many WAL frames (pages) a checkpoint should
	// find, as SQLite's own auto-checkpoint does: checkpointing more often
	// costs fsyncs of the database file, which on ext4 also flush other
	// files' data (the objects being written).
	checkpointFrames = 1000
	// A checkpoint is due every ckptEvery commits, adapted between these.
	minCkptEvery, maxCkptEvery = 8, 4096
	// walRestartFrames: a WAL this long (about 64 MiB of 4 KiB pages) that
	// passive checkpoints could not empty, because readers kept old
	// snapshots, is checkpointed with RESTART, which waits for them.
	walRestartFrames = 16384
)

// checkpointer copies committed WAL frames into the database. PASSIVE
// checkpoints never block the committer or readers; SQLite restarts the
// WAL from its beginning at the first commit after one completes.
func (s *Store) checkpointer() {
	defer close(s.checkpointed)
	for {
		select {
		case <-s.closing:
			return
		case <-s.nudge:
		}
		mode := "PASSIVE"
		for range 2 {
			var busy, frames, done int
			err := s.db.QueryRow(`PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &frames, &done)
			if err != nil {
				s.log.Warn("index checkpoint failed", "err", err)
				break
			}
			if mode == "PASSIVE" {
				// frames accumulated over ckptEvery commits: aim the
				// next checkpoint at checkpointFrames.
				every := s.ckptEvery.Load() * checkpointFrames / int64(max(frames, 1))
				s.ckptEvery.Store(min(max(every, minCkptEvery), maxCkptEvery))
			}
			if frames < walRestartFrames || done >= frames {
				break
			}
			mode = "RESTART"
		}
	}
}

// CreateBucket creates a bucket (InvalidBucketName, BucketAlreadyOwnedByYou).
func (s *Store) CreateBucket(ctx context.Context, bucket string) error {
	if err := ValidBucketName(bucket); err != nil {
		return err
	}
	now := time.Now().UTC()
	err := s.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM buckets WHERE name = ?`, bucket).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return objectstore.Errorf(steward.EConflict, objectstore.CodeBucketExists, "bucket %q already exists", bucket)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO buckets(name, created, versioning) VALUES(?, ?, '')`, bucket, now.UnixNano())
		return err
	})
	if err != nil {
		return internal("fs.CreateBucket", err)
	}
	return s.refreshBucket(ctx, bucket)
}

// DeleteBucket deletes an empty bucket (NoSuchBucket, BucketNotEmpty). A
// bucket holding any object version or delete marker is not empty;
// multipart uploads still in progress do not count: they are aborted.
func (s *Store) DeleteBucket(ctx context.Context, bucket string) error {
	var files []string
	err := s.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM buckets WHERE name = ?`, bucket).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return errNoSuchBucket(bucket)
		}
		var used bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS(SELECT 1 FROM versions WHERE bucket = ?)`, bucket).Scan(&used); err != nil {
			return err
		}
		if used {
			return objectstore.Errorf(steward.EConflict, objectstore.CodeBucketNotEmpty, "the bucket you tried to delete is not empty")
		}
		rows, err := tx.QueryContext(ctx, `SELECT p.file FROM parts p JOIN uploads u ON u.upload_id = p.upload_id WHERE u.bucket = ?`, bucket)
		if err != nil {
			return err
		}
		for rows.Next() {
			var f string
			if err := rows.Scan(&f); err != nil {
				rows.Close()
				return err
			}
			files = append(files, f)
		}
		rows.Close()
		if _, err := tx.ExecContext(ctx, `DELETE FROM parts WHERE upload_id IN (SELECT upload_id FROM uploads WHERE bucket = ?)`, bucket); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM uploads WHERE bucket = ?`, bucket); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM buckets WHERE name = ?`, bucket)
		return err
	})
	if err != nil {
		return internal("fs.DeleteBucket", err)
	}
	s.removeFiles(files)
	s.cache.purge() // an empty bucket has no rows to cache; purged all the same
	return s.refreshBucket(ctx, bucket)
}

// HeadBucket describes a bucket (NoSuchBucket).
func (s *Store) HeadBucket(ctx context.Context, bucket string) (objectstore.BucketInfo, error) {
	return s.bucket(bucket)
}

// ListBuckets lists all buckets by name.
func (s *Store) ListBuckets(ctx context.Context) ([]objectstore.BucketInfo, error) {
	s.bmu.RLock()
	out := make([]objectstore.BucketInfo, 0, len(s.buckets))
	for _, b := range s.buckets {
		out = append(out, b)
	}
	s.bmu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// SetVersioning sets a bucket's versioning to Enabled or Suspended
// (NoSuchBucket; InvalidArgument for any other state: versioning, once
// enabled, can only be suspended).
func (s *Store) SetVersioning(ctx context.Context, bucket string, v objectstore.Versioning) error {
	if v != objectstore.VersioningEnabled && v != objectstore.VersioningSuspended {
		return objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidArgument, "versioning status must be Enabled or Suspended")
	}
	err := s.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE buckets SET versioning = ? WHERE name = ?`, string(v), bucket)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errNoSuchBucket(bucket)
		}
		return nil
	})
	if err != nil {
		return internal("fs.SetVersioning", err)
	}
	return s.refreshBucket(ctx, bucket)
}

// bytesMapPrefix marks a map stored byte for byte: JSON turns bytes that
// are not UTF-8 (latin-1 metadata, which HTTP allows) into U+FFFD, so
// such a map is kept as base64 pairs instead.
const bytesMapPrefix = "b:"

func marshal(v any) string {
	if v == nil {
		return "{}"
	}
	if m, ok := v.(map[string]string); ok && !allUTF8(m) {
		pairs := make([][2][]byte, 0, len(m))
		for k, v := range m {
			pairs = append(pairs, [2][]byte{[]byte(k), []byte(v)})
		}
		b, _ := json.Marshal(pairs)
		return bytesMapPrefix + string(b)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "{}"
	}
	return string(b)
}

func allUTF8(m map[string]string) bool {
	for k, v := range m {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return false
		}
	}
	return true
}
