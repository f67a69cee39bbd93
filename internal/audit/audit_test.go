package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward"
)

func openLog(t testing.TB, dir string, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, opts, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func event(i int) steward.AuditEvent {
	actions := []string{"auth.login", "s3:GetObject", "s3:PutObject", "user.create"}
	decisions := []string{"", "allow", "allow", ""}
	return steward.AuditEvent{
		Time:      t0.Add(time.Duration(i) * time.Minute),
		RequestID: fmt.Sprintf("req-%d", i),
		Actor:     fmt.Sprintf("user%d", i%3),
		ActorKind: "user",
		Action:    actions[i%len(actions)],
		Resource:  fmt.Sprintf("s3://bucket%d/key%d", i%2, i),
		Decision:  decisions[i%len(decisions)],
		Outcome:   "success",
		Details:   map[string]any{"n": i},
	}
}

func recordN(t testing.TB, l *Log, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := l.Record(context.Background(), event(i)); err != nil {
			t.Fatalf("Record %d: %v", i, err)
		}
	}
}

func queryAll(t testing.TB, dir string, f Filter) []Record {
	t.Helper()
	var out []Record
	if err := Query(dir, f, func(r Record) error { out = append(out, r); return nil }); err != nil {
		t.Fatalf("Query: %v", err)
	}
	return out
}

func mustVerify(t testing.TB, dir string) Report {
	t.Helper()
	rep, err := Verify(dir)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !rep.OK() {
		t.Fatalf("Verify found a problem in an intact trail: %s: %s", rep.Problem.Kind, rep.Problem.Message)
	}
	return rep
}

func TestRecordVerifyQuery(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	recordN(t, l, 0, 40)
	seq, head := l.Head()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep := mustVerify(t, dir)
	if rep.Records != 40 || rep.FirstSeq != 1 || rep.LastSeq != 40 || rep.Segments != 1 {
		t.Fatalf("report = %+v", rep)
	}
	if seq != 40 || head != rep.LastHash || rep.CheckpointSeq != 40 || rep.CheckpointHash != head {
		t.Fatalf("Head() = %d %s, report %+v", seq, head, rep)
	}

	all := queryAll(t, dir, Filter{})
	for i, r := range all {
		want := event(i)
		if r.Seq != uint64(i+1) || r.RequestID != want.RequestID || !r.Time.Equal(want.Time) || r.Action != want.Action {
			t.Fatalf("record %d = %+v, want %+v", i, r, want)
		}
	}
	tests := []struct {
		name string
		f    Filter
		want []uint64
	}{
		{"actor", Filter{Actor: "user1", Until: t0.Add(12 * time.Minute)}, []uint64{2, 5, 8, 11}},
		{"action exact", Filter{Action: "auth.login", Limit: 3}, []uint64{1, 5, 9}},
		{"action prefix", Filter{Action: "s3:*", Until: t0.Add(5 * time.Minute)}, []uint64{2, 3}},
		{"action exact is not prefix", Filter{Action: "s3:"}, nil},
		{"resource prefix", Filter{Resource: "s3://bucket1/key1", Until: t0.Add(20 * time.Minute)}, []uint64{2, 12, 14, 16, 18, 20}},
		{"time window", Filter{Since: t0.Add(10 * time.Minute), Until: t0.Add(13 * time.Minute)}, []uint64{11, 12, 13}},
		{"decision", Filter{Decision: "allow", Since: t0.Add(30 * time.Minute)}, []uint64{31, 34, 35, 38, 39}},
		{"combined", Filter{Actor: "user0", Action: "s3:*", Decision: "allow"}, []uint64{7, 10, 19, 22, 31, 34}},
		{"limit", Filter{Limit: 2}, []uint64{1, 2}},
		{"none", Filter{Actor: "nobody"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []uint64
			for _, r := range queryAll(t, dir, tt.f) {
				got = append(got, r.Seq)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("callback error stops", func(t *testing.T) {
		stop := errors.New("stop")
		n := 0
		err := Query(dir, Filter{}, func(Record) error { n++; return stop })
		if err != stop || n != 1 {
			t.Fatalf("err %v after %d records", err, n)
		}
	})
}

func TestRecordFillsTimeAndRejectsBadEvents(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	before := time.Now()
	local := time.Date(2025, 1, 1, 10, 0, 0, 0, time.FixedZone("X", 3600))
	for _, ev := range []steward.AuditEvent{
		{Actor: "a", Action: "auth.login", Outcome: "success"},
		{Time: local, Actor: "b", Action: "auth.login", Outcome: "success"},
	} {
		if err := l.Record(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	bad := []struct {
		name string
		ev   steward.AuditEvent
		kind steward.ErrorKind
	}{
		{"no action", steward.AuditEvent{Actor: "a"}, steward.EInvalid},
		{"unencodable", steward.AuditEvent{Action: "x", Details: map[string]any{"c": make(chan int)}}, steward.EInvalid},
		{"too large", steward.AuditEvent{Action: "x", Reason: strings.Repeat("x", MaxEventBytes)}, steward.ETooLarge},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if err := l.Record(context.Background(), tt.ev); steward.KindOf(err) != tt.kind {
				t.Fatalf("err = %v, want kind %s", err, tt.kind)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Record(ctx, event(1)); err == nil {
		t.Fatal("Record with a cancelled context succeeded")
	}
	l.Close()
	recs := queryAll(t, dir, Filter{})
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	if recs[0].Time.Location() != time.UTC || recs[0].Time.Before(before.Add(-time.Second)) {
		t.Fatalf("filled time = %v", recs[0].Time)
	}
	if !recs[1].Time.Equal(local) || recs[1].Time.Location() != time.UTC {
		t.Fatalf("time = %v, want %v in UTC", recs[1].Time, local)
	}
	mustVerify(t, dir)
}

func TestRolloverAndReopen(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{SegmentMaxBytes: 2000})
	recordN(t, l, 0, 50)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep := mustVerify(t, dir)
	if rep.Segments < 5 || rep.Records != 50 {
		t.Fatalf("report = %+v, want several segments", rep)
	}
	segs, _ := listSegments(dir)
	for _, s := range segs {
		st, _ := os.Stat(filepath.Join(dir, s.name))
		if st.Size() > 2000+600 {
			t.Errorf("%s is %d bytes", s.name, st.Size())
		}
	}

	// Reopen continues the chain in the newest segment, then rolls over.
	l = openLog(t, dir, Options{SegmentMaxBytes: 2000})
	if seq, _ := l.Head(); seq != 50 {
		t.Fatalf("Head after reopen = %d", seq)
	}
	recordN(t, l, 50, 80)
	l.Close()
	rep = mustVerify(t, dir)
	if rep.Records != 80 || rep.LastSeq != 80 {
		t.Fatalf("report = %+v", rep)
	}
	for i, r := range queryAll(t, dir, Filter{}) {
		if r.RequestID != event(i).RequestID {
			t.Fatalf("record %d is %s", r.Seq, r.RequestID)
		}
	}
}

func TestConcurrentRecords(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{SegmentMaxBytes: 64 << 10, MaxBatch: 64})
	const writers, each = 32, 100
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				ev := event(i)
				ev.RequestID = fmt.Sprintf("g%d-%d", g, i)
				if err := l.Record(context.Background(), ev); err != nil {
					t.Errorf("Record: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	st := l.Stats()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep := mustVerify(t, dir)
	if rep.Records != writers*each || st.Records != writers*each {
		t.Fatalf("report %+v, stats %+v", rep, st)
	}
	seen := map[string]bool{}
	next := map[int]int{}
	for i, r := range queryAll(t, dir, Filter{}) {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i+1, r.Seq)
		}
		seen[r.RequestID] = true
		// Each writer's records appear in the order it made them.
		var g, n int
		fmt.Sscanf(r.RequestID, "g%d-%d", &g, &n)
		if n != next[g] {
			t.Fatalf("writer %d: record %d after %d", g, n, next[g]-1)
		}
		next[g]++
	}
	if len(seen) != writers*each {
		t.Fatalf("%d distinct records, want %d", len(seen), writers*each)
	}
}

func TestFailClosed(t *testing.T) {
	injected := errors.New("disk on fire")
	tests := []struct {
		name string
		opts func(fail func() bool) Options
	}{
		{"fsync fails", func(fail func() bool) Options {
			return Options{syncFn: func(f *os.File) error {
				if fail() {
					return injected
				}
				return f.Sync()
			}}
		}},
		{"write fails", func(fail func() bool) Options {
			return Options{writeFn: func(f *os.File, b []byte, off int64) (int, error) {
				if fail() {
					n, _ := f.WriteAt(b[:len(b)/2], off) // a partial write
					return n, injected
				}
				return f.WriteAt(b, off)
			}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var mu sync.Mutex
			failing := false
			l, err := Open(dir, tt.opts(func() bool { mu.Lock(); defer mu.Unlock(); return failing }), nil)
			if err != nil {
				t.Fatal(err)
			}
			recordN(t, l, 0, 5)
			mu.Lock()
			failing = true
			mu.Unlock()
			err = l.Record(context.Background(), event(5))
			if steward.KindOf(err) != steward.EUnavailable || !errors.Is(err, injected) {
				t.Fatalf("Record during failure = %v", err)
			}
			mu.Lock()
			failing = false // the disk recovers, but the log must not
			mu.Unlock()
			for i := range 3 {
				if err := l.Record(context.Background(), event(6+i)); steward.KindOf(err) != steward.EUnavailable {
					t.Fatalf("Record after failure = %v", err)
				}
			}
			if err := l.Close(); err == nil {
				t.Fatal("Close after a failure reported success")
			}
			// The acknowledged records are intact and the trail reopens.
			l = openLog(t, dir, Options{})
			recordN(t, l, 10, 12)
			l.Close()
			rep := mustVerify(t, dir)
			recs := queryAll(t, dir, Filter{Action: "audit.*"})
			if rep.Records < 7 || rep.Records > 9 {
				t.Fatalf("%d records after failure and reopen (recover events: %d)", rep.Records, len(recs))
			}
		})
	}
}

func TestFailClosedWakesAllWaiters(t *testing.T) {
	dir := t.TempDir()
	release := make(chan struct{})
	injected := errors.New("injected")
	first := true
	var mu sync.Mutex
	l, err := Open(dir, Options{syncFn: func(*os.File) error {
		mu.Lock()
		f := first
		first = false
		mu.Unlock()
		if f {
			<-release // hold the first commit so that others queue up
		}
		return injected
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const n = 20
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- l.Record(context.Background(), event(i)) }()
	}
	close(release)
	for range n {
		if err := <-errs; steward.KindOf(err) != steward.EUnavailable {
			t.Fatalf("Record = %v, want EUnavailable", err)
		}
	}
}

func TestCloseAndLock(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	if _, err := Open(dir, Options{}, nil); steward.KindOf(err) != steward.EConflict {
		t.Fatalf("second Open = %v, want EConflict", err)
	}
	recordN(t, l, 0, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if err := l.Record(context.Background(), event(3)); steward.KindOf(err) != steward.EUnavailable {
		t.Fatalf("Record after Close = %v", err)
	}
	l2 := openLog(t, dir, Options{})
	if seq, _ := l2.Head(); seq != 3 {
		t.Fatalf("Head = %d", seq)
	}
}

func TestVerifyEmptyAndMissing(t *testing.T) {
	dir := t.TempDir()
	if _, err := Verify(filepath.Join(dir, "nope")); steward.KindOf(err) != steward.ENotFound {
		t.Fatalf("Verify of a missing dir = %v", err)
	}
	l := openLog(t, dir, Options{})
	l.Close()
	rep := mustVerify(t, dir)
	if rep.Records != 0 || rep.Segments != 0 {
		t.Fatalf("report %+v", rep)
	}
}
