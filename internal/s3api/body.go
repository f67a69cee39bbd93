package s3api

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// body is a request body ready for the store: decoded, and verified as it
// is read (signature chain, payload hash, trailing checksum).
type body struct {
	r         io.Reader
	size      int64
	checksums map[string]string // header checksums, for the store to verify
	// trailer is the trailing checksum algorithm, if any. s3api verifies
	// the trailing checksum itself (it arrives after the data, too late
	// for a store that sets up its hashes first); trailerValue is set
	// once it verified.
	trailer      string
	trailerValue string
	count        *countingReader
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// prepareBody sets up the request body according to the payload mode the
// request was signed with.
func (rc *reqCtx) prepareBody() (*body, error) {
	r := rc.r
	b := &body{}
	cs, err := headerChecksums(r.Header)
	if err != nil {
		return nil, err
	}
	b.checksums = cs
	mode := rc.auth.payloadHash
	trailerHdr := strings.TrimSpace(strings.ToLower(r.Header.Get("X-Amz-Trailer")))
	switch mode {
	case streamingSigned, streamingSignedTrailer, streamingUnsignedTrailer:
		if rc.auth.presigned {
			return nil, errInvalidRequest.with("A presigned request cannot carry an aws-chunked body.")
		}
		dl := r.Header.Get("X-Amz-Decoded-Content-Length")
		n, err := strconv.ParseInt(dl, 10, 64)
		if err != nil || n < 0 {
			return nil, errMissingContentLength // an aws-chunked body needs x-amz-decoded-content-length
		}
		b.size = n
		hasTrailer := mode != streamingSigned
		switch {
		case hasTrailer && trailerHdr == "":
			return nil, errInvalidTrailer // a trailer payload mode needs the x-amz-trailer header
		case !hasTrailer && trailerHdr != "":
			return nil, errInvalidRequest.with("x-amz-trailer needs a trailer payload mode.")
		}
		if trailerHdr != "" {
			b.trailer = algOfHeader(trailerHdr)
			if b.trailer == "" {
				return nil, errInvalidRequest.with("x-amz-trailer must name one x-amz-checksum- header.")
			}
			if len(cs) > 0 {
				return nil, errInvalidRequest.with("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
			}
		}
		cr := newChunkedReader(r.Body, mode, rc.auth, b.trailer, n)
		cr.onTrailer = func(alg, v string) { b.trailerValue = v }
		b.r = cr
	default:
		if trailerHdr != "" {
			return nil, errInvalidRequest.with("x-amz-trailer needs a trailer payload mode.")
		}
		b.size = r.ContentLength
		if b.size < 0 && !isChunkedTE(r) {
			return nil, errMissingContentLength
		}
		b.r = r.Body
		if mode != unsignedPayload {
			b.r = newHashingReader(r.Body, mode)
		}
	}
	if b.size > rc.h.cfg.MaxObjectSize {
		return nil, errEntityTooLarge
	}
	b.count = &countingReader{r: b.r}
	if b.size < 0 {
		// Transfer-Encoding: chunked without a length: the body ends
		// where the chunks do, and may not outgrow an object.
		b.r = &capReader{r: b.count, left: rc.h.cfg.MaxObjectSize}
		return b, nil
	}
	b.r = &exactReader{r: b.count, left: b.size}
	return b, nil
}

// isChunkedTE says whether the body comes with HTTP/1.1 chunked transfer
// coding (and so its length is known only at its end).
func isChunkedTE(r *http.Request) bool {
	return len(r.TransferEncoding) > 0 && r.TransferEncoding[0] == "chunked"
}

// capReader reads a body of unknown length, failing with EntityTooLarge
// once it has delivered more than left bytes.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return 0, errEntityTooLarge
	}
	return n, err
}

// exactReader delivers exactly the declared number of bytes. When the
// last byte is delivered it reads on to the end of the underlying reader at
// once, so that verifying readers (payload hash, chunk signatures,
// trailing checksum) report a mismatch together with the last bytes: a
// store that stops reading at the declared size still sees the error and
// does not commit.
type exactReader struct {
	r    io.Reader
	left int64
	err  error
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.left == 0 {
		e.err = e.drain()
		return 0, e.err
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	switch {
	case err == io.EOF && e.left > 0:
		e.err = errIncompleteBody
		return n, e.err
	case err != nil && err != io.EOF:
		e.err = err
		return n, err
	case e.left == 0:
		if derr := e.drain(); derr != io.EOF {
			e.err = derr
			return n, derr
		}
		e.err = io.EOF
		if n == 0 {
			return 0, io.EOF
		}
	}
	return n, nil
}

// drain reads past the declared end: io.EOF if the body ends there.
func (e *exactReader) drain() error {
	var one [1]byte
	for i := 0; i < 100; i++ {
		n, err := e.r.Read(one[:])
		if n > 0 {
			return errIncompleteBody.with("The body is longer than its declared length.")
		}
		if err != nil {
			return err
		}
	}
	return errIncompleteBody
}

// contentMD5 parses Content-MD5 (nil when absent).
func contentMD5(h http.Header) ([]byte, error) {
	vs, present := h["Content-Md5"]
	if !present {
		return nil, nil
	}
	v := ""
	if len(vs) > 0 {
		v = vs[0]
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(b) != md5.Size {
		return nil, errInvalidDigest
	}
	return b, nil
}

// readSmallBody reads a whole (XML) body of at most limit bytes, verified
// like any other body, and checks Content-MD5 and checksum headers
// itself since no store sees it.
func (rc *reqCtx) readSmallBody(limit int64) ([]byte, error) {
	md5sum, err := contentMD5(rc.r.Header)
	if err != nil {
		return nil, err
	}
	b, err := rc.prepareBody()
	if err != nil {
		return nil, err
	}
	if b.size > limit {
		return nil, errBodyTooLarge
	}
	data, err := io.ReadAll(io.LimitReader(b.r, limit+1))
	rc.bytesIn += int64(len(data))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, errBodyTooLarge
	}
	if md5sum != nil {
		got := md5.Sum(data)
		if !bytes.Equal(got[:], md5sum) {
			return nil, errBadDigest
		}
	}
	for alg, want := range b.checksums {
		h := newChecksum(alg)
		h.Write(data)
		if base64.StdEncoding.EncodeToString(h.Sum(nil)) != want {
			return nil, checksumMismatch(alg)
		}
	}
	return data, nil
}

// decodeXML strictly decodes an XML request body into v.
func decodeXML(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errMalformedXML
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	if err := d.Decode(v); err != nil {
		return errMalformedXML.wrap(err)
	}
	return nil
}

// writeXML sends v as an XML document with status 200.
func (rc *reqCtx) writeXML(status int, v any) error {
	b, err := xml.Marshal(v)
	if err != nil {
		return err
	}
	h := rc.w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(xml.Header)+len(b)))
	rc.w.WriteHeader(status)
	io.WriteString(rc.w, xml.Header)
	rc.w.Write(b)
	return nil
}

const s3NS = "http://s3.amazonaws.com/doc/2006-03-01/"

// verified returns the trailing checksum once it has been verified (for
// objectstore.PutOptions.VerifiedChecksums).
func (b *body) verified() map[string]string {
	if b.trailerValue == "" {
		return nil
	}
	return map[string]string{b.trailer: b.trailerValue}
}

// checksumHeaders echoes the verified checksums in the response.
func (b *body) checksumHeaders(h http.Header) {
	for alg, v := range b.checksums {
		h.Set(checksumHeader(alg), v)
	}
	if b.trailerValue != "" {
		h.Set(checksumHeader(b.trailer), b.trailerValue)
	}
	if len(b.checksums) > 0 || b.trailerValue != "" {
		h.Set("X-Amz-Checksum-Type", "FULL_OBJECT")
	}
}
