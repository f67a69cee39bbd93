package audit

import (
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/stewardhq/steward"
)

// ProblemKind names what Verify found wrong.
type ProblemKind string

const (
	Edited    ProblemKind = "edited"    // a record's content does not match its hash, or its hash was recomputed
	Deleted   ProblemKind = "deleted"   // records are missing from the middle or the start
	Inserted  ProblemKind = "inserted"  // a record appears that does not belong (a copy or a forgery)
	Reordered ProblemKind = "reordered" // records are present but out of order
	Truncated ProblemKind = "truncated" // the trail ends before its checkpoint, or the checkpoint is gone
	Malformed ProblemKind = "malformed" // a line, segment name or checkpoint is not in the expected form
)

// Problem is the first thing Verify found wrong.
type Problem struct {
	Kind    ProblemKind
	Segment string // segment file name, "" when about the checkpoint
	Line    int    // 1-based line in Segment, 0 if none
	Seq     uint64 // the record concerned, 0 if unknown
	Message string // human-readable, names the record, file and line
}

func (p *Problem) Error() string { return p.Message }

// Report is the outcome of Verify.
type Report struct {
	Segments       int
	Records        uint64
	FirstSeq       uint64
	LastSeq        uint64
	LastHash       string
	CheckpointSeq  uint64 // from HEAD; 0 if there is none
	CheckpointHash string
	// TornTailBytes counts bytes of an incomplete final line in the newest
	// segment: a write cut short by a crash (or in progress while Verify ran).
	// It was never acknowledged; Open removes it. It is not a problem.
	TornTailBytes int64
	Problem       *Problem // nil if the trail is intact
}

// OK reports whether Verify found no problem.
func (r Report) OK() bool { return r.Problem == nil }

// Verify reads the whole trail in dir and checks every record's hash, the
// chain from record 1 to the newest, segment names and the checkpoint. It
// returns the first problem in Report.Problem; the error is only for failing
// to read the directory (ENotFound if it does not exist). It needs no lock
// and may run while a Log appends.
func Verify(dir string) (Report, error) {
	const op = "audit.Verify"
	var rep Report
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return rep, steward.WrapError(steward.ENotFound, op, err, "no audit trail at "+dir)
		}
		return rep, steward.WrapError(steward.EInternal, op, err, "cannot read the audit directory")
	}
	// The checkpoint is read before the segments: a Log appending meanwhile
	// only moves the chain further past it.
	cp, cpHash, cpErr := readCheckpoint(dir)
	segs, err := listSegments(dir)
	if err != nil {
		return rep, steward.WrapError(steward.EInternal, op, err, "cannot list the audit directory")
	}
	rep.Segments = len(segs)
	v := &verifier{dir: dir, segs: segs, h: newHash(), rep: &rep, prev: genesisHash, cpSeq: cp.Seq}
	if cpErr == nil {
		rep.CheckpointSeq, rep.CheckpointHash = cp.Seq, cp.Hash
	}
	if err := v.walk(); err != nil {
		return rep, steward.WrapError(steward.EInternal, op, err, "cannot read the audit trail")
	}
	rep.LastHash = hex.EncodeToString(v.prev[:])
	if rep.Problem != nil {
		return rep, nil
	}
	lastLoc := fmt.Sprintf("record %d (%s line %d)", rep.LastSeq, v.lastSeg, v.lastLine)
	if rep.Records == 0 {
		lastLoc = "no record"
	}
	switch {
	case errors.Is(cpErr, errNoCheckpoint):
		if rep.Records > 0 || rep.Segments > 0 {
			rep.Problem = &Problem{Kind: Truncated, Segment: v.lastSeg, Line: v.lastLine, Seq: rep.LastSeq,
				Message: fmt.Sprintf("the checkpoint %s is missing, so records removed from the end cannot be ruled out; the trail ends at %s", checkpointName, lastLoc)}
		}
	case cpErr != nil:
		rep.Problem = &Problem{Kind: Malformed, Message: cpErr.Error()}
	case rep.LastSeq < cp.Seq:
		rep.Problem = &Problem{Kind: Truncated, Segment: v.lastSeg, Line: v.lastLine, Seq: rep.LastSeq,
			Message: fmt.Sprintf("the trail was truncated: it ends at %s but the checkpoint %s says record %d was written; records %d to %d are missing from the end",
				lastLoc, checkpointName, cp.Seq, rep.LastSeq+1, cp.Seq)}
	case cp.Seq > 0 && v.cpHash != cpHash:
		rep.Problem = &Problem{Kind: Edited, Segment: v.cpSeg, Line: v.cpLine, Seq: cp.Seq,
			Message: fmt.Sprintf("record %d in %s line %d does not match the checkpoint %s: the chain up to it was rewritten", cp.Seq, v.cpSeg, v.cpLine, checkpointName)}
	}
	return rep, nil
}

type verifier struct {
	dir  string
	segs []segment
	h    hash.Hash
	rep  *Report

	prev     [32]byte // hash of the last good record
	lastSeg  string
	lastLine int
	cpSeq    uint64
	cpHash   [32]byte
	cpSeg    string
	cpLine   int
}

// walk checks every line in order and stops at the first problem.
func (v *verifier) walk() error {
	for si, seg := range v.segs {
		stop, err := v.walkSegment(si, seg)
		if err != nil || stop {
			return err
		}
	}
	return nil
}

func (v *verifier) walkSegment(si int, seg segment) (bool, error) {
	rep := v.rep
	f, err := os.Open(filepath.Join(v.dir, seg.name))
	if err != nil {
		return false, err
	}
	defer f.Close()
	lr := newLineReader(f)
	newest := si == len(v.segs)-1
	first := true
	for {
		line, terminated, tooLong, err := lr.line()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		exp := rep.LastSeq + 1
		at := fmt.Sprintf("%s line %d", seg.name, lr.n)
		if !terminated && !tooLong && isZeros(line) {
			return false, nil // zeros written ahead of the records
		}
		problem := func(k ProblemKind, seq uint64, format string, args ...any) (bool, error) {
			rep.Problem = &Problem{Kind: k, Segment: seg.name, Line: lr.n, Seq: seq, Message: fmt.Sprintf(format, args...)}
			return true, nil
		}
		var hd header
		var lerr *lineErr
		switch {
		case tooLong:
			lerr = malformed("longer than %d bytes", maxLineBytes)
		case !terminated:
			lerr = malformed("it has no newline but is not the end of the trail")
		default:
			_, hd, lerr = parseLine(line, v.h)
		}
		if lerr != nil && lerr.edited {
			return problem(Edited, hd.seq, "record %d in %s was edited: %s", hd.seq, at, lerr.msg)
		}
		if lerr != nil {
			// At the end of the newest segment, bytes that hold no record
			// at all are a write torn by a crash, never acknowledged.
			if newest {
				torn, err := v.tornTail(f, lr)
				if err != nil {
					return false, err
				}
				if torn {
					rep.TornTailBytes, err = nonZeroSpan(f, lr.off)
					return true, err
				}
			}
			return problem(Malformed, hd.seq, "%s is malformed: %s", at, lerr.msg)
		}
		switch {
		case hd.seq == exp && hd.prev == v.prev:
			// in order
		case hd.seq == exp && exp == 1:
			return problem(Edited, hd.seq, "record 1 in %s was edited: it does not start the chain (its prev is not zero)", at)
		case hd.seq == exp:
			// Both records are self-consistent, so the previous one was
			// changed and given a new hash: this one still links to the
			// original.
			rep.Problem = &Problem{Kind: Edited, Segment: v.lastSeg, Line: v.lastLine, Seq: exp - 1,
				Message: fmt.Sprintf("record %d in %s line %d was edited: its hash was recomputed, but record %d in %s links to a different one",
					exp-1, v.lastSeg, v.lastLine, exp, at)}
			return true, nil
		case hd.seq < exp:
			return problem(Inserted, hd.seq, "record %d in %s was inserted: record %d already appeared earlier, and record %d was expected here", hd.seq, at, hd.seq, exp)
		default:
			return v.classifyJump(si, seg, lr.n, hd, exp)
		}
		if first && hd.seq != seg.first {
			return problem(Malformed, hd.seq, "segment %s is misnamed: its first record is %d", seg.name, hd.seq)
		}
		first = false
		if rep.Records == 0 {
			rep.FirstSeq = hd.seq
		}
		rep.Records++
		rep.LastSeq = hd.seq
		v.prev = hd.hash
		v.lastSeg, v.lastLine = seg.name, lr.n
		if hd.seq == v.cpSeq {
			v.cpHash, v.cpSeg, v.cpLine = hd.hash, seg.name, lr.n
		}
	}
}

// tornTail reports whether no line after the current one in lr is laid out
// as a record.
func (v *verifier) tornTail(f *os.File, lr *lineReader) (bool, error) {
	for {
		line, terminated, tooLong, err := lr.line()
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		if !terminated || tooLong {
			continue
		}
		if _, lerr := parseHeader(line, v.h); lerr == nil || lerr.edited {
			return false, nil
		}
	}
}

func isZeros(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// classifyJump explains a record whose seq is ahead of the expected one by
// reading on: a later record with the same seq means this one was inserted;
// the expected record found later means the records were reordered;
// otherwise records were deleted.
func (v *verifier) classifyJump(si int, seg segment, lineNo int, hd header, exp uint64) (bool, error) {
	at := fmt.Sprintf("%s line %d", seg.name, lineNo)
	var dupAt, expAt string
	err := v.scanFrom(si, lineNo, func(name string, n int, o header) bool {
		if o.seq == hd.seq && dupAt == "" {
			dupAt = fmt.Sprintf("%s line %d", name, n)
		}
		if o.seq == exp && expAt == "" {
			expAt = fmt.Sprintf("%s line %d", name, n)
		}
		return dupAt == "" || expAt == ""
	})
	if err != nil {
		return false, err
	}
	p := &Problem{Segment: seg.name, Line: lineNo, Seq: hd.seq}
	switch {
	case dupAt != "":
		p.Kind = Inserted
		p.Message = fmt.Sprintf("record %d in %s was inserted: record %d was expected here, and record %d appears again at %s", hd.seq, at, exp, hd.seq, dupAt)
	case expAt != "":
		p.Kind = Reordered
		p.Message = fmt.Sprintf("record %d in %s is out of order: record %d was expected here and comes later, at %s", hd.seq, at, exp, expAt)
	default:
		p.Kind, p.Seq = Deleted, exp
		missing := fmt.Sprintf("records %d to %d are", exp, hd.seq-1)
		if hd.seq-1 == exp {
			missing = fmt.Sprintf("record %d is", exp)
		}
		where := "at the start of the trail"
		if v.lastSeg != "" {
			where = fmt.Sprintf("after record %d in %s line %d", exp-1, v.lastSeg, v.lastLine)
		}
		p.Message = fmt.Sprintf("%s deleted: %s missing %s (the trail resumes with record %d in %s)", missingWord(hd.seq-exp), missing, where, hd.seq, at)
		if lineNo == 1 && v.lastSeg != seg.name {
			p.Message += "; a whole segment may have been removed"
		}
	}
	v.rep.Problem = p
	return true, nil
}

func missingWord(n uint64) string {
	if n == 1 {
		return "a record was"
	}
	return "records were"
}

// scanFrom calls fn for every well-formed record after line afterLine of
// segment si, until fn returns false.
func (v *verifier) scanFrom(si, afterLine int, fn func(seg string, line int, hd header) bool) error {
	h := newHash()
	for i := si; i < len(v.segs); i++ {
		cont, err := func() (bool, error) {
			f, err := os.Open(filepath.Join(v.dir, v.segs[i].name))
			if err != nil {
				return false, err
			}
			defer f.Close()
			lr := newLineReader(f)
			for {
				line, terminated, tooLong, err := lr.line()
				if err == io.EOF {
					return true, nil
				}
				if err != nil {
					return false, err
				}
				if (i == si && lr.n <= afterLine) || !terminated || tooLong {
					continue
				}
				hd, lerr := parseHeader(line, h)
				if lerr != nil {
					continue
				}
				if !fn(v.segs[i].name, lr.n, hd) {
					return false, nil
				}
			}
		}()
		if err != nil || !cont {
			return err
		}
	}
	return nil
}
