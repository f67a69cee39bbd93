package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward"
)

// Record is one stored audit record: its place in the chain and the event.
type Record struct {
	Seq  uint64 `json:"seq"`
	Prev string `json:"prev"` // hex SHA-256 of the previous record (64 zeros for record 1)
	Hash string `json:"hash"` // hex SHA-256 of this record, see the package doc
	steward.AuditEvent
}

const (
	// MaxEventBytes is the largest encoded event Record accepts.
	MaxEventBytes = 1 << 20
	// maxLineBytes bounds a line readers will hold in memory: an event plus
	// the chain fields.
	maxLineBytes = MaxEventBytes + 256

	segPrefix      = "audit-"
	segSuffix      = ".jsonl"
	checkpointName = "HEAD"
	lockName       = "LOCK"
)

var (
	linePrefix  = []byte(`{"seq":`)
	prevField   = []byte(`,"prev":"`)
	hashField   = []byte(`"hash":"`)
	genesisHash [32]byte
)

// segmentName returns the file name of the segment whose first record is seq.
func segmentName(seq uint64) string { return fmt.Sprintf("%s%012d%s", segPrefix, seq, segSuffix) }

// parseSegmentName returns the first seq a segment file name claims.
func parseSegmentName(name string) (uint64, bool) {
	if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
		return 0, false
	}
	digits := name[len(segPrefix) : len(name)-len(segSuffix)]
	if digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	return n, err == nil && n > 0
}

type segment struct {
	name  string
	first uint64 // seq its name claims
}

// listSegments returns dir's segment files in seq order.
func listSegments(dir string) ([]segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []segment
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if n, ok := parseSegmentName(e.Name()); ok {
			segs = append(segs, segment{name: e.Name(), first: n})
		}
	}
	slices.SortFunc(segs, func(a, b segment) int {
		switch {
		case a.first < b.first:
			return -1
		case a.first > b.first:
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	return segs, nil
}

// appendRecord appends the line for event body (the JSON object of a
// steward.AuditEvent) as record seq chained to prev, and returns the line and
// the record's hash. h is reused as scratch.
//
// The line is {"seq":N,"prev":"P","hash":"H",<body without its '{'>\n and H
// is SHA-256 over the same bytes with `"hash":"H",` left out.
func appendRecord(dst []byte, h hash.Hash, seq uint64, prev *[32]byte, body []byte) ([]byte, [32]byte) {
	start := len(dst)
	dst = append(dst, linePrefix...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, prevField...)
	dst = hex.AppendEncode(dst, prev[:])
	dst = append(dst, '"', ',')
	mid := len(dst)
	dst = append(dst, hashField...)
	hexAt := len(dst)
	dst = append(dst, zeroHex[:]...)
	dst = append(dst, '"', ',')
	rest := len(dst)
	dst = append(dst, body[1:]...)
	var sum [32]byte
	h.Reset()
	h.Write(dst[start:mid])
	h.Write(dst[rest:])
	h.Sum(sum[:0])
	hex.Encode(dst[hexAt:hexAt+64], sum[:])
	dst = append(dst, '\n')
	return dst, sum
}

var zeroHex = [64]byte{}

func init() {
	for i := range zeroHex {
		zeroHex[i] = '0'
	}
}

// lineErr says why a line is not a good record.
type lineErr struct {
	edited bool // well formed, but the hash does not match the content
	msg    string
}

func (e *lineErr) Error() string { return e.msg }

func malformed(format string, args ...any) *lineErr {
	return &lineErr{msg: fmt.Sprintf(format, args...)}
}

// header is the chain part of a record line, read without decoding the event.
type header struct {
	seq  uint64
	prev [32]byte
	hash [32]byte
}

// parseHeader checks the fixed layout of a record line (without its newline)
// and that its hash matches its content. It does not decode the event.
func parseHeader(line []byte, h hash.Hash) (header, *lineErr) {
	var hd header
	if bytes.IndexByte(line, 0) >= 0 {
		// Never in a record (JSON has no raw NUL): zeros written ahead, or
		// a write torn by a crash.
		return hd, malformed("contains NUL bytes")
	}
	rest, ok := bytes.CutPrefix(line, linePrefix)
	if !ok {
		return hd, malformed("does not start with {\"seq\":")
	}
	i := 0
	for i < len(rest) && i < 21 && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i == 0 || i > 20 || (rest[0] == '0') {
		return hd, malformed("bad seq")
	}
	seq, err := strconv.ParseUint(string(rest[:i]), 10, 64)
	if err != nil {
		return hd, malformed("bad seq")
	}
	hd.seq = seq
	rest, ok = bytes.CutPrefix(rest[i:], prevField)
	if !ok || len(rest) < 64 || !isLowerHex(rest[:64]) {
		return hd, malformed("bad prev")
	}
	hex.Decode(hd.prev[:], rest[:64])
	rest, ok = bytes.CutPrefix(rest[64:], []byte(`",`))
	if !ok {
		return hd, malformed("bad prev")
	}
	mid := len(line) - len(rest)
	rest, ok = bytes.CutPrefix(rest, hashField)
	if !ok || len(rest) < 64 || !isLowerHex(rest[:64]) {
		return hd, malformed("bad hash")
	}
	hex.Decode(hd.hash[:], rest[:64])
	body, ok := bytes.CutPrefix(rest[64:], []byte(`",`))
	if !ok || len(body) < 2 || body[len(body)-1] != '}' || body[0] != '"' {
		return hd, malformed("bad layout after hash")
	}
	var sum [32]byte
	h.Reset()
	h.Write(line[:mid])
	h.Write(body)
	h.Sum(sum[:0])
	if sum != hd.hash {
		return hd, &lineErr{edited: true, msg: "its hash does not match its content"}
	}
	return hd, nil
}

func isLowerHex(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// parseLine parses a record line (without its newline): the layout, the
// hash, and the event. Every line Verify and Query read goes through here.
func parseLine(line []byte, h hash.Hash) (Record, header, *lineErr) {
	hd, lerr := parseHeader(line, h)
	if lerr != nil {
		return Record{}, hd, lerr
	}
	rec, lerr := decodeLine(line)
	if lerr != nil {
		return rec, hd, lerr
	}
	// A key given twice (or in another case) would let the decoded record
	// differ from what the hash chain vouches for.
	if rec.Seq != hd.seq || rec.Prev != hex.EncodeToString(hd.prev[:]) || rec.Hash != hex.EncodeToString(hd.hash[:]) {
		return rec, hd, malformed("chain fields are repeated with other values")
	}
	return rec, hd, nil
}

// decodeLine decodes a line as a Record without checking the chain.
func decodeLine(line []byte) (Record, *lineErr) {
	var rec Record
	if err := json.Unmarshal(line, &rec); err != nil {
		return rec, malformed("not a valid record: %v", err)
	}
	if rec.Time.IsZero() || rec.Action == "" {
		return rec, malformed("record lacks time or action")
	}
	return rec, nil
}

// lineReader reads newline-terminated lines of at most maxLineBytes.
type lineReader struct {
	r    *bufio.Reader
	n    int   // number of the line last returned, from 1
	off  int64 // offset of the line last returned
	next int64 // offset after it
	buf  []byte
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 256<<10)}
}

// line returns the next line without its newline. terminated is false for a
// final line with no newline. tooLong lines are returned empty. At the end it
// returns io.EOF.
func (lr *lineReader) line() (line []byte, terminated, tooLong bool, err error) {
	lr.off = lr.next
	lr.buf = lr.buf[:0]
	size := 0
	for {
		chunk, err := lr.r.ReadSlice('\n')
		size += len(chunk)
		if !tooLong {
			if len(lr.buf)+len(chunk) > maxLineBytes+1 {
				tooLong = true
				lr.buf = lr.buf[:0]
			} else if err == nil && len(lr.buf) == 0 {
				line = chunk // common case: no copy
			} else {
				lr.buf = append(lr.buf, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if line == nil {
			line = lr.buf
		}
		lr.next += int64(size)
		switch {
		case err == io.EOF && size == 0:
			return nil, false, false, io.EOF
		case err == io.EOF:
			lr.n++
			return line, false, tooLong, nil
		case err != nil:
			return nil, false, false, err
		}
		lr.n++
		return line[:len(line)-min(len(line), 1)], true, tooLong, nil
	}
}

// checkpoint is the content of the HEAD file: the newest record known to be
// durable when it was written.
type checkpoint struct {
	Seq  uint64    `json:"seq"`
	Hash string    `json:"hash"`
	Time time.Time `json:"time"`
}

var errNoCheckpoint = errors.New("no checkpoint")

func readCheckpoint(dir string) (checkpoint, [32]byte, error) {
	var cp checkpoint
	var sum [32]byte
	b, err := os.ReadFile(filepath.Join(dir, checkpointName))
	if errors.Is(err, os.ErrNotExist) {
		return cp, sum, errNoCheckpoint
	}
	if err != nil {
		return cp, sum, err
	}
	if err := json.Unmarshal(b, &cp); err != nil {
		return cp, sum, fmt.Errorf("checkpoint %s is malformed: %w", checkpointName, err)
	}
	if len(cp.Hash) != 64 || !isLowerHex([]byte(cp.Hash)) {
		return cp, sum, fmt.Errorf("checkpoint %s is malformed: bad hash", checkpointName)
	}
	hex.Decode(sum[:], []byte(cp.Hash))
	return cp, sum, nil
}

// writeCheckpoint replaces HEAD atomically and durably.
func writeCheckpoint(dir string, seq uint64, sum [32]byte) error {
	b, err := json.Marshal(checkpoint{Seq: seq, Hash: hex.EncodeToString(sum[:]), Time: time.Now().UTC()})
	if err != nil {
		return err
	}
	b = append(b, '\n')
	tmp := filepath.Join(dir, checkpointName+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, checkpointName)); err != nil {
		return err
	}
	return syncDir(dir)
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

func newHash() hash.Hash { return sha256.New() }
