package fs

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
)

// CRC64NVMEPolynomial is the CRC-64/NVME polynomial in the reversed
// (LSB-first) form that hash/crc64 takes; 0xAD93D23594C93659 normally.
const CRC64NVMEPolynomial = 0x9a6c9329ac4bc9b5

var (
	crc32cTable = crc32.MakeTable(crc32.Castagnoli)
	crc64Table  = crc64.MakeTable(CRC64NVMEPolynomial)
)

// NewChecksum returns the hash for an S3 checksum algorithm ("CRC32",
// "CRC32C", "CRC64NVME", "SHA1", "SHA256"), or nil if it is unknown. The
// checksum's S3 value is base64 of Sum(nil) (big-endian for the CRCs).
func NewChecksum(algorithm string) hash.Hash {
	switch algorithm {
	case "CRC32":
		return crc32.NewIEEE()
	case "CRC32C":
		return crc32.New(crc32cTable)
	case "CRC64NVME":
		return crc64.New(crc64Table)
	case "SHA1":
		return sha1.New()
	case "SHA256":
		return sha256.New()
	}
	return nil
}

// ValidBucketName checks a bucket name against S3's naming rules
// (InvalidBucketName); the rules are shared by every store.
func ValidBucketName(name string) error { return objectstore.ValidBucketName(name) }

// MaxKeyLen is the longest key S3 accepts, in bytes.
const MaxKeyLen = objectstore.MaxKeyLen

// ValidKey checks an object key (see objectstore.ValidKey). Any valid key
// is safe here: keys never become file names.
func ValidKey(key string) error { return objectstore.ValidKey(key) }

func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

func (s *Store) dataPath(file string) string {
	return filepath.Join(s.data, file[:2], file)
}

func (s *Store) removeFiles(files []string) {
	for _, f := range files {
		if f == "" {
			continue
		}
		if err := os.Remove(s.dataPath(f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("remove data file", "file", f, "err", err)
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// InlineMax is the largest object kept in the index itself instead of a
// data file of its own: a small write is then one index transaction (no
// file to create, fsync and name), and the many small objects of a data
// lake cost no inodes.
const InlineMax = 64 << 10

// written is the outcome of streaming a body into a data file.
type written struct {
	file      string // data file id, already durable in data/
	inline    []byte // or the bytes, for the index row (size <= InlineMax)
	size      int64
	md5       []byte
	checksums map[string]string
}

// ctxReader stops reading when ctx ends and remembers a read error, to
// tell a client's short body from a failing disk.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
	err error
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// checkChecksums validates the algorithms and encodings of the checksums a
// client asks the store to verify.
func checkChecksums(sums map[string]string) error {
	for alg, v := range sums {
		h := NewChecksum(alg)
		if h == nil {
			return objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidArgument, "unknown checksum algorithm %q", alg)
		}
		raw, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(raw) != h.Size() {
			return objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidArgument, "value for x-amz-checksum-%s header is invalid", strings.ToLower(alg))
		}
	}
	return nil
}

// writeData streams body (size bytes, or to EOF if size < 0) through MD5
// and the requested checksums, verifies them and keeps the bytes: inline
// (returned for the index row) if the caller allows it and the body is at
// most InlineMax bytes, else in a new data file made durable (fsync of the
// file and of its directory, side by side). The file is created directly
// in data/ under a fresh random name: until an index row names it no
// reader can find it, so there is no staging copy and no rename (creating
// files in one staging directory made ext4 scan its recently freed inodes
// on every create). On success the caller owns the returned file, must
// reference it from the index or remove it, and then calls s.settled(); on
// failure writeData removes the file.
func (s *Store) writeData(ctx context.Context, body io.Reader, size int64, contentMD5 []byte, sums map[string]string, inline bool) (w written, err error) {
	if err := checkChecksums(sums); err != nil {
		return w, err
	}
	if contentMD5 != nil && len(contentMD5) != md5.Size {
		return w, objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidArgument, "the Content-MD5 you specified is not valid")
	}
	if size == 0 {
		// An empty object needs no bytes (and directory markers are common).
		w, err = emptyWrite(contentMD5, sums)
		if err == nil {
			s.unsettled.Add(1)
		}
		return w, err
	}
	h := newHashes(sums)
	cr := &ctxReader{ctx: ctx, r: body}
	src := io.Reader(cr)
	if size >= 0 {
		src = io.LimitReader(src, size)
	}
	if inline && size <= InlineMax {
		// Unknown or small size: read up to one byte past the limit.
		buf, err := io.ReadAll(io.LimitReader(src, InlineMax+1))
		if err != nil {
			return w, readError(cr, err)
		}
		if len(buf) <= InlineMax {
			if size >= 0 && int64(len(buf)) < size {
				return w, errShortBody()
			}
			h.Write(buf)
			if err := h.verify(&w, int64(len(buf)), contentMD5); err != nil {
				return w, err
			}
			if len(buf) > 0 {
				w.inline = buf
			}
			s.unsettled.Add(1)
			return w, nil
		}
		src = io.MultiReader(bytes.NewReader(buf), src)
	}
	// Counted before the closing check, so that Close either sees this
	// write in flight (and does not mark the store clean) or this write
	// sees the store closing (and creates nothing).
	s.unsettled.Add(1)
	select {
	case <-s.closing:
		s.unsettled.Add(-1)
		return w, errClosed
	default:
	}
	id := newID()
	dst := s.dataPath(id)
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		s.unsettled.Add(-1)
		return w, err
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			os.Remove(dst)
			s.unsettled.Add(-1)
		}
	}()
	if pr, ok := body.(*partsReader); ok && contentMD5 == nil && len(sums) == 0 {
		// Assembling a multipart upload: the kernel copies the parts,
		// and no digest is made (the ETag is made of the parts' own).
		n, err := pr.copyTo(ctx, f, !s.noSync)
		if err != nil {
			return w, err
		}
		w.size = n
	} else {
		fw := &fileWriter{f: f, flush: !s.noSync}
		bp := copyBufs.Get().(*[]byte)
		n, err := io.CopyBuffer(io.MultiWriter(fw, h), src, *bp)
		copyBufs.Put(bp)
		if err != nil {
			return w, readError(cr, err)
		}
		if size >= 0 && n < size {
			return w, errShortBody()
		}
		if err = h.verify(&w, n, contentMD5); err != nil {
			return w, err
		}
	}
	if !s.noSync {
		// The new name needs its directory synced, the bytes their file:
		// both wait for the same device flush, so they run side by side.
		dirErr := make(chan error, 1)
		go func() { dirErr <- syncDir(filepath.Dir(dst)) }()
		err = f.Sync()
		if derr := <-dirErr; err == nil {
			err = derr
		}
		if err != nil {
			return w, err
		}
	}
	if err = f.Close(); err != nil {
		f = nil
		return w, err
	}
	f = nil
	w.file = id
	return w, nil
}

func readError(cr *ctxReader, err error) error {
	if cr.err != nil && errors.Is(err, io.ErrUnexpectedEOF) {
		return objectstore.Errorf(steward.EInvalid, objectstore.CodeIncompleteBody, "the request body ended early")
	}
	return err
}

func errShortBody() error {
	return objectstore.Errorf(steward.EInvalid, objectstore.CodeIncompleteBody, "you did not provide the number of bytes specified by the Content-Length HTTP header")
}

// hashes computes a body's MD5 and the checksums its writer asked for.
type hashes struct {
	md5  hash.Hash
	sums map[string]string
	hs   map[string]hash.Hash
}

func newHashes(sums map[string]string) *hashes {
	h := &hashes{md5: md5.New(), sums: sums, hs: make(map[string]hash.Hash, len(sums))}
	for alg := range sums {
		h.hs[alg] = NewChecksum(alg)
	}
	return h
}

func (h *hashes) Write(p []byte) (int, error) {
	h.md5.Write(p)
	for _, x := range h.hs {
		x.Write(p)
	}
	return len(p), nil
}

// verify checks the digests against what the writer sent and fills w.
func (h *hashes) verify(w *written, n int64, contentMD5 []byte) error {
	w.size = n
	w.md5 = h.md5.Sum(nil)
	if contentMD5 != nil && !bytes.Equal(contentMD5, w.md5) {
		return objectstore.Errorf(steward.EInvalid, objectstore.CodeBadDigest, "The Content-MD5 you specified did not match what we received.")
	}
	if len(h.sums) > 0 {
		w.checksums = map[string]string{}
		for alg, want := range h.sums {
			got := base64.StdEncoding.EncodeToString(h.hs[alg].Sum(nil))
			if got != want {
				return objectstore.Errorf(steward.EInvalid, objectstore.CodeBadDigest, "The %s you specified did not match the calculated checksum.", alg)
			}
			w.checksums[alg] = got
		}
	}
	return nil
}

// settled ends a write that writeData started: its file is now referenced
// by a committed index row, or removed.
func (s *Store) settled() { s.unsettled.Add(-1) }

// writebackChunk is how much a large write lets accumulate before it asks
// the kernel to start writing it out, so that the final fsync finds most
// of the file already on its way to the device.
const writebackChunk = 8 << 20

// fileWriter writes a new data file and starts writeback of each full
// chunk behind it.
type fileWriter struct {
	f       *os.File
	flush   bool
	off     int64 // bytes written
	flushed int64 // bytes handed to writeback
}

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if w.flush && w.off-w.flushed >= writebackChunk {
		startWriteback(w.f, w.flushed, w.off-w.flushed)
		w.flushed = w.off
	}
	return n, err
}

// addVerified keeps the checksums the caller verified itself (valid ones
// of known algorithms only).
func (w *written) addVerified(f func() map[string]string) {
	if f == nil {
		return
	}
	for alg, v := range f() {
		if checkChecksums(map[string]string{alg: v}) != nil {
			continue
		}
		if w.checksums == nil {
			w.checksums = map[string]string{}
		}
		w.checksums[alg] = v
	}
}

func emptyWrite(contentMD5 []byte, sums map[string]string) (written, error) {
	w := written{md5: md5.New().Sum(nil)}
	if contentMD5 != nil && !bytes.Equal(contentMD5, w.md5) {
		return w, objectstore.Errorf(steward.EInvalid, objectstore.CodeBadDigest, "The Content-MD5 you specified did not match what we received.")
	}
	if len(sums) > 0 {
		w.checksums = map[string]string{}
		for alg, want := range sums {
			got := base64.StdEncoding.EncodeToString(NewChecksum(alg).Sum(nil))
			if got != want {
				return w, objectstore.Errorf(steward.EInvalid, objectstore.CodeBadDigest, "The %s you specified did not match the calculated checksum.", alg)
			}
			w.checksums[alg] = got
		}
	}
	return w, nil
}

// crc64nvmeOf is the CRC-64/NVME of b, for tests.
func crc64nvmeOf(b []byte) uint64 { return crc64.Checksum(b, crc64Table) }
