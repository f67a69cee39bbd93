package fs

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
)

// Keys are stored as BLOBs, so SQLite orders them by memcmp: UTF-8 binary
// order. Every comparison passes []byte (a TEXT argument would sort before
// every BLOB). Since keys hold no NUL, k+"\x00" is the least key after k.

// prefixEnd returns the least string greater than every string that
// starts with p, or "" if there is none.
func prefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}

func maxKeys(n int) (int, error) {
	if n < 0 {
		return 0, objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidArgument, "max-keys must be non-negative")
	}
	if n == 0 || n > 1000 {
		return 1000, nil
	}
	return n, nil
}

// rollup returns the common prefix key falls under, or "".
func rollup(key, prefix, delim string) string {
	if delim == "" {
		return ""
	}
	i := strings.Index(key[len(prefix):], delim)
	if i < 0 {
		return ""
	}
	return key[:len(prefix)+i+len(delim)]
}

func rangeQuery(base string, lo, hi string, order string, limit int) (string, []any) {
	q := base + ` AND key >= ?`
	args := []any{[]byte(lo)}
	if hi != "" {
		q += ` AND key < ?`
		args = append(args, []byte(hi))
	}
	q += ` ORDER BY ` + order + ` LIMIT ?`
	args = append(args, limit)
	return q, args
}

// List returns one page of the latest versions that are not delete
// markers, in UTF-8 binary key order (NoSuchBucket, InvalidArgument).
func (s *Store) List(ctx context.Context, bucket string, opts objectstore.ListOptions) (objectstore.ListResult, error) {
	var res objectstore.ListResult
	b, err := s.bucket(bucket)
	if err != nil {
		return res, err
	}
	max, err := maxKeys(opts.MaxKeys)
	if err != nil {
		return res, err
	}
	lo := opts.Prefix
	if opts.After >= lo {
		lo = opts.After + "\x00"
	}
	hi := ""
	if opts.Prefix != "" {
		if hi = prefixEnd(opts.Prefix); hi == "" {
			return res, nil
		}
	}
	batch := max + 1
	count := 0
	for {
		q, args := rangeQuery(`SELECT `+rowCols+` FROM versions WHERE bucket = ? AND latest = 1`, lo, hi, `key`, batch)
		rows, err := s.db.QueryContext(ctx, q, append([]any{bucket}, args...)...)
		if err != nil {
			return res, internal("fs.List", err)
		}
		n, jumped, done := 0, false, false
		for rows.Next() {
			r, err := scanRow(rows)
			if err != nil {
				rows.Close()
				return res, internal("fs.List", err)
			}
			n++
			lo = r.key + "\x00"
			if r.dm {
				continue
			}
			if cp := rollup(r.key, opts.Prefix, opts.Delimiter); cp != "" {
				if cp > opts.After {
					if count == max {
						res.IsTruncated, done = true, true
						break
					}
					res.CommonPrefixes = append(res.CommonPrefixes, cp)
					res.NextAfter = cp
					count++
				}
				if lo = prefixEnd(cp); lo == "" {
					done = true
				}
				jumped = true
				break
			}
			if count == max {
				res.IsTruncated, done = true, true
				break
			}
			res.Objects = append(res.Objects, r.info(bucket, b.Versioning))
			res.NextAfter = r.key
			count++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return res, internal("fs.List", err)
		}
		if done || (!jumped && n < batch) {
			return res, nil
		}
	}
}

// ListVersions returns one page of versions and delete markers, keys in
// UTF-8 binary order and each key's versions newest first (NoSuchBucket,
// InvalidArgument).
func (s *Store) ListVersions(ctx context.Context, bucket string, opts objectstore.ListVersionsOptions) (objectstore.ListVersionsResult, error) {
	var res objectstore.ListVersionsResult
	b, err := s.bucket(bucket)
	if err != nil {
		return res, err
	}
	max, err := maxKeys(opts.MaxKeys)
	if err != nil {
		return res, err
	}
	lo := opts.Prefix
	if opts.KeyMarker != "" && opts.KeyMarker >= lo {
		lo = opts.KeyMarker + "\x00"
	}
	hi := ""
	if opts.Prefix != "" {
		if hi = prefixEnd(opts.Prefix); hi == "" {
			return res, nil
		}
	}
	// A version marker resumes inside KeyMarker's versions.
	var midKey string
	var midID int64
	mid := false
	if opts.KeyMarker != "" && opts.VersionIDMarker != "" && strings.HasPrefix(opts.KeyMarker, opts.Prefix) {
		err := s.db.QueryRowContext(ctx, `SELECT id FROM versions WHERE bucket = ? AND key = ? AND version_id = ?`,
			bucket, []byte(opts.KeyMarker), opts.VersionIDMarker).Scan(&midID)
		if err == nil {
			mid, midKey = true, opts.KeyMarker
		} else if !errors.Is(err, sql.ErrNoRows) {
			return res, internal("fs.ListVersions", err)
		}
	}
	batch := max + 1
	count := 0
	for {
		var rows *sql.Rows
		if mid {
			rows, err = s.db.QueryContext(ctx, `SELECT `+rowCols+` FROM versions WHERE bucket = ? AND key = ? AND id < ? ORDER BY id DESC LIMIT ?`,
				bucket, []byte(midKey), midID, batch)
		} else {
			q, args := rangeQuery(`SELECT `+rowCols+` FROM versions WHERE bucket = ?`, lo, hi, `key, id DESC`, batch)
			rows, err = s.db.QueryContext(ctx, q, append([]any{bucket}, args...)...)
		}
		if err != nil {
			return res, internal("fs.ListVersions", err)
		}
		wasMid := mid
		n, jumped, done := 0, false, false
		for rows.Next() {
			r, err := scanRow(rows)
			if err != nil {
				rows.Close()
				return res, internal("fs.ListVersions", err)
			}
			n++
			mid, midKey, midID = true, r.key, r.id
			lo = r.key + "\x00"
			if cp := rollup(r.key, opts.Prefix, opts.Delimiter); cp != "" {
				if cp > opts.KeyMarker {
					if count == max {
						res.IsTruncated, done = true, true
						break
					}
					res.CommonPrefixes = append(res.CommonPrefixes, cp)
					res.NextKeyMarker, res.NextVersionIDMarker = cp, ""
					count++
				}
				mid = false
				if lo = prefixEnd(cp); lo == "" {
					done = true
				}
				jumped = true
				break
			}
			if count == max {
				res.IsTruncated, done = true, true
				break
			}
			info := r.info(bucket, b.Versioning)
			res.Versions = append(res.Versions, info)
			res.NextKeyMarker, res.NextVersionIDMarker = r.key, info.VersionID
			count++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return res, internal("fs.ListVersions", err)
		}
		if done {
			return res, nil
		}
		if !jumped && n < batch {
			if wasMid {
				mid = false // that key is finished; go on after it
				continue
			}
			return res, nil
		}
	}
}
