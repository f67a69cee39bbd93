package fs

import (
	"context"
	"crypto/md5"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
)

// MinPartSize is the least size of every part but the last (EntityTooSmall).
const MinPartSize = 5 << 20

// MaxParts is the highest part number.
const MaxParts = 10000

func errNoSuchUpload() error {
	return objectstore.Errorf(steward.ENotFound, objectstore.CodeNoSuchUpload, "the specified multipart upload does not exist")
}

func getUpload(ctx context.Context, q querier, bucket, key, uploadID string) (objectstore.Upload, error) {
	u := objectstore.Upload{Bucket: bucket, Key: key, UploadID: uploadID}
	var ini int64
	var opts string
	err := q.QueryRowContext(ctx, `SELECT initiated, opts FROM uploads WHERE upload_id = ? AND bucket = ? AND key = ?`,
		uploadID, bucket, []byte(key)).Scan(&ini, &opts)
	if errors.Is(err, sql.ErrNoRows) {
		return u, errNoSuchUpload()
	}
	if err != nil {
		return u, err
	}
	u.Initiated = time.Unix(0, ini).UTC()
	u.Opts = unmarshalOpts(opts)
	return u, nil
}

// storedOpts is how an upload's PutOptions are kept: the maps go through
// marshal, which keeps bytes that are not UTF-8 (latin-1 metadata), as
// plain JSON would not.
type storedOpts struct {
	objectstore.PutOptions
	Metadata string `json:",omitempty"` // marshal(PutOptions.Metadata)
	Tags     string `json:",omitempty"`
}

func marshalOpts(o objectstore.PutOptions) string {
	so := storedOpts{PutOptions: o, Metadata: marshal(o.Metadata), Tags: marshal(o.Tags)}
	so.PutOptions.Metadata, so.PutOptions.Tags = nil, nil
	b, _ := json.Marshal(so)
	return string(b)
}

// unmarshalOpts reads what marshalOpts wrote (and the plain JSON of
// PutOptions that earlier versions wrote).
func unmarshalOpts(s string) objectstore.PutOptions {
	var raw map[string]json.RawMessage
	json.Unmarshal([]byte(s), &raw)
	var o objectstore.PutOptions
	if m, ok := raw["Metadata"]; ok && len(m) > 0 && m[0] == '"' {
		var so storedOpts
		json.Unmarshal([]byte(s), &so)
		o = so.PutOptions
		o.Metadata, o.Tags = unmarshalMap(so.Metadata), unmarshalMap(so.Tags)
		return o
	}
	json.Unmarshal([]byte(s), &o)
	return o
}

// CreateMultipart starts a multipart upload (NoSuchBucket,
// InvalidArgument, KeyTooLongError). opts apply to the completed object.
func (s *Store) CreateMultipart(ctx context.Context, bucket, key string, opts objectstore.PutOptions) (objectstore.Upload, error) {
	if err := ValidKey(key); err != nil {
		return objectstore.Upload{}, err
	}
	if _, err := s.bucket(bucket); err != nil {
		return objectstore.Upload{}, err
	}
	if err := validTags(opts.Tags); err != nil {
		return objectstore.Upload{}, err
	}
	u := objectstore.Upload{Bucket: bucket, Key: key, UploadID: newID(), Initiated: time.Now().UTC(), Opts: opts}
	o := marshalOpts(opts)
	err := s.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM buckets WHERE name = ?`, bucket).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return errNoSuchBucket(bucket)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO uploads(upload_id, bucket, key, initiated, opts) VALUES(?, ?, ?, ?, ?)`,
			u.UploadID, bucket, []byte(key), u.Initiated.UnixNano(), o)
		return err
	})
	if err != nil {
		return objectstore.Upload{}, internal("fs.CreateMultipart", err)
	}
	return u, nil
}

// UploadPart stores (or replaces) part number 1..10000 of an upload
// (NoSuchBucket, NoSuchUpload, InvalidArgument, BadDigest, IncompleteBody).
func (s *Store) UploadPart(ctx context.Context, bucket, key, uploadID string, number int, body io.Reader, size int64, opts objectstore.PutOptions) (objectstore.Part, error) {
	if number < 1 || number > MaxParts {
		return objectstore.Part{}, objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidArgument, "part number must be an integer between 1 and %d, inclusive", MaxParts)
	}
	if _, err := s.bucket(bucket); err != nil {
		return objectstore.Part{}, err
	}
	if _, err := getUpload(ctx, s.db, bucket, key, uploadID); err != nil {
		return objectstore.Part{}, internal("fs.UploadPart", err)
	}
	w, err := s.writeData(ctx, body, size, opts.ContentMD5, opts.Checksums, false)
	if err != nil {
		return objectstore.Part{}, internal("fs.UploadPart", err)
	}
	defer s.settled()
	w.addVerified(opts.VerifiedChecksums)
	p := objectstore.Part{Number: number, ETag: `"` + hex.EncodeToString(w.md5) + `"`, Size: w.size, LastModified: time.Now().UTC(), Checksums: w.checksums}
	var old string
	err = s.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := getUpload(ctx, tx, bucket, key, uploadID); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `SELECT file FROM parts WHERE upload_id = ? AND number = ?`, uploadID, number).Scan(&old)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO parts(upload_id, number, etag, size, mtime, checksums, file) VALUES(?, ?, ?, ?, ?, ?, ?)`,
			uploadID, number, p.ETag, p.Size, p.LastModified.UnixNano(), marshal(p.Checksums), w.file)
		return err
	})
	if err != nil {
		s.removeFiles([]string{w.file})
		return objectstore.Part{}, internal("fs.UploadPart", err)
	}
	s.removeFiles([]string{old})
	return p, nil
}

type storedPart struct {
	objectstore.Part
	file string
}

func (s *Store) parts(ctx context.Context, q querier, uploadID string, after, limit int) ([]storedPart, error) {
	rows, err := q.QueryContext(ctx, `SELECT number, etag, size, mtime, checksums, file FROM parts WHERE upload_id = ? AND number > ? ORDER BY number LIMIT ?`, uploadID, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storedPart
	for rows.Next() {
		var p storedPart
		var mtime int64
		var sums string
		if err := rows.Scan(&p.Number, &p.ETag, &p.Size, &mtime, &sums, &p.file); err != nil {
			return nil, err
		}
		p.LastModified = time.Unix(0, mtime).UTC()
		p.Checksums = unmarshalMap(sums)
		out = append(out, p)
	}
	return out, rows.Err()
}

// partsReader reads the data files of parts one after another, opening
// each only when it is reached.
type partsReader struct {
	s     *Store
	parts []storedPart
	cur   *os.File
}

func (r *partsReader) Read(p []byte) (int, error) {
	for {
		if r.cur == nil {
			if len(r.parts) == 0 {
				return 0, io.EOF
			}
			if r.parts[0].file == "" { // empty part
				r.parts = r.parts[1:]
				continue
			}
			f, err := os.Open(r.s.dataPath(r.parts[0].file))
			if errors.Is(err, os.ErrNotExist) {
				return 0, errNoSuchUpload() // completed or aborted meanwhile
			}
			if err != nil {
				return 0, err
			}
			r.cur, r.parts = f, r.parts[1:]
		}
		n, err := r.cur.Read(p)
		if err == io.EOF {
			r.cur.Close()
			r.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

// copyTo appends the parts not yet read to f with io.Copy between
// files, which the kernel does (copy_file_range: no pass through this
// process, a shared extent where the filesystem can reflink), handing
// each part to writeback as it lands when flush is set.
func (r *partsReader) copyTo(ctx context.Context, f *os.File, flush bool) (int64, error) {
	var off int64
	for _, p := range r.parts {
		if err := ctx.Err(); err != nil {
			return off, err
		}
		if p.file == "" {
			continue
		}
		src, err := os.Open(r.s.dataPath(p.file))
		if errors.Is(err, os.ErrNotExist) {
			return off, errNoSuchUpload() // completed or aborted meanwhile
		}
		if err != nil {
			return off, err
		}
		n, err := io.Copy(f, src)
		src.Close()
		if err == nil && n != p.Size {
			err = fmt.Errorf("fs: part %d holds %d bytes, its record %d", p.Number, n, p.Size)
		}
		if err != nil {
			return off, err
		}
		if flush {
			startWriteback(f, off, n)
		}
		off += n
	}
	r.parts = nil
	return off, nil
}

func (r *partsReader) close() {
	if r.cur != nil {
		r.cur.Close()
	}
}

// CompleteMultipart assembles the named parts into the object (NoSuchBucket,
// NoSuchUpload, InvalidArgument for an empty list, InvalidPartOrder,
// InvalidPart for a missing part or ETag mismatch, EntityTooSmall for a
// part but the last under 5 MiB, and the preconditions given to
// CreateMultipart). The ETag is the MD5 of the parts' MD5s, "-N".
func (s *Store) CompleteMultipart(ctx context.Context, bucket, key, uploadID string, parts []objectstore.CompletePart) (objectstore.ObjectInfo, error) {
	if _, err := s.bucket(bucket); err != nil {
		return objectstore.ObjectInfo{}, err
	}
	u, err := getUpload(ctx, s.db, bucket, key, uploadID)
	if err != nil {
		if info, ok := s.completedUpload(ctx, bucket, key, uploadID, parts); ok {
			return info, nil
		}
		return objectstore.ObjectInfo{}, internal("fs.CompleteMultipart", err)
	}
	if len(parts) == 0 {
		return objectstore.ObjectInfo{}, objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidArgument, "you must specify at least one part")
	}
	for i, p := range parts {
		if p.Number < 1 || p.Number > MaxParts {
			return objectstore.ObjectInfo{}, objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidPart, "part number %d is out of range", p.Number)
		}
		if i > 0 && p.Number <= parts[i-1].Number {
			return objectstore.ObjectInfo{}, objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidPartOrder, "the list of parts was not in ascending order")
		}
	}
	stored, err := s.parts(ctx, s.db, uploadID, 0, MaxParts)
	if err != nil {
		return objectstore.ObjectInfo{}, internal("fs.CompleteMultipart", err)
	}
	byNum := make(map[int]storedPart, len(stored))
	for _, p := range stored {
		byNum[p.Number] = p
	}
	use := make([]storedPart, 0, len(parts))
	sums := md5.New()
	for i, p := range parts {
		sp, ok := byNum[p.Number]
		if !ok || strings.Trim(p.ETag, `"`) != strings.Trim(sp.ETag, `"`) {
			return objectstore.ObjectInfo{}, objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidPart, "one or more of the specified parts could not be found or its entity tag did not match")
		}
		if i < len(parts)-1 && sp.Size < MinPartSize {
			return objectstore.ObjectInfo{}, objectstore.Errorf(steward.EInvalid, objectstore.CodeEntityTooSmall, "your proposed upload is smaller than the minimum allowed object size")
		}
		raw, _ := hex.DecodeString(strings.Trim(sp.ETag, `"`))
		sums.Write(raw)
		use = append(use, sp)
	}
	cond := objectstore.PutOptions{IfMatch: u.Opts.IfMatch, IfNoneMatch: u.Opts.IfNoneMatch}
	if cond.IfMatch != "" || cond.IfNoneMatch != "" {
		cur, err := s.current(ctx, s.db, bucket, key)
		if err != nil {
			return objectstore.ObjectInfo{}, internal("fs.CompleteMultipart", err)
		}
		if err := checkWrite(cur, cond); err != nil {
			return objectstore.ObjectInfo{}, err
		}
	}
	var total int64
	for _, p := range use {
		total += p.Size
	}
	pr := &partsReader{s: s, parts: use}
	w, err := s.writeData(ctx, pr, total, nil, nil, total <= InlineMax)
	pr.close()
	if err != nil {
		return objectstore.ObjectInfo{}, internal("fs.CompleteMultipart", err)
	}
	defer s.settled()
	r := row{
		key:         key,
		size:        w.size,
		etag:        fmt.Sprintf(`"%x-%d"`, sums.Sum(nil), len(parts)),
		contentType: u.Opts.ContentType,
		meta:        marshal(u.Opts.Metadata),
		checksums:   "{}",
		tags:        marshal(u.Opts.Tags),
		file:        w.file,
		data:        w.inline,
	}
	var partFiles []string
	info, err := s.commitVersion(ctx, bucket, r, &cond, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := getUpload(ctx, tx, bucket, key, uploadID); err != nil {
			return err
		}
		all, err := s.parts(ctx, tx, uploadID, 0, MaxParts)
		if err != nil {
			return err
		}
		for _, p := range all {
			partFiles = append(partFiles, p.file)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM parts WHERE upload_id = ?`, uploadID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM uploads WHERE upload_id = ?`, uploadID)
		return err
	}, func(ctx context.Context, tx *sql.Tx, info objectstore.ObjectInfo) error {
		now := info.LastModified.UnixNano()
		if _, err := tx.ExecContext(ctx, `DELETE FROM completed_uploads WHERE completed < ?`, now-int64(CompletedUploadTTL)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO completed_uploads(upload_id, bucket, key, etag, version_id, completed) VALUES(?, ?, ?, ?, ?, ?)`,
			uploadID, bucket, []byte(key), info.ETag, info.VersionID, now)
		return err
	})
	if err != nil {
		s.removeFiles([]string{w.file})
		if info, ok := s.completedUpload(ctx, bucket, key, uploadID, parts); ok {
			return info, nil // a concurrent completion of the same parts won
		}
		return info, internal("fs.CompleteMultipart", err)
	}
	s.removeFiles(partFiles)
	return info, nil
}

// CompletedUploadTTL is how long a completed upload is remembered: within
// it, completing the upload again with the same parts answers the same
// result, as S3 does for a client that retries a completion whose answer
// it lost.
const CompletedUploadTTL = 24 * time.Hour

// completedUpload finds uploadID among the uploads completed within
// CompletedUploadTTL with the same parts (their ETags give the object's
// multipart ETag) and returns what the completion answered.
func (s *Store) completedUpload(ctx context.Context, bucket, key, uploadID string, parts []objectstore.CompletePart) (objectstore.ObjectInfo, bool) {
	if len(parts) == 0 {
		return objectstore.ObjectInfo{}, false
	}
	var etag, vid string
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT etag, version_id, completed FROM completed_uploads WHERE upload_id = ? AND bucket = ? AND key = ?`,
		uploadID, bucket, []byte(key)).Scan(&etag, &vid, &at)
	if err != nil || time.Since(time.Unix(0, at)) > CompletedUploadTTL {
		return objectstore.ObjectInfo{}, false
	}
	sums := md5.New()
	for _, p := range parts {
		raw, err := hex.DecodeString(strings.Trim(p.ETag, `"`))
		if err != nil || len(raw) != md5.Size {
			return objectstore.ObjectInfo{}, false
		}
		sums.Write(raw)
	}
	if fmt.Sprintf(`"%x-%d"`, sums.Sum(nil), len(parts)) != etag {
		return objectstore.ObjectInfo{}, false
	}
	return objectstore.ObjectInfo{Bucket: bucket, Key: key, ETag: etag, VersionID: vid, IsLatest: true, LastModified: time.Unix(0, at).UTC()}, true
}

// AbortMultipart discards an upload and its parts (NoSuchBucket,
// NoSuchUpload).
func (s *Store) AbortMultipart(ctx context.Context, bucket, key, uploadID string) error {
	if _, err := s.bucket(bucket); err != nil {
		return err
	}
	var files []string
	err := s.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := getUpload(ctx, tx, bucket, key, uploadID); err != nil {
			return err
		}
		all, err := s.parts(ctx, tx, uploadID, 0, MaxParts)
		if err != nil {
			return err
		}
		for _, p := range all {
			files = append(files, p.file)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM parts WHERE upload_id = ?`, uploadID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM uploads WHERE upload_id = ?`, uploadID)
		return err
	})
	if err != nil {
		return internal("fs.AbortMultipart", err)
	}
	s.removeFiles(files)
	return nil
}

// ListParts returns up to max (0 means 1000) parts numbered above after,
// and whether more follow (NoSuchBucket, NoSuchUpload, InvalidArgument).
func (s *Store) ListParts(ctx context.Context, bucket, key, uploadID string, after, max int) ([]objectstore.Part, bool, error) {
	if _, err := s.bucket(bucket); err != nil {
		return nil, false, err
	}
	if after < 0 {
		return nil, false, objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidArgument, "part-number-marker must be non-negative")
	}
	max, err := maxKeys(max)
	if err != nil {
		return nil, false, err
	}
	if _, err := getUpload(ctx, s.db, bucket, key, uploadID); err != nil {
		return nil, false, internal("fs.ListParts", err)
	}
	stored, err := s.parts(ctx, s.db, uploadID, after, max+1)
	if err != nil {
		return nil, false, internal("fs.ListParts", err)
	}
	truncated := len(stored) > max
	if truncated {
		stored = stored[:max]
	}
	out := make([]objectstore.Part, len(stored))
	for i, p := range stored {
		out[i] = p.Part
	}
	return out, truncated, nil
}

// ListUploads returns up to opts.MaxUploads (0 means 1000) uploads in
// progress whose keys start with opts.Prefix, by key then initiation
// time, after the markers (NoSuchBucket).
func (s *Store) ListUploads(ctx context.Context, bucket string, opts objectstore.ListUploadsOptions) ([]objectstore.Upload, error) {
	if _, err := s.bucket(bucket); err != nil {
		return nil, err
	}
	max, err := maxKeys(opts.MaxUploads)
	if err != nil {
		return nil, err
	}
	hi := ""
	if opts.Prefix != "" {
		if hi = prefixEnd(opts.Prefix); hi == "" {
			return nil, nil
		}
	}
	base := `SELECT upload_id, key, initiated, opts FROM uploads WHERE bucket = ?`
	args := []any{bucket}
	lo := opts.Prefix
	if opts.KeyMarker != "" && opts.KeyMarker >= lo {
		var ini int64
		err := s.db.QueryRowContext(ctx, `SELECT initiated FROM uploads WHERE bucket = ? AND key = ? AND upload_id = ?`,
			bucket, []byte(opts.KeyMarker), opts.UploadIDMarker).Scan(&ini)
		switch {
		case opts.UploadIDMarker != "" && err == nil:
			base += ` AND (key > ? OR (key = ? AND (initiated, upload_id) > (?, ?)))`
			args = append(args, []byte(opts.KeyMarker), []byte(opts.KeyMarker), ini, opts.UploadIDMarker)
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return nil, internal("fs.ListUploads", err)
		default:
			base += ` AND key > ?`
			args = append(args, []byte(opts.KeyMarker))
		}
	}
	q, rargs := rangeQuery(base, lo, hi, `key, initiated, upload_id`, max)
	rows, err := s.db.QueryContext(ctx, q, append(args, rargs...)...)
	if err != nil {
		return nil, internal("fs.ListUploads", err)
	}
	defer rows.Close()
	var out []objectstore.Upload
	for rows.Next() {
		u := objectstore.Upload{Bucket: bucket}
		var key []byte
		var ini int64
		var opts string
		if err := rows.Scan(&u.UploadID, &key, &ini, &opts); err != nil {
			return nil, internal("fs.ListUploads", err)
		}
		u.Key = string(key)
		u.Initiated = time.Unix(0, ini).UTC()
		u.Opts = unmarshalOpts(opts)
		out = append(out, u)
	}
	return out, internal("fs.ListUploads", rows.Err())
}
