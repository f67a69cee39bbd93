package sqlengine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
)

// MaxFiles bounds the files of one table in one query.
const MaxFiles = 100_000

// LocalFiler is an optional capability of an ObjectReader whose objects
// are files on this machine (the embedded fs store). Staging hard-links
// those files into the query's directory instead of copying them.
type LocalFiler interface {
	// LocalFile returns the path of a local file holding the latest
	// version of bucket/key and that version's ETag; "" for an object
	// without a file of its own (empty, or small and kept inline), which
	// the caller reads with Get. The file is never modified in place (a
	// new version is a new file), so a hard link to it is an immutable
	// snapshot. It may vanish before the caller links it; the caller then
	// asks again. Errors as Get's (ENotFound for a missing key).
	LocalFile(ctx context.Context, bucket, key string) (path, etag string, err error)
}

// stage makes t's data files visible in dir/t<i>/ and returns their
// absolute paths. Each file is a hard link to the object store's own file
// (LocalFiler), to a cache entry (cache, for a remote store), or else a
// copy; a link to an immutable inode means that a concurrent overwrite of
// an object cannot change a running query's input. Parent directories are
// made through an os.Root, and keys are checked by belongs, so no key can
// escape the directory.
func stage(ctx context.Context, objs ObjectReader, cache *Cache, t *Table, dir string, i int) ([]string, error) {
	sub := filepath.Join(dir, fmt.Sprintf("t%d", i))
	if err := os.Mkdir(sub, 0o700); err != nil {
		return nil, steward.WrapError(steward.EInternal, "sqlengine.stage", err, "cannot stage data")
	}
	root, err := os.OpenRoot(sub)
	if err != nil {
		return nil, steward.WrapError(steward.EInternal, "sqlengine.stage", err, "cannot stage data")
	}
	defer root.Close()
	prefix := strings.TrimSuffix(t.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	lf, local := objs.(LocalFiler)
	var files []string
	after := ""
	for {
		res, err := objs.List(ctx, t.Bucket, objectstore.ListOptions{Prefix: prefix, After: after})
		if err != nil {
			return nil, steward.WrapError(steward.EUnavailable, "sqlengine.stage", err, "cannot read table "+t.Name)
		}
		for _, o := range res.Objects {
			rel := strings.TrimPrefix(o.Key, prefix)
			if !belongs(rel, t.Format) {
				continue
			}
			if len(files) >= MaxFiles {
				return nil, Errorf(steward.ETooLarge, StateLimit, "table %s has more than %d files", t.Name, MaxFiles)
			}
			if d := path.Dir(rel); d != "." {
				if err := root.MkdirAll(d, 0o700); err != nil {
					return nil, steward.WrapError(steward.EInternal, "sqlengine.stage", err, "cannot stage data")
				}
			}
			dst := filepath.Join(sub, filepath.FromSlash(rel))
			switch {
			case local:
				err = linkLocal(ctx, lf, objs, root, t.Bucket, o.Key, rel, dst)
			case cache != nil:
				err = cache.Link(ctx, objs, o, dst)
			default:
				err = copyObject(ctx, objs, root, t.Bucket, o.Key, rel)
			}
			if err != nil {
				return nil, err
			}
			files = append(files, dst)
		}
		if !res.IsTruncated || res.NextAfter == "" {
			break
		}
		after = res.NextAfter
	}
	return files, nil
}

// belongs reports whether the object at rel (relative to the dataset's
// prefix) is one of its data files: directly under it or under partition
// directories, with the dataset's format, no hidden or temporary names.
func belongs(rel, format string) bool {
	if rel == "" || strings.HasPrefix(rel, "/") || path.Clean(rel) != rel || strings.Contains(rel, "..") || strings.ContainsRune(rel, 0) {
		return false
	}
	segs := strings.Split(rel, "/")
	for _, s := range segs[:len(segs)-1] {
		if !strings.Contains(s, "=") {
			return false
		}
	}
	base := segs[len(segs)-1]
	if strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_") {
		return false
	}
	k := strings.ToLower(base)
	for _, z := range []string{".gz", ".zst"} {
		k = strings.TrimSuffix(k, z)
	}
	switch format {
	case "parquet":
		return strings.HasSuffix(k, ".parquet") || strings.HasSuffix(k, ".pq")
	case "csv":
		return strings.HasSuffix(k, ".csv") || strings.HasSuffix(k, ".tsv")
	case "json":
		return strings.HasSuffix(k, ".json") || strings.HasSuffix(k, ".jsonl") || strings.HasSuffix(k, ".ndjson")
	}
	return false
}

// linkLocal hard-links the store's file for bucket/key to dst (inside
// root, at rel). If the file was replaced between the look-up and the link
// it looks again; across file systems (EXDEV) it copies, and an object
// without a file of its own (empty, or small and kept in the store's
// index) is copied from objs.
func linkLocal(ctx context.Context, lf LocalFiler, objs ObjectReader, root *os.Root, bucket, key, rel, dst string) error {
	for attempt := 0; ; attempt++ {
		src, _, err := lf.LocalFile(ctx, bucket, key)
		if err != nil {
			return steward.WrapError(steward.EUnavailable, "sqlengine.stage", err, "cannot read table data")
		}
		if src == "" {
			return copyObject(ctx, objs, root, bucket, key, rel)
		}
		err = os.Link(src, dst)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, os.ErrNotExist) && attempt < 10:
			continue
		case errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EMLINK):
			// Another file system (or one without hard links): copy. The
			// open file keeps the version even if it is replaced now.
			return copyFile(root, src, rel)
		}
		return steward.WrapError(steward.EInternal, "sqlengine.stage", err, "cannot stage data")
	}
}

func copyFile(root *os.Root, src, rel string) error {
	in, err := os.Open(src)
	if err != nil {
		return steward.WrapError(steward.EUnavailable, "sqlengine.stage", err, "cannot read table data")
	}
	defer in.Close()
	return writeFile(root, rel, in)
}

func copyObject(ctx context.Context, objs ObjectReader, root *os.Root, bucket, key, rel string) error {
	body, _, err := objs.Get(ctx, bucket, key, objectstore.GetOptions{})
	if err != nil {
		return steward.WrapError(steward.EUnavailable, "sqlengine.stage", err, "cannot read table data")
	}
	defer body.Close()
	return writeFile(root, rel, body)
}

func writeFile(root *os.Root, rel string, r io.Reader) error {
	f, err := root.OpenFile(rel, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return steward.WrapError(steward.EInternal, "sqlengine.stage", err, "cannot stage data")
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return steward.WrapError(steward.EUnavailable, "sqlengine.stage", err, "cannot read table data")
	}
	if err := f.Close(); err != nil {
		return steward.WrapError(steward.EInternal, "sqlengine.stage", err, "cannot stage data")
	}
	return nil
}
