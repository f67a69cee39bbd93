package audit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/stewardhq/steward"
)

// Filter selects records for Query. Zero fields match everything.
type Filter struct {
	Actor    string    // exact
	Action   string    // exact, or a prefix when it ends in '*' ("s3:*")
	Resource string    // prefix
	Decision string    // exact: allow, deny
	Outcome  string    // exact: success, failure
	Since    time.Time // records at or after
	Until    time.Time // records before
	Limit    int       // stop after this many matches; 0 means no limit
}

// Match reports whether r passes f.
func (f Filter) Match(r *Record) bool {
	if f.Actor != "" && r.Actor != f.Actor {
		return false
	}
	if f.Action != "" {
		if p, ok := strings.CutSuffix(f.Action, "*"); ok {
			if !strings.HasPrefix(r.Action, p) {
				return false
			}
		} else if r.Action != f.Action {
			return false
		}
	}
	if f.Resource != "" && !strings.HasPrefix(r.Resource, f.Resource) {
		return false
	}
	if f.Decision != "" && r.Decision != f.Decision {
		return false
	}
	if f.Outcome != "" && r.Outcome != f.Outcome {
		return false
	}
	if !f.Since.IsZero() && r.Time.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !r.Time.Before(f.Until) {
		return false
	}
	return true
}

// Query streams the records in dir that match f to fn, oldest first, reading
// one line at a time. It does not check hashes (Verify does); a line that is
// not a record is an error naming its file and line, except an incomplete
// final line of the newest segment, which is skipped. An error from fn stops
// the query and is returned as is.
func Query(dir string, f Filter, fn func(Record) error) error {
	const op = "audit.Query"
	segs, err := listSegments(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return steward.WrapError(steward.ENotFound, op, err, "no audit trail at "+dir)
		}
		return steward.WrapError(steward.EInternal, op, err, "cannot list the audit directory")
	}
	n := 0
	for i, seg := range segs {
		stop, err := querySegment(filepath.Join(dir, seg.name), i == len(segs)-1, f, &n, fn)
		if err != nil {
			return err
		}
		if stop {
			return nil
		}
	}
	return nil
}

func querySegment(path string, newest bool, f Filter, n *int, fn func(Record) error) (bool, error) {
	const op = "audit.Query"
	file, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // removed since listing: nothing to show
	}
	if err != nil {
		return false, steward.WrapError(steward.EInternal, op, err, "cannot read the audit trail")
	}
	defer file.Close()
	lr := newLineReader(file)
	for {
		line, terminated, tooLong, err := lr.line()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, steward.WrapError(steward.EInternal, op, err, "cannot read the audit trail")
		}
		if !terminated && !tooLong && isZeros(line) {
			return false, nil // zeros written ahead of the records
		}
		var rec Record
		var lerr *lineErr
		if tooLong || !terminated {
			lerr = malformed("incomplete line")
		} else {
			rec, lerr = decodeLine(line)
		}
		if lerr != nil && newest {
			// Most likely a write torn by a crash (Verify tells); nothing
			// after it was acknowledged.
			return false, nil
		}
		if lerr != nil {
			return false, steward.WrapError(steward.EInternal, op, lerr,
				fmt.Sprintf("%s line %d is not an audit record", filepath.Base(path), lr.n))
		}
		if !f.Match(&rec) {
			continue
		}
		if err := fn(rec); err != nil {
			return false, err
		}
		*n++
		if f.Limit > 0 && *n >= f.Limit {
			return true, nil
		}
	}
}
