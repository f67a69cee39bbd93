package audit

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func seedLines(tb testing.TB) [][]byte {
	tb.Helper()
	h := newHash()
	var prev [32]byte
	var lines [][]byte
	for i := range 3 {
		body, err := json.Marshal(event(i))
		if err != nil {
			tb.Fatal(err)
		}
		var line []byte
		line, prev = appendRecord(nil, h, uint64(i+1), &prev, body)
		lines = append(lines, line)
	}
	return lines
}

// FuzzParseLine checks the record line parser that Verify, Query and Open
// use on files anyone with disk access could have written: it never panics,
// and whatever it accepts is exactly what the writer would produce.
func FuzzParseLine(f *testing.F) {
	for _, l := range seedLines(f) {
		f.Add(bytes.TrimSuffix(l, []byte("\n")))
	}
	f.Add([]byte(`{"seq":1,"prev":"` + string(zeroHex[:]) + `","hash":"` + string(zeroHex[:]) + `","time":"x"}`))
	f.Add([]byte(`{"seq":01}`))
	f.Add([]byte(`{"seq":99999999999999999999999,"prev":"`))
	f.Add([]byte("\x00\x00\x00"))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		h := newHash()
		rec, hd, lerr := parseLine(line, h)
		if lerr != nil {
			if lerr.msg == "" {
				t.Fatal("error without a message")
			}
			return
		}
		if rec.Seq != hd.seq || rec.Action == "" || rec.Time.IsZero() {
			t.Fatalf("accepted %q as %+v", line, rec)
		}
		i := bytes.Index(line, hashField)
		body := append([]byte{'{'}, line[i+74:]...)
		again, sum := appendRecord(nil, h, hd.seq, &hd.prev, body)
		if !bytes.Equal(again, append(bytes.Clone(line), '\n')) || sum != hd.hash {
			t.Fatalf("accepted %q, which the writer would write as %q", line, again)
		}
	})
}

// FuzzVerifySegment feeds arbitrary segment contents to Verify, Query and
// Open: none may panic, and Verify must say something about anything that is
// not a clean trail.
func FuzzVerifySegment(f *testing.F) {
	lines := seedLines(f)
	f.Add(bytes.Join(lines, nil))
	f.Add(append(bytes.Join(lines, nil), 0, 0, 0))
	f.Add(append(bytes.Clone(lines[0]), lines[2]...))
	f.Add(append(bytes.Clone(lines[1]), lines[0]...))
	f.Add([]byte("garbage\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := writeCheckpoint(dir, 0, genesisHash); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, segmentName(1)), data, 0o600); err != nil {
			t.Fatal(err)
		}
		rep, err := Verify(dir)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Problem != nil && rep.Problem.Message == "" {
			t.Fatal("problem without a message")
		}
		Query(dir, Filter{}, func(Record) error { return nil })
		if l, err := Open(dir, Options{NoSync: true}, nil); err == nil {
			if !rep.OK() {
				// Open may only accept what Verify accepts.
				t.Fatalf("Open accepted a trail Verify rejects: %s", rep.Problem.Message)
			}
			l.Close()
			if rep2, err := Verify(dir); err != nil || !rep2.OK() {
				t.Fatalf("after Open: %v %+v", err, rep2.Problem)
			}
		}
	})
}
