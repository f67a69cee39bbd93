package s3api

import (
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/stewardhq/steward/internal/objectstore"
	"github.com/stewardhq/steward/internal/policy"
)

type objectXML struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
	StorageClass string `xml:"StorageClass"`
	Owner        *owner `xml:"Owner,omitempty"`
}

type prefixXML struct {
	Prefix string `xml:"Prefix"`
}

type listBucketResult struct {
	XMLName               xml.Name    `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
	Name                  string      `xml:"Name"`
	Prefix                string      `xml:"Prefix"`
	Marker                *string     `xml:"Marker,omitempty"`
	NextMarker            string      `xml:"NextMarker,omitempty"`
	ContinuationToken     *string     `xml:"ContinuationToken,omitempty"` // echoed when given, even empty
	NextContinuationToken string      `xml:"NextContinuationToken,omitempty"`
	StartAfter            string      `xml:"StartAfter,omitempty"`
	KeyCount              *int        `xml:"KeyCount,omitempty"`
	MaxKeys               int         `xml:"MaxKeys"`
	Delimiter             string      `xml:"Delimiter,omitempty"`
	EncodingType          string      `xml:"EncodingType,omitempty"`
	IsTruncated           bool        `xml:"IsTruncated"`
	Contents              []objectXML `xml:"Contents"`
	CommonPrefixes        []prefixXML `xml:"CommonPrefixes"`
}

// listParams are the parameters common to the list operations.
type listParams struct {
	prefix, delimiter, encoding string
	maxKeys                     int
}

func readListParams(q url.Values, maxName string) (listParams, error) {
	p := listParams{prefix: q.Get("prefix"), delimiter: q.Get("delimiter"), encoding: q.Get("encoding-type"), maxKeys: 1000}
	if p.encoding != "" && p.encoding != "url" {
		return p, errInvalidEncodingType
	}
	if v := q.Get(maxName); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return p, errInvalidMaxKeys
		}
		p.maxKeys = min(n, 1000)
	}
	if len(p.prefix) > maxKeyLen || len(p.delimiter) > maxKeyLen || !utf8.ValidString(p.prefix) || !utf8.ValidString(p.delimiter) {
		return p, errInvalidArgument.with("Invalid prefix or delimiter.")
	}
	return p, nil
}

func (p listParams) enc(s string) string {
	if p.encoding == "url" {
		return urlEncode(s)
	}
	return s
}

// urlEncode is S3's encoding-type=url: RFC 3986 percent-encoding of every
// byte but the unreserved characters and '/' (a space is %20, '+' is %2B).
func urlEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~', c == '/':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// authorizeList decides list access on bucket/prefix.
func (rc *reqCtx) authorizeList(prefix string) error {
	return rc.authorize("s3:ListBucket", policy.AccessList, rc.bucket, prefix)
}

func (rc *reqCtx) listPage(p listParams, after string) (objectstore.ListResult, error) {
	if p.maxKeys == 0 {
		if _, err := rc.h.store.HeadBucket(rc.ctx, rc.bucket); err != nil {
			return objectstore.ListResult{}, err
		}
		return objectstore.ListResult{}, nil
	}
	return rc.h.store.List(rc.ctx, rc.bucket, objectstore.ListOptions{Prefix: p.prefix, Delimiter: p.delimiter, After: after, MaxKeys: p.maxKeys})
}

func (p listParams) fill(out *listBucketResult, res objectstore.ListResult, fetchOwner *owner) {
	out.Prefix, out.Delimiter, out.MaxKeys, out.IsTruncated = p.enc(p.prefix), p.enc(p.delimiter), p.maxKeys, res.IsTruncated
	out.EncodingType = p.encoding
	for _, o := range res.Objects {
		out.Contents = append(out.Contents, objectXML{Key: p.enc(o.Key), LastModified: s3Time(o.LastModified), ETag: o.ETag, Size: o.Size, StorageClass: "STANDARD", Owner: fetchOwner})
	}
	for _, cp := range res.CommonPrefixes {
		out.CommonPrefixes = append(out.CommonPrefixes, prefixXML{p.enc(cp)})
	}
}

func opListObjectsV2(rc *reqCtx) error {
	q := rc.r.URL.Query()
	p, err := readListParams(q, "max-keys")
	if err != nil {
		return err
	}
	if err := rc.authorizeList(p.prefix); err != nil {
		return err
	}
	after := q.Get("start-after")
	token := q.Get("continuation-token")
	if token != "" { // an empty token means none, as S3 does
		b, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil || !utf8.Valid(b) {
			return errInvalidArgument.with("The continuation token provided is incorrect")
		}
		after = string(b)
	}
	res, err := rc.listPage(p, after)
	if err != nil {
		return err
	}
	out := listBucketResult{Name: rc.bucket, StartAfter: p.enc(q.Get("start-after"))}
	if q.Has("continuation-token") {
		out.ContinuationToken = &token
	}
	var fo *owner
	if q.Get("fetch-owner") == "true" {
		o := rc.owner()
		fo = &o
	}
	p.fill(&out, res, fo)
	n := len(res.Objects) + len(res.CommonPrefixes)
	out.KeyCount = &n
	if res.IsTruncated {
		out.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(res.NextAfter))
	}
	return rc.writeXML(http.StatusOK, out)
}

func opListObjects(rc *reqCtx) error {
	q := rc.r.URL.Query()
	p, err := readListParams(q, "max-keys")
	if err != nil {
		return err
	}
	if err := rc.authorizeList(p.prefix); err != nil {
		return err
	}
	marker := q.Get("marker")
	res, err := rc.listPage(p, marker)
	if err != nil {
		return err
	}
	m := p.enc(marker)
	out := listBucketResult{Name: rc.bucket, Marker: &m}
	o := rc.owner()
	p.fill(&out, res, &o)
	out.Prefix = p.prefix // ListObjects (v1) does not encode Prefix; clients do not decode it
	if res.IsTruncated {
		out.NextMarker = p.enc(res.NextAfter)
	}
	return rc.writeXML(http.StatusOK, out)
}

type versionEntry struct {
	XMLName      xml.Name
	Key          string `xml:"Key"`
	VersionID    string `xml:"VersionId"`
	IsLatest     bool   `xml:"IsLatest"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag,omitempty"`
	Size         *int64 `xml:"Size,omitempty"`
	StorageClass string `xml:"StorageClass,omitempty"`
	Owner        owner  `xml:"Owner"`
}

type listVersionsResult struct {
	XMLName             xml.Name       `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListVersionsResult"`
	Name                string         `xml:"Name"`
	Prefix              string         `xml:"Prefix"`
	KeyMarker           string         `xml:"KeyMarker"`
	VersionIDMarker     string         `xml:"VersionIdMarker"`
	NextKeyMarker       string         `xml:"NextKeyMarker,omitempty"`
	NextVersionIDMarker string         `xml:"NextVersionIdMarker,omitempty"`
	MaxKeys             int            `xml:"MaxKeys"`
	Delimiter           string         `xml:"Delimiter,omitempty"`
	EncodingType        string         `xml:"EncodingType,omitempty"`
	IsTruncated         bool           `xml:"IsTruncated"`
	Entries             []versionEntry `xml:""`
	CommonPrefixes      []prefixXML    `xml:"CommonPrefixes"`
}

func opListObjectVersions(rc *reqCtx) error {
	q := rc.r.URL.Query()
	p, err := readListParams(q, "max-keys")
	if err != nil {
		return err
	}
	if err := rc.authorizeList(p.prefix); err != nil {
		return err
	}
	opts := objectstore.ListVersionsOptions{Prefix: p.prefix, Delimiter: p.delimiter, KeyMarker: q.Get("key-marker"), VersionIDMarker: q.Get("version-id-marker"), MaxKeys: p.maxKeys}
	var res objectstore.ListVersionsResult
	if p.maxKeys > 0 {
		res, err = rc.h.store.ListVersions(rc.ctx, rc.bucket, opts)
	} else {
		_, err = rc.h.store.HeadBucket(rc.ctx, rc.bucket)
	}
	if err != nil {
		return err
	}
	out := listVersionsResult{Name: rc.bucket, Prefix: p.enc(p.prefix), KeyMarker: p.enc(opts.KeyMarker), VersionIDMarker: opts.VersionIDMarker,
		MaxKeys: p.maxKeys, Delimiter: p.enc(p.delimiter), EncodingType: p.encoding, IsTruncated: res.IsTruncated}
	if res.IsTruncated {
		out.NextKeyMarker, out.NextVersionIDMarker = p.enc(res.NextKeyMarker), res.NextVersionIDMarker
		// The store names the null version ""; a page ending on a version
		// (not on a common prefix) resumes from its id, "null" included.
		endsOnPrefix := len(res.CommonPrefixes) > 0 && res.CommonPrefixes[len(res.CommonPrefixes)-1] == res.NextKeyMarker
		if out.NextVersionIDMarker == "" && !endsOnPrefix && len(res.Versions) > 0 {
			out.NextVersionIDMarker = "null"
		}
	}
	o := rc.owner()
	for _, v := range res.Versions {
		vid := v.VersionID
		if vid == "" {
			vid = "null"
		}
		e := versionEntry{Key: p.enc(v.Key), VersionID: vid, IsLatest: v.IsLatest, LastModified: s3Time(v.LastModified), Owner: o}
		if v.DeleteMarker {
			e.XMLName.Local = "DeleteMarker"
		} else {
			e.XMLName.Local = "Version"
			size := v.Size
			e.ETag, e.Size, e.StorageClass = v.ETag, &size, "STANDARD"
		}
		out.Entries = append(out.Entries, e)
	}
	for _, cp := range res.CommonPrefixes {
		out.CommonPrefixes = append(out.CommonPrefixes, prefixXML{p.enc(cp)})
	}
	return rc.writeXML(http.StatusOK, out)
}
