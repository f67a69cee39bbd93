// Package s3store is the forwarding objectstore.Store: Steward's S3
// gateway authenticates, authorizes and audits a request, then this store
// re-signs it with Steward's own service credentials and sends it to an
// upstream S3 (Ceph RGW, MinIO, AWS S3, versitygw), streaming bodies both
// ways: a PUT body goes from the client's connection to the upstream's
// without being held, a GET returns the upstream's response body itself.
//
// It uses aws-sdk-go-v2's S3 client (rather than minio-go) because it
// exposes every header the Store contract carries (conditional writes,
// the five checksum algorithms, version IDs, tagging) and lets payload
// signing be switched to UNSIGNED-PAYLOAD, so that a body is never read
// twice (once to hash it, once to send it). GetObject and PutObject to a
// path-style upstream, the requests that carry the bytes, are signed with
// the SDK's signer and sent as plain HTTP requests, without the client's
// per-call middleware stack (fast.go).
//
// Validation that S3 defines precisely (bucket names, key length, tag
// limits, checksum encodings, part numbers) is done here, before a request
// leaves, so that every upstream answers the same codes as the embedded
// store; everything else is the upstream's decision, mapped onto the
// objectstore codes.
package s3store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
)

// Config says where the upstream is and how Steward signs in to it.
type Config struct {
	// Endpoint is the upstream's base URL, e.g. "https://rgw.example:8443".
	// Empty means AWS S3's regional endpoint.
	Endpoint string
	// Region to sign for; "us-east-1" when empty.
	Region string
	// AccessKey and SecretKey are Steward's service credentials upstream.
	AccessKey string
	SecretKey steward.Secret
	// PathStyle addresses buckets as endpoint/bucket rather than
	// bucket.endpoint (Ceph RGW and MinIO usually want it).
	PathStyle bool
	// BucketPrefix, if set, is prepended to every bucket name upstream and
	// only buckets carrying it are listed, so that one upstream account can
	// hold several Steward installations.
	BucketPrefix string
	// HTTPClient overrides the tuned default (for custom TLS roots).
	HTTPClient *http.Client
}

// Store forwards every call to the upstream. It is safe for concurrent use.
type Store struct {
	c      *s3.Client
	direct *direct // GetObject and PutObject without the SDK client; nil unless path-style
	hc     *http.Client
	prefix string
	log    *slog.Logger
}

var _ objectstore.Store = (*Store)(nil)

// New returns a Store for cfg. It does not contact the upstream; use Ping
// for a readiness check.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, steward.Errorf(steward.EInvalid, "the upstream object store needs an access key and a secret key")
	}
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, steward.Errorf(steward.EInvalid, "the upstream object store endpoint %q is not an http(s) URL", cfg.Endpoint)
		}
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: newTransport()}
	}
	opts := s3.Options{
		Region:       cfg.Region,
		UsePathStyle: cfg.PathStyle,
		Credentials:  credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey.Reveal(), ""),
		HTTPClient:   hc,
		// Checksums are the client's: they are passed through as headers
		// and verified by the upstream, never computed here.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		// No "Expect: 100-continue" round trip before large bodies.
		ContinueHeaderThresholdBytes: -1,
		Logger:                       logging.Nop{},
	}
	if cfg.Endpoint != "" {
		opts.BaseEndpoint = aws.String(strings.TrimRight(cfg.Endpoint, "/"))
	}
	st := &Store{c: s3.New(opts), hc: hc, prefix: cfg.BucketPrefix, log: logger}
	if cfg.Endpoint != "" && cfg.PathStyle {
		st.direct = newDirect(cfg.Endpoint, cfg.Region, cfg.AccessKey, cfg.SecretKey.Reveal(), hc)
		if st.direct != nil && cfg.HTTPClient == nil {
			st.direct.raw = newSplicer(st.direct.base, http.ProxyFromEnvironment)
		}
	}
	return st, nil
}

// Close drops the idle connections to the upstream. Calls still under
// way finish; the Store must not be used afterwards.
func (s *Store) Close() error {
	s.hc.CloseIdleConnections()
	if s.direct != nil && s.direct.raw != nil {
		s.direct.raw.close()
	}
	return nil
}

// newTransport keeps many connections to the upstream alive: every
// gateway request becomes an upstream request, so the per-host idle pool
// must not be the default 2.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Bodies are passed through as they are; no transparent gzip.
		DisableCompression: true,
		WriteBufferSize:    64 << 10,
		// A read at least this large goes straight to the socket rather
		// than through the buffer: io.Copy's 32 KiB reads must not be
		// copied twice.
		ReadBufferSize: 32 << 10,
	}
}

// Ping checks that the upstream answers and accepts Steward's credentials.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.c.ListBuckets(ctx, &s3.ListBucketsInput{MaxBuckets: aws.Int32(1), Prefix: s.nonEmptyPrefix()})
	return s.mapErr(err, "", "", "")
}

func (s *Store) nonEmptyPrefix() *string {
	if s.prefix == "" {
		return nil
	}
	return aws.String(s.prefix)
}

// up is the upstream name of bucket.
func (s *Store) up(bucket string) *string { return aws.String(s.prefix + bucket) }

// streamOpts are the per-call options of calls that send a body: the
// payload is not hashed (UNSIGNED-PAYLOAD; the upstream still checks
// Content-MD5 and checksums) and the call is not retried, since a
// streamed body cannot be rewound.
func streamOpts(o *s3.Options) {
	o.Retryer = aws.NopRetryer{}
	o.APIOptions = append(o.APIOptions, unsignedPayload)
}

// errors ---------------------------------------------------------------------

var codeKinds = map[string]steward.ErrorKind{
	objectstore.CodeNoSuchBucket:       steward.ENotFound,
	objectstore.CodeNoSuchKey:          steward.ENotFound,
	objectstore.CodeNoSuchVersion:      steward.ENotFound,
	objectstore.CodeNoSuchUpload:       steward.ENotFound,
	objectstore.CodeBucketExists:       steward.EConflict,
	objectstore.CodeBucketNotEmpty:     steward.EConflict,
	objectstore.CodePreconditionFailed: steward.EConflict,
	objectstore.CodeNotModified:        steward.EConflict,
	objectstore.CodeInvalidPart:        steward.EInvalid,
	objectstore.CodeInvalidPartOrder:   steward.EInvalid,
	objectstore.CodeEntityTooSmall:     steward.EInvalid,
	objectstore.CodeInvalidRange:       steward.EInvalid,
	objectstore.CodeBadDigest:          steward.EInvalid,
	objectstore.CodeInvalidBucketName:  steward.EInvalid,
	objectstore.CodeKeyTooLong:         steward.EInvalid,
	objectstore.CodeInvalidArgument:    steward.EInvalid,
	objectstore.CodeMethodNotAllowed:   steward.EInvalid,
	objectstore.CodeIncompleteBody:     steward.EInvalid,
	objectstore.CodeInvalidObjectState: steward.EInvalid,
	objectstore.CodeNotImplemented:     steward.EInvalid,
}

// upstreamCodes maps upstream error codes that differ from ours.
var upstreamCodes = map[string]string{
	"BucketAlreadyExists":         objectstore.CodeBucketExists,
	"XAmzContentChecksumMismatch": objectstore.CodeBadDigest,
	"InvalidDigest":               objectstore.CodeBadDigest,
	"NotFound":                    "", // a HEAD's 404: resolved by status below
	"InvalidRequest":              objectstore.CodeInvalidArgument,
	"BadRequest":                  objectstore.CodeInvalidArgument, // a HEAD's 400
	"MalformedXML":                objectstore.CodeInvalidArgument,
	"InvalidTag":                  objectstore.CodeInvalidArgument,
	"InvalidPartNumber":           objectstore.CodeInvalidArgument,
	"MissingContentLength":        objectstore.CodeIncompleteBody,
	"RequestTimeout":              objectstore.CodeIncompleteBody,
}

// pathConflictCodes are the answers of upstreams that keep keys as file
// paths (versitygw's posix backend, MinIO) when a key would be both an
// object and a "directory" of other keys.
var pathConflictCodes = map[string]bool{
	"ObjectParentIsFile": true, "ExistingObjectIsDirectory": true, "DirectoryObjectContainsData": true,
	"XMinioParentIsObject": true, "XMinioObjectExistsAsDirectory": true,
}

var messages = map[string]string{
	objectstore.CodeNoSuchBucket:       "the specified bucket does not exist",
	objectstore.CodeNoSuchKey:          "the specified key does not exist",
	objectstore.CodeNoSuchVersion:      "the specified version does not exist",
	objectstore.CodeNoSuchUpload:       "the specified multipart upload does not exist",
	objectstore.CodeBucketExists:       "the bucket already exists",
	objectstore.CodeBucketNotEmpty:     "the bucket you tried to delete is not empty",
	objectstore.CodePreconditionFailed: "at least one of the preconditions you specified did not hold",
	objectstore.CodeNotModified:        "not modified",
	objectstore.CodeInvalidPart:        "one or more of the specified parts could not be found",
	objectstore.CodeInvalidPartOrder:   "the list of parts was not in ascending order",
	objectstore.CodeEntityTooSmall:     "your proposed upload is smaller than the minimum allowed object size",
	objectstore.CodeInvalidRange:       "the requested range is not satisfiable",
	objectstore.CodeBadDigest:          "the digest you specified did not match what we received",
	objectstore.CodeMethodNotAllowed:   "the specified method is not allowed against this resource",
	objectstore.CodeIncompleteBody:     "you did not provide the number of bytes specified by the Content-Length header",
}

// mapErr turns an upstream error into a store error with our code; the
// upstream's own message stays in Err (it may name the prefixed bucket).
func (s *Store) mapErr(err error, op, bucket, key string) error {
	if err == nil {
		return nil
	}
	var se *steward.Error
	if errors.As(err, &se) {
		return se
	}
	code, status := "", 0
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	if c, ok := upstreamCodes[code]; ok {
		code = c
	}
	if pathConflictCodes[code] {
		e := steward.Errorf(steward.EConflict, "the upstream object store keeps keys as paths, and this key conflicts with an existing key or prefix")
		e.Err = err
		return e
	}
	if code == "EntityTooLarge" {
		e := steward.Errorf(steward.ETooLarge, "your proposed upload exceeds the maximum allowed size")
		e.Err = err
		return e
	}
	if _, ok := codeKinds[code]; !ok {
		switch status {
		case http.StatusNotModified:
			code = objectstore.CodeNotModified
		case http.StatusPreconditionFailed:
			code = objectstore.CodePreconditionFailed
		case http.StatusRequestedRangeNotSatisfiable:
			code = objectstore.CodeInvalidRange
		case http.StatusMethodNotAllowed:
			code = objectstore.CodeMethodNotAllowed
		case http.StatusNotFound:
			code = objectstore.CodeNoSuchKey
		default:
			code = ""
		}
	}
	if code == "" {
		kind := steward.EUnavailable
		if status >= 400 && status < 500 {
			kind = steward.EInternal // our credentials or our request were refused
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			kind = steward.EUnavailable
		}
		e := steward.Errorf(kind, "the upstream object store failed")
		e.Op = "s3store." + op
		e.Err = err
		return e
	}
	msg := messages[code]
	if msg == "" {
		msg = "the upstream object store refused the request"
		if ae != nil && ae.ErrorMessage() != "" && !strings.Contains(ae.ErrorMessage(), s.prefix+bucket) {
			msg = ae.ErrorMessage()
		}
	}
	e := objectstore.Errorf(codeKinds[code], code, "%s", msg)
	e.Err = fmt.Errorf("s3store.%s %s/%s: %w", op, bucket, key, err)
	return e
}

// buckets --------------------------------------------------------------------

// CreateBucket creates a bucket upstream (InvalidBucketName,
// BucketAlreadyOwnedByYou).
func (s *Store) CreateBucket(ctx context.Context, bucket string) error {
	if err := validBucketName(bucket); err != nil {
		return err
	}
	if s.prefix != "" && validBucketName(s.prefix+bucket) != nil {
		return objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidBucketName, "invalid bucket name: too long with this installation's bucket prefix")
	}
	_, err := s.c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: s.up(bucket)})
	return s.mapErr(err, "CreateBucket", bucket, "")
}

// DeleteBucket removes an empty bucket (NoSuchBucket, BucketNotEmpty).
func (s *Store) DeleteBucket(ctx context.Context, bucket string) error {
	if validBucketName(bucket) != nil {
		return errNoSuchBucket()
	}
	_, err := s.c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: s.up(bucket)})
	err = s.mapErr(err, "DeleteBucket", bucket, "")
	if steward.KindOf(err) == steward.ENotFound {
		return errNoSuchBucket()
	}
	return err
}

func errNoSuchBucket() error {
	return objectstore.Errorf(steward.ENotFound, objectstore.CodeNoSuchBucket, "%s", messages[objectstore.CodeNoSuchBucket])
}

// HeadBucket returns the bucket's creation time and versioning state
// (NoSuchBucket). It costs two upstream calls.
func (s *Store) HeadBucket(ctx context.Context, bucket string) (objectstore.BucketInfo, error) {
	if validBucketName(bucket) != nil {
		return objectstore.BucketInfo{}, errNoSuchBucket()
	}
	v, err := s.c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: s.up(bucket)})
	if err != nil {
		err = s.mapErr(err, "HeadBucket", bucket, "")
		if steward.KindOf(err) == steward.ENotFound {
			return objectstore.BucketInfo{}, errNoSuchBucket()
		}
		return objectstore.BucketInfo{}, err
	}
	info := objectstore.BucketInfo{Name: bucket, Versioning: objectstore.Versioning(v.Status)}
	var token *string
	for {
		out, err := s.c.ListBuckets(ctx, &s3.ListBucketsInput{Prefix: s.up(bucket), ContinuationToken: token})
		if err != nil {
			return objectstore.BucketInfo{}, s.mapErr(err, "HeadBucket", bucket, "")
		}
		for _, b := range out.Buckets {
			if aws.ToString(b.Name) == s.prefix+bucket {
				info.Created = aws.ToTime(b.CreationDate)
				return info, nil
			}
		}
		if aws.ToString(out.ContinuationToken) == "" {
			break
		}
		token = out.ContinuationToken
	}
	// Visible to GetBucketVersioning but not listed (owned by another
	// upstream account): it exists; its creation time is unknown.
	info.Created = time.Unix(0, 0).UTC()
	return info, nil
}

// ListBuckets lists this installation's buckets by name.
func (s *Store) ListBuckets(ctx context.Context) ([]objectstore.BucketInfo, error) {
	var out []objectstore.BucketInfo
	var token *string
	for {
		page, err := s.c.ListBuckets(ctx, &s3.ListBucketsInput{Prefix: s.nonEmptyPrefix(), ContinuationToken: token})
		if err != nil {
			return nil, s.mapErr(err, "ListBuckets", "", "")
		}
		for _, b := range page.Buckets {
			name, ok := strings.CutPrefix(aws.ToString(b.Name), s.prefix)
			if !ok || name == "" {
				continue
			}
			out = append(out, objectstore.BucketInfo{Name: name, Created: aws.ToTime(b.CreationDate)})
		}
		if aws.ToString(page.ContinuationToken) == "" {
			break
		}
		token = page.ContinuationToken
	}
	sortBuckets(out)
	return out, nil
}

// SetVersioning sets a bucket's versioning to Enabled or Suspended
// (NoSuchBucket, InvalidArgument).
func (s *Store) SetVersioning(ctx context.Context, bucket string, v objectstore.Versioning) error {
	if v != objectstore.VersioningEnabled && v != objectstore.VersioningSuspended {
		return objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidArgument, "versioning status must be Enabled or Suspended")
	}
	if validBucketName(bucket) != nil {
		return errNoSuchBucket()
	}
	_, err := s.c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: s.up(bucket),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatus(v)}})
	err = s.mapErr(err, "SetVersioning", bucket, "")
	if steward.KindOf(err) == steward.ENotFound {
		return errNoSuchBucket()
	}
	return err
}
