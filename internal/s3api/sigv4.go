package s3api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
)

// Credential is a verified signing identity: the secret a request is signed
// with and who it stands for.
type Credential struct {
	AccessKeyID string
	SecretKey   steward.Secret
	// SessionToken is the token the request must carry in
	// x-amz-security-token (X-Amz-Security-Token when presigned); empty
	// for long-lived keys, which must carry none.
	SessionToken string
	Principal    *steward.Principal
	// Scope, if set, narrows what the credential may do below what the
	// principal's policies allow (an STS role choice or session policy).
	Scope Scope
	// Expires is when the credential stops working; zero for never.
	Expires time.Time
	// SessionID identifies an STS session in audit records; empty for keys.
	SessionID string

	// derived holds the last SigV4 signing key derived from SecretKey
	// (a *derivedKey), so that a resolver that hands out the same
	// *Credential for every request of a session or key saves the four
	// HMACs of the derivation. atomic.Value, not atomic.Pointer: a
	// Credential may be copied by value (the copy keeps a key that is
	// checked against its own secret before use).
	derived atomic.Value
}

// derivedKey is a signing key and what it was derived from.
type derivedKey struct {
	secret, date, region, service string
	key                           []byte
}

// signingKey returns c's SigV4 signing key for date/region/service,
// deriving it only when the scope (or the secret) differs from the last
// request's. Safe for concurrent use; the key returned must not be
// modified.
func (c *Credential) signingKey(date, region, service string) []byte {
	secret := c.SecretKey.Reveal()
	if d, _ := c.derived.Load().(*derivedKey); d != nil && d.date == date && d.region == region && d.service == service && d.secret == secret {
		return d.key
	}
	k := signingKey(secret, date, region, service)
	c.derived.Store(&derivedKey{secret: secret, date: date, region: region, service: service, key: k})
	return k
}

// Scope narrows a credential. Allows reports whether the S3 action
// ("s3:GetObject") on bucket and key ("" for bucket-level actions) is
// within the scope.
type Scope interface {
	Allows(action, bucket, key string) bool
}

// CredentialResolver finds the credential for an access key. sessionToken
// is the x-amz-security-token the request carries ("" if none). It returns
// a *steward.Error of kind EUnauthenticated whose Op is the S3 code to
// answer with ("InvalidAccessKeyId", "ExpiredToken", "InvalidToken") or
// EUnavailable when the credential store cannot be reached.
type CredentialResolver interface {
	ResolveCredential(ctx context.Context, accessKeyID, sessionToken string) (*Credential, error)
}

// STSHandler is implemented by a CredentialResolver that also serves STS
// actions (AssumeRoleWithWebIdentity) posted to the endpoint root.
type STSHandler interface {
	ServeSTS(w http.ResponseWriter, r *http.Request)
}

const (
	sigAlgorithm     = "AWS4-HMAC-SHA256"
	amzDateFormat    = "20060102T150405Z"
	shortDateFormat  = "20060102"
	maxClockSkew     = 15 * time.Minute
	maxPresignExpiry = 7 * 24 * time.Hour
	emptySHA256      = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

	unsignedPayload          = "UNSIGNED-PAYLOAD"
	streamingSigned          = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrailer   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

// sigInput is what an Authorization header or presigned query says.
type sigInput struct {
	AccessKeyID   string
	Date          string // yyyymmdd of the credential scope
	Region        string
	Service       string
	SignedHeaders []string
	Signature     string
	// Presigned only.
	AmzDate string
	Expires time.Duration
	Token   string
}

func (s *sigInput) scope() string {
	return s.Date + "/" + s.Region + "/" + s.Service + "/aws4_request"
}

// parseCredential splits "AKID/20130524/us-east-1/s3/aws4_request"; when
// it cannot, it says why in S3's words (the detail after "The
// authorization header is malformed; " or "Error parsing the
// X-Amz-Credential parameter; ").
func parseCredential(v string, in *sigInput) (problem string) {
	parts := strings.Split(v, "/")
	if len(parts) != 5 || parts[0] == "" || parts[2] == "" {
		return `the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`
	}
	if parts[3] != "s3" {
		return fmt.Sprintf(`incorrect service %q. This endpoint belongs to "s3".`, parts[3])
	}
	if parts[4] != "aws4_request" {
		return fmt.Sprintf(`incorrect terminal %q. This endpoint uses "aws4_request".`, parts[4])
	}
	if _, err := time.Parse(shortDateFormat, parts[1]); err != nil || len(parts[1]) != 8 {
		return fmt.Sprintf(`incorrect date format %q. This date in the credential must be in the format "yyyyMMdd".`, parts[1])
	}
	in.AccessKeyID, in.Date, in.Region, in.Service = parts[0], parts[1], parts[2], parts[3]
	return ""
}

const (
	headerMalformed   = "The authorization header is malformed; "
	credentialInQuery = "Error parsing the X-Amz-Credential parameter; "
)

// parseSignedHeaders checks "host;x-amz-date": lower-case, sorted, unique.
func parseSignedHeaders(v string) ([]string, bool) {
	if v == "" || len(v) > 4096 {
		return nil, false
	}
	hs := strings.Split(v, ";")
	for i, h := range hs {
		if h == "" || h != strings.ToLower(h) || strings.ContainsAny(h, " \t:") {
			return nil, false
		}
		if i > 0 && hs[i-1] >= h {
			return nil, false
		}
	}
	return hs, true
}

func isHexSig(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// parseAuthorization parses an AWS4-HMAC-SHA256 Authorization header.
func parseAuthorization(h string) (*sigInput, error) {
	if strings.HasPrefix(h, "AWS ") {
		return nil, errSignatureVersionFound
	}
	rest, ok := strings.CutPrefix(h, sigAlgorithm+" ")
	if !ok {
		return nil, errUnsupportedSig
	}
	in := &sigInput{}
	fields := strings.Split(rest, ",")
	if len(fields) != 3 {
		return nil, errAuthHeaderMalformed.with(headerMalformed + "the authorization header requires three components: Credential, SignedHeaders, and Signature.")
	}
	for i, name := range []string{"Credential", "SignedHeaders", "Signature"} {
		f := strings.TrimSpace(fields[i])
		k, v, ok := strings.Cut(f, "=")
		if !ok || strings.Contains(v, "=") {
			return nil, errAuthHeaderMalformed.with(headerMalformed + fmt.Sprintf("the authorization component %q is malformed.", f))
		}
		if k != name {
			return nil, errAuthHeaderMalformed.with(headerMalformed + "missing " + name + ".")
		}
		switch i {
		case 0:
			if p := parseCredential(v, in); p != "" {
				return nil, errAuthHeaderMalformed.with(headerMalformed + p)
			}
		case 1:
			hs, ok := parseSignedHeaders(v)
			if !ok {
				return nil, errAuthHeaderMalformed.with(headerMalformed + fmt.Sprintf("the authorization component %q is malformed.", f))
			}
			in.SignedHeaders = hs
		case 2:
			if !isHexSig(v) {
				return nil, errAuthHeaderMalformed.with(headerMalformed + fmt.Sprintf("the authorization component %q is malformed.", f))
			}
			in.Signature = v
		}
	}
	return in, nil
}

// parsePresigned parses the X-Amz-* query parameters of a presigned URL.
func parsePresigned(q url.Values) (*sigInput, error) {
	if q.Get("X-Amz-Algorithm") != sigAlgorithm {
		return nil, errUnsupportedSig
	}
	for _, k := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token"} {
		if len(q[k]) > 1 {
			return nil, errAuthQueryMalformed.with("The " + k + " query parameter may be given once.")
		}
		if k != "X-Amz-Security-Token" && q.Get(k) == "" {
			return nil, errAuthQueryMalformed
		}
	}
	in := &sigInput{}
	if p := parseCredential(q.Get("X-Amz-Credential"), in); p != "" {
		return nil, errAuthQueryMalformed.with(credentialInQuery + p)
	}
	hs, ok := parseSignedHeaders(q.Get("X-Amz-SignedHeaders"))
	if !ok {
		return nil, errAuthQueryMalformed
	}
	in.SignedHeaders = hs
	if in.Signature = q.Get("X-Amz-Signature"); !isHexSig(in.Signature) {
		return nil, errAuthQueryMalformed
	}
	in.AmzDate = q.Get("X-Amz-Date")
	if _, err := time.Parse(amzDateFormat, in.AmzDate); err != nil {
		return nil, errAuthQueryMalformed.with("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
	}
	exp, err := strconv.ParseInt(q.Get("X-Amz-Expires"), 10, 64)
	if err != nil {
		return nil, errAuthQueryMalformed.with("X-Amz-Expires should be a number")
	}
	if exp < 1 {
		// A URL presigned to expire at or before its signing time has
		// expired, whatever else it says (S3 answers 403).
		return nil, errRequestExpired
	}
	if exp > int64(maxPresignExpiry/time.Second) {
		return nil, errAuthQueryMalformed.with("X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds")
	}
	in.Expires = time.Duration(exp) * time.Second
	in.Token = q.Get("X-Amz-Security-Token")
	return in, nil
}

// canonicalQuery builds the canonical query string from the raw query,
// leaving out skip (X-Amz-Signature for presigned URLs).
func canonicalQuery(raw, skip string) (string, error) {
	if raw == "" {
		return "", nil
	}
	type kv struct{ k, v string }
	var kvs []kv
	for _, p := range strings.Split(raw, "&") {
		if p == "" {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			return "", err
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			return "", err
		}
		if dk == skip {
			continue
		}
		kvs = append(kvs, kv{objectstore.URIEncode(dk, false), objectstore.URIEncode(dv, false)})
	}
	slices.SortFunc(kvs, func(a, b kv) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	var b strings.Builder
	for i, p := range kvs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String(), nil
}

// canonicalHeaderValue trims and collapses runs of spaces.
func canonicalHeaderValue(vs []string) string {
	var b strings.Builder
	for i, v := range vs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strings.Join(strings.Fields(v), " "))
	}
	return b.String()
}

// canonicalRequest builds the SigV4 canonical request of r.
func canonicalRequest(r *http.Request, in *sigInput, payloadHash string, presigned bool) (string, error) {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	path := r.URL.Path
	if path == "" {
		path = "/"
	}
	b.WriteString(objectstore.URIEncode(path, true))
	b.WriteByte('\n')
	skip := ""
	if presigned {
		skip = "X-Amz-Signature"
	}
	cq, err := canonicalQuery(r.URL.RawQuery, skip)
	if err != nil {
		return "", err
	}
	b.WriteString(cq)
	b.WriteByte('\n')
	for _, h := range in.SignedHeaders {
		b.WriteString(h)
		b.WriteByte(':')
		switch h {
		case "host":
			b.WriteString(strings.TrimSpace(r.Host))
		case "content-length":
			if vs := r.Header.Values("Content-Length"); len(vs) > 0 {
				b.WriteString(canonicalHeaderValue(vs))
			} else if r.ContentLength >= 0 {
				b.WriteString(strconv.FormatInt(r.ContentLength, 10))
			}
		case "transfer-encoding":
			b.WriteString(strings.Join(r.TransferEncoding, ","))
		default:
			b.WriteString(canonicalHeaderValue(r.Header.Values(h)))
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(in.SignedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String(), nil
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// signingKey derives the SigV4 signing key for date/region/service.
func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}

func stringToSign(amzDate, scope, canonical string) string {
	return sigAlgorithm + "\n" + amzDate + "\n" + scope + "\n" + sha256Hex(canonical)
}

// sigEqual compares two hex signatures in constant time.
func sigEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// authResult is a verified request's signing context, which the chunked
// body decoder continues from.
type authResult struct {
	cred        *Credential
	key         []byte
	amzDate     string
	scope       string
	seed        string // the request signature, the first chunk's previous signature
	payloadHash string
	presigned   bool
}

// verifier checks SigV4 signatures.
type verifier struct {
	region     string
	maxPresign time.Duration
	creds      CredentialResolver
	now        func() time.Time
}

// verify authenticates r. A request with neither an Authorization header
// nor presigned query parameters is refused (there is no anonymous access).
func (v *verifier) verify(ctx context.Context, r *http.Request) (*authResult, error) {
	ah := r.Header.Get("Authorization")
	q := r.URL.Query()
	switch {
	case ah != "" && q.Has("X-Amz-Algorithm"):
		return nil, errInvalidRequest.with("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified")
	case ah != "":
		return v.verifyHeader(ctx, r, ah)
	case q.Has("X-Amz-Algorithm") || q.Has("X-Amz-Signature"):
		return v.verifyPresigned(ctx, r, q)
	case q.Has("AWSAccessKeyId") || q.Has("Signature"):
		return nil, errSignatureVersionFound
	}
	return nil, errMissingAuth
}

func (v *verifier) checkScope(in *sigInput, mal *APIError, amzDate time.Time) error {
	prefix := headerMalformed
	if mal == errAuthQueryMalformed {
		prefix = credentialInQuery
	}
	if in.Service != "s3" {
		return mal.with(prefix + fmt.Sprintf(`incorrect service %q. This endpoint belongs to "s3".`, in.Service))
	}
	if in.Region != v.region {
		return mal.with(prefix + fmt.Sprintf("the region %q is wrong; expecting %q", in.Region, v.region))
	}
	if d := amzDate.Format(shortDateFormat); d != in.Date {
		return mal.with(fmt.Sprintf("Invalid credential date %q. This date is not the same as X-Amz-Date: %q.", in.Date, d))
	}
	return nil
}

func (v *verifier) verifyHeader(ctx context.Context, r *http.Request, ah string) (*authResult, error) {
	in, err := parseAuthorization(ah)
	if err != nil {
		return nil, err
	}
	ds := r.Header.Get("X-Amz-Date")
	dateHeader := "x-amz-date"
	var t time.Time
	if ds != "" {
		t, err = time.Parse(amzDateFormat, ds)
	} else if ds = r.Header.Get("Date"); ds != "" {
		dateHeader = "date"
		t, err = parseHTTPDate(ds)
		ds = t.UTC().Format(amzDateFormat)
	} else {
		return nil, errMissingDate
	}
	if err != nil {
		return nil, errMissingDate
	}
	if err := v.checkScope(in, errAuthHeaderMalformed, t.UTC()); err != nil {
		return nil, err
	}
	now := v.now()
	if d := now.Sub(t); d > maxClockSkew || d < -maxClockSkew {
		return nil, errTimeSkewed
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		return nil, errMissingContentSHA
	}
	if !validPayloadHash(payload) {
		return nil, errInvalidContentSHA
	}
	if err := checkSigned(r, in.SignedHeaders, dateHeader, true); err != nil {
		return nil, err
	}
	cred, err := v.credential(ctx, in.AccessKeyID, r.Header.Get("X-Amz-Security-Token"), now)
	if err != nil {
		return nil, err
	}
	cr, err := canonicalRequest(r, in, payload, false)
	if err != nil {
		return nil, errAuthHeaderMalformed.wrap(err)
	}
	key := cred.signingKey(in.Date, in.Region, in.Service)
	want := hex.EncodeToString(hmacSHA256(key, stringToSign(ds, in.scope(), cr)))
	if !sigEqual(want, in.Signature) {
		return nil, errSignatureMismatch
	}
	return &authResult{cred: cred, key: key, amzDate: ds, scope: in.scope(), seed: in.Signature, payloadHash: payload}, nil
}

func (v *verifier) verifyPresigned(ctx context.Context, r *http.Request, q url.Values) (*authResult, error) {
	in, err := parsePresigned(q)
	if err != nil {
		return nil, err
	}
	t, _ := time.Parse(amzDateFormat, in.AmzDate)
	if err := v.checkScope(in, errAuthQueryMalformed, t); err != nil {
		return nil, err
	}
	if v.maxPresign > 0 && in.Expires > v.maxPresign {
		return nil, errAuthQueryMalformed.with("X-Amz-Expires exceeds the maximum this service allows (" + v.maxPresign.String() + ")")
	}
	now := v.now()
	if t.Sub(now) > maxClockSkew {
		return nil, errTimeSkewed
	}
	if now.After(t.Add(in.Expires)) {
		return nil, errRequestExpired
	}
	if err := checkSigned(r, in.SignedHeaders, "", false); err != nil {
		return nil, err
	}
	payload := unsignedPayload
	if p := q.Get("X-Amz-Content-Sha256"); p != "" {
		if p != unsignedPayload && !isHexSig(p) {
			return nil, errInvalidContentSHA
		}
		payload = p
	}
	cred, err := v.credential(ctx, in.AccessKeyID, in.Token, now)
	if err != nil {
		return nil, err
	}
	cr, err := canonicalRequest(r, in, payload, true)
	if err != nil {
		return nil, errAuthQueryMalformed.wrap(err)
	}
	key := cred.signingKey(in.Date, in.Region, in.Service)
	want := hex.EncodeToString(hmacSHA256(key, stringToSign(in.AmzDate, in.scope(), cr)))
	if !sigEqual(want, in.Signature) {
		return nil, errSignatureMismatch
	}
	return &authResult{cred: cred, key: key, amzDate: in.AmzDate, scope: in.scope(), seed: in.Signature, payloadHash: payload, presigned: true}, nil
}

// credential resolves the access key and checks its session token and
// expiry.
func (v *verifier) credential(ctx context.Context, akid, token string, now time.Time) (*Credential, error) {
	if len(akid) > 128 || len(token) > 8192 {
		return nil, errInvalidAccessKey
	}
	cred, err := v.creds.ResolveCredential(ctx, akid, token)
	if err != nil {
		return nil, resolveError(err)
	}
	if cred == nil || cred.Principal == nil {
		return nil, errInvalidAccessKey
	}
	if !sigEqual(cred.SessionToken, token) {
		return nil, errInvalidToken
	}
	if !cred.Expires.IsZero() && !now.Before(cred.Expires) {
		return nil, errExpiredToken
	}
	return cred, nil
}

func resolveError(err error) *APIError {
	var se *steward.Error
	if errors.As(err, &se) {
		switch se.Kind {
		case steward.EUnavailable, steward.EInternal:
			return errServiceUnavailable.wrap(err)
		}
		switch se.Op {
		case "ExpiredToken":
			return errExpiredToken.wrap(err)
		case "InvalidToken":
			return errInvalidToken.wrap(err)
		}
		return errInvalidAccessKey.wrap(err)
	}
	return errServiceUnavailable.wrap(err)
}

func validPayloadHash(p string) bool {
	switch p {
	case unsignedPayload, streamingSigned, streamingSignedTrailer, streamingUnsignedTrailer:
		return true
	}
	return isHexSig(p)
}

// checkSigned enforces that host, the date header used and every x-amz-*
// header present are signed, as S3 does.
func checkSigned(r *http.Request, signed []string, dateHeader string, header bool) error {
	has := func(h string) bool { _, ok := slices.BinarySearch(signed, h); return ok }
	if !has("host") {
		return errHeadersNotSigned.with("The host header must be signed.")
	}
	if dateHeader != "" && !has(dateHeader) {
		return errHeadersNotSigned.with("The " + dateHeader + " header must be signed.")
	}
	for name := range r.Header {
		l := strings.ToLower(name)
		if !strings.HasPrefix(l, "x-amz-") || has(l) {
			continue
		}
		if !header && l == "x-amz-content-sha256" {
			continue
		}
		return errHeadersNotSigned.wrap(errors.New("unsigned header " + l))
	}
	return nil
}

// parseHTTPDate parses a Date header: the HTTP formats, and RFC 1123 with
// a numeric zone ("Thu, 26 Nov 2026 08:50:07 -0000", as Python's
// email.utils.formatdate writes it, which botocore signs with).
func parseHTTPDate(s string) (time.Time, error) {
	if t, err := http.ParseTime(s); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC1123Z, s)
}
