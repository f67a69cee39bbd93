package fs_test

import (
	"bufio"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/objectstore"
	"github.com/stewardhq/steward/internal/objectstore/fs"
	"github.com/stewardhq/steward/internal/objectstore/storetest"
)

const (
	crashDirEnv   = "STEWARD_FS_CRASH_DIR"
	crashRoundEnv = "STEWARD_FS_CRASH_ROUND"
	crashBucket   = "crash"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		round, _ := strconv.Atoi(os.Getenv(crashRoundEnv))
		crashChild(dir, round)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashChild writes objects forever (until killed), printing "ACK key"
// after each write is acknowledged. Keys name their content:
// "p-<seed>-<size>" is Body(seed, size); "m-<seed>-<size>" is a multipart
// object of Body(seed, 5 MiB) then Body(seed+1, size); "hot" is
// overwritten with Body(seed, 64 KiB), acknowledged as "ACK hot <seed>".
func crashChild(dir string, round int) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(2)
	}
	s, err := fs.Open(dir, nil)
	if err != nil {
		fail(err)
	}
	if err := s.CreateBucket(ctx, crashBucket); err != nil && !strings.Contains(err.Error(), objectstore.CodeBucketExists) {
		fail(err)
	}
	rng := rand.New(rand.NewSource(int64(round)))
	for i := 0; ; i++ {
		seed := int64(round)<<32 | int64(i)<<1
		size := rng.Int63n(3 << 20)
		switch i % 4 {
		case 3:
			key := fmt.Sprintf("m-%d-%d", seed, size)
			u, err := s.CreateMultipart(ctx, crashBucket, key, objectstore.PutOptions{})
			if err != nil {
				fail(err)
			}
			p1, err := s.UploadPart(ctx, crashBucket, key, u.UploadID, 1, storetest.Body(seed, 5<<20), 5<<20, objectstore.PutOptions{})
			if err != nil {
				fail(err)
			}
			p2, err := s.UploadPart(ctx, crashBucket, key, u.UploadID, 2, storetest.Body(seed+1, size), size, objectstore.PutOptions{})
			if err != nil {
				fail(err)
			}
			if _, err := s.CompleteMultipart(ctx, crashBucket, key, u.UploadID, []objectstore.CompletePart{{Number: 1, ETag: p1.ETag}, {Number: 2, ETag: p2.ETag}}); err != nil {
				fail(err)
			}
			fmt.Printf("ACK %s\n", key)
		case 1:
			if _, err := s.Put(ctx, crashBucket, "hot", storetest.Body(seed, 64<<10), 64<<10, objectstore.PutOptions{}); err != nil {
				fail(err)
			}
			fmt.Printf("ACK hot %d\n", seed)
		default:
			key := fmt.Sprintf("p-%d-%d", seed, size)
			if _, err := s.Put(ctx, crashBucket, key, storetest.Body(seed, size), size, objectstore.PutOptions{}); err != nil {
				fail(err)
			}
			fmt.Printf("ACK %s\n", key)
		}
	}
}

// expectedMD5 is the MD5 hex of the content a crash-test key names.
func expectedMD5(t *testing.T, key string, hotSeed int64) string {
	t.Helper()
	h := md5.New()
	if key == "hot" {
		io.Copy(h, storetest.Body(hotSeed, 64<<10))
		return hex.EncodeToString(h.Sum(nil))
	}
	f := strings.Split(key, "-")
	if len(f) != 3 {
		t.Fatalf("unexpected key %q", key)
	}
	seed, _ := strconv.ParseInt(f[1], 10, 64)
	size, _ := strconv.ParseInt(f[2], 10, 64)
	if f[0] == "m" {
		io.Copy(h, io.MultiReader(storetest.Body(seed, 5<<20), storetest.Body(seed+1, size)))
	} else {
		io.Copy(h, storetest.Body(seed, size))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func readMD5(t *testing.T, s objectstore.Store, key string) (string, objectstore.ObjectInfo) {
	t.Helper()
	rc, info, err := s.Get(ctx, crashBucket, key, objectstore.GetOptions{})
	if err != nil {
		t.Fatalf("Get %q: %v", key, err)
	}
	defer rc.Close()
	h := md5.New()
	n, err := io.Copy(h, rc)
	if err != nil || n != info.Size {
		t.Fatalf("read %q: %d of %d bytes, %v", key, n, info.Size, err)
	}
	return hex.EncodeToString(h.Sum(nil)), info
}

// TestCrash SIGKILLs a child process that is writing objects and
// multipart uploads, reopens the store and checks that every acknowledged
// write is intact, nothing partial is visible and no debris is left.
func TestCrash(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	acked := map[string]bool{}
	var lastHot int64 = -1
	for round := 1; round <= 5; round++ {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashRoundEnv+"="+strconv.Itoa(round))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := 6 + rng.Intn(8)
		nextHot := int64(round)<<32 | 2 // the round's first "hot" write (i = 1)
		sc := bufio.NewScanner(out)
		n := 0
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 || f[0] != "ACK" {
				continue
			}
			if f[1] == "hot" {
				lastHot, _ = strconv.ParseInt(f[2], 10, 64)
				nextHot = lastHot + 4<<1 // the next "hot" write, i+4
			} else {
				acked[f[1]] = true
			}
			if n++; n == killAfter {
				// Let the next write get under way, then kill mid-flight.
				time.Sleep(time.Duration(rng.Intn(40)) * time.Millisecond)
				cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
		io.Copy(io.Discard, out)
		err = cmd.Wait()
		if n < killAfter {
			t.Fatalf("round %d: child exited after %d acks: %v", round, n, err)
		}

		s, err := fs.Open(dir, nil)
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		if ents, _ := os.ReadDir(filepath.Join(dir, "staging")); len(ents) != 0 {
			t.Fatalf("round %d: %d files left in staging", round, len(ents))
		}
		// Every visible object is whole; every acknowledged one is visible.
		res, err := s.List(ctx, crashBucket, objectstore.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, o := range res.Objects {
			seen[o.Key] = true
			got, info := readMD5(t, s, o.Key)
			if o.Key == "hot" {
				if got != expectedMD5(t, "hot", lastHot) && got != expectedMD5(t, "hot", nextHot) {
					t.Fatalf("round %d: hot holds neither the last acknowledged write nor the next one", round)
				}
				continue
			}
			if want := expectedMD5(t, o.Key, 0); got != want {
				t.Fatalf("round %d: %s is damaged: md5 %s want %s", round, o.Key, got, want)
			}
			if !strings.Contains(info.ETag, "-") && info.ETag != `"`+got+`"` {
				t.Fatalf("round %d: %s ETag %s does not match its body", round, o.Key, info.ETag)
			}
		}
		for k := range acked {
			if !seen[k] {
				t.Fatalf("round %d: acknowledged %s is missing", round, k)
			}
		}
		// No debris: every data file belongs to an object or a part.
		refs := 0 // empty parts have no file, objects up to InlineMax neither
		for _, o := range res.Objects {
			if o.Size > fs.InlineMax {
				refs++
			}
		}
		ups, err := s.ListUploads(ctx, crashBucket, objectstore.ListUploadsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range ups {
			parts, _, err := s.ListParts(ctx, crashBucket, u.Key, u.UploadID, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range parts {
				if p.Size > 0 {
					refs++
				}
			}
		}
		if files := dataFiles(t, dir); len(files) != refs {
			t.Fatalf("round %d: %d data files for %d objects and parts", round, len(files), refs)
		}
		for _, u := range ups {
			if err := s.AbortMultipart(ctx, crashBucket, u.Key, u.UploadID); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("round %d: %d acks, %d objects, %d interrupted uploads", round, n, len(res.Objects), len(ups))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
