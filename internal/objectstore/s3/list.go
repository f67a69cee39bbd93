package s3store

import (
	"context"
	"net/url"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
)

// Listings ask for encoding-type=url: XML cannot carry every byte a key
// may hold (a carriage return is read back as a line feed).
// An upstream that ignores the request answers plain keys, and says so
// by not echoing the encoding type.
func decoder(enc types.EncodingType) func(*string) string {
	if enc != types.EncodingTypeUrl {
		return aws.ToString
	}
	return func(s *string) string {
		v := aws.ToString(s)
		if d, err := url.QueryUnescape(v); err == nil {
			return d
		}
		return v
	}
}

func maxKeys(n int) (int, error) {
	switch {
	case n < 0:
		return 0, objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidArgument, "max-keys must not be negative")
	case n == 0 || n > 1000:
		return 1000, nil
	}
	return n, nil
}

type entry struct {
	key string
	obj *objectstore.ObjectInfo
}

// List returns one page of keys after opts.After (NoSuchBucket,
// InvalidArgument). It asks the upstream for one entry more than the page:
// when After is a common prefix the upstream lists that prefix again (it
// is dropped), and an exactly full last page is told from a truncated one.
func (s *Store) List(ctx context.Context, bucket string, opts objectstore.ListOptions) (objectstore.ListResult, error) {
	max, err := maxKeys(opts.MaxKeys)
	if err != nil {
		return objectstore.ListResult{}, err
	}
	if validBucketName(bucket) != nil {
		return objectstore.ListResult{}, errNoSuchBucket()
	}
	ask := min(max+1, 1000)
	out, err := s.c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: s.up(bucket), Prefix: optStr(opts.Prefix), Delimiter: optStr(opts.Delimiter), StartAfter: optStr(opts.After),
		MaxKeys: aws.Int32(int32(ask)), EncodingType: types.EncodingTypeUrl,
	})
	if err != nil {
		err = s.mapErr(err, "List", bucket, "")
		if steward.KindOf(err) == steward.ENotFound {
			return objectstore.ListResult{}, errNoSuchBucket()
		}
		return objectstore.ListResult{}, err
	}
	decode := decoder(out.EncodingType)
	entries := make([]entry, 0, len(out.Contents)+len(out.CommonPrefixes))
	for _, o := range out.Contents {
		k := decode(o.Key)
		if k <= opts.After {
			continue
		}
		entries = append(entries, entry{key: k, obj: &objectstore.ObjectInfo{
			Bucket: bucket, Key: k, IsLatest: true, Size: aws.ToInt64(o.Size), ETag: quoteETag(aws.ToString(o.ETag)), LastModified: aws.ToTime(o.LastModified),
		}})
	}
	for _, p := range out.CommonPrefixes {
		if k := decode(p.Prefix); k > opts.After {
			entries = append(entries, entry{key: k})
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].key < entries[j].key })
	var res objectstore.ListResult
	if len(entries) > max {
		entries = entries[:max]
		res.IsTruncated = true
	} else if aws.ToBool(out.IsTruncated) && len(entries) > 0 {
		res.IsTruncated = true
	}
	for _, e := range entries {
		if e.obj != nil {
			res.Objects = append(res.Objects, *e.obj)
		} else {
			res.CommonPrefixes = append(res.CommonPrefixes, e.key)
		}
	}
	if res.IsTruncated {
		res.NextAfter = entries[len(entries)-1].key
	}
	return res, nil
}

// ListVersions returns one page of versions, newest first per key, delete
// markers included (NoSuchBucket, InvalidArgument). Like List it asks for
// one entry more and drops what is not strictly after the markers, for
// upstreams that list the marker itself again.
func (s *Store) ListVersions(ctx context.Context, bucket string, opts objectstore.ListVersionsOptions) (objectstore.ListVersionsResult, error) {
	max, err := maxKeys(opts.MaxKeys)
	if err != nil {
		return objectstore.ListVersionsResult{}, err
	}
	if validBucketName(bucket) != nil {
		return objectstore.ListVersionsResult{}, errNoSuchBucket()
	}
	out, err := s.c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{
		Bucket: s.up(bucket), Prefix: optStr(opts.Prefix), Delimiter: optStr(opts.Delimiter),
		KeyMarker: optStr(opts.KeyMarker), VersionIdMarker: optStr(opts.VersionIDMarker),
		MaxKeys: aws.Int32(int32(min(max+1, 1000))), EncodingType: types.EncodingTypeUrl,
	})
	if err != nil {
		err = s.mapErr(err, "ListVersions", bucket, "")
		if steward.KindOf(err) == steward.ENotFound {
			return objectstore.ListVersionsResult{}, errNoSuchBucket()
		}
		return objectstore.ListVersionsResult{}, err
	}
	decode := decoder(out.EncodingType)
	// The SDK splits versions and delete markers into two lists; merge
	// them back: by key, the latest first, then newest first (stable, so
	// the upstream's order of versions is kept). A common prefix is an
	// entry with no version.
	type ord struct {
		info objectstore.ObjectInfo
		cp   bool
		seq  int
	}
	vs := make([]ord, 0, len(out.Versions)+len(out.DeleteMarkers)+len(out.CommonPrefixes))
	for i, v := range out.Versions {
		vs = append(vs, ord{info: objectstore.ObjectInfo{Bucket: bucket, Key: decode(v.Key), VersionID: aws.ToString(v.VersionId), IsLatest: aws.ToBool(v.IsLatest),
			Size: aws.ToInt64(v.Size), ETag: quoteETag(aws.ToString(v.ETag)), LastModified: aws.ToTime(v.LastModified)}, seq: i})
	}
	for i, d := range out.DeleteMarkers {
		vs = append(vs, ord{info: objectstore.ObjectInfo{Bucket: bucket, Key: decode(d.Key), VersionID: aws.ToString(d.VersionId), IsLatest: aws.ToBool(d.IsLatest),
			DeleteMarker: true, LastModified: aws.ToTime(d.LastModified)}, seq: len(out.Versions) + i})
	}
	for _, p := range out.CommonPrefixes {
		vs = append(vs, ord{info: objectstore.ObjectInfo{Key: decode(p.Prefix)}, cp: true})
	}
	sort.SliceStable(vs, func(i, j int) bool {
		a, b := vs[i].info, vs[j].info
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		if a.IsLatest != b.IsLatest {
			return a.IsLatest
		}
		if a.DeleteMarker != b.DeleteMarker && !a.LastModified.Equal(b.LastModified) {
			return a.LastModified.After(b.LastModified)
		}
		return vs[i].seq < vs[j].seq
	})
	// Drop what the markers already covered.
	if opts.KeyMarker != "" {
		skip := 0
		for skip < len(vs) && vs[skip].info.Key < opts.KeyMarker {
			skip++
		}
		if opts.VersionIDMarker == "" {
			for skip < len(vs) && vs[skip].info.Key == opts.KeyMarker {
				skip++
			}
		} else {
			for i := skip; i < len(vs) && vs[i].info.Key == opts.KeyMarker; i++ {
				if vs[i].info.VersionID == opts.VersionIDMarker {
					skip = i + 1
					break
				}
			}
		}
		vs = vs[skip:]
	}
	res := objectstore.ListVersionsResult{IsTruncated: aws.ToBool(out.IsTruncated) && len(vs) > 0}
	if len(vs) > max {
		vs = vs[:max]
		res.IsTruncated = true
	}
	for _, v := range vs {
		if v.cp {
			res.CommonPrefixes = append(res.CommonPrefixes, v.info.Key)
		} else {
			res.Versions = append(res.Versions, v.info)
		}
	}
	if res.IsTruncated {
		last := vs[len(vs)-1]
		res.NextKeyMarker = last.info.Key
		if !last.cp {
			res.NextVersionIDMarker = last.info.VersionID
			if res.NextVersionIDMarker == "" {
				res.NextVersionIDMarker = "null"
			}
		}
	}
	return res, nil
}
