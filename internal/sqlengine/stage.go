package sqlengine

import (
	"context"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"

	"os"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
)

// MaxFiles bounds the files of one table in one query.
const MaxFiles = 100_000

// stage copies t's data files from the object store into dir/t<i>/ and
// returns their absolute paths. Keys are written through an os.Root, so no
// key can escape the directory.
func stage(ctx context.Context, objs ObjectReader, t *Table, dir string, i int) ([]string, error) {
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
			if err := copyObject(ctx, objs, root, t.Bucket, o.Key, rel); err != nil {
				return nil, err
			}
			files = append(files, filepath.Join(sub, filepath.FromSlash(rel)))
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

func copyObject(ctx context.Context, objs ObjectReader, root *os.Root, bucket, key, rel string) error {
	if d := path.Dir(rel); d != "." {
		if err := root.MkdirAll(d, 0o700); err != nil {
			return steward.WrapError(steward.EInternal, "sqlengine.stage", err, "cannot stage data")
		}
	}
	body, _, err := objs.Get(ctx, bucket, key, objectstore.GetOptions{})
	if err != nil {
		return steward.WrapError(steward.EUnavailable, "sqlengine.stage", err, "cannot read table data")
	}
	defer body.Close()
	f, err := root.OpenFile(rel, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return steward.WrapError(steward.EInternal, "sqlengine.stage", err, "cannot stage data")
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		return steward.WrapError(steward.EUnavailable, "sqlengine.stage", err, "cannot read table data")
	}
	return f.Close()
}
