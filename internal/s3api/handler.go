package s3api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
	"github.com/stewardhq/steward/internal/policy"
)

// Config configures the gateway.
type Config struct {
	// BaseDomain enables virtual-host-style addressing: a request to
	// <bucket>.<BaseDomain> addresses that bucket. Requests to any other
	// host are path-style.
	BaseDomain string
	// Region is the region clients sign for; "us-east-1" if empty.
	Region string
	// MaxPresignExpiry caps X-Amz-Expires of presigned URLs; 7 days (the
	// SigV4 maximum) if zero or larger.
	MaxPresignExpiry time.Duration
	// MaxObjectSize caps a single PUT or part; 5 GiB if zero.
	MaxObjectSize int64
	// TrustForwardedFor takes the client address from X-Forwarded-For
	// (set it only behind a trusted proxy).
	TrustForwardedFor bool
	// Now is the clock; time.Now if nil (tests set it).
	Now func() time.Time
	// BeforeCopy, if set, is told about every server-side copy
	// (CopyObject, UploadPartCopy) after both sides were authorized and
	// the source was found, and before any byte is written, so that the
	// copy's lineage exists before the target does (the target inherits
	// the source's tags with no window of exposure). An error fails the
	// copy with InternalError and writes nothing.
	BeforeCopy func(ctx context.Context, srcBucket, srcKey, dstBucket, dstKey string) error
}

// Limits on what a request may carry.
const (
	maxHeaderBytes   = 64 << 10
	maxMetadataBytes = 2 << 10
	maxXMLBody       = 1 << 20 // Delete and CompleteMultipartUpload bodies
	maxSmallXMLBody  = 64 << 10
	maxKeyLen        = 1024
	maxParts         = 10000
	defaultMaxObject = 5 << 30
)

// Handler serves the S3 API. It is safe for concurrent use.
type Handler struct {
	cfg     Config
	store   objectstore.Store
	creds   CredentialResolver
	sts     STSHandler
	authz   Authorizer
	tags    TagSource
	auditor steward.Auditor
	log     *slog.Logger
	v       verifier
}

// New returns the S3 handler. creds resolves access keys (internal/sts);
// if it also implements STSHandler, STS actions posted to the endpoint
// root are handed to it. tags may be nil (no tags).
func New(cfg Config, store objectstore.Store, creds CredentialResolver, authz Authorizer, tags TagSource, auditor steward.Auditor, logger *slog.Logger) *Handler {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.MaxPresignExpiry <= 0 || cfg.MaxPresignExpiry > maxPresignExpiry {
		cfg.MaxPresignExpiry = maxPresignExpiry
	}
	if cfg.MaxObjectSize <= 0 {
		cfg.MaxObjectSize = defaultMaxObject
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.BaseDomain = strings.ToLower(strings.TrimSuffix(cfg.BaseDomain, "."))
	if tags == nil {
		tags = NoTags{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, store: store, creds: creds, authz: authz, tags: tags, auditor: auditor, log: logger}
	h.sts, _ = creds.(STSHandler)
	h.v = verifier{region: cfg.Region, maxPresign: cfg.MaxPresignExpiry, creds: creds, now: cfg.Now}
	return h
}

// reqCtx is one request in flight.
type reqCtx struct {
	h      *Handler
	w      *auditWriter
	r      *http.Request
	ctx    context.Context
	id     string
	op     string // "GetObject"
	bucket string
	key    string
	client string

	auth      *authResult
	principal *steward.Principal
	akid      string
	decision  string // allow, deny, or "" (not decided)
	policies  []string
	reason    string
	bytesIn   int64
	details   map[string]any
	pending   bool // a decision record was written
}

func (rc *reqCtx) resource() string {
	switch {
	case rc.bucket == "":
		return "s3://"
	case rc.key == "":
		return "s3://" + rc.bucket
	}
	return "s3://" + rc.bucket + "/" + rc.key
}

func (rc *reqCtx) errResource() string {
	if rc.bucket == "" {
		return "/"
	}
	if rc.key == "" {
		return "/" + rc.bucket
	}
	return "/" + rc.bucket + "/" + rc.key
}

func (rc *reqCtx) event(outcome string) steward.AuditEvent {
	ev := steward.AuditEvent{
		Time:       time.Now().UTC(),
		RequestID:  rc.id,
		Actor:      "anonymous",
		ActorKind:  "anonymous",
		Action:     "s3:" + rc.op,
		Resource:   rc.resource(),
		Decision:   rc.decision,
		Policy:     strings.Join(rc.policies, ","),
		Outcome:    outcome,
		Reason:     rc.reason,
		ClientAddr: rc.client,
	}
	if rc.principal != nil {
		ev.Actor, ev.ActorKind = rc.principal.Username, string(rc.principal.Kind)
	}
	d := map[string]any{}
	for k, v := range rc.details {
		d[k] = v
	}
	if rc.akid != "" {
		d["access_key_id"] = rc.akid
	}
	if rc.auth != nil && rc.auth.cred.SessionID != "" {
		d["session"] = rc.auth.cred.SessionID
	}
	if len(d) > 0 {
		ev.Details = d
	}
	return ev
}

// begin writes the decision record of an allowed mutating request before
// the store is touched; if it cannot be written the request must fail.
func (rc *reqCtx) begin() error {
	if rc.pending {
		return nil
	}
	ev := rc.event("pending")
	if err := rc.h.auditor.Record(rc.ctx, ev); err != nil {
		return errAuditUnavailable.wrap(err)
	}
	rc.pending = true
	return nil
}

// beginAsync starts writing the decision record of an allowed mutating
// request and returns the wait for it, to be called before the change can
// become visible (objectstore.PutOptions.BeforeCommit): the record's fsync
// overlaps the body's upload. Calling the wait more than once is safe.
func (rc *reqCtx) beginAsync() func() error {
	if rc.pending {
		return func() error { return nil }
	}
	rc.pending = true
	wait := steward.StartAudit(rc.ctx, rc.h.auditor, rc.event("pending"))
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() {
			if werr := wait(); werr != nil {
				err = errAuditUnavailable.wrap(werr)
			}
		})
		return err
	}
}

// complete writes the record that ends the request, just before its
// status line is sent.
func (rc *reqCtx) complete(status int, bytesOut int64) error {
	outcome := "success"
	if status >= 400 {
		outcome = "failure"
	}
	ev := rc.event(outcome)
	if ev.Details == nil {
		ev.Details = map[string]any{}
	}
	ev.Details["status"] = status
	if rc.bytesIn > 0 {
		ev.Details["bytes_in"] = rc.bytesIn
	}
	if bytesOut > 0 {
		ev.Details["bytes_out"] = bytesOut
	}
	return rc.h.auditor.Record(rc.ctx, ev)
}

// auditWriter writes the completion audit record when the status is
// sent; if that fails it answers 503 instead.
type auditWriter struct {
	http.ResponseWriter
	rc     *reqCtx
	wrote  bool
	failed bool
	status int
	n      int64
}

func (w *auditWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote, w.status = true, code
	var out int64
	if cl := w.Header().Get("Content-Length"); cl != "" {
		out, _ = strconv.ParseInt(cl, 10, 64)
	}
	if err := w.rc.complete(code, out); err != nil {
		w.failed = true
		w.rc.h.log.ErrorContext(w.rc.ctx, "audit record failed; refusing the request", "request_id", w.rc.id, "op", w.rc.op, "err", err)
		hdr := w.Header()
		for k := range hdr {
			if k != "X-Amz-Request-Id" && k != "X-Amz-Id-2" {
				delete(hdr, k)
			}
		}
		writeError(w.ResponseWriter, w.rc.r, errAuditUnavailable, w.rc.errResource(), w.rc.id)
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

var errAuditFailed = errors.New("s3api: response suppressed: audit record failed")

func (w *auditWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return 0, errAuditFailed
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

// ReadFrom hands a body to the connection's ReadFrom, so that an object
// file reaches the socket by sendfile instead of through a user-space
// buffer.
func (w *auditWriter) ReadFrom(r io.Reader) (int64, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return 0, errAuditFailed
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(writerOnly{w.ResponseWriter}, r)
	}
	w.n += n
	return n, err
}

// writerOnly hides every method but Write, so io.Copy cannot loop back
// into ReadFrom.
type writerOnly struct{ io.Writer }

func (w *auditWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *auditWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok && !w.failed {
		f.Flush()
	}
}

// fail answers with err (mapped to S3) and records why.
func (rc *reqCtx) fail(err error) {
	ae := toAPIError(err)
	if ae.Status >= 500 {
		rc.h.log.ErrorContext(rc.ctx, "s3 request failed", "request_id", rc.id, "op", rc.op, "resource", rc.resource(), "err", ae)
	} else if ae.Err != nil {
		rc.h.log.DebugContext(rc.ctx, "s3 request refused", "request_id", rc.id, "op", rc.op, "err", ae)
	}
	if rc.reason == "" {
		rc.reason = ae.Code
	}
	if rc.w.wrote {
		return // the response is under way; nothing more to say
	}
	writeError(rc.w, rc.r, ae, rc.errResource(), rc.id)
}

// ServeHTTP serves one S3 (or STS) request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := steward.NewRequestID()
	w.Header().Set("X-Amz-Request-Id", id)
	w.Header().Set("X-Amz-Id-2", id)
	w.Header().Set("Server", "Steward")
	client := h.clientAddr(r)
	ctx := steward.WithClientAddr(steward.WithRequestID(r.Context(), id), client)
	r = r.WithContext(ctx)
	rc := &reqCtx{h: h, r: r, ctx: ctx, id: id, client: client}
	rc.w = &auditWriter{ResponseWriter: w, rc: rc}

	bucket, key, err := h.address(r)
	rc.bucket, rc.key = bucket, key
	if bucket == "" && key == "" && h.sts != nil && isSTSRequest(r) {
		h.sts.ServeSTS(w, r)
		return
	}
	op, fn := route(r.Method, bucket, key, r.URL.Query(), r.Header)
	rc.op = op
	if err == nil {
		err = checkHeaders(r)
	}
	if err != nil {
		rc.fail(err)
		return
	}
	auth, err := h.v.verify(ctx, r)
	if err != nil {
		rc.akid = accessKeyOf(r)
		rc.fail(err)
		return
	}
	rc.auth, rc.principal = auth, auth.cred.Principal
	rc.akid = auth.cred.AccessKeyID
	rc.ctx = steward.WithPrincipal(ctx, rc.principal)
	if fn == nil {
		rc.fail(rc.unimplemented())
		return
	}
	if err := rc.checkExpectedOwner(); err != nil {
		rc.fail(err)
		return
	}
	if err := fn(rc); err != nil {
		rc.fail(err)
	}
}

// accessKeyOf extracts the claimed access key of an unverified request,
// for the audit record of its refusal.
func accessKeyOf(r *http.Request) string {
	s := r.Header.Get("Authorization")
	if s == "" {
		s = r.URL.Query().Get("X-Amz-Credential")
	} else if _, c, ok := strings.Cut(s, "Credential="); ok {
		s = c
	} else {
		return ""
	}
	ak, _, _ := strings.Cut(s, "/")
	if len(ak) > 64 || !utf8.ValidString(ak) {
		return ""
	}
	return ak
}

func isSTSRequest(r *http.Request) bool {
	if r.URL.Query().Get("Action") != "" {
		return true
	}
	if r.Method != http.MethodPost {
		return false
	}
	ct := r.Header.Get("Content-Type")
	return strings.HasPrefix(strings.ToLower(ct), "application/x-www-form-urlencoded")
}

func (h *Handler) clientAddr(r *http.Request) string {
	if h.cfg.TrustForwardedFor {
		if f := r.Header.Get("X-Forwarded-For"); f != "" {
			first, _, _ := strings.Cut(f, ",")
			if a, err := netip.ParseAddr(strings.TrimSpace(first)); err == nil {
				return a.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// address finds the bucket and key: virtual-host style when the host is
// <bucket>.<BaseDomain>, path style otherwise.
func (h *Handler) address(r *http.Request) (bucket, key string, err error) {
	path := r.URL.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	host := strings.ToLower(r.Host)
	if hh, _, err := net.SplitHostPort(host); err == nil {
		host = hh
	}
	if h.cfg.BaseDomain != "" && strings.HasSuffix(host, "."+h.cfg.BaseDomain) {
		bucket = strings.TrimSuffix(host, "."+h.cfg.BaseDomain)
		key = path[1:]
	} else {
		bucket, key, _ = strings.Cut(path[1:], "/")
	}
	if bucket != "" && !validBucketName(bucket) {
		return bucket, key, errInvalidBucketName
	}
	if key != "" {
		if err := validKey(key); err != nil {
			return bucket, key, err
		}
	}
	return bucket, key, nil
}

// validBucketName follows S3's rules for new buckets.
func validBucketName(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	if !isAlnum(b[0]) || !isAlnum(b[len(b)-1]) || strings.Contains(b, "..") || strings.Contains(b, ".-") || strings.Contains(b, "-.") {
		return false
	}
	if _, err := netip.ParseAddr(b); err == nil {
		return false
	}
	return true
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// validKey refuses keys that are too long, not UTF-8, carry control
// characters that no path should (NUL, the C1 controls U+0080-U+009F), or have "." or ".." segments (which a
// filesystem or a path policy could resolve differently).
func validKey(k string) error {
	if len(k) > maxKeyLen {
		return errKeyTooLong
	}
	if !utf8.ValidString(k) || strings.ContainsFunc(k, func(r rune) bool { return r == 0 || r >= 0x80 && r <= 0x9f }) {
		// S3 refuses such a key in the URI before anything else.
		return errInvalidURI
	}
	for seg := range strings.SplitSeq(k, "/") {
		if seg == "." || seg == ".." {
			return errInvalidArgument.with("Object key must not contain '.' or '..' path segments.")
		}
	}
	return nil
}

// checkHeaders enforces limits on the header section and metadata.
func checkHeaders(r *http.Request) error {
	total, meta := 0, 0
	for k, vs := range r.Header {
		for _, v := range vs {
			total += len(k) + len(v) + 4
			if strings.HasPrefix(strings.ToLower(k), "x-amz-meta-") {
				meta += len(k) - len("x-amz-meta-") + len(v)
			}
		}
	}
	if total > maxHeaderBytes {
		return errHeaderTooLarge
	}
	if meta > maxMetadataBytes {
		return errMetadataTooLarge
	}
	return nil
}

// authorize decides access for the principal on bucket/key and records
// the decision on the request. S3 action names the operation for a
// session scope ("s3:GetObject").
func (rc *reqCtx) authorize(action string, access policy.Access, bucket, key string) error {
	d, err := rc.decide(action, access, bucket, key)
	if err != nil {
		return err
	}
	if d.Policy != "" {
		rc.policies = append(rc.policies, d.Policy)
	}
	if !d.Allowed {
		rc.decision = "deny"
		rc.reason = d.Reason
		if rc.reason == "" {
			rc.reason = "denied"
		}
		return errAccessDenied
	}
	if rc.decision == "" {
		rc.decision = "allow"
	}
	return nil
}

// decide asks the scope and the authorizer without recording anything.
func (rc *reqCtx) decide(action string, access policy.Access, bucket, key string) (Decision, error) {
	if s := rc.auth.cred.Scope; s != nil && !s.Allows(action, bucket, key) {
		return Decision{Reason: "outside the session's scope"}, nil
	}
	path := bucket
	if key != "" {
		path += "/" + key
	}
	res := policy.Resource{Kind: policy.ResourceObject, Path: path}
	tags, cls, err := rc.h.tags.EffectiveTags(rc.ctx, res)
	if err != nil {
		return Decision{}, errServiceUnavailable.wrap(err)
	}
	ip, _ := netip.ParseAddr(rc.client)
	d := rc.h.authz.Decide(rc.ctx, &AuthzRequest{
		Principal: rc.principal, Access: access, Resource: res,
		Tags: tags, Classification: cls, Time: rc.h.cfg.Now(), ClientIP: ip,
	})
	return d, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// checkExpectedOwner refuses a request whose x-amz-expected-bucket-owner
// (or x-amz-source-expected-bucket-owner, for the source of a copy) names
// another owner than the one the gateway reports for the bucket (Owner ID
// in listings: the requesting principal, as buckets have no other owner in
// Steward), as S3 does: 403 AccessDenied.
func (rc *reqCtx) checkExpectedOwner() error {
	id := rc.owner().ID
	for _, k := range []string{"X-Amz-Expected-Bucket-Owner", "X-Amz-Source-Expected-Bucket-Owner"} {
		if v, ok := rc.r.Header[k]; ok && (len(v) != 1 || v[0] != id) {
			rc.decision, rc.reason = "deny", "expected bucket owner does not match"
			return errAccessDenied
		}
	}
	return nil
}

// unimplemented answers an operation Steward does not implement:
// NotImplemented, or NoSuchBucket when the bucket is missing and the
// principal may list it (as S3 checks the bucket first; anyone else learns
// nothing about what exists).
func (rc *reqCtx) unimplemented() error {
	if rc.bucket == "" {
		return errNotImplemented
	}
	d, err := rc.decide("s3:ListBucket", policy.AccessList, rc.bucket, "")
	if err != nil || !d.Allowed {
		return errNotImplemented
	}
	if _, err := rc.h.store.HeadBucket(rc.ctx, rc.bucket); toAPIError(err).Code == objectstore.CodeNoSuchBucket {
		if d.Policy != "" {
			rc.policies = append(rc.policies, d.Policy)
		}
		rc.decision = "allow"
		return err
	}
	return errNotImplemented
}
