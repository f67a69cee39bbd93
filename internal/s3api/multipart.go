package s3api

import (
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"

	"github.com/stewardhq/steward/internal/objectstore"
	"github.com/stewardhq/steward/internal/policy"
)

type initiateResult struct {
	XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ InitiateMultipartUploadResult"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	UploadID string   `xml:"UploadId"`
}

func (rc *reqCtx) uploadID() (string, error) {
	id := rc.r.URL.Query().Get("uploadId")
	if id == "" || len(id) > 1024 || strings.ContainsAny(id, "/\\\x00") {
		return "", apiErr(objectstore.CodeNoSuchUpload, 404, storeCodeMessage[objectstore.CodeNoSuchUpload])
	}
	return id, nil
}

func partNumber(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxParts {
		return 0, errInvalidPartNumber
	}
	return n, nil
}

func opCreateMultipartUpload(rc *reqCtx) error {
	if err := rc.authorize("s3:PutObject", policy.AccessWrite, rc.bucket, rc.key); err != nil {
		return err
	}
	opts, err := putOptions(rc.r.Header)
	if err != nil {
		return err
	}
	opts.Initiator = rc.owner().ID
	if err := rc.begin(); err != nil {
		return err
	}
	up, err := rc.h.store.CreateMultipart(rc.ctx, rc.bucket, rc.key, opts)
	if err != nil {
		return err
	}
	if a := rc.r.Header.Get("X-Amz-Checksum-Algorithm"); a != "" {
		rc.w.Header().Set("X-Amz-Checksum-Algorithm", a)
	}
	return rc.writeXML(http.StatusOK, initiateResult{Bucket: rc.bucket, Key: rc.key, UploadID: up.UploadID})
}

func opUploadPart(rc *reqCtx) error {
	if err := rc.authorize("s3:PutObject", policy.AccessWrite, rc.bucket, rc.key); err != nil {
		return err
	}
	id, err := rc.uploadID()
	if err != nil {
		return err
	}
	n, err := partNumber(rc.r.URL.Query().Get("partNumber"))
	if err != nil {
		return err
	}
	var opts objectstore.PutOptions
	if opts.ContentMD5, err = contentMD5(rc.r.Header); err != nil {
		return err
	}
	b, err := rc.prepareBody()
	if err != nil {
		return err
	}
	if b.size < 0 {
		return errMissingContentLength // a part's length is part of its identity
	}
	opts.Checksums = b.checksums
	opts.VerifiedChecksums = b.verified
	if err := rc.begin(); err != nil {
		return err
	}
	rc.details = map[string]any{"part": n}
	part, err := rc.h.store.UploadPart(rc.ctx, rc.bucket, rc.key, id, n, b.r, b.size, opts)
	rc.bytesIn = b.count.n
	if err != nil {
		return err
	}
	h := rc.w.Header()
	h.Set("ETag", part.ETag)
	b.checksumHeaders(h)
	rc.w.WriteHeader(http.StatusOK)
	return nil
}

type copyPartResult struct {
	XMLName      xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CopyPartResult"`
	ETag         string   `xml:"ETag"`
	LastModified string   `xml:"LastModified"`
}

func opUploadPartCopy(rc *reqCtx) error {
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
	id, err := rc.uploadID()
	if err != nil {
		return err
	}
	n, err := partNumber(rc.r.URL.Query().Get("partNumber"))
	if err != nil {
		return err
	}
	gopts := objectstore.GetOptions{VersionID: sv}
	copyConditions(rc.r.Header, &gopts)
	if v := rc.r.Header.Get("X-Amz-Copy-Source-Range"); v != "" {
		rg, ok := parseRange(v)
		if !ok || rg.Start < 0 || rg.End < 0 {
			return errInvalidArgument.with("The x-amz-copy-source-range value must be of the form bytes=first-last.")
		}
		gopts.Range = rg
	}
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
	size := info.Size
	if gopts.Range != nil {
		if gopts.Range.End >= info.Size {
			return errInvalidRange
		}
		size = gopts.Range.End - gopts.Range.Start + 1
	}
	part, err := rc.h.store.UploadPart(rc.ctx, rc.bucket, rc.key, id, n, src, size, objectstore.PutOptions{})
	if err != nil {
		return err
	}
	return rc.writeXML(http.StatusOK, copyPartResult{ETag: part.ETag, LastModified: s3Time(part.LastModified)})
}

type completeRequest struct {
	XMLName xml.Name `xml:"CompleteMultipartUpload"`
	Parts   []struct {
		PartNumber int    `xml:"PartNumber"`
		ETag       string `xml:"ETag"`
	} `xml:"Part"`
}

type completeResult struct {
	XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CompleteMultipartUploadResult"`
	Location string   `xml:"Location"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	ETag     string   `xml:"ETag"`
}

func opCompleteMultipartUpload(rc *reqCtx) error {
	if err := rc.authorize("s3:PutObject", policy.AccessWrite, rc.bucket, rc.key); err != nil {
		return err
	}
	id, err := rc.uploadID()
	if err != nil {
		return err
	}
	data, err := rc.readSmallBody(maxXMLBody)
	if err != nil {
		return err
	}
	var req completeRequest
	if err := decodeXML(data, &req); err != nil {
		return err
	}
	if len(req.Parts) == 0 || len(req.Parts) > maxParts {
		return errMalformedXML // it must list between 1 and 10000 parts
	}
	parts := make([]objectstore.CompletePart, 0, len(req.Parts))
	for i, p := range req.Parts {
		if p.PartNumber < 1 || p.PartNumber > maxParts {
			return errInvalidPartNumber
		}
		if i > 0 && p.PartNumber < req.Parts[i-1].PartNumber {
			return apiErr(objectstore.CodeInvalidPartOrder, 400, storeCodeMessage[objectstore.CodeInvalidPartOrder])
		}
		etag := p.ETag
		if !strings.HasPrefix(etag, "\"") {
			etag = "\"" + etag + "\""
		}
		cp := objectstore.CompletePart{Number: p.PartNumber, ETag: etag}
		if i > 0 && p.PartNumber == req.Parts[i-1].PartNumber {
			// A part sent twice is listed twice by clients that record
			// each answer; the copy listed last is the one uploaded last
			// (the one the store kept), as in RGW.
			parts[len(parts)-1] = cp
			continue
		}
		parts = append(parts, cp)
	}
	if err := rc.begin(); err != nil {
		return err
	}
	info, err := rc.h.store.CompleteMultipart(rc.ctx, rc.bucket, rc.key, id, parts)
	if err != nil {
		return err
	}
	setWriteVersionHeader(rc.w.Header(), info.VersionID)
	return rc.writeXML(http.StatusOK, completeResult{Location: "/" + rc.bucket + "/" + rc.key, Bucket: rc.bucket, Key: rc.key, ETag: info.ETag})
}

func opAbortMultipartUpload(rc *reqCtx) error {
	if err := rc.authorize("s3:AbortMultipartUpload", policy.AccessWrite, rc.bucket, rc.key); err != nil {
		return err
	}
	id, err := rc.uploadID()
	if err != nil {
		return err
	}
	if err := rc.begin(); err != nil {
		return err
	}
	if err := rc.h.store.AbortMultipart(rc.ctx, rc.bucket, rc.key, id); err != nil {
		return err
	}
	rc.w.WriteHeader(http.StatusNoContent)
	return nil
}

type partXML struct {
	PartNumber   int    `xml:"PartNumber"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
}

type listPartsResult struct {
	XMLName              xml.Name  `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListPartsResult"`
	Bucket               string    `xml:"Bucket"`
	Key                  string    `xml:"Key"`
	UploadID             string    `xml:"UploadId"`
	PartNumberMarker     int       `xml:"PartNumberMarker"`
	NextPartNumberMarker int       `xml:"NextPartNumberMarker"`
	MaxParts             int       `xml:"MaxParts"`
	IsTruncated          bool      `xml:"IsTruncated"`
	StorageClass         string    `xml:"StorageClass"`
	Owner                owner     `xml:"Owner"`
	Initiator            owner     `xml:"Initiator"`
	Parts                []partXML `xml:"Part"`
}

func opListParts(rc *reqCtx) error {
	if err := rc.authorize("s3:ListMultipartUploadParts", policy.AccessWrite, rc.bucket, rc.key); err != nil {
		return err
	}
	id, err := rc.uploadID()
	if err != nil {
		return err
	}
	q := rc.r.URL.Query()
	after, maxN := 0, 1000
	if v := q.Get("part-number-marker"); v != "" {
		if after, err = strconv.Atoi(v); err != nil || after < 0 || after > maxParts {
			return errInvalidArgument.with("Invalid part-number-marker.")
		}
	}
	if v := q.Get("max-parts"); v != "" {
		if maxN, err = strconv.Atoi(v); err != nil || maxN < 0 {
			return errInvalidArgument.with("Invalid max-parts.")
		}
		maxN = min(maxN, 1000)
	}
	parts, trunc, err := rc.h.store.ListParts(rc.ctx, rc.bucket, rc.key, id, after, maxN)
	if err != nil {
		return err
	}
	o := rc.owner()
	out := listPartsResult{Bucket: rc.bucket, Key: rc.key, UploadID: id, PartNumberMarker: after, MaxParts: maxN, IsTruncated: trunc, StorageClass: "STANDARD", Owner: o, Initiator: o}
	for _, p := range parts {
		out.Parts = append(out.Parts, partXML{PartNumber: p.Number, LastModified: s3Time(p.LastModified), ETag: p.ETag, Size: p.Size})
		out.NextPartNumberMarker = p.Number
	}
	return rc.writeXML(http.StatusOK, out)
}

type uploadXML struct {
	Key          string `xml:"Key"`
	UploadID     string `xml:"UploadId"`
	Initiator    owner  `xml:"Initiator"`
	Owner        owner  `xml:"Owner"`
	StorageClass string `xml:"StorageClass"`
	Initiated    string `xml:"Initiated"`
}

type listUploadsResult struct {
	XMLName            xml.Name    `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListMultipartUploadsResult"`
	Bucket             string      `xml:"Bucket"`
	KeyMarker          string      `xml:"KeyMarker"`
	UploadIDMarker     string      `xml:"UploadIdMarker"`
	NextKeyMarker      string      `xml:"NextKeyMarker,omitempty"`
	NextUploadIDMarker string      `xml:"NextUploadIdMarker,omitempty"`
	Delimiter          string      `xml:"Delimiter,omitempty"`
	Prefix             string      `xml:"Prefix"`
	EncodingType       string      `xml:"EncodingType,omitempty"`
	MaxUploads         int         `xml:"MaxUploads"`
	IsTruncated        bool        `xml:"IsTruncated"`
	Uploads            []uploadXML `xml:"Upload"`
	CommonPrefixes     []prefixXML `xml:"CommonPrefixes"`
}

// opListMultipartUploads pages through the uploads in progress by key
// and upload id markers; with a delimiter, keys roll up into common
// prefixes (each counts as one entry, as in ListObjects).
func opListMultipartUploads(rc *reqCtx) error {
	q := rc.r.URL.Query()
	p, err := readListParams(q, "max-uploads")
	if err != nil {
		return err
	}
	if err := rc.authorizeList(p.prefix); err != nil {
		return err
	}
	km, um := q.Get("key-marker"), q.Get("upload-id-marker")
	if km == "" {
		um = "" // S3 ignores an upload-id-marker without a key-marker
	}
	out := listUploadsResult{Bucket: rc.bucket, KeyMarker: p.enc(km), UploadIDMarker: um, Prefix: p.enc(p.prefix),
		Delimiter: p.enc(p.delimiter), EncodingType: p.encoding, MaxUploads: p.maxKeys}
	if p.maxKeys == 0 {
		if _, err := rc.h.store.HeadBucket(rc.ctx, rc.bucket); err != nil {
			return err
		}
		return rc.writeXML(http.StatusOK, out)
	}
	opts := objectstore.ListUploadsOptions{Prefix: p.prefix, KeyMarker: km, UploadIDMarker: um, MaxUploads: 1000}
	n := 0
	lastPrefix := ""
	if p.delimiter != "" && strings.HasPrefix(km, p.prefix) && strings.HasSuffix(km, p.delimiter) {
		lastPrefix = km // the previous page ended on this common prefix
	}
	for n <= p.maxKeys {
		ups, err := rc.h.store.ListUploads(rc.ctx, rc.bucket, opts)
		if err != nil {
			return err
		}
		for _, u := range ups {
			opts.KeyMarker, opts.UploadIDMarker = u.Key, u.UploadID
			cp := ""
			if p.delimiter != "" {
				if i := strings.Index(u.Key[len(p.prefix):], p.delimiter); i >= 0 {
					cp = u.Key[:len(p.prefix)+i+len(p.delimiter)]
				}
			}
			if cp != "" && cp == lastPrefix {
				continue
			}
			if n == p.maxKeys {
				out.IsTruncated = true
				n++
				break
			}
			n++
			if cp != "" {
				lastPrefix = cp
				out.CommonPrefixes = append(out.CommonPrefixes, prefixXML{p.enc(cp)})
				out.NextKeyMarker, out.NextUploadIDMarker = cp, ""
				continue
			}
			o := owner{ID: u.Opts.Initiator, DisplayName: u.Opts.Initiator}
			out.Uploads = append(out.Uploads, uploadXML{Key: p.enc(u.Key), UploadID: u.UploadID, Initiator: o, Owner: o,
				StorageClass: "STANDARD", Initiated: s3Time(u.Initiated)})
			out.NextKeyMarker, out.NextUploadIDMarker = u.Key, u.UploadID
		}
		if len(ups) < opts.MaxUploads {
			break
		}
	}
	if !out.IsTruncated {
		out.NextKeyMarker, out.NextUploadIDMarker = "", ""
	} else {
		out.NextKeyMarker = p.enc(out.NextKeyMarker)
	}
	return rc.writeXML(http.StatusOK, out)
}
