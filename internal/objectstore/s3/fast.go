package s3store

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/stewardhq/steward/internal/objectstore"
)

// The direct path: GetObject and PutObject, which carry nearly every
// byte and nearly every request through a gateway, are sent to a
// path-style upstream as plain HTTP requests signed with the SDK's
// SigV4 signer, rather than through the SDK client's middleware stack.
// On loopback that stack (endpoint rules, retries, per-call stack
// assembly, about 370 allocations) costs more CPU than the request
// itself; the inputs and outputs stay the SDK's types, and errors are
// built as the SDK builds them, so callers and mapErr see no
// difference. Virtual-host addressing (AWS S3) keeps the SDK client.

// emptySHA256 is the payload hash of a request without a body.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// direct signs and sends requests to a path-style endpoint.
type direct struct {
	base   *url.URL // scheme, host and base path of the endpoint
	region string
	creds  aws.Credentials
	signer *v4.Signer
	hc     *http.Client
	raw    *splicer // GETs, when the upstream is plain HTTP reached without a proxy; nil otherwise
}

func newDirect(endpoint, region, access, secret string, hc *http.Client) *direct {
	u, err := url.Parse(strings.TrimRight(endpoint, "/"))
	if err != nil {
		return nil
	}
	return &direct{
		base: u, region: region, hc: hc,
		creds: aws.Credentials{AccessKeyID: access, SecretAccessKey: secret, Source: "steward"},
		// S3 signs the path as sent, without escaping it a second time.
		signer: v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }),
	}
}

// request builds an unsigned request for bucket/key.
func (d *direct) request(ctx context.Context, method, bucket, key string, query url.Values, body io.Reader) (*http.Request, error) {
	u := *d.base
	u.Path = d.base.Path + "/" + bucket + "/" + key
	u.RawPath = d.base.EscapedPath() + "/" + objectstore.URIEncode(bucket, true) + "/" + objectstore.URIEncode(key, true)
	if len(query) > 0 {
		u.RawQuery = strings.ReplaceAll(query.Encode(), "+", "%20")
	}
	return http.NewRequestWithContext(ctx, method, u.String(), body)
}

// do signs req with payloadHash and sends it; an answer other than
// 2xx is returned as the SDK returns it (an *awshttp.ResponseError
// wrapping a smithy.APIError with the upstream's code and message).
func (d *direct) do(req *http.Request, payloadHash string) (*http.Response, error) {
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	if err := d.signer.SignHTTP(req.Context(), d.creds, req, payloadHash, "s3", d.region, time.Now().UTC()); err != nil {
		return nil, err
	}
	send := d.hc.Do
	if d.raw != nil && req.Method == http.MethodGet {
		send = d.raw.do
	}
	resp, err := send(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	var e struct {
		Code      string `xml:"Code"`
		Message   string `xml:"Message"`
		RequestID string `xml:"RequestId"`
	}
	xml.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e)
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	return nil, &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: resp},
			Err: &smithy.GenericAPIError{Code: e.Code, Message: e.Message}},
		RequestID: e.RequestID,
	}
}

func setHeader(h http.Header, k string, v *string) {
	if v != nil && *v != "" {
		h.Set(k, *v)
	}
}

func setTime(h http.Header, k string, t *time.Time) {
	if t != nil {
		h.Set(k, t.UTC().Format(http.TimeFormat))
	}
}

func optHeader(h http.Header, k string) *string {
	if v := h.Get(k); v != "" {
		return &v
	}
	return nil
}

// getObject is s3.Client.GetObject for the fields Get sets.
func (s *Store) getObject(ctx context.Context, in *s3.GetObjectInput) (*s3.GetObjectOutput, error) {
	if s.direct == nil {
		return s.c.GetObject(ctx, in)
	}
	var q url.Values
	if v := aws.ToString(in.VersionId); v != "" {
		q = url.Values{"versionId": {v}}
	}
	req, err := s.direct.request(ctx, http.MethodGet, aws.ToString(in.Bucket), aws.ToString(in.Key), q, nil)
	if err != nil {
		return s.c.GetObject(ctx, in)
	}
	h := req.Header
	setHeader(h, "Range", in.Range)
	setHeader(h, "If-Match", in.IfMatch)
	setHeader(h, "If-None-Match", in.IfNoneMatch)
	setTime(h, "If-Modified-Since", in.IfModifiedSince)
	setTime(h, "If-Unmodified-Since", in.IfUnmodifiedSince)
	resp, err := s.direct.do(req, emptySHA256)
	if err != nil {
		if re, ok := err.(*awshttp.ResponseError); ok && re.HTTPStatusCode() >= 500 {
			return s.c.GetObject(ctx, in) // the SDK retries what may be transient
		}
		return nil, err
	}
	rh := resp.Header
	out := &s3.GetObjectOutput{
		Body: resp.Body, ContentRange: optHeader(rh, "Content-Range"), ETag: optHeader(rh, "ETag"),
		VersionId: optHeader(rh, "X-Amz-Version-Id"), ContentType: optHeader(rh, "Content-Type"),
		CacheControl: optHeader(rh, "Cache-Control"), ContentDisposition: optHeader(rh, "Content-Disposition"),
		ContentEncoding: optHeader(rh, "Content-Encoding"), ContentLanguage: optHeader(rh, "Content-Language"),
		ExpiresString: optHeader(rh, "Expires"),
	}
	if resp.ContentLength >= 0 {
		out.ContentLength = aws.Int64(resp.ContentLength)
	}
	if t, err := http.ParseTime(rh.Get("Last-Modified")); err == nil {
		out.LastModified = &t
	}
	if n, err := strconv.ParseInt(rh.Get("X-Amz-Tagging-Count"), 10, 32); err == nil {
		out.TagCount = aws.Int32(int32(n))
	}
	out.Metadata = userMetadata(rh)
	return out, nil
}

// userMetadata collects the x-amz-meta-* headers under lower-case names,
// as the SDK does.
func userMetadata(h http.Header) map[string]string {
	var m map[string]string
	const prefix = "X-Amz-Meta-"
	for k, v := range h {
		if len(k) > len(prefix) && strings.EqualFold(k[:len(prefix)], prefix) && len(v) > 0 {
			if m == nil {
				m = map[string]string{}
			}
			m[strings.ToLower(k[len(prefix):])] = strings.TrimSpace(v[0])
		}
	}
	return m
}

// putObject is s3.Client.PutObject with streamOpts for the fields Put
// sets: the body is sent once, unsigned, and not retried.
func (s *Store) putObject(ctx context.Context, in *s3.PutObjectInput) (*s3.PutObjectOutput, error) {
	if s.direct == nil {
		return s.c.PutObject(ctx, in, streamOpts)
	}
	size := aws.ToInt64(in.ContentLength)
	body := in.Body
	if size == 0 || body == nil {
		body = http.NoBody
	}
	req, err := s.direct.request(ctx, http.MethodPut, aws.ToString(in.Bucket), aws.ToString(in.Key), nil, body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = size
	h := req.Header
	setHeader(h, "Content-Type", in.ContentType)
	setHeader(h, "Cache-Control", in.CacheControl)
	setHeader(h, "Content-Disposition", in.ContentDisposition)
	setHeader(h, "Content-Encoding", in.ContentEncoding)
	setHeader(h, "Content-Language", in.ContentLanguage)
	setTime(h, "Expires", in.Expires)
	setHeader(h, "X-Amz-Tagging", in.Tagging)
	setHeader(h, "Content-MD5", in.ContentMD5)
	setHeader(h, "If-Match", in.IfMatch)
	setHeader(h, "If-None-Match", in.IfNoneMatch)
	setHeader(h, "X-Amz-Checksum-Crc32", in.ChecksumCRC32)
	setHeader(h, "X-Amz-Checksum-Crc32c", in.ChecksumCRC32C)
	setHeader(h, "X-Amz-Checksum-Crc64nvme", in.ChecksumCRC64NVME)
	setHeader(h, "X-Amz-Checksum-Sha1", in.ChecksumSHA1)
	setHeader(h, "X-Amz-Checksum-Sha256", in.ChecksumSHA256)
	for k, v := range in.Metadata {
		h.Set("X-Amz-Meta-"+k, v)
	}
	resp, err := s.direct.do(req, "UNSIGNED-PAYLOAD")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	rh := resp.Header
	return &s3.PutObjectOutput{
		ETag: optHeader(rh, "ETag"), VersionId: optHeader(rh, "X-Amz-Version-Id"),
		ChecksumCRC32: optHeader(rh, "X-Amz-Checksum-Crc32"), ChecksumCRC32C: optHeader(rh, "X-Amz-Checksum-Crc32c"),
		ChecksumCRC64NVME: optHeader(rh, "X-Amz-Checksum-Crc64nvme"), ChecksumSHA1: optHeader(rh, "X-Amz-Checksum-Sha1"),
		ChecksumSHA256: optHeader(rh, "X-Amz-Checksum-Sha256"),
	}, nil
}
