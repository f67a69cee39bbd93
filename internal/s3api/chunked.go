package s3api

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"strconv"
	"strings"
)

const (
	maxChunkLine  = 4096
	maxChunkSize  = 16 << 20 // no client sends bigger chunks; bounds a hostile size
	maxTrailerLen = 16
)

// chunkedReader decodes an aws-chunked body: chunk framing, the signature
// chain of signed chunks, the trailing headers and the trailing checksum.
// It returns an error instead of io.EOF when anything does not verify, so
// that a store reading it never commits the object.
type chunkedReader struct {
	br      *bufio.Reader
	signed  bool
	trailer string // the announced trailing checksum algorithm, or ""
	// signing context, for signed chunks
	key            []byte
	amzDate, scope string
	prevSig        string

	remaining int64 // bytes left in the current chunk
	inChunk   bool
	chunkSig  string
	chunkHash hash.Hash
	sum       hash.Hash // of the trailing checksum's algorithm
	decoded   int64
	want      int64 // x-amz-decoded-content-length, or -1
	err       error

	// onTrailer receives the verified trailing checksum before io.EOF.
	onTrailer func(alg, value string)
}

func newChunkedReader(body io.Reader, mode string, a *authResult, trailerAlg string, decodedLen int64) *chunkedReader {
	c := &chunkedReader{
		br:      bufio.NewReaderSize(body, 64<<10),
		signed:  mode == streamingSigned || mode == streamingSignedTrailer,
		trailer: trailerAlg,
		want:    decodedLen,
	}
	if a != nil {
		c.key, c.amzDate, c.scope, c.prevSig = a.key, a.amzDate, a.scope, a.seed
	}
	if c.signed {
		c.chunkHash = sha256.New()
	}
	if trailerAlg != "" {
		c.sum = newChecksum(trailerAlg)
	}
	return c
}

func (c *chunkedReader) fail(e *APIError) (int, error) {
	c.err = e
	return 0, e
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	for c.remaining == 0 {
		if c.inChunk {
			if err := c.endChunk(); err != nil {
				return c.fail(err)
			}
		}
		if err := c.nextChunk(); err != nil {
			if err == io.EOF {
				c.err = io.EOF
				return 0, io.EOF
			}
			return c.fail(err.(*APIError))
		}
	}
	if int64(len(p)) > c.remaining {
		p = p[:c.remaining]
	}
	n, err := c.br.Read(p)
	if n > 0 {
		c.remaining -= int64(n)
		c.decoded += int64(n)
		if c.chunkHash != nil {
			c.chunkHash.Write(p[:n])
		}
		if c.sum != nil {
			c.sum.Write(p[:n])
		}
	}
	if err != nil {
		if err == io.EOF {
			err = errIncompleteBody
		}
		var ae *APIError
		if !errors.As(err, &ae) {
			ae = errIncompleteBody.wrap(err)
		}
		c.err = ae
		return n, ae
	}
	return n, nil
}

// readLine reads one CRLF-terminated line (without the CRLF).
func (c *chunkedReader) readLine() (string, error) {
	var b []byte
	for {
		frag, err := c.br.ReadSlice('\n')
		b = append(b, frag...)
		if len(b) > maxChunkLine {
			return "", errChunkFraming
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && len(b) == 0 {
			return "", io.EOF // a clean end between lines
		}
		if err != nil {
			return "", errIncompleteBody.wrap(err)
		}
		break
	}
	if len(b) < 2 || b[len(b)-2] != '\r' {
		return "", errChunkFraming
	}
	return string(b[:len(b)-2]), nil
}

// endChunk consumes the CRLF after a chunk's data and verifies its
// signature.
func (c *chunkedReader) endChunk() *APIError {
	c.inChunk = false
	var crlf [2]byte
	if _, err := io.ReadFull(c.br, crlf[:]); err != nil {
		return errIncompleteBody.wrap(err)
	}
	if crlf != [2]byte{'\r', '\n'} {
		return errChunkFraming
	}
	return c.verifyChunk()
}

func (c *chunkedReader) verifyChunk() *APIError {
	if !c.signed {
		return nil
	}
	sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + c.amzDate + "\n" + c.scope + "\n" + c.prevSig + "\n" + emptySHA256 + "\n" + hex.EncodeToString(c.chunkHash.Sum(nil))
	want := hex.EncodeToString(hmacSHA256(c.key, sts))
	if !sigEqual(want, c.chunkSig) {
		return errSignatureMismatch
	}
	c.prevSig = c.chunkSig
	c.chunkHash.Reset()
	return nil
}

// nextChunk reads a chunk header; at the final chunk it reads the trailer
// and returns io.EOF once everything verified.
func (c *chunkedReader) nextChunk() error {
	line, err := c.readLine()
	if err == io.EOF {
		return errIncompleteBody
	}
	if err != nil {
		return err
	}
	sizeHex, ext, hasExt := strings.Cut(line, ";")
	if len(sizeHex) == 0 {
		return errChunkFraming
	}
	if len(sizeHex) > 8 {
		return errInvalidChunk // larger than any chunk may be
	}
	size, perr := strconv.ParseInt(sizeHex, 16, 64)
	if perr != nil || size < 0 {
		return errChunkFraming
	}
	if size > maxChunkSize {
		return errInvalidChunk
	}
	if c.signed {
		sig, ok := strings.CutPrefix(ext, "chunk-signature=")
		if !hasExt || !ok || !isHexSig(sig) {
			return errInvalidChunk.with("Every chunk of a signed aws-chunked body must carry a chunk-signature.")
		}
		c.chunkSig = sig
	} else if hasExt {
		return errChunkFraming
	}
	if size > 0 {
		c.remaining, c.inChunk = size, true
		return nil
	}
	// The final chunk.
	if err := c.verifyChunk(); err != nil {
		return err
	}
	if err := c.readTrailer(); err != nil {
		return err
	}
	if c.want >= 0 && c.decoded != c.want {
		return errIncompleteBody // the decoded length differs from x-amz-decoded-content-length
	}
	return io.EOF
}

func (c *chunkedReader) readTrailer() *APIError {
	var canon strings.Builder
	var trailerSig, value string
	n := 0
	for {
		line, err := c.readLine()
		if err == io.EOF && n > 0 {
			break // tolerate a missing final CRLF after the trailer lines
		}
		if err == io.EOF {
			return errIncompleteBody
		}
		if err != nil {
			return err.(*APIError)
		}
		if line == "" {
			break
		}
		if n++; n > maxTrailerLen {
			return errInvalidTrailer
		}
		name, v, ok := strings.Cut(line, ":")
		if !ok {
			return errInvalidTrailer
		}
		name = strings.ToLower(strings.TrimSpace(name))
		v = strings.TrimSpace(v)
		if name == "x-amz-trailer-signature" {
			if trailerSig != "" || !isHexSig(v) {
				return errInvalidTrailer
			}
			trailerSig = v
			continue
		}
		if trailerSig != "" {
			return errInvalidTrailer // the signature comes last
		}
		canon.WriteString(name + ":" + v + "\n")
		if c.trailer == "" || name != checksumHeader(c.trailer) {
			return errInvalidTrailer.with("Unexpected trailing header " + name + ".")
		}
		if value != "" {
			return errInvalidTrailer
		}
		value = v
	}
	if c.trailer != "" && value == "" {
		return errInvalidTrailer.with("The trailing checksum announced in x-amz-trailer is missing.")
	}
	if c.signed && c.trailer != "" {
		if trailerSig == "" {
			return errSignatureMismatch.with("The trailing headers must be signed.")
		}
		sts := "AWS4-HMAC-SHA256-TRAILER\n" + c.amzDate + "\n" + c.scope + "\n" + c.prevSig + "\n" + sha256Hex(canon.String())
		if !sigEqual(hex.EncodeToString(hmacSHA256(c.key, sts)), trailerSig) {
			return errSignatureMismatch
		}
	} else if trailerSig != "" && !c.signed {
		return errInvalidTrailer
	}
	if c.trailer != "" {
		if !validChecksumValue(c.trailer, value) {
			return errInvalidChecksum.with("Value for " + checksumHeader(c.trailer) + " trailing header is invalid.")
		}
		if got := base64.StdEncoding.EncodeToString(c.sum.Sum(nil)); got != value {
			return checksumMismatch(c.trailer)
		}
		if c.onTrailer != nil {
			c.onTrailer(c.trailer, value)
		}
	}
	return nil
}

// hashingReader verifies a body against x-amz-content-sha256, returning
// XAmzContentSHA256Mismatch instead of io.EOF when it differs.
type hashingReader struct {
	r    io.Reader
	h    hash.Hash
	want string
	err  error
}

func newHashingReader(r io.Reader, want string) *hashingReader {
	return &hashingReader{r: r, h: sha256.New(), want: want}
}

func (h *hashingReader) Read(p []byte) (int, error) {
	if h.err != nil {
		return 0, h.err
	}
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	if err == io.EOF {
		if !sigEqual(hex.EncodeToString(h.h.Sum(nil)), h.want) {
			h.err = errContentSHAMismatch
			return n, h.err
		}
		h.err = io.EOF
	} else if err != nil {
		h.err = errIncompleteBody.wrap(err)
		return n, h.err
	}
	return n, err
}
