package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// trail writes a closed trail of n records over several segments and
// returns its directory and segment names.
func trail(t *testing.T, n int) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	l := openLog(t, dir, Options{SegmentMaxBytes: 4000})
	recordN(t, l, 0, n)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) < 3 {
		t.Fatalf("only %d segments", len(segs))
	}
	var names []string
	for _, s := range segs {
		names = append(names, s.name)
	}
	return dir, names
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.SplitAfter(string(b), "\n")[:strings.Count(string(b), "\n")]
}

func writeLines(t *testing.T, path string, lines []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
}

// editLines applies fn to the lines of segment i.
func editLines(t *testing.T, dir string, segs []string, i int, fn func([]string) []string) {
	t.Helper()
	p := filepath.Join(dir, segs[i])
	writeLines(t, p, fn(readLines(t, p)))
}

// firstSeq returns the seq of line 1 of segment i.
func firstSeq(segs []string, i int) uint64 {
	n, _ := parseSegmentName(segs[i])
	return n
}

// rehash recomputes the hash of a record line, as an attacker would.
func rehash(line string) string {
	line = strings.TrimSuffix(line, "\n")
	i := strings.Index(line, `"hash":"`)
	cut := line[:i] + line[i+74:]
	sum := sha256.Sum256([]byte(cut))
	return line[:i] + `"hash":"` + hex.EncodeToString(sum[:]) + `",` + line[i+74:] + "\n"
}

func TestVerifyDetectsTampering(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(t *testing.T, dir string, segs []string)
		kind    ProblemKind
		seq     func(segs []string) uint64 // seq the problem names
		seg     int                        // index of the segment named; -1 for none, -2 for the newest remaining
		line    int
		message string // a fragment the message must contain
		// openFails: Open must refuse the trail, because the damage is at
		// its end where appending would build on it.
		openFails bool
	}{
		{
			name: "edit one byte",
			tamper: func(t *testing.T, dir string, segs []string) {
				editLines(t, dir, segs, 1, func(l []string) []string {
					l[2] = strings.Replace(l[2], `"actor":"user`, `"actor":"User`, 1)
					return l
				})
			},
			kind: Edited, seq: func(s []string) uint64 { return firstSeq(s, 1) + 2 }, seg: 1, line: 3,
			message: "its hash does not match its content",
		},
		{
			name: "edit the hash field",
			tamper: func(t *testing.T, dir string, segs []string) {
				editLines(t, dir, segs, 0, func(l []string) []string {
					i := strings.Index(l[3], `"hash":"`) + 8
					c := "0"
					if l[3][i] == '0' {
						c = "1"
					}
					l[3] = l[3][:i] + c + l[3][i+1:]
					return l
				})
			},
			kind: Edited, seq: func([]string) uint64 { return 4 }, seg: 0, line: 4,
		},
		{
			name: "edit and recompute the hash",
			tamper: func(t *testing.T, dir string, segs []string) {
				editLines(t, dir, segs, 1, func(l []string) []string {
					l[1] = rehash(strings.Replace(l[1], `"outcome":"success"`, `"outcome":"failure"`, 1))
					return l
				})
			},
			kind: Edited, seq: func(s []string) uint64 { return firstSeq(s, 1) + 1 }, seg: 1, line: 2,
			message: "hash was recomputed",
		},
		{
			name: "delete a line",
			tamper: func(t *testing.T, dir string, segs []string) {
				editLines(t, dir, segs, 1, func(l []string) []string { return append(l[:3], l[4:]...) })
			},
			kind: Deleted, seq: func(s []string) uint64 { return firstSeq(s, 1) + 3 }, seg: 1, line: 4,
			message: "is missing after record",
		},
		{
			name: "insert a copy of an earlier line",
			tamper: func(t *testing.T, dir string, segs []string) {
				early := readLines(t, filepath.Join(dir, segs[0]))[1]
				editLines(t, dir, segs, 1, func(l []string) []string {
					return append(l[:4], append([]string{early}, l[4:]...)...)
				})
			},
			kind: Inserted, seq: func([]string) uint64 { return 2 }, seg: 1, line: 5,
			message: "already appeared earlier",
		},
		{
			name: "insert a copy of a later line",
			tamper: func(t *testing.T, dir string, segs []string) {
				later := readLines(t, filepath.Join(dir, segs[2]))[0]
				editLines(t, dir, segs, 1, func(l []string) []string {
					return append(l[:2], append([]string{later}, l[2:]...)...)
				})
			},
			kind: Inserted, seq: func(s []string) uint64 { return firstSeq(s, 2) }, seg: 1, line: 3,
			message: "appears again at",
		},
		{
			name: "swap two lines",
			tamper: func(t *testing.T, dir string, segs []string) {
				editLines(t, dir, segs, 1, func(l []string) []string {
					l[2], l[3] = l[3], l[2]
					return l
				})
			},
			kind: Reordered, seq: func(s []string) uint64 { return firstSeq(s, 1) + 3 }, seg: 1, line: 3,
			message: "is out of order",
		},
		{
			name: "delete a middle segment",
			tamper: func(t *testing.T, dir string, segs []string) {
				os.Remove(filepath.Join(dir, segs[1]))
			},
			kind: Deleted, seq: func(s []string) uint64 { return firstSeq(s, 1) }, seg: 2, line: 1,
			message: "a whole segment may have been removed",
		},
		{
			name: "delete the first segment",
			tamper: func(t *testing.T, dir string, segs []string) {
				os.Remove(filepath.Join(dir, segs[0]))
			},
			kind: Deleted, seq: func([]string) uint64 { return 1 }, seg: 1, line: 1,
			message: "at the start of the trail",
		},
		{
			name: "truncate the tail",
			tamper: func(t *testing.T, dir string, segs []string) {
				editLines(t, dir, segs, len(segs)-1, func(l []string) []string { return l[:len(l)-2] })
			},
			kind: Truncated, seq: func([]string) uint64 { return 28 }, seg: -2,
			message: "records 29 to 30 are missing from the end", openFails: true,
		},
		{
			name: "delete the newest segment",
			tamper: func(t *testing.T, dir string, segs []string) {
				os.Remove(filepath.Join(dir, segs[len(segs)-1]))
			},
			kind: Truncated, seq: func(s []string) uint64 { return firstSeq(s, len(s)-1) - 1 }, seg: -2,
			message: "the trail was truncated", openFails: true,
		},
		{
			name: "delete the checkpoint",
			tamper: func(t *testing.T, dir string, segs []string) {
				os.Remove(filepath.Join(dir, checkpointName))
			},
			kind: Truncated, seq: func([]string) uint64 { return 30 }, seg: -2,
			message: "checkpoint HEAD is missing", openFails: true,
		},
		{
			name: "rewrite the whole tail after the checkpoint's record",
			tamper: func(t *testing.T, dir string, segs []string) {
				// Recompute the chain from record 1 with an edit: consistent
				// on its own, but not with HEAD.
				var all []string
				for _, s := range segs {
					all = append(all, readLines(t, filepath.Join(dir, s))...)
					os.Remove(filepath.Join(dir, s))
				}
				all[0] = strings.Replace(all[0], `"outcome":"success"`, `"outcome":"failure"`, 1)
				prev := strings.Repeat("0", 64)
				for i, line := range all {
					j := strings.Index(line, `"prev":"`) + 8
					line = rehash(line[:j] + prev + line[j+64:])
					k := strings.Index(line, `"hash":"`) + 8
					prev = line[k : k+64]
					all[i] = line
				}
				writeLines(t, filepath.Join(dir, segmentName(1)), all)
			},
			kind: Edited, seq: func([]string) uint64 { return 30 }, seg: -1,
			message: "does not match the checkpoint", openFails: true,
		},
		{
			name: "garbage line in the middle",
			tamper: func(t *testing.T, dir string, segs []string) {
				editLines(t, dir, segs, 1, func(l []string) []string {
					l[1] = "not a record\n"
					return l
				})
			},
			kind: Malformed, seq: func([]string) uint64 { return 0 }, seg: 1, line: 2,
			message: "is malformed",
		},
		{
			name: "renamed segment",
			tamper: func(t *testing.T, dir string, segs []string) {
				os.Rename(filepath.Join(dir, segs[1]), filepath.Join(dir, segmentName(firstSeq(segs, 1)+1)))
			},
			kind: Malformed, seq: func(s []string) uint64 { return firstSeq(s, 1) }, seg: -1, line: 1,
			message: "is misnamed",
		},
		{
			name: "duplicated key overriding the chain",
			tamper: func(t *testing.T, dir string, segs []string) {
				editLines(t, dir, segs, 0, func(l []string) []string {
					l[4] = rehash(strings.TrimSuffix(strings.TrimSuffix(l[4], "\n"), "}") + `,"seq":99}` + "\n")
					return l
				})
			},
			kind: Malformed, seq: func([]string) uint64 { return 5 }, seg: 0, line: 5,
			message: "repeated",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, segs := trail(t, 30)
			mustVerify(t, dir)
			tt.tamper(t, dir, segs)
			rep, err := Verify(dir)
			if err != nil {
				t.Fatal(err)
			}
			p := rep.Problem
			if p == nil {
				t.Fatalf("tampering went undetected: %+v", rep)
			}
			t.Logf("%s: %s", p.Kind, p.Message)
			if p.Kind != tt.kind {
				t.Fatalf("kind = %s, want %s (%s)", p.Kind, tt.kind, p.Message)
			}
			if want := tt.seq(segs); p.Seq != want {
				t.Errorf("seq = %d, want %d", p.Seq, want)
			}
			switch {
			case tt.seg >= 0 && p.Segment != segs[tt.seg]:
				t.Errorf("segment = %q, want %q", p.Segment, segs[tt.seg])
			case tt.seg == -2 && p.Segment == "":
				t.Errorf("no segment named")
			}
			if tt.line != 0 && p.Line != tt.line {
				t.Errorf("line = %d, want %d", p.Line, tt.line)
			}
			if !strings.Contains(p.Message, tt.message) {
				t.Errorf("message %q lacks %q", p.Message, tt.message)
			}
			if p.Segment != "" && p.Line > 0 && !strings.Contains(p.Message, p.Segment) {
				t.Errorf("message %q does not name the segment", p.Message)
			}
			// Open refuses to append to a trail whose end it cannot vouch for.
			if tt.openFails {
				if l, err := Open(dir, Options{}, nil); err == nil {
					l.Close()
					t.Errorf("Open accepted a trail with a %s problem at its end", tt.kind)
				}
			}
		})
	}
}

func TestRecoverTornTail(t *testing.T) {
	tests := []struct {
		name       string
		damage     func(t *testing.T, dir, newest string)
		verifyOK   bool   // before Open
		recoverMsg string // "" if Open has nothing to report
	}{
		{
			name: "partial final line",
			damage: func(t *testing.T, dir, newest string) {
				appendFile(t, filepath.Join(dir, newest), `{"seq":31,"prev":"ab`)
			},
			verifyOK: true, recoverMsg: "cut 20 bytes",
		},
		{
			name: "zeros written ahead",
			damage: func(t *testing.T, dir, newest string) {
				appendFile(t, filepath.Join(dir, newest), string(make([]byte, 300)))
			},
			verifyOK: true,
		},
		{
			name: "partial line then zeros",
			damage: func(t *testing.T, dir, newest string) {
				appendFile(t, filepath.Join(dir, newest), `{"seq":31,"prev":"ab`+string(make([]byte, 3000)))
			},
			verifyOK: true, recoverMsg: "cut 20 bytes",
		},
		{
			name: "terminated garbage after the last record",
			damage: func(t *testing.T, dir, newest string) {
				appendFile(t, filepath.Join(dir, newest), string(make([]byte, 100))+"\n"+`{"seq":3`)
			},
			verifyOK: true, recoverMsg: "cut 109 bytes",
		},
		{
			name: "empty new segment",
			damage: func(t *testing.T, dir, newest string) {
				appendFile(t, filepath.Join(dir, segmentName(31)), "")
			},
			verifyOK: true, recoverMsg: "removed the segment " + segmentName(31),
		},
		{
			name: "new segment with only a torn line",
			damage: func(t *testing.T, dir, newest string) {
				appendFile(t, filepath.Join(dir, segmentName(31)), `{"seq":31,"pr`)
			},
			verifyOK: true, recoverMsg: "removed the segment " + segmentName(31),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, segs := trail(t, 30)
			tt.damage(t, dir, segs[len(segs)-1])
			rep, err := Verify(dir)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() != tt.verifyOK {
				t.Fatalf("Verify before recovery: ok=%v %+v", rep.OK(), rep.Problem)
			}
			if n := len(queryAll(t, dir, Filter{})); n != 30 {
				t.Fatalf("Query before recovery: %d records", n)
			}
			l := openLog(t, dir, Options{})
			recordN(t, l, 30, 32)
			l.Close()
			rep = mustVerify(t, dir)
			want := uint64(32)
			if tt.recoverMsg != "" {
				want++
			}
			if rep.TornTailBytes != 0 || rep.Records != want {
				t.Fatalf("report after recovery: %+v", rep)
			}
			recs := queryAll(t, dir, Filter{Action: "audit.recover"})
			if tt.recoverMsg == "" && len(recs) != 0 {
				t.Fatalf("recover records after a clean stop: %+v", recs)
			}
			if tt.recoverMsg != "" && (len(recs) != 1 || recs[0].Seq != 31 || !strings.Contains(recs[0].Reason, tt.recoverMsg)) {
				t.Fatalf("recover records: %+v", recs)
			}
		})
	}
}

func TestOpenRefusesDamagedNewestSegment(t *testing.T) {
	tests := []struct {
		name   string
		damage func(lines []string) []string
	}{
		{"edited last record", func(l []string) []string {
			n := len(l) - 1
			l[n] = strings.Replace(l[n], `"outcome":"success"`, `"outcome":"failure"`, 1)
			return l
		}},
		{"garbage before good records", func(l []string) []string {
			l[0] = "garbage\n"
			return l
		}},
		{"swapped records", func(l []string) []string {
			l[0], l[1] = l[1], l[0]
			return l
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, segs := trail(t, 30)
			editLines(t, dir, segs, len(segs)-1, tt.damage)
			if l, err := Open(dir, Options{}, nil); err == nil {
				l.Close()
				t.Fatal("Open accepted a damaged newest segment")
			}
		})
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}
