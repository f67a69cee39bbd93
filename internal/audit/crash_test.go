package audit

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const crashDirEnv = "STEWARD_AUDIT_CRASH_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(dir, os.Getenv("STEWARD_AUDIT_CRASH_CHILD_TAG"))
		return
	}
	os.Exit(m.Run())
}

// crashChild appends from several goroutines until it is killed, printing
// the request ID of every acknowledged record.
func crashChild(dir, tag string) {
	l, err := Open(dir, Options{SegmentMaxBytes: 32 << 10, CheckpointInterval: 5 * time.Millisecond}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child Open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	for g := range 8 {
		go func() {
			for i := 0; ; i++ {
				ev := event(i)
				ev.RequestID = fmt.Sprintf("%s-g%d-%d", tag, g, i)
				if err := l.Record(context.Background(), ev); err != nil {
					fmt.Fprintln(os.Stderr, "child Record:", err)
					os.Exit(3)
				}
				mu.Lock()
				os.Stdout.WriteString(ev.RequestID + "\n")
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestCrashRecovery kills a writing child process at arbitrary points, over
// several rounds on one trail, and checks that the trail verifies, reopens,
// and holds every record the child saw acknowledged.
func TestCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	acked := map[string]bool{}
	for round := range 4 {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, fmt.Sprintf("STEWARD_AUDIT_CRASH_CHILD_TAG=r%d", round))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := 100 + rng.IntN(1500)
		r := bufio.NewReader(out)
		n := 0
		for {
			line, err := r.ReadString('\n')
			if err == io.EOF {
				break // the child died early: caught below
			}
			if err != nil {
				t.Fatal(err)
			}
			acked[strings.TrimSuffix(line, "\n")] = true
			n++
			if n == killAfter {
				cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		werr := cmd.Wait()
		if n < killAfter {
			t.Fatalf("round %d: child stopped after %d records: %v %s", round, n, werr, stderr.String())
		}

		// Straight after the kill, before any repair, the trail verifies
		// (an incomplete final line is allowed, not a problem).
		rep, err := Verify(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() {
			t.Fatalf("round %d: Verify after kill: %s", round, rep.Problem.Message)
		}
		l, err := Open(dir, Options{SegmentMaxBytes: 32 << 10}, nil)
		if err != nil {
			t.Fatalf("round %d: Open after kill: %v", round, err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		rep = mustVerify(t, dir)
		t.Logf("round %d: killed after %d acks; %d records in %d segments, torn tail %d bytes",
			round, n, rep.Records, rep.Segments, rep.TornTailBytes)
	}
	found := map[string]bool{}
	for _, r := range queryAll(t, dir, Filter{}) {
		found[r.RequestID] = true
	}
	for id := range acked {
		if !found[id] {
			t.Errorf("acknowledged record %s is missing", id)
		}
	}
}
