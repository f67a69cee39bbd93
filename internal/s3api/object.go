package s3api

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
	"github.com/stewardhq/steward/internal/policy"
)

// storedHeaders are the standard headers kept with an object.
var storedHeaders = []string{"Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Expires"}

// putOptions reads what a PUT, copy with REPLACE or multipart create says
// about the object.
func putOptions(h http.Header) (objectstore.PutOptions, error) {
	var o objectstore.PutOptions
	o.ContentType = h.Get("Content-Type")
	for k, vs := range h {
		lk := strings.ToLower(k)
		if name, ok := strings.CutPrefix(lk, "x-amz-meta-"); ok && name != "" {
			if o.Metadata == nil {
				o.Metadata = map[string]string{}
			}
			o.Metadata[name] = strings.Join(vs, ",")
		}
	}
	for _, k := range storedHeaders {
		v := h.Get(k)
		if k == "Content-Encoding" {
			v = stripAWSChunked(v)
		}
		if v != "" {
			if o.Metadata == nil {
				o.Metadata = map[string]string{}
			}
			o.Metadata[k] = v
		}
	}
	if t := h.Get("X-Amz-Tagging"); t != "" {
		tags, err := parseTagQuery(t)
		if err != nil {
			return o, err
		}
		o.Tags = tags
	}
	if sc := h.Get("X-Amz-Storage-Class"); sc != "" && sc != "STANDARD" {
		return o, errInvalidStorageClass
	}
	return o, nil
}

// stripAWSChunked removes the aws-chunked coding (a transfer detail of
// the request) from a Content-Encoding list; a list without it is kept
// exactly as sent.
func stripAWSChunked(v string) string {
	var out []string
	removed := false
	for p := range strings.SplitSeq(v, ",") {
		p = strings.TrimSpace(p)
		if strings.EqualFold(p, "aws-chunked") {
			removed = true
		} else if p != "" {
			out = append(out, p)
		}
	}
	if !removed {
		return v
	}
	return strings.Join(out, ", ")
}

// parseTagQuery parses x-amz-tagging ("k1=v1&k2=v2").
func parseTagQuery(s string) (map[string]string, error) {
	q, err := url.ParseQuery(s)
	if err != nil {
		return nil, errTaggingHeader.wrap(err)
	}
	tags := map[string]string{}
	for k, vs := range q {
		if k == "" || len(vs) != 1 {
			return nil, errTaggingHeader
		}
		tags[k] = vs[0]
	}
	return tags, validTags(tags)
}

var errTaggingHeader = errInvalidArgument.with("The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.")

// validTagText says whether s uses only what S3 allows in tags: letters,
// digits, spaces and + - = . _ : / @.
func validTagText(s string) bool {
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsSpace(r) && !strings.ContainsRune("+-=._:/@", r) {
			return false
		}
	}
	return true
}

func validTags(tags map[string]string) error {
	if len(tags) > 10 {
		return errInvalidTag.with("Object tags cannot be greater than 10")
	}
	for k, v := range tags {
		if k == "" || utf8.RuneCountInString(k) > 128 || !utf8.ValidString(k) || !validTagText(k) {
			return errInvalidTag.with("The TagKey you have provided is invalid")
		}
		if utf8.RuneCountInString(v) > 256 || !utf8.ValidString(v) || !validTagText(v) {
			return errInvalidTag.with("The TagValue you have provided is invalid")
		}
	}
	return nil
}

func opPutObject(rc *reqCtx) error {
	if err := rc.authorize("s3:PutObject", policy.AccessWrite, rc.bucket, rc.key); err != nil {
		return err
	}
	opts, err := putOptions(rc.r.Header)
	if err != nil {
		return err
	}
	if opts.ContentMD5, err = contentMD5(rc.r.Header); err != nil {
		return err
	}
	opts.IfNoneMatch = rc.r.Header.Get("If-None-Match")
	opts.IfMatch = rc.r.Header.Get("If-Match")
	if opts.IfNoneMatch != "" && opts.IfNoneMatch != "*" {
		return errNotImplemented // If-None-Match on PUT supports only "*"
	}
	b, err := rc.prepareBody()
	if err != nil {
		return err
	}
	opts.Checksums = b.checksums
	opts.VerifiedChecksums = b.verified
	audited := rc.beginAsync()
	opts.BeforeCommit = audited
	info, err := rc.h.store.Put(rc.ctx, rc.bucket, rc.key, b.r, b.size, opts)
	rc.bytesIn = b.count.n
	if aerr := audited(); aerr != nil {
		// Every store calls BeforeCommit before the object can be seen;
		// this catches one that failed before reaching it.
		return aerr
	}
	if err != nil {
		return err
	}
	h := rc.w.Header()
	h.Set("ETag", info.ETag)
	setWriteVersionHeader(h, info.VersionID)
	b.checksumHeaders(h)
	rc.w.WriteHeader(http.StatusOK)
	return nil
}

// setWriteVersionHeader names the version a write made; a write into a
// bucket with suspended versioning makes the null version, which S3 does
// not name (s3-tests expect no header).
func setWriteVersionHeader(h http.Header, v string) {
	if v != "null" {
		setVersionHeader(h, v)
	}
}

func setVersionHeader(h http.Header, v string) {
	if v != "" {
		h.Set("X-Amz-Version-Id", v)
	}
}

// getOptions reads the conditional headers, version and range.
func getOptions(r *http.Request) (objectstore.GetOptions, error) {
	var o objectstore.GetOptions
	q := r.URL.Query()
	o.VersionID = q.Get("versionId")
	o.IfMatch = r.Header.Get("If-Match")
	o.IfNoneMatch = r.Header.Get("If-None-Match")
	if v := r.Header.Get("If-Modified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil {
			o.IfModifiedSince = t
		}
	}
	if v := r.Header.Get("If-Unmodified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil {
			o.IfUnmodifiedSince = t
		}
	}
	if pn := q.Get("partNumber"); pn != "" {
		return o, errNotImplemented.with("GET by partNumber is not supported.")
	}
	if v := r.Header.Get("Range"); v != "" {
		if strings.ReplaceAll(v, " ", "") == "bytes=-0" {
			// An empty suffix range is unsatisfiable, as S3 answers.
			return o, errInvalidRange
		}
		rg, ok := parseRange(v)
		if ok {
			o.Range = rg
		}
	}
	return o, nil
}

// parseRange parses a single "bytes=" range; anything else is ignored
// (the whole object is served), as S3 does.
func parseRange(v string) (*objectstore.Range, bool) {
	spec, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return nil, false
	}
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		return nil, false
	}
	if a == "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return nil, false
		}
		return &objectstore.Range{Start: -n, End: -1}, true
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return nil, false
	}
	end := int64(-1)
	if b != "" {
		end, err = strconv.ParseInt(b, 10, 64)
		if err != nil || end < start {
			return nil, false
		}
	}
	return &objectstore.Range{Start: start, End: end}, true
}

// resolveRange turns a range into [start, end] within size.
func resolveRange(rg *objectstore.Range, size int64) (int64, int64, bool) {
	start, end := rg.Start, rg.End
	if start < 0 {
		start = size + start
		if start < 0 {
			start = 0
		}
		end = size - 1
	}
	if end < 0 || end >= size {
		end = size - 1
	}
	if start >= size || size == 0 {
		return 0, 0, false
	}
	return start, end, true
}

// objectHeaders sets the headers that describe an object.
func objectHeaders(h http.Header, info objectstore.ObjectInfo, q url.Values, withChecksums bool) {
	h.Set("ETag", info.ETag)
	h.Set("Last-Modified", info.LastModified.UTC().Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")
	ct := info.ContentType
	if ct == "" {
		ct = "binary/octet-stream"
	}
	h.Set("Content-Type", ct)
	setVersionHeader(h, info.VersionID)
	for k, v := range info.Metadata {
		if isStoredHeader(k) {
			h.Set(k, v)
		} else {
			h["X-Amz-Meta-"+k] = []string{v}
		}
	}
	if len(info.Tags) > 0 {
		h.Set("X-Amz-Tagging-Count", strconv.Itoa(len(info.Tags)))
	}
	if withChecksums && len(info.Checksums) > 0 {
		for alg, v := range info.Checksums {
			h.Set(checksumHeader(alg), v)
		}
		// Stored checksums are of the whole object (multipart objects
		// keep none).
		h.Set("X-Amz-Checksum-Type", "FULL_OBJECT")
	}
	for qk, hk := range map[string]string{
		"response-content-type": "Content-Type", "response-content-disposition": "Content-Disposition",
		"response-cache-control": "Cache-Control", "response-content-encoding": "Content-Encoding",
		"response-content-language": "Content-Language", "response-expires": "Expires",
	} {
		if v := q.Get(qk); v != "" && !strings.ContainsAny(v, "\r\n") {
			h.Set(hk, v)
		}
	}
}

func isStoredHeader(k string) bool {
	for _, s := range storedHeaders {
		if s == k {
			return true
		}
	}
	return false
}

// readErrorHeaders sets the headers S3 sends with a failed read: a
// delete marker (NoSuchKey for the current version, MethodNotAllowed when
// named by version) is flagged with its version id, another NoSuchKey
// with x-amz-delete-marker: false, and 304 Not Modified
// carries the object's ETag and Last-Modified.
func readErrorHeaders(rc *reqCtx, info objectstore.ObjectInfo, err error) {
	h := rc.w.Header()
	switch toAPIError(err).Code {
	case objectstore.CodeMethodNotAllowed, objectstore.CodeNoSuchKey:
		if info.DeleteMarker || toAPIError(err).Code == objectstore.CodeMethodNotAllowed {
			h.Set("X-Amz-Delete-Marker", "true")
			setVersionHeader(h, info.VersionID)
		} else {
			// The key has no current version and no delete marker (as
			// after a delete in a bucket without versioning).
			h.Set("X-Amz-Delete-Marker", "false")
		}
	case objectstore.CodeNotModified:
		if info.ETag != "" {
			h.Set("ETag", info.ETag)
		}
		if !info.LastModified.IsZero() {
			h.Set("Last-Modified", info.LastModified.UTC().Format(http.TimeFormat))
		}
		setVersionHeader(h, info.VersionID)
	}
}

func opGetObject(rc *reqCtx) error {
	if err := rc.authorize("s3:GetObject", policy.AccessRead, rc.bucket, rc.key); err != nil {
		return err
	}
	opts, err := getOptions(rc.r)
	if err != nil {
		return err
	}
	body, info, err := rc.h.store.Get(rc.ctx, rc.bucket, rc.key, opts)
	if err != nil {
		readErrorHeaders(rc, info, err)
		return err
	}
	defer body.Close()
	h := rc.w.Header()
	full := opts.Range == nil
	objectHeaders(h, info, rc.r.URL.Query(), full && strings.EqualFold(rc.r.Header.Get("X-Amz-Checksum-Mode"), "ENABLED"))
	status := http.StatusOK
	n := info.Size
	if !full {
		start, end, ok := resolveRange(opts.Range, info.Size)
		if !ok {
			return errInvalidRange
		}
		n = end - start + 1
		h.Set("Content-Range", "bytes "+itoa(start)+"-"+itoa(end)+"/"+itoa(info.Size))
		status = http.StatusPartialContent
	}
	h.Set("Content-Length", itoa(n))
	rc.w.WriteHeader(status)
	if rc.w.failed {
		return nil
	}
	// Stores return exactly the requested range; io.Copy (not CopyN) keeps
	// the body's WriteTo, through which a file reaches sendfile.
	if _, err := io.Copy(rc.w, body); err != nil {
		rc.h.log.WarnContext(rc.ctx, "GetObject body interrupted", "request_id", rc.id, "err", err)
	}
	return nil
}

func opHeadObject(rc *reqCtx) error {
	if err := rc.authorize("s3:GetObject", policy.AccessRead, rc.bucket, rc.key); err != nil {
		return err
	}
	opts, err := getOptions(rc.r)
	if err != nil {
		return err
	}
	info, err := rc.h.store.Head(rc.ctx, rc.bucket, rc.key, opts)
	if err != nil {
		readErrorHeaders(rc, info, err)
		return err
	}
	h := rc.w.Header()
	objectHeaders(h, info, rc.r.URL.Query(), strings.EqualFold(rc.r.Header.Get("X-Amz-Checksum-Mode"), "ENABLED"))
	status := http.StatusOK
	n := info.Size
	if opts.Range != nil {
		start, end, ok := resolveRange(opts.Range, info.Size)
		if !ok {
			return errInvalidRange
		}
		n = end - start + 1
		h.Set("Content-Range", "bytes "+itoa(start)+"-"+itoa(end)+"/"+itoa(info.Size))
		status = http.StatusPartialContent
	}
	h.Set("Content-Length", itoa(n))
	rc.w.WriteHeader(status)
	return nil
}

func isMissing(err error) bool {
	c := toAPIError(err).Code
	return c == objectstore.CodeNoSuchKey || c == objectstore.CodeNoSuchVersion
}

func opDeleteObject(rc *reqCtx) error {
	if err := rc.authorize("s3:DeleteObject", policy.AccessDelete, rc.bucket, rc.key); err != nil {
		return err
	}
	if err := rc.begin(); err != nil {
		return err
	}
	res, err := rc.h.store.Delete(rc.ctx, rc.bucket, rc.key, rc.r.URL.Query().Get("versionId"))
	if err != nil && !isMissing(err) {
		return err
	}
	h := rc.w.Header()
	setVersionHeader(h, res.VersionID)
	if res.DeleteMarker {
		h.Set("X-Amz-Delete-Marker", "true")
	}
	rc.w.WriteHeader(http.StatusNoContent)
	return nil
}

type deleteRequest struct {
	XMLName xml.Name `xml:"Delete"`
	Quiet   bool     `xml:"Quiet"`
	Objects []struct {
		Key       string `xml:"Key"`
		VersionID string `xml:"VersionId"`
	} `xml:"Object"`
}

type deletedXML struct {
	Key                   string `xml:"Key"`
	VersionID             string `xml:"VersionId,omitempty"`
	DeleteMarker          bool   `xml:"DeleteMarker,omitempty"`
	DeleteMarkerVersionID string `xml:"DeleteMarkerVersionId,omitempty"`
}

type deleteErrorXML struct {
	Key       string `xml:"Key"`
	VersionID string `xml:"VersionId,omitempty"`
	Code      string `xml:"Code"`
	Message   string `xml:"Message"`
}

type deleteResult struct {
	XMLName xml.Name         `xml:"http://s3.amazonaws.com/doc/2006-03-01/ DeleteResult"`
	Deleted []deletedXML     `xml:"Deleted"`
	Errors  []deleteErrorXML `xml:"Error"`
}

// opDeleteObjects decides per key: denied keys are reported as
// AccessDenied errors in the result, the others deleted.
func opDeleteObjects(rc *reqCtx) error {
	data, err := rc.readSmallBody(maxXMLBody)
	if err != nil {
		return err
	}
	if rc.r.Header.Get("Content-Md5") == "" {
		if cs, _ := headerChecksums(rc.r.Header); len(cs) == 0 && rc.auth.payloadHash != streamingUnsignedTrailer && rc.auth.payloadHash != streamingSignedTrailer {
			return errInvalidRequest.with("Missing required header for this request: Content-MD5 or x-amz-checksum-*")
		}
	}
	var req deleteRequest
	if err := decodeXML(data, &req); err != nil {
		return err
	}
	if len(req.Objects) == 0 {
		return errMalformedXML
	}
	if len(req.Objects) > 1000 {
		return errTooManyDeleteKeys
	}
	type todo struct{ key, version string }
	var allowed []todo
	res := deleteResult{}
	denied := 0
	for _, o := range req.Objects {
		if o.Key == "" {
			return errMalformedXML
		}
		if err := validKey(o.Key); err != nil {
			ae := toAPIError(err)
			res.Errors = append(res.Errors, deleteErrorXML{Key: o.Key, VersionID: o.VersionID, Code: ae.Code, Message: ae.Message})
			continue
		}
		d, err := rc.decide("s3:DeleteObject", policy.AccessDelete, rc.bucket, o.Key)
		if err != nil {
			return err
		}
		if d.Policy != "" {
			rc.policies = append(rc.policies, d.Policy)
		}
		if !d.Allowed {
			denied++
			res.Errors = append(res.Errors, deleteErrorXML{Key: o.Key, VersionID: o.VersionID, Code: errAccessDenied.Code, Message: errAccessDenied.Message})
			continue
		}
		allowed = append(allowed, todo{o.Key, o.VersionID})
	}
	rc.details = map[string]any{"keys": len(req.Objects), "denied": denied}
	if len(allowed) == 0 {
		rc.decision = "deny"
	} else {
		rc.decision = "allow"
		if err := rc.begin(); err != nil {
			return err
		}
	}
	for _, t := range allowed {
		r, err := rc.h.store.Delete(rc.ctx, rc.bucket, t.key, t.version)
		if err != nil && !isMissing(err) {
			ae := toAPIError(err)
			if ae.Status >= 500 {
				rc.h.log.ErrorContext(rc.ctx, "DeleteObjects: delete failed", "request_id", rc.id, "err", err)
			}
			res.Errors = append(res.Errors, deleteErrorXML{Key: t.key, VersionID: t.version, Code: ae.Code, Message: ae.Message})
			continue
		}
		if req.Quiet {
			continue
		}
		d := deletedXML{Key: t.key, VersionID: t.version}
		if r.DeleteMarker {
			d.DeleteMarker, d.DeleteMarkerVersionID = true, r.VersionID
		}
		res.Deleted = append(res.Deleted, d)
	}
	return rc.writeXML(http.StatusOK, res)
}

// copySource parses x-amz-copy-source: "[/]bucket/key[?versionId=v]".
func copySource(v string) (bucket, key, version string, err error) {
	path, query, _ := strings.Cut(v, "?")
	path, uerr := url.PathUnescape(path)
	if uerr != nil {
		return "", "", "", errInvalidCopySource
	}
	path = strings.TrimPrefix(path, "/")
	bucket, key, ok := strings.Cut(path, "/")
	if !ok || key == "" || !validBucketName(bucket) {
		return "", "", "", errInvalidCopySource
	}
	if err := validKey(key); err != nil {
		return "", "", "", err
	}
	if query != "" {
		q, perr := url.ParseQuery(query)
		if perr != nil {
			return "", "", "", errInvalidCopySource
		}
		version = q.Get("versionId")
	}
	return bucket, key, version, nil
}

func copyConditions(h http.Header, o *objectstore.GetOptions) {
	o.IfMatch = h.Get("X-Amz-Copy-Source-If-Match")
	o.IfNoneMatch = h.Get("X-Amz-Copy-Source-If-None-Match")
	if t, err := http.ParseTime(h.Get("X-Amz-Copy-Source-If-Modified-Since")); err == nil {
		o.IfModifiedSince = t
	}
	if t, err := http.ParseTime(h.Get("X-Amz-Copy-Source-If-Unmodified-Since")); err == nil {
		o.IfUnmodifiedSince = t
	}
}

// copySourceError maps a failed read of a copy source: a copy whose
// x-amz-copy-source-if-none-match or -if-modified-since does not hold is
// 412 PreconditionFailed in S3, never 304.
func copySourceError(err error) error {
	if toAPIError(err).Code == objectstore.CodeNotModified {
		return errPreconditionFailed
	}
	return err
}

type copyObjectResult struct {
	XMLName      xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CopyObjectResult"`
	ETag         string   `xml:"ETag"`
	LastModified string   `xml:"LastModified"`
}

// opCopyObject needs read on the source and write on the target.
func opCopyObject(rc *reqCtx) error {
	sb, sk, sv, err := copySource(rc.r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return err
	}
	rc.details = map[string]any{"source": "s3://" + sb + "/" + sk}
	if err := rc.authorize("s3:GetObject", policy.AccessRead, sb, sk); err != nil {
		return err
	}
	if err := rc.authorize("s3:PutObject", policy.AccessWrite, rc.bucket, rc.key); err != nil {
		return err
	}
	h := rc.r.Header
	md := strings.ToUpper(h.Get("X-Amz-Metadata-Directive"))
	td := strings.ToUpper(h.Get("X-Amz-Tagging-Directive"))
	if md != "" && md != "COPY" && md != "REPLACE" {
		return errInvalidArgument.with("Unknown metadata directive.")
	}
	if td != "" && td != "COPY" && td != "REPLACE" {
		return errInvalidArgument.with("Unknown tagging directive.")
	}
	if sb == rc.bucket && sk == rc.key && sv == "" && md != "REPLACE" {
		return errInvalidCopyDest
	}
	gopts := objectstore.GetOptions{VersionID: sv}
	copyConditions(h, &gopts)
	if err := rc.begin(); err != nil {
		return err
	}
	src, info, err := rc.h.store.Get(rc.ctx, sb, sk, gopts)
	if err != nil {
		return copySourceError(err)
	}
	defer src.Close()
	if f := rc.h.cfg.BeforeCopy; f != nil {
		if err := f(rc.ctx, sb, sk, rc.bucket, rc.key); err != nil {
			return err
		}
	}
	var opts objectstore.PutOptions
	if md == "REPLACE" {
		if opts, err = putOptions(h); err != nil {
			return err
		}
	} else {
		opts.ContentType, opts.Metadata = info.ContentType, info.Metadata
	}
	if td == "REPLACE" {
		opts.Tags = nil
		if t := h.Get("X-Amz-Tagging"); t != "" {
			if opts.Tags, err = parseTagQuery(t); err != nil {
				return err
			}
		}
	} else {
		opts.Tags = info.Tags
	}
	out, err := rc.h.store.Put(rc.ctx, rc.bucket, rc.key, src, info.Size, opts)
	if err != nil {
		return err
	}
	rh := rc.w.Header()
	setVersionHeader(rh, out.VersionID)
	if info.VersionID != "" {
		rh.Set("X-Amz-Copy-Source-Version-Id", info.VersionID)
	}
	return rc.writeXML(http.StatusOK, copyObjectResult{ETag: out.ETag, LastModified: s3Time(out.LastModified)})
}

type tagXML struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type tagging struct {
	XMLName xml.Name `xml:"Tagging"`
	Xmlns   string   `xml:"xmlns,attr,omitempty"`
	TagSet  []tagXML `xml:"TagSet>Tag"`
}

func opGetObjectTagging(rc *reqCtx) error {
	if err := rc.authorize("s3:GetObjectTagging", policy.AccessRead, rc.bucket, rc.key); err != nil {
		return err
	}
	v := rc.r.URL.Query().Get("versionId")
	tags, err := rc.h.store.GetTags(rc.ctx, rc.bucket, rc.key, v)
	if err != nil {
		return err
	}
	out := tagging{Xmlns: s3NS, TagSet: []tagXML{}}
	for k, v := range tags {
		out.TagSet = append(out.TagSet, tagXML{k, v})
	}
	sortTags(out.TagSet)
	setVersionHeader(rc.w.Header(), v)
	return rc.writeXML(http.StatusOK, out)
}

func sortTags(t []tagXML) {
	for i := 1; i < len(t); i++ {
		for j := i; j > 0 && t[j].Key < t[j-1].Key; j-- {
			t[j], t[j-1] = t[j-1], t[j]
		}
	}
}

func opPutObjectTagging(rc *reqCtx) error {
	if err := rc.authorize("s3:PutObjectTagging", policy.AccessWrite, rc.bucket, rc.key); err != nil {
		return err
	}
	data, err := rc.readSmallBody(maxSmallXMLBody)
	if err != nil {
		return err
	}
	var t tagging
	if err := decodeXML(data, &t); err != nil {
		return err
	}
	tags := map[string]string{}
	for _, tg := range t.TagSet {
		if _, dup := tags[tg.Key]; dup {
			return errInvalidTag.with("Cannot provide multiple Tags with the same key")
		}
		tags[tg.Key] = tg.Value
	}
	if err := validTags(tags); err != nil {
		return err
	}
	if err := rc.begin(); err != nil {
		return err
	}
	v := rc.r.URL.Query().Get("versionId")
	if err := rc.h.store.PutTags(rc.ctx, rc.bucket, rc.key, v, tags); err != nil {
		return err
	}
	setVersionHeader(rc.w.Header(), v)
	rc.w.WriteHeader(http.StatusOK)
	return nil
}

func opDeleteObjectTagging(rc *reqCtx) error {
	if err := rc.authorize("s3:DeleteObjectTagging", policy.AccessWrite, rc.bucket, rc.key); err != nil {
		return err
	}
	if err := rc.begin(); err != nil {
		return err
	}
	v := rc.r.URL.Query().Get("versionId")
	if err := rc.h.store.PutTags(rc.ctx, rc.bucket, rc.key, v, nil); err != nil {
		return err
	}
	setVersionHeader(rc.w.Header(), v)
	rc.w.WriteHeader(http.StatusNoContent)
	return nil
}

var _ = steward.EInvalid
var _ = time.Second
