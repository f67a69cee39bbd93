package s3store

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
)

// stdHeaders are the standard headers stored with an object, as
// ObjectInfo.Metadata names them.
const (
	hCacheControl       = "Cache-Control"
	hContentDisposition = "Content-Disposition"
	hContentEncoding    = "Content-Encoding"
	hContentLanguage    = "Content-Language"
	hExpires            = "Expires"
)

// splitMeta separates user metadata from the standard headers.
func splitMeta(m map[string]string) (user map[string]string, std map[string]string) {
	for k, v := range m {
		switch k {
		case hCacheControl, hContentDisposition, hContentEncoding, hContentLanguage, hExpires:
			if std == nil {
				std = map[string]string{}
			}
			std[k] = v
		default:
			if user == nil {
				user = map[string]string{}
			}
			user[k] = v
		}
	}
	return user, std
}

func optStr(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

func optTime(s string) *time.Time {
	if s == "" {
		return nil
	}
	t, err := http.ParseTime(s)
	if err != nil {
		return nil
	}
	return &t
}

func tagging(tags map[string]string) *string {
	if len(tags) == 0 {
		return nil
	}
	v := url.Values{}
	for k, x := range tags {
		v.Set(k, x)
	}
	return aws.String(v.Encode())
}

// exactReader passes size bytes of r and remembers why it failed, so that
// a client's short body is told from an upstream failure.
type exactReader struct {
	r    io.Reader
	left int64
	err  error
}

var errShortBody = errors.New("body shorter than its declared length")

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF {
		if e.left > 0 {
			e.err = errShortBody
			return n, errShortBody
		}
		return n, io.EOF
	}
	if err != nil {
		e.err = err
	}
	return n, err
}

// bodyErr says what a failed body read means for the caller.
func bodyErr(err error) error {
	var se *steward.Error
	if errors.As(err, &se) {
		return se
	}
	e := objectstore.Errorf(steward.EInvalid, objectstore.CodeIncompleteBody, "%s", messages[objectstore.CodeIncompleteBody])
	e.Err = err
	return e
}

// sendBody wraps body for an upstream call; after the call, failed
// reports a body read error, which takes precedence over the call's.
func sendBody(body io.Reader, size int64) (io.Reader, func() error) {
	if size == 0 {
		return http.NoBody, func() error { return nil }
	}
	er := &exactReader{r: body, left: size}
	return er, func() error {
		if er.err != nil {
			return bodyErr(er.err)
		}
		return nil
	}
}

func md5Header(b []byte) *string {
	if b == nil {
		return nil
	}
	return aws.String(base64.StdEncoding.EncodeToString(b))
}

// Put streams body (size bytes; to EOF when size < 0) to the upstream
// (NoSuchBucket, InvalidArgument, KeyTooLongError, BadDigest,
// IncompleteBody, PreconditionFailed, NoSuchKey).
func (s *Store) Put(ctx context.Context, bucket, key string, body io.Reader, size int64, opts objectstore.PutOptions) (objectstore.ObjectInfo, error) {
	if err := s.checkWrite(bucket, key, opts); err != nil {
		return objectstore.ObjectInfo{}, err
	}
	if opts.BeforeCommit != nil {
		// The upstream makes the object visible when it has the body, so
		// the hook runs before anything is sent.
		if err := opts.BeforeCommit(); err != nil {
			return objectstore.ObjectInfo{}, err
		}
		opts.BeforeCommit = nil
	}
	if size < 0 {
		return s.putUnsized(ctx, bucket, key, body, opts)
	}
	user, std := splitMeta(opts.Metadata)
	r, failed := sendBody(body, size)
	in := &s3.PutObjectInput{
		Bucket: s.up(bucket), Key: aws.String(key), Body: r, ContentLength: aws.Int64(size),
		ContentType: optStr(opts.ContentType), Metadata: user,
		CacheControl: optStr(std[hCacheControl]), ContentDisposition: optStr(std[hContentDisposition]),
		ContentEncoding: optStr(std[hContentEncoding]), ContentLanguage: optStr(std[hContentLanguage]), Expires: optTime(std[hExpires]),
		Tagging: tagging(opts.Tags), ContentMD5: md5Header(opts.ContentMD5),
		IfMatch: optStr(opts.IfMatch), IfNoneMatch: optStr(opts.IfNoneMatch),
	}
	setPutChecksums(in, opts.Checksums)
	out, err := s.putObject(ctx, in)
	if ferr := failed(); ferr != nil {
		return objectstore.ObjectInfo{}, ferr
	}
	if err != nil {
		return objectstore.ObjectInfo{}, s.objErr(ctx, err, "Put", bucket, key, "")
	}
	return objectstore.ObjectInfo{
		Bucket: bucket, Key: key, VersionID: aws.ToString(out.VersionId), IsLatest: true,
		Size: size, ETag: quoteETag(aws.ToString(out.ETag)), LastModified: time.Now().UTC(),
		ContentType: opts.ContentType, Metadata: opts.Metadata, Tags: opts.Tags,
		Checksums: checksumsOf(out.ChecksumCRC32, out.ChecksumCRC32C, out.ChecksumCRC64NVME, out.ChecksumSHA1, out.ChecksumSHA256),
	}, nil
}

func (s *Store) checkWrite(bucket, key string, opts objectstore.PutOptions) error {
	if err := validKey(key); err != nil {
		return err
	}
	if validBucketName(bucket) != nil {
		return errNoSuchBucket()
	}
	if err := validTags(opts.Tags); err != nil {
		return err
	}
	if opts.ContentMD5 != nil && len(opts.ContentMD5) != md5.Size {
		return objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidArgument, "the Content-MD5 you specified is not valid")
	}
	return checkChecksums(opts.Checksums)
}

// unsizedPart is how much of a body of unknown length is held at a time:
// a body that ends within it is sent as one object, a longer one as a
// multipart upload of parts this large.
const unsizedPart = 8 << 20

var partBufs = sync.Pool{New: func() any { b := make([]byte, unsizedPart); return &b }}

// fill reads into buf until it is full or the body ends (nil error); any
// other read error is returned (io.ReadFull would turn a reader's own
// io.ErrUnexpectedEOF into a short, successful read).
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// putUnsized sends a body of unknown length. S3 needs a length for every
// request, so the body is cut into parts held one at a time.
func (s *Store) putUnsized(ctx context.Context, bucket, key string, body io.Reader, opts objectstore.PutOptions) (objectstore.ObjectInfo, error) {
	bp := partBufs.Get().(*[]byte)
	defer partBufs.Put(bp)
	buf := *bp
	n, err := fill(body, buf)
	if err != nil {
		return objectstore.ObjectInfo{}, bodyErr(err)
	}
	if n < unsizedPart {
		return s.Put(ctx, bucket, key, bytes.NewReader(buf[:n]), int64(n), opts)
	}
	if opts.ContentMD5 != nil || len(opts.Checksums) > 0 {
		// Whole-object digests cannot be checked by a multipart upload.
		return objectstore.ObjectInfo{}, objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidArgument, "a checksum needs a Content-Length for an object over %d bytes", unsizedPart)
	}
	cond := opts
	opts.IfMatch, opts.IfNoneMatch = "", ""
	up, err := s.CreateMultipart(ctx, bucket, key, opts)
	if err != nil {
		return objectstore.ObjectInfo{}, err
	}
	abort := func() {
		if err := s.AbortMultipart(context.WithoutCancel(ctx), bucket, key, up.UploadID); err != nil {
			s.log.WarnContext(ctx, "abort of an unsized upload failed", "bucket", bucket, "err", err)
		}
	}
	var parts []objectstore.CompletePart
	for num := 1; n > 0; num++ {
		p, err := s.UploadPart(ctx, bucket, key, up.UploadID, num, bytes.NewReader(buf[:n]), int64(n), objectstore.PutOptions{})
		if err != nil {
			abort()
			return objectstore.ObjectInfo{}, err
		}
		parts = append(parts, objectstore.CompletePart{Number: num, ETag: p.ETag})
		n, err = fill(body, buf)
		if err != nil {
			abort()
			return objectstore.ObjectInfo{}, bodyErr(err)
		}
	}
	info, err := s.complete(ctx, bucket, key, up.UploadID, parts, cond.IfMatch, cond.IfNoneMatch)
	if err != nil {
		abort()
	}
	return info, err
}
