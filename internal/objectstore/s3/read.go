package s3store

import (
	"context"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
)

func quoteETag(e string) string {
	if e == "" || strings.HasPrefix(e, `"`) {
		return e
	}
	return `"` + e + `"`
}

func checksumsOf(crc32, crc32c, crc64, sha1, sha256 *string) map[string]string {
	var m map[string]string
	for _, c := range []struct {
		alg string
		v   *string
	}{{"CRC32", crc32}, {"CRC32C", crc32c}, {"CRC64NVME", crc64}, {"SHA1", sha1}, {"SHA256", sha256}} {
		if v := aws.ToString(c.v); v != "" && !strings.Contains(v, "-") { // composite multipart sums are not the object's
			if m == nil {
				m = map[string]string{}
			}
			m[c.alg] = v
		}
	}
	return m
}

func setPutChecksums(in *s3.PutObjectInput, sums map[string]string) {
	in.ChecksumCRC32 = optStr(sums["CRC32"])
	in.ChecksumCRC32C = optStr(sums["CRC32C"])
	in.ChecksumCRC64NVME = optStr(sums["CRC64NVME"])
	in.ChecksumSHA1 = optStr(sums["SHA1"])
	in.ChecksumSHA256 = optStr(sums["SHA256"])
}

func rangeHeader(r *objectstore.Range) *string {
	if r == nil {
		return nil
	}
	if r.Start < 0 {
		return aws.String("bytes=" + strconv.FormatInt(r.Start, 10))
	}
	return aws.String("bytes=" + strconv.FormatInt(r.Start, 10) + "-" + strconv.FormatInt(r.End, 10))
}

func optTimeVal(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// totalSize reads the object's size from "bytes a-b/total".
func totalSize(contentRange string, n int64) int64 {
	if i := strings.LastIndexByte(contentRange, '/'); i >= 0 {
		if t, err := strconv.ParseInt(contentRange[i+1:], 10, 64); err == nil {
			return t
		}
	}
	return n
}

// headFields is what GetObject and HeadObject both answer.
type headFields struct {
	versionID, etag, contentType                                   *string
	cacheControl, contentDisposition, contentEncoding, contentLang *string
	expires                                                        *string
	lastModified                                                   *time.Time
	metadata                                                       map[string]string
	tagCount                                                       *int32
}

func (s *Store) info(ctx context.Context, bucket, key string, h headFields, size int64) (objectstore.ObjectInfo, error) {
	info := objectstore.ObjectInfo{
		Bucket: bucket, Key: key, VersionID: aws.ToString(h.versionID), Size: size,
		ETag: quoteETag(aws.ToString(h.etag)), LastModified: aws.ToTime(h.lastModified), ContentType: aws.ToString(h.contentType),
	}
	var meta map[string]string
	set := func(k string, v *string) {
		if aws.ToString(v) == "" {
			return
		}
		if meta == nil {
			meta = map[string]string{}
		}
		meta[k] = *v
	}
	for k, v := range h.metadata {
		set(strings.ToLower(k), aws.String(v))
	}
	set(hCacheControl, h.cacheControl)
	set(hContentDisposition, h.contentDisposition)
	set(hContentEncoding, h.contentEncoding)
	set(hContentLanguage, h.contentLang)
	set(hExpires, h.expires)
	info.Metadata = meta
	if aws.ToInt32(h.tagCount) > 0 {
		tags, err := s.GetTags(ctx, bucket, key, info.VersionID)
		if err != nil {
			return info, err
		}
		info.Tags = tags
	}
	return info, nil
}

// Get returns the upstream's response body itself (the range's bytes if
// opts.Range is set) and the object's info, with IsLatest set when no
// version was named (NoSuchBucket, NoSuchKey, NoSuchVersion,
// MethodNotAllowed, PreconditionFailed, NotModified, InvalidRange).
func (s *Store) Get(ctx context.Context, bucket, key string, opts objectstore.GetOptions) (io.ReadCloser, objectstore.ObjectInfo, error) {
	if err := s.checkRead(bucket, key); err != nil {
		return nil, objectstore.ObjectInfo{}, err
	}
	in := &s3.GetObjectInput{Bucket: s.up(bucket), Key: aws.String(key), VersionId: optStr(opts.VersionID), Range: rangeHeader(opts.Range)}
	in.IfMatch, in.IfNoneMatch, in.IfModifiedSince, in.IfUnmodifiedSince = upstreamConds(opts)
	out, err := s.getObject(ctx, in)
	if err != nil {
		return nil, objectstore.ObjectInfo{}, s.objErr(ctx, err, "Get", bucket, key, opts.VersionID)
	}
	n := aws.ToInt64(out.ContentLength)
	body := out.Body
	if out.ContentLength != nil {
		body = &drainBody{rc: out.Body, left: n}
	}
	if opts.Range != nil {
		if cr := aws.ToString(out.ContentRange); cr != "" {
			n = totalSize(cr, n)
		} else if body, err = applyRange(out.Body, opts.Range, n); err != nil {
			return nil, objectstore.ObjectInfo{}, err // an upstream that ignored the range
		}
	}
	info, err := s.info(ctx, bucket, key, headFields{out.VersionId, out.ETag, out.ContentType, out.CacheControl, out.ContentDisposition,
		out.ContentEncoding, out.ContentLanguage, out.ExpiresString, out.LastModified, out.Metadata, out.TagCount}, n)
	if err == nil {
		err = checkConds(info, opts)
	}
	if err != nil {
		body.Close()
		return nil, info, err
	}
	info.IsLatest = opts.VersionID == "" || opts.VersionID == info.VersionID && s.isLatest(ctx, bucket, key, info.VersionID)
	return body, info, nil
}

// isLatest asks whether versionID is the key's current version (only
// when a version was named; one more upstream call).
func (s *Store) isLatest(ctx context.Context, bucket, key, versionID string) bool {
	out, err := s.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: s.up(bucket), Key: aws.String(key)})
	return err == nil && aws.ToString(out.VersionId) == versionID
}

func (s *Store) checkRead(bucket, key string) error {
	if validBucketName(bucket) != nil {
		return errNoSuchBucket()
	}
	if err := validKey(key); err != nil {
		if steward.KindOf(err) == steward.EInvalid {
			return objectstore.Errorf(steward.ENotFound, objectstore.CodeNoSuchKey, "%s", messages[objectstore.CodeNoSuchKey])
		}
		return err
	}
	return nil
}

// Head is Get without the body; it also reports the stored checksums.
func (s *Store) Head(ctx context.Context, bucket, key string, opts objectstore.GetOptions) (objectstore.ObjectInfo, error) {
	if err := s.checkRead(bucket, key); err != nil {
		return objectstore.ObjectInfo{}, err
	}
	in := &s3.HeadObjectInput{Bucket: s.up(bucket), Key: aws.String(key), VersionId: optStr(opts.VersionID), ChecksumMode: types.ChecksumModeEnabled}
	in.IfMatch, in.IfNoneMatch, in.IfModifiedSince, in.IfUnmodifiedSince = upstreamConds(opts)
	out, err := s.c.HeadObject(ctx, in)
	if err != nil {
		return objectstore.ObjectInfo{}, s.objErr(ctx, err, "Head", bucket, key, opts.VersionID)
	}
	info, err := s.info(ctx, bucket, key, headFields{out.VersionId, out.ETag, out.ContentType, out.CacheControl, out.ContentDisposition,
		out.ContentEncoding, out.ContentLanguage, out.ExpiresString, out.LastModified, out.Metadata, out.TagCount}, aws.ToInt64(out.ContentLength))
	if err == nil {
		err = checkConds(info, opts)
	}
	if err != nil {
		return info, err
	}
	info.Checksums = checksumsOf(out.ChecksumCRC32, out.ChecksumCRC32C, out.ChecksumCRC64NVME, out.ChecksumSHA1, out.ChecksumSHA256)
	info.IsLatest = opts.VersionID == "" || opts.VersionID == info.VersionID && s.isLatest(ctx, bucket, key, info.VersionID)
	return info, nil
}

// objErr maps an error of an object call; a 404 without a code (a HEAD)
// is resolved into NoSuchBucket, NoSuchVersion or NoSuchKey.
func (s *Store) objErr(ctx context.Context, err error, op, bucket, key, versionID string) error {
	e := s.mapErr(err, op, bucket, key)
	se, ok := e.(*steward.Error)
	if !ok {
		return e
	}
	switch {
	case se.Op == objectstore.CodeInvalidArgument && versionID != "":
		// S3 calls a version ID it could never have issued invalid.
		ne := objectstore.Errorf(steward.ENotFound, objectstore.CodeNoSuchVersion, "%s", messages[objectstore.CodeNoSuchVersion])
		ne.Err = se.Err
		return ne
	case se.Op == objectstore.CodeMethodNotAllowed && versionID == "":
		// The latest version is a delete marker: for the key, it is gone.
		ne := objectstore.Errorf(steward.ENotFound, objectstore.CodeNoSuchKey, "%s", messages[objectstore.CodeNoSuchKey])
		ne.Err = se.Err
		return ne
	case se.Op != objectstore.CodeNoSuchKey:
		return e
	}
	if _, berr := s.c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: s.up(bucket)}); berr != nil {
		if b := s.mapErr(berr, op, bucket, ""); steward.KindOf(b) == steward.ENotFound {
			return errNoSuchBucket()
		}
	}
	if versionID != "" && versionID != "null" {
		ne := objectstore.Errorf(steward.ENotFound, objectstore.CodeNoSuchVersion, "%s", messages[objectstore.CodeNoSuchVersion])
		ne.Err = se.Err
		return ne
	}
	return e
}

// Delete removes a version, or makes a delete marker in a versioned
// bucket (NoSuchBucket).
func (s *Store) Delete(ctx context.Context, bucket, key, versionID string) (objectstore.DeleteResult, error) {
	if validBucketName(bucket) != nil {
		return objectstore.DeleteResult{}, errNoSuchBucket()
	}
	if err := validKey(key); err != nil {
		return objectstore.DeleteResult{}, err
	}
	out, err := s.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: s.up(bucket), Key: aws.String(key), VersionId: optStr(versionID)})
	if err != nil {
		return objectstore.DeleteResult{}, s.mapErr(err, "Delete", bucket, key)
	}
	return objectstore.DeleteResult{VersionID: aws.ToString(out.VersionId), DeleteMarker: aws.ToBool(out.DeleteMarker)}, nil
}

// PutTags replaces a version's tags; an empty set removes them
// (NoSuchBucket, NoSuchKey, NoSuchVersion, MethodNotAllowed,
// InvalidArgument).
func (s *Store) PutTags(ctx context.Context, bucket, key, versionID string, tags map[string]string) error {
	if err := validTags(tags); err != nil {
		return err
	}
	if err := s.checkRead(bucket, key); err != nil {
		return err
	}
	var err error
	if len(tags) == 0 {
		_, err = s.c.DeleteObjectTagging(ctx, &s3.DeleteObjectTaggingInput{Bucket: s.up(bucket), Key: aws.String(key), VersionId: optStr(versionID)})
	} else {
		set := make([]types.Tag, 0, len(tags))
		for k, v := range tags {
			set = append(set, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		_, err = s.c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: s.up(bucket), Key: aws.String(key), VersionId: optStr(versionID),
			Tagging: &types.Tagging{TagSet: set}})
	}
	if err != nil {
		return s.objErr(ctx, err, "PutTags", bucket, key, versionID)
	}
	return nil
}

// GetTags returns a version's tags (NoSuchBucket, NoSuchKey,
// NoSuchVersion, MethodNotAllowed).
func (s *Store) GetTags(ctx context.Context, bucket, key, versionID string) (map[string]string, error) {
	if err := s.checkRead(bucket, key); err != nil {
		return nil, err
	}
	out, err := s.c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: s.up(bucket), Key: aws.String(key), VersionId: optStr(versionID)})
	if err != nil {
		return nil, s.objErr(ctx, err, "GetTags", bucket, key, versionID)
	}
	tags := make(map[string]string, len(out.TagSet))
	for _, t := range out.TagSet {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return tags, nil
}

// upstreamConds are the conditions the upstream can evaluate as S3
// does: If-Match/If-None-Match lists are checked here only, and a
// date condition is not sent when its ETag condition overrides it (RFC
// 9110 section 13.2.2). checkConds decides on the answer either way.
func upstreamConds(o objectstore.GetOptions) (ifMatch, ifNoneMatch *string, ifModSince, ifUnmodSince *time.Time) {
	if o.IfMatch != "" {
		if !strings.Contains(o.IfMatch, ",") {
			ifMatch = aws.String(o.IfMatch)
		}
	} else {
		ifUnmodSince = optTimeVal(o.IfUnmodifiedSince)
	}
	if o.IfNoneMatch != "" {
		if !strings.Contains(o.IfNoneMatch, ",") {
			ifNoneMatch = aws.String(o.IfNoneMatch)
		}
	} else {
		ifModSince = optTimeVal(o.IfModifiedSince)
	}
	return
}

func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || strings.Trim(t, `"`) == strings.Trim(etag, `"`) {
			return true
		}
	}
	return false
}

// checkConds evaluates conditional headers against the version the
// upstream answered with, in the order of RFC 9110 section 13.2.2, so
// that every upstream answers as the embedded store does.
func checkConds(info objectstore.ObjectInfo, o objectstore.GetOptions) error {
	lm := info.LastModified.Truncate(time.Second)
	failed := objectstore.Errorf(steward.EConflict, objectstore.CodePreconditionFailed, "%s", messages[objectstore.CodePreconditionFailed])
	if o.IfMatch != "" {
		if !etagMatch(o.IfMatch, info.ETag) {
			return failed
		}
	} else if !o.IfUnmodifiedSince.IsZero() && lm.After(o.IfUnmodifiedSince) {
		return failed
	}
	notModified := objectstore.Errorf(steward.EConflict, objectstore.CodeNotModified, "not modified")
	if o.IfNoneMatch != "" {
		if etagMatch(o.IfNoneMatch, info.ETag) {
			return notModified
		}
	} else if !o.IfModifiedSince.IsZero() && !lm.After(o.IfModifiedSince) {
		return notModified
	}
	return nil
}

type rangeBody struct {
	io.Reader
	io.Closer
}

// applyRange cuts a range out of a whole-object body (InvalidRange).
func applyRange(body io.ReadCloser, r *objectstore.Range, size int64) (io.ReadCloser, error) {
	start, end := r.Start, r.End
	if start < 0 {
		start = max(size+start, 0)
		end = size - 1
	}
	if start >= size {
		body.Close()
		return nil, objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidRange, "%s", messages[objectstore.CodeInvalidRange])
	}
	end = min(end, size-1)
	if _, err := io.CopyN(io.Discard, body, start); err != nil {
		body.Close()
		return nil, steward.Errorf(steward.EUnavailable, "the upstream object store failed")
	}
	return rangeBody{io.LimitReader(body, end-start+1), body}, nil
}

// drainLimit is the most a Get body's Close reads to the end so that
// the upstream connection goes back to the pool: a reader that stops
// close to the end (a format sniffer, a client that read exactly the
// length and closed) costs a copy of the rest instead of a new
// connection, which on loopback is the larger cost by far.
const drainLimit = 64 << 10

// drainBody is an upstream response body that knows how much of it is
// left.
type drainBody struct {
	rc   io.ReadCloser
	left int64
}

func (d *drainBody) Read(p []byte) (int, error) {
	n, err := d.rc.Read(p)
	d.left -= int64(n)
	return n, err
}

// copyBufSize is the buffer a Get body is copied to its destination
// with: a read this large bypasses the transport's read buffer (no
// extra copy) and takes what the upstream socket holds, a write this
// large is one system call, where io.Copy's 32 KiB would be several.
const copyBufSize = 256 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// WriteTo copies the rest of the body to w through a pooled buffer
// (io.Copy uses it, also when w is an http.ResponseWriter).
func (d *drainBody) WriteTo(w io.Writer) (int64, error) {
	if sb, ok := d.rc.(*splicedBody); ok {
		// A spliced body moves itself.
		n, err := sb.WriteTo(w)
		d.left -= n
		return n, err
	}
	return pooledCopy(w, d)
}

// pooledCopy copies r to w until r's EOF through a pooled buffer.
func pooledCopy(w io.Writer, r io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var total int64
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
			if m != n {
				return total, io.ErrShortWrite
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

func (d *drainBody) Close() error {
	if d.left > 0 && d.left <= drainLimit {
		io.CopyN(io.Discard, d.rc, d.left+1) // +1 to see the EOF
	}
	return d.rc.Close()
}
