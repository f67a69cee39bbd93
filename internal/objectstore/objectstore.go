// Package objectstore defines where Steward's bytes live: the Store
// interface that the S3 gateway serves from, with an embedded local
// filesystem implementation (objectstore/fs) and a forwarding
// implementation for an upstream S3 (Ceph RGW, MinIO, AWS).
//
// Stores do not authenticate, authorize or audit: the gateway does that
// before it calls them. Every method returns *steward.Error kinds that the
// gateway maps onto S3 error codes: ENotFound (NoSuchBucket, NoSuchKey,
// NoSuchUpload, NoSuchVersion — see the Code* constants carried in
// Error.Op), EConflict (BucketAlreadyOwnedByYou, BucketNotEmpty,
// PreconditionFailed), EInvalid (InvalidArgument, InvalidPart, ...).
package objectstore

import (
	"context"
	"io"
	"time"

	"github.com/stewardhq/steward"
)

// S3 error codes a Store reports through (*steward.Error).Op so that the
// gateway can answer with the precise S3 code.
const (
	CodeNoSuchBucket       = "NoSuchBucket"
	CodeNoSuchKey          = "NoSuchKey"
	CodeNoSuchVersion      = "NoSuchVersion"
	CodeNoSuchUpload       = "NoSuchUpload"
	CodeBucketExists       = "BucketAlreadyOwnedByYou"
	CodeBucketNotEmpty     = "BucketNotEmpty"
	CodePreconditionFailed = "PreconditionFailed"
	CodeNotModified        = "NotModified"
	CodeInvalidPart        = "InvalidPart"
	CodeInvalidPartOrder   = "InvalidPartOrder"
	CodeEntityTooSmall     = "EntityTooSmall"
	CodeInvalidRange       = "InvalidRange"
	CodeBadDigest          = "BadDigest"
	CodeInvalidBucketName  = "InvalidBucketName"
	CodeKeyTooLong         = "KeyTooLongError"
	CodeInvalidArgument    = "InvalidArgument"
	CodeMethodNotAllowed   = "MethodNotAllowed"
	CodeIncompleteBody     = "IncompleteBody"
	CodeInvalidObjectState = "InvalidObjectState"
	CodeNotImplemented     = "NotImplemented"
)

// Errorf returns a store error with an S3 code.
func Errorf(kind steward.ErrorKind, code, format string, args ...any) *steward.Error {
	e := steward.Errorf(kind, format, args...)
	e.Op = code
	return e
}

// BucketInfo describes a bucket.
type BucketInfo struct {
	Name       string
	Created    time.Time
	Versioning Versioning
}

// Versioning is a bucket's versioning state, as S3 names it.
type Versioning string

const (
	VersioningOff       Versioning = ""          // never enabled
	VersioningEnabled   Versioning = "Enabled"   // every PUT keeps the previous version
	VersioningSuspended Versioning = "Suspended" // new writes get the "null" version
)

// ObjectInfo describes one object version.
type ObjectInfo struct {
	Bucket       string
	Key          string
	VersionID    string // "" when the bucket was never versioned; "null" for the null version
	IsLatest     bool
	DeleteMarker bool
	Size         int64
	ETag         string // quoted: "\"<md5 hex>\"" or "\"<md5 of part md5s>-<n>\""
	LastModified time.Time
	ContentType  string
	// Metadata holds user metadata (x-amz-meta-*, keys lower-case without
	// the prefix) and the standard headers stored with the object
	// (Cache-Control, Content-Disposition, Content-Encoding,
	// Content-Language, Expires) under their canonical header names.
	Metadata map[string]string
	// Checksums the client sent and the store verified, by algorithm
	// ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"), base64 as in S3.
	Checksums map[string]string
	Tags      map[string]string
}

// PutOptions qualify a write.
type PutOptions struct {
	ContentType string
	Metadata    map[string]string
	Tags        map[string]string
	// ContentMD5, if set (raw 16 bytes), must match the body (BadDigest).
	ContentMD5 []byte
	// Checksums to verify against the body (and store), algorithm -> base64.
	Checksums map[string]string
	// IfNoneMatch "*" creates only if the key does not exist
	// (PreconditionFailed otherwise); IfMatch writes only over that ETag.
	IfNoneMatch string
	IfMatch     string
	// Initiator names who started a multipart upload (CreateMultipart
	// keeps it with the upload; ListUploads returns it).
	Initiator string
	// VerifiedChecksums, if set, is called once the body has been read to
	// its end, before the write commits: the checksums it returns were
	// verified by the caller (the trailing checksum of an aws-chunked
	// body arrives after the data) and are kept like Checksums.
	VerifiedChecksums func() map[string]string `json:"-"`
	// BeforeCommit, if set, is called once before the write can become
	// visible to any reader (after the body is durable, on a store that
	// keeps the bytes itself); an error aborts the write, nothing changes,
	// and Put returns that error. The S3 gateway waits there for its
	// decision audit record, so that writing the record and the body
	// overlap while no change is visible before it is audited.
	BeforeCommit func() error `json:"-"`
}

// Range is a byte range of an object; End is inclusive; a negative Start
// means the last -Start bytes (suffix range).
type Range struct {
	Start, End int64
}

// GetOptions qualify a read.
type GetOptions struct {
	VersionID         string
	Range             *Range
	IfMatch           string
	IfNoneMatch       string
	IfModifiedSince   time.Time
	IfUnmodifiedSince time.Time
}

// ListOptions page through a bucket. Keys are returned in UTF-8 binary
// order. With Delimiter, keys sharing a prefix up to the delimiter roll up
// into CommonPrefixes.
type ListOptions struct {
	Prefix    string
	Delimiter string
	// After: list keys strictly after this one (StartAfter, Marker, or the
	// decoded continuation token).
	After   string
	MaxKeys int // 0 means 1000
}

// ListResult is one page.
type ListResult struct {
	Objects        []ObjectInfo
	CommonPrefixes []string
	IsTruncated    bool
	// NextAfter is where the next page starts (the last key or common
	// prefix returned).
	NextAfter string
}

// ListVersionsOptions page through object versions.
type ListVersionsOptions struct {
	Prefix          string
	Delimiter       string
	KeyMarker       string
	VersionIDMarker string
	MaxKeys         int
}

// ListVersionsResult is one page of versions (newest first per key), delete
// markers included.
type ListVersionsResult struct {
	Versions            []ObjectInfo
	CommonPrefixes      []string
	IsTruncated         bool
	NextKeyMarker       string
	NextVersionIDMarker string
}

// DeleteResult says what a delete did.
type DeleteResult struct {
	VersionID    string // the version removed, or the delete marker created
	DeleteMarker bool
}

// Upload is a multipart upload in progress.
type Upload struct {
	Bucket, Key, UploadID string
	Initiated             time.Time
	Opts                  PutOptions
}

// Part is an uploaded part.
type Part struct {
	Number       int
	ETag         string
	Size         int64
	LastModified time.Time
	Checksums    map[string]string
}

// ListUploadsOptions page through the multipart uploads in progress, in
// order of key, then initiation.
type ListUploadsOptions struct {
	Prefix string
	// KeyMarker alone lists uploads of keys after it; with UploadIDMarker,
	// the uploads of KeyMarker after that one come first.
	KeyMarker      string
	UploadIDMarker string
	MaxUploads     int // 0 means 1000
}

// CompletePart names a part in CompleteMultipartUpload.
type CompletePart struct {
	Number int
	ETag   string
}

// Store is where objects live. Implementations must make writes atomic (a
// partial object is never visible), durable when they return (the fs store
// fsyncs and renames), and safe for any valid key (no path traversal).
type Store interface {
	CreateBucket(ctx context.Context, bucket string) error
	DeleteBucket(ctx context.Context, bucket string) error
	HeadBucket(ctx context.Context, bucket string) (BucketInfo, error)
	ListBuckets(ctx context.Context) ([]BucketInfo, error)
	SetVersioning(ctx context.Context, bucket string, v Versioning) error

	Put(ctx context.Context, bucket, key string, body io.Reader, size int64, opts PutOptions) (ObjectInfo, error)
	// Get returns the body (the range's bytes if opts.Range is set) and the
	// object's info; the caller closes the body.
	Get(ctx context.Context, bucket, key string, opts GetOptions) (io.ReadCloser, ObjectInfo, error)
	Head(ctx context.Context, bucket, key string, opts GetOptions) (ObjectInfo, error)
	Delete(ctx context.Context, bucket, key, versionID string) (DeleteResult, error)
	List(ctx context.Context, bucket string, opts ListOptions) (ListResult, error)
	ListVersions(ctx context.Context, bucket string, opts ListVersionsOptions) (ListVersionsResult, error)

	PutTags(ctx context.Context, bucket, key, versionID string, tags map[string]string) error
	GetTags(ctx context.Context, bucket, key, versionID string) (map[string]string, error)

	CreateMultipart(ctx context.Context, bucket, key string, opts PutOptions) (Upload, error)
	UploadPart(ctx context.Context, bucket, key, uploadID string, number int, body io.Reader, size int64, opts PutOptions) (Part, error)
	CompleteMultipart(ctx context.Context, bucket, key, uploadID string, parts []CompletePart) (ObjectInfo, error)
	AbortMultipart(ctx context.Context, bucket, key, uploadID string) error
	ListParts(ctx context.Context, bucket, key, uploadID string, after, max int) ([]Part, bool, error)
	ListUploads(ctx context.Context, bucket string, opts ListUploadsOptions) ([]Upload, error)
}
