package fs

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
)

// row is one object version in the index.
type row struct {
	id          int64
	key         string
	versionID   string
	latest      bool
	dm          bool
	size        int64
	etag        string
	mtime       int64
	contentType string
	meta        string
	checksums   string
	tags        string
	file        string // data file; "" for an empty or inline object
	data        []byte // an inline object's bytes, when writing its row
}

// inline reports whether the row's bytes are in its data column.
func (r *row) inline() bool { return r.file == "" && r.size > 0 }

const rowCols = `id, key, version_id, latest, delete_marker, size, etag, mtime, content_type, meta, checksums, tags, file`

type scanner interface{ Scan(...any) error }

// scanRowData scans rowCols and an inline object's bytes.
func scanRowData(sc scanner) (row, error) {
	var r row
	var key []byte
	err := sc.Scan(&r.id, &key, &r.versionID, &r.latest, &r.dm, &r.size, &r.etag, &r.mtime, &r.contentType, &r.meta, &r.checksums, &r.tags, &r.file, &r.data)
	r.key = string(key)
	return r, err
}

func scanRow(sc scanner) (row, error) {
	var r row
	var key []byte
	err := sc.Scan(&r.id, &key, &r.versionID, &r.latest, &r.dm, &r.size, &r.etag, &r.mtime, &r.contentType, &r.meta, &r.checksums, &r.tags, &r.file)
	r.key = string(key)
	return r, err
}

type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func unmarshalMap(s string) map[string]string {
	if s == "" || s == "{}" || s == "null" {
		return nil
	}
	if b, ok := strings.CutPrefix(s, bytesMapPrefix); ok {
		var pairs [][2][]byte
		json.Unmarshal([]byte(b), &pairs)
		m := make(map[string]string, len(pairs))
		for _, p := range pairs {
			m[string(p[0])] = string(p[1])
		}
		return m
	}
	var m map[string]string
	json.Unmarshal([]byte(s), &m)
	return m
}

func (r row) info(bucket string, v objectstore.Versioning) objectstore.ObjectInfo {
	vid := r.versionID
	if v == objectstore.VersioningOff {
		vid = ""
	}
	return objectstore.ObjectInfo{
		Bucket:       bucket,
		Key:          r.key,
		VersionID:    vid,
		IsLatest:     r.latest,
		DeleteMarker: r.dm,
		Size:         r.size,
		ETag:         r.etag,
		LastModified: time.Unix(0, r.mtime).UTC(),
		ContentType:  r.contentType,
		Metadata:     unmarshalMap(r.meta),
		Checksums:    unmarshalMap(r.checksums),
		Tags:         unmarshalMap(r.tags),
	}
}

// lookup finds the latest version of key (versionID "") or the named one.
func (s *Store) lookup(ctx context.Context, q querier, bucket, key, versionID string) (row, error) {
	return s.lookupRow(ctx, q, bucket, key, versionID, false)
}

// lookupRow is lookup; withData also reads an inline object's bytes into
// r.data, in the same statement (so they belong to that very row).
func (s *Store) lookupRow(ctx context.Context, q querier, bucket, key, versionID string, withData bool) (row, error) {
	var r row
	var err error
	latest, version := s.stLatest, s.stVersion
	scan := scanRow
	if withData {
		latest, version, scan = s.stLatestData, s.stVersionData, scanRowData
	}
	if versionID == "" && q == querier(s.db) {
		// Outside a write: the row cache may answer, and is filled with
		// the row and its inline bytes either way.
		k := cacheKey(bucket, key)
		if r, ok := s.cache.get(k); ok {
			return r, nil
		}
		gen := s.cache.snapshot()
		r, err = scanRowData(s.stLatestData.QueryRowContext(ctx, bucket, []byte(key)))
		if errors.Is(err, sql.ErrNoRows) {
			return r, errNoSuchKey()
		}
		if err == nil {
			s.cache.put(k, r, gen)
		}
	} else if versionID == "" {
		r, err = scan(stmtIn(ctx, q, latest).QueryRowContext(ctx, bucket, []byte(key)))
		if errors.Is(err, sql.ErrNoRows) {
			return r, errNoSuchKey()
		}
	} else {
		r, err = scan(stmtIn(ctx, q, version).QueryRowContext(ctx, bucket, []byte(key), versionID))
		if errors.Is(err, sql.ErrNoRows) {
			return r, objectstore.Errorf(steward.ENotFound, objectstore.CodeNoSuchVersion, "the specified version does not exist")
		}
	}
	return r, err
}

// Prepared once: modernc's SQLite otherwise parses every query anew.
const (
	qLatest  = `SELECT ` + rowCols + ` FROM versions WHERE bucket = ? AND key = ? AND latest = 1 ORDER BY id DESC LIMIT 1`
	qVersion = `SELECT ` + rowCols + ` FROM versions WHERE bucket = ? AND key = ? AND version_id = ?`

	dataCol      = `, CASE WHEN file = '' THEN data END`
	qLatestData  = `SELECT ` + rowCols + dataCol + ` FROM versions WHERE bucket = ? AND key = ? AND latest = 1 ORDER BY id DESC LIMIT 1`
	qVersionData = `SELECT ` + rowCols + dataCol + ` FROM versions WHERE bucket = ? AND key = ? AND version_id = ?`
)

// stmtIn is st, bound to q's transaction if q is one.
func stmtIn(ctx context.Context, q querier, st *sql.Stmt) *sql.Stmt {
	if tx, ok := q.(*sql.Tx); ok {
		return tx.StmtContext(ctx, st)
	}
	return st
}

func errNoSuchKey() error {
	return objectstore.Errorf(steward.ENotFound, objectstore.CodeNoSuchKey, "the specified key does not exist")
}

// etagMatch reports whether an If-Match / If-None-Match header value (a
// list of entity tags, or "*") matches etag.
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		t = strings.TrimPrefix(t, "W/")
		if t == "*" || strings.Trim(t, `"`) == strings.Trim(etag, `"`) {
			return true
		}
	}
	return false
}

// checkWrite applies a write's preconditions to the current latest
// version (nil when there is none or it is a delete marker).
func checkWrite(cur *row, opts objectstore.PutOptions) error {
	if opts.IfNoneMatch != "" && cur != nil && etagMatch(opts.IfNoneMatch, cur.etag) {
		return objectstore.Errorf(steward.EConflict, objectstore.CodePreconditionFailed, "at least one of the pre-conditions you specified did not hold")
	}
	if opts.IfMatch != "" {
		if cur == nil {
			return errNoSuchKey()
		}
		if !etagMatch(opts.IfMatch, cur.etag) {
			return objectstore.Errorf(steward.EConflict, objectstore.CodePreconditionFailed, "at least one of the pre-conditions you specified did not hold")
		}
	}
	return nil
}

func (s *Store) current(ctx context.Context, q querier, bucket, key string) (*row, error) {
	r, err := s.lookup(ctx, q, bucket, key, "")
	if err != nil {
		var se *steward.Error
		if errors.As(err, &se) && se.Kind == steward.ENotFound {
			return nil, nil
		}
		return nil, err
	}
	if r.dm {
		return nil, nil
	}
	return &r, nil
}

func validTags(tags map[string]string) error {
	if len(tags) > 10 {
		return objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidArgument, "object tags cannot be greater than 10")
	}
	for k, v := range tags {
		if k == "" || utf8.RuneCountInString(k) > 128 || utf8.RuneCountInString(v) > 256 || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidArgument, "the tag key or value is invalid")
		}
	}
	return nil
}

// Put writes an object (NoSuchBucket, InvalidArgument, KeyTooLongError,
// BadDigest, IncompleteBody, PreconditionFailed, NoSuchKey for If-Match on
// a missing key). The body is streamed to disk, never held in memory.
func (s *Store) Put(ctx context.Context, bucket, key string, body io.Reader, size int64, opts objectstore.PutOptions) (objectstore.ObjectInfo, error) {
	if err := ValidKey(key); err != nil {
		return objectstore.ObjectInfo{}, err
	}
	if _, err := s.bucket(bucket); err != nil {
		return objectstore.ObjectInfo{}, err
	}
	if err := validTags(opts.Tags); err != nil {
		return objectstore.ObjectInfo{}, err
	}
	if opts.IfMatch != "" || opts.IfNoneMatch != "" {
		// Fail early, before the body is read; checked again at commit.
		cur, err := s.current(ctx, s.db, bucket, key)
		if err != nil {
			return objectstore.ObjectInfo{}, internal("fs.Put", err)
		}
		if err := checkWrite(cur, opts); err != nil {
			return objectstore.ObjectInfo{}, err
		}
	}
	w, err := s.writeData(ctx, body, size, opts.ContentMD5, opts.Checksums, true)
	if err != nil {
		return objectstore.ObjectInfo{}, internal("fs.Put", err)
	}
	w.addVerified(opts.VerifiedChecksums)
	r := row{
		key:         key,
		size:        w.size,
		etag:        `"` + hex.EncodeToString(w.md5) + `"`,
		contentType: opts.ContentType,
		meta:        marshal(opts.Metadata),
		checksums:   marshal(w.checksums),
		tags:        marshal(opts.Tags),
		file:        w.file,
		data:        w.inline,
	}
	defer s.settled()
	info, err := s.commitVersion(ctx, bucket, r, &opts, nil, nil)
	if err != nil {
		s.removeFiles([]string{w.file})
		return info, internal("fs.Put", err)
	}
	return info, nil
}

// commitVersion makes r the latest version of its key in one transaction,
// following the bucket's versioning: with versioning Enabled it gets a new
// version ID; otherwise it replaces the "null" version. Files no longer
// referenced are removed after the commit.
// extra, if set, runs first in the same transaction; after, if set, runs
// last in it with the new version's info. cond.BeforeCommit, if set, is
// awaited beside the commit queue: the write is queued at once and the
// committer commits it in the first batch after BeforeCommit returned.
func (s *Store) commitVersion(ctx context.Context, bucket string, r row, cond *objectstore.PutOptions, extra func(context.Context, *sql.Tx) error,
	after func(context.Context, *sql.Tx, objectstore.ObjectInfo) error) (objectstore.ObjectInfo, error) {
	var old []string
	var v objectstore.Versioning
	var ready chan struct{}
	var beforeErr error
	if cond != nil && cond.BeforeCommit != nil {
		ready = make(chan struct{})
		go func() {
			beforeErr = cond.BeforeCommit()
			close(ready)
		}()
	}
	err := s.writeTxWhen(ctx, []string{cacheKey(bucket, r.key)}, ready, func(ctx context.Context, tx *sql.Tx) error {
		if beforeErr != nil { // read after ready is closed
			return beforeErr
		}
		var err error
		if v, err = s.txVersioning(ctx, tx, bucket); err != nil {
			return err
		}
		if extra != nil {
			if err := extra(ctx, tx); err != nil {
				return err
			}
		}
		if cond != nil && (cond.IfMatch != "" || cond.IfNoneMatch != "") {
			cur, err := s.current(ctx, tx, bucket, r.key)
			if err != nil {
				return err
			}
			if err := checkWrite(cur, *cond); err != nil {
				return err
			}
		}
		if v == objectstore.VersioningEnabled {
			r.versionID = newID()
		} else {
			r.versionID = "null"
			var f string
			err := s.txQueryRow(ctx, tx, `DELETE FROM versions WHERE bucket = ? AND key = ? AND version_id = 'null' RETURNING file`, bucket, []byte(r.key)).Scan(&f)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			old = append(old, f)
		}
		// A bucket that never had versioning holds only null versions,
		// and the null version is gone: nothing else can be latest.
		if v != objectstore.VersioningOff {
			if _, err := s.txExec(ctx, tx, `UPDATE versions SET latest = 0 WHERE bucket = ? AND key = ? AND latest = 1`, bucket, []byte(r.key)); err != nil {
				return err
			}
		}
		r.latest = true
		r.mtime = time.Now().UnixNano()
		res, err := s.txExec(ctx, tx, `INSERT INTO versions(bucket, key, version_id, latest, delete_marker, size, etag, mtime, content_type, meta, checksums, tags, file, data)
			VALUES(?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			bucket, []byte(r.key), r.versionID, r.dm, r.size, r.etag, r.mtime, r.contentType, r.meta, r.checksums, r.tags, r.file, r.data)
		if err != nil {
			return err
		}
		r.id, _ = res.LastInsertId()
		if after != nil {
			if err := after(ctx, tx, r.info(bucket, v)); err != nil {
				return err
			}
		}
		// Read-after-write is common (a pipeline's next step reads what
		// the last one wrote): the committed row goes into the cache.
		s.wrote(cacheKey(bucket, r.key), r)
		return nil
	})
	if err != nil {
		return objectstore.ObjectInfo{}, err
	}
	s.removeFiles(old)
	return r.info(bucket, v), nil
}

// Head describes an object version (NoSuchBucket, NoSuchKey,
// NoSuchVersion, MethodNotAllowed for a delete marker named by version,
// PreconditionFailed, NotModified). With NoSuchKey for a delete marker and
// with MethodNotAllowed, the returned info describes the marker; with
// NotModified it describes the object.
func (s *Store) Head(ctx context.Context, bucket, key string, opts objectstore.GetOptions) (objectstore.ObjectInfo, error) {
	_, info, err := s.head(ctx, bucket, key, opts, false)
	return info, err
}

// head looks the version up and checks the conditions; withData also
// reads an inline object's bytes (r.data).
func (s *Store) head(ctx context.Context, bucket, key string, opts objectstore.GetOptions, withData bool) (row, objectstore.ObjectInfo, error) {
	b, err := s.bucket(bucket)
	if err != nil {
		return row{}, objectstore.ObjectInfo{}, err
	}
	if err := ValidKey(key); err != nil {
		if opts.VersionID != "" {
			return row{}, objectstore.ObjectInfo{}, objectstore.Errorf(steward.ENotFound, objectstore.CodeNoSuchVersion, "the specified version does not exist")
		}
		return row{}, objectstore.ObjectInfo{}, errNoSuchKey()
	}
	r, err := s.lookupRow(ctx, s.db, bucket, key, opts.VersionID, withData)
	if err != nil {
		return r, objectstore.ObjectInfo{}, internal("fs.Get", err)
	}
	info := r.info(bucket, b.Versioning)
	if r.dm {
		if opts.VersionID == "" {
			return r, info, errNoSuchKey()
		}
		return r, info, objectstore.Errorf(steward.EInvalid, objectstore.CodeMethodNotAllowed, "the specified method is not allowed against this resource")
	}
	return r, info, checkRead(info, opts)
}

// checkRead evaluates conditional GET headers in the order of RFC 9110
// section 13.2.2, as S3 does.
func checkRead(info objectstore.ObjectInfo, opts objectstore.GetOptions) error {
	lm := info.LastModified.Truncate(time.Second)
	failed := objectstore.Errorf(steward.EConflict, objectstore.CodePreconditionFailed, "at least one of the pre-conditions you specified did not hold")
	if opts.IfMatch != "" {
		if !etagMatch(opts.IfMatch, info.ETag) {
			return failed
		}
	} else if !opts.IfUnmodifiedSince.IsZero() && lm.After(opts.IfUnmodifiedSince) {
		return failed
	}
	notModified := objectstore.Errorf(steward.EConflict, objectstore.CodeNotModified, "not modified")
	if opts.IfNoneMatch != "" {
		if etagMatch(opts.IfNoneMatch, info.ETag) {
			return notModified
		}
	} else if !opts.IfModifiedSince.IsZero() && !lm.After(opts.IfModifiedSince) {
		return notModified
	}
	return nil
}

// resolveRange turns a requested range into an offset and length within
// an object of size bytes (InvalidRange). An End < 0 means "to the end".
func resolveRange(r *objectstore.Range, size int64) (start, n int64, err error) {
	if r == nil {
		return 0, size, nil
	}
	invalid := objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidRange, "the requested range is not satisfiable")
	if r.Start < 0 {
		n = -r.Start
		if size == 0 {
			return 0, 0, invalid
		}
		if n > size {
			n = size
		}
		return size - n, n, nil
	}
	if r.Start >= size {
		return 0, 0, invalid
	}
	end := r.End
	if end < 0 || end >= size {
		end = size - 1
	}
	if end < r.Start {
		return 0, 0, invalid
	}
	return r.Start, end - r.Start + 1, nil
}

// body is an open data file limited to a range. WriteTo hands the file to
// the destination's ReadFrom so that sockets can use sendfile.
type body struct {
	f *os.File
	r io.LimitedReader
}

func (b *body) Read(p []byte) (int, error)               { return b.r.Read(p) }
func (b *body) Close() error                             { return b.f.Close() }
func (b *body) WriteTo(w io.Writer) (n int64, err error) { return io.Copy(w, &b.r) }

// Get opens an object version for reading (the errors of Head, and
// InvalidRange). The body reads the requested range; the caller closes it.
func (s *Store) Get(ctx context.Context, bucket, key string, opts objectstore.GetOptions) (io.ReadCloser, objectstore.ObjectInfo, error) {
	for attempt := 0; ; attempt++ {
		r, info, err := s.head(ctx, bucket, key, opts, true)
		if err != nil {
			return nil, info, err
		}
		start, n, err := resolveRange(opts.Range, r.size)
		if err != nil {
			return nil, info, err
		}
		if r.file == "" && r.size == 0 { // empty object
			return io.NopCloser(strings.NewReader("")), info, nil
		}
		if r.inline() {
			if int64(len(r.data)) != r.size {
				return nil, info, internal("fs.Get", fmt.Errorf("inline object %d holds %d bytes, its row says %d", r.id, len(r.data), r.size))
			}
			return io.NopCloser(bytes.NewReader(r.data[start : start+n])), info, nil
		}
		f, err := os.Open(s.dataPath(r.file))
		if errors.Is(err, os.ErrNotExist) && attempt < 10 {
			// Replaced or deleted between lookup and open: look again.
			continue
		}
		if err != nil {
			return nil, info, internal("fs.Get", err)
		}
		if start > 0 {
			if _, err := f.Seek(start, io.SeekStart); err != nil {
				f.Close()
				return nil, info, internal("fs.Get", err)
			}
		}
		return &body{f: f, r: io.LimitedReader{R: f, N: n}}, info, nil
	}
}

// Delete removes an object. Without versionID it removes the null version
// (versioning off or suspended) and, if versioning was ever on, leaves a
// delete marker as the latest version. With versionID it removes that
// version, promoting the next newest to latest; deleting a version that
// does not exist succeeds, as in S3. Errors: NoSuchBucket.
func (s *Store) Delete(ctx context.Context, bucket, key, versionID string) (objectstore.DeleteResult, error) {
	if _, err := s.bucket(bucket); err != nil {
		return objectstore.DeleteResult{}, err
	}
	if ValidKey(key) != nil {
		return objectstore.DeleteResult{VersionID: versionID}, nil
	}
	var res objectstore.DeleteResult
	var old []string
	err := s.writeTxFor(ctx, []string{cacheKey(bucket, key)}, func(ctx context.Context, tx *sql.Tx) error {
		v, err := s.txVersioning(ctx, tx, bucket)
		if err != nil {
			return err
		}
		if versionID != "" {
			r, err := s.lookup(ctx, tx, bucket, key, versionID)
			if err != nil {
				var se *steward.Error
				if errors.As(err, &se) && se.Kind == steward.ENotFound {
					res = objectstore.DeleteResult{VersionID: versionID}
					return nil
				}
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM versions WHERE id = ?`, r.id); err != nil {
				return err
			}
			old = append(old, r.file)
			if r.latest {
				if _, err := tx.ExecContext(ctx, `UPDATE versions SET latest = 1 WHERE id = (SELECT id FROM versions WHERE bucket = ? AND key = ? ORDER BY id DESC LIMIT 1)`, bucket, []byte(key)); err != nil {
					return err
				}
			}
			res = objectstore.DeleteResult{VersionID: r.info(bucket, v).VersionID, DeleteMarker: r.dm}
			return nil
		}
		if v != objectstore.VersioningEnabled {
			var f string
			err := s.txQueryRow(ctx, tx, `DELETE FROM versions WHERE bucket = ? AND key = ? AND version_id = 'null' RETURNING file`, bucket, []byte(key)).Scan(&f)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			old = append(old, f)
			if v == objectstore.VersioningOff {
				return nil
			}
		}
		// Versioning on or suspended: a delete marker becomes the latest.
		vid := "null"
		if v == objectstore.VersioningEnabled {
			vid = newID()
		}
		if _, err := s.txExec(ctx, tx, `UPDATE versions SET latest = 0 WHERE bucket = ? AND key = ? AND latest = 1`, bucket, []byte(key)); err != nil {
			return err
		}
		_, err = s.txExec(ctx, tx, `INSERT INTO versions(bucket, key, version_id, latest, delete_marker, size, etag, mtime, content_type, meta, checksums, tags, file)
			VALUES(?, ?, ?, 1, 1, 0, '', ?, '', '{}', '{}', '{}', '')`, bucket, []byte(key), vid, time.Now().UnixNano())
		if err != nil {
			return err
		}
		res = objectstore.DeleteResult{VersionID: vid, DeleteMarker: true}
		return nil
	})
	if err != nil {
		return objectstore.DeleteResult{}, internal("fs.Delete", err)
	}
	s.removeFiles(old)
	return res, nil
}

// PutTags replaces an object version's tags (NoSuchBucket, NoSuchKey,
// NoSuchVersion, MethodNotAllowed on a delete marker, InvalidArgument).
func (s *Store) PutTags(ctx context.Context, bucket, key, versionID string, tags map[string]string) error {
	if err := validTags(tags); err != nil {
		return err
	}
	if _, err := s.bucket(bucket); err != nil {
		return err
	}
	if ValidKey(key) != nil {
		return errNoSuchKey()
	}
	err := s.writeTxFor(ctx, []string{cacheKey(bucket, key)}, func(ctx context.Context, tx *sql.Tx) error {
		r, err := s.lookup(ctx, tx, bucket, key, versionID)
		if err != nil {
			return err
		}
		if err := tagTarget(r, versionID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE versions SET tags = ? WHERE id = ?`, marshal(tags), r.id)
		return err
	})
	return internal("fs.PutTags", err)
}

func tagTarget(r row, versionID string) error {
	if !r.dm {
		return nil
	}
	if versionID == "" {
		return errNoSuchKey()
	}
	return objectstore.Errorf(steward.EInvalid, objectstore.CodeMethodNotAllowed, "the specified method is not allowed against this resource")
}

// GetTags returns an object version's tags (errors as PutTags).
func (s *Store) GetTags(ctx context.Context, bucket, key, versionID string) (map[string]string, error) {
	if _, err := s.bucket(bucket); err != nil {
		return nil, err
	}
	if ValidKey(key) != nil {
		return nil, errNoSuchKey()
	}
	r, err := s.lookup(ctx, s.db, bucket, key, versionID)
	if err != nil {
		return nil, internal("fs.GetTags", err)
	}
	if err := tagTarget(r, versionID); err != nil {
		return nil, err
	}
	tags := unmarshalMap(r.tags)
	if tags == nil {
		tags = map[string]string{}
	}
	return tags, nil
}
