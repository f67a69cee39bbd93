package s3store

import (
	"context"
	"io"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
)

// CreateMultipart starts an upload upstream (NoSuchBucket,
// KeyTooLongError, InvalidArgument).
func (s *Store) CreateMultipart(ctx context.Context, bucket, key string, opts objectstore.PutOptions) (objectstore.Upload, error) {
	if err := s.checkWrite(bucket, key, opts); err != nil {
		return objectstore.Upload{}, err
	}
	user, std := splitMeta(opts.Metadata)
	out, err := s.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: s.up(bucket), Key: aws.String(key), ContentType: optStr(opts.ContentType), Metadata: user,
		CacheControl: optStr(std[hCacheControl]), ContentDisposition: optStr(std[hContentDisposition]),
		ContentEncoding: optStr(std[hContentEncoding]), ContentLanguage: optStr(std[hContentLanguage]), Expires: optTime(std[hExpires]),
		Tagging: tagging(opts.Tags),
	})
	if err != nil {
		return objectstore.Upload{}, s.mapErr(err, "CreateMultipart", bucket, key)
	}
	return objectstore.Upload{Bucket: bucket, Key: key, UploadID: aws.ToString(out.UploadId), Initiated: time.Now().UTC(), Opts: opts}, nil
}

func errNoSuchUpload() error {
	return objectstore.Errorf(steward.ENotFound, objectstore.CodeNoSuchUpload, "%s", messages[objectstore.CodeNoSuchUpload])
}

// uploadErr maps an error of a call on an upload: a missing bucket or
// key under a valid-looking upload ID is NoSuchUpload unless the bucket is
// gone.
func (s *Store) uploadErr(err error, op, bucket, key string) error {
	e := s.mapErr(err, op, bucket, key)
	if se, ok := e.(*steward.Error); ok && se.Op == objectstore.CodeNoSuchKey {
		return errNoSuchUpload()
	}
	return e
}

// UploadPart streams one part (NoSuchUpload, InvalidArgument, BadDigest,
// IncompleteBody).
func (s *Store) UploadPart(ctx context.Context, bucket, key, uploadID string, number int, body io.Reader, size int64, opts objectstore.PutOptions) (objectstore.Part, error) {
	if number < 1 || number > 10000 {
		return objectstore.Part{}, objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidArgument, "part number must be an integer between 1 and 10000, inclusive")
	}
	if validBucketName(bucket) != nil {
		return objectstore.Part{}, errNoSuchBucket()
	}
	if validKey(key) != nil || uploadID == "" {
		return objectstore.Part{}, errNoSuchUpload()
	}
	if err := checkChecksums(opts.Checksums); err != nil {
		return objectstore.Part{}, err
	}
	if size < 0 {
		return objectstore.Part{}, objectstore.Errorf(steward.EInvalid, objectstore.CodeIncompleteBody, "a part needs a Content-Length")
	}
	r, failed := sendBody(body, size)
	in := &s3.UploadPartInput{Bucket: s.up(bucket), Key: aws.String(key), UploadId: aws.String(uploadID), PartNumber: aws.Int32(int32(number)),
		Body: r, ContentLength: aws.Int64(size), ContentMD5: md5Header(opts.ContentMD5),
		ChecksumCRC32: optStr(opts.Checksums["CRC32"]), ChecksumCRC32C: optStr(opts.Checksums["CRC32C"]), ChecksumCRC64NVME: optStr(opts.Checksums["CRC64NVME"]),
		ChecksumSHA1: optStr(opts.Checksums["SHA1"]), ChecksumSHA256: optStr(opts.Checksums["SHA256"])}
	out, err := s.c.UploadPart(ctx, in, streamOpts)
	if ferr := failed(); ferr != nil {
		return objectstore.Part{}, ferr
	}
	if err != nil {
		return objectstore.Part{}, s.uploadErr(err, "UploadPart", bucket, key)
	}
	return objectstore.Part{Number: number, ETag: quoteETag(aws.ToString(out.ETag)), Size: size, LastModified: time.Now().UTC(),
		Checksums: checksumsOf(out.ChecksumCRC32, out.ChecksumCRC32C, out.ChecksumCRC64NVME, out.ChecksumSHA1, out.ChecksumSHA256)}, nil
}

// CompleteMultipart assembles the parts (NoSuchUpload, InvalidPart,
// InvalidPartOrder, EntityTooSmall, InvalidArgument).
func (s *Store) CompleteMultipart(ctx context.Context, bucket, key, uploadID string, parts []objectstore.CompletePart) (objectstore.ObjectInfo, error) {
	return s.complete(ctx, bucket, key, uploadID, parts, "", "")
}

func (s *Store) complete(ctx context.Context, bucket, key, uploadID string, parts []objectstore.CompletePart, ifMatch, ifNoneMatch string) (objectstore.ObjectInfo, error) {
	if validBucketName(bucket) != nil {
		return objectstore.ObjectInfo{}, errNoSuchBucket()
	}
	if validKey(key) != nil || uploadID == "" {
		return objectstore.ObjectInfo{}, errNoSuchUpload()
	}
	if len(parts) == 0 {
		return objectstore.ObjectInfo{}, objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidArgument, "you must specify at least one part")
	}
	cp := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		if i > 0 && p.Number <= parts[i-1].Number {
			// S3 says so too, but only once the upload is known to exist.
			if _, _, err := s.ListParts(ctx, bucket, key, uploadID, 0, 1); err != nil {
				return objectstore.ObjectInfo{}, err
			}
			return objectstore.ObjectInfo{}, objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidPartOrder, "%s", messages[objectstore.CodeInvalidPartOrder])
		}
		cp[i] = types.CompletedPart{PartNumber: aws.Int32(int32(p.Number)), ETag: aws.String(quoteETag(p.ETag))}
	}
	out, err := s.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: s.up(bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: cp}, IfMatch: optStr(ifMatch), IfNoneMatch: optStr(ifNoneMatch)})
	if err != nil {
		return objectstore.ObjectInfo{}, s.uploadErr(err, "CompleteMultipart", bucket, key)
	}
	// The answer has no size: ask for it.
	info, err := s.Head(ctx, bucket, key, objectstore.GetOptions{VersionID: aws.ToString(out.VersionId)})
	if err != nil {
		return objectstore.ObjectInfo{}, err
	}
	info.ETag = quoteETag(aws.ToString(out.ETag))
	info.IsLatest = true
	return info, nil
}

// AbortMultipart drops an upload and its parts (NoSuchBucket,
// NoSuchUpload).
func (s *Store) AbortMultipart(ctx context.Context, bucket, key, uploadID string) error {
	if validBucketName(bucket) != nil {
		return errNoSuchBucket()
	}
	if validKey(key) != nil || uploadID == "" {
		return errNoSuchUpload()
	}
	_, err := s.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: s.up(bucket), Key: aws.String(key), UploadId: aws.String(uploadID)})
	if err != nil {
		return s.uploadErr(err, "AbortMultipart", bucket, key)
	}
	return nil
}

// ListParts lists an upload's parts after part number after, at most max
// (0: 1000); the bool says whether more follow (NoSuchUpload,
// InvalidArgument).
func (s *Store) ListParts(ctx context.Context, bucket, key, uploadID string, after, max int) ([]objectstore.Part, bool, error) {
	if after < 0 || max < 0 {
		return nil, false, objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidArgument, "part-number-marker and max-parts must not be negative")
	}
	if validBucketName(bucket) != nil {
		return nil, false, errNoSuchBucket()
	}
	if validKey(key) != nil || uploadID == "" {
		return nil, false, errNoSuchUpload()
	}
	if max == 0 || max > 1000 {
		max = 1000
	}
	in := &s3.ListPartsInput{Bucket: s.up(bucket), Key: aws.String(key), UploadId: aws.String(uploadID), MaxParts: aws.Int32(int32(max))}
	if after > 0 {
		in.PartNumberMarker = aws.String(strconv.Itoa(after))
	}
	out, err := s.c.ListParts(ctx, in)
	if err != nil {
		return nil, false, s.uploadErr(err, "ListParts", bucket, key)
	}
	parts := make([]objectstore.Part, 0, len(out.Parts))
	for _, p := range out.Parts {
		parts = append(parts, objectstore.Part{Number: int(aws.ToInt32(p.PartNumber)), ETag: quoteETag(aws.ToString(p.ETag)), Size: aws.ToInt64(p.Size),
			LastModified: aws.ToTime(p.LastModified), Checksums: checksumsOf(p.ChecksumCRC32, p.ChecksumCRC32C, p.ChecksumCRC64NVME, p.ChecksumSHA1, p.ChecksumSHA256)})
	}
	return parts, aws.ToBool(out.IsTruncated), nil
}

// ListUploads lists uploads in progress whose keys start with prefix, at
// most max (0: 1000), by key (NoSuchBucket).
func (s *Store) ListUploads(ctx context.Context, bucket string, opts objectstore.ListUploadsOptions) ([]objectstore.Upload, error) {
	if validBucketName(bucket) != nil {
		return nil, errNoSuchBucket()
	}
	max := opts.MaxUploads
	if max <= 0 || max > 1000 {
		max = 1000
	}
	out, err := s.c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: s.up(bucket), Prefix: optStr(opts.Prefix),
		KeyMarker: optStr(opts.KeyMarker), UploadIdMarker: optStr(opts.UploadIDMarker),
		MaxUploads: aws.Int32(int32(max)), EncodingType: types.EncodingTypeUrl})
	if err != nil {
		err = s.mapErr(err, "ListUploads", bucket, "")
		if steward.KindOf(err) == steward.ENotFound {
			return nil, errNoSuchBucket()
		}
		return nil, err
	}
	decode := decoder(out.EncodingType)
	ups := make([]objectstore.Upload, 0, len(out.Uploads))
	for _, u := range out.Uploads {
		ups = append(ups, objectstore.Upload{Bucket: bucket, Key: decode(u.Key), UploadID: aws.ToString(u.UploadId), Initiated: aws.ToTime(u.Initiated)})
	}
	return ups, nil
}
