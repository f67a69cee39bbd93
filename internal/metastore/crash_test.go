package metastore_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/metastore"
)

// The crash test re-executes the test binary as a writer; TestMain runs
// crashChild instead of the tests when these are set.
const (
	envCrashDB    = "STEWARD_METASTORE_CRASH_DB"
	envCrashFirst = "STEWARD_METASTORE_CRASH_FIRST"
	envCrashPause = "STEWARD_METASTORE_CRASH_PAUSE" // "N:J": stop inside round N's transaction after row J
	crashBatch    = 4                               // users per multi-row transaction
)

var crashPadding = strings.Repeat("p", 3000) // rows span pages

// crashChild writes until it is killed: in each round one transaction of
// crashBatch users inserted by hand, then one CreateUser. It prints "row N
// J" after each row of the transaction and "committed N" after each round;
// at the pause point it prints "paused" and blocks with the transaction
// open. It returns false when not running as the child.
func crashChild() bool {
	path := os.Getenv(envCrashDB)
	if path == "" {
		return false
	}
	first, _ := strconv.Atoi(os.Getenv(envCrashFirst))
	pause := os.Getenv(envCrashPause)
	ctx := context.Background()
	s, err := metastore.Open(ctx, "sqlite:"+path, "")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for i := first; ; i++ {
		err := s.InTx(ctx, func(tx *metastore.Tx) error {
			for j := range crashBatch {
				name := fmt.Sprintf("b%d-%d", i, j)
				if _, err := tx.Exec(ctx, `INSERT INTO principals (name, kind) VALUES (?, 'user')`, name); err != nil {
					return err
				}
				ts := metastore.TimeValue(tx.Dialect(), time.Now())
				if _, err := tx.Exec(ctx, `INSERT INTO users (username, email, display_name, roles, disabled, password_hash, created_at, updated_at)
					VALUES (?, ?, ?, '["r"]', 0, ?, ?, ?)`, name, name+"@example.com", crashPadding, "hash-"+name, ts, ts); err != nil {
					return err
				}
				fmt.Printf("row %d %d\n", i, j)
				if pause == fmt.Sprintf("%d:%d", i, j) {
					fmt.Println("paused")
					os.Stdin.Read(make([]byte, 1)) // the parent never writes: wait to be killed
				}
			}
			return nil
		})
		if err == nil {
			name := fmt.Sprintf("s%d", i)
			err = s.CreateUser(ctx, &steward.User{Username: name, Email: name + "@example.com", DisplayName: crashPadding}, "hash-"+name)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Printf("committed %d\n", i)
	}
}

// TestSQLiteCrashConsistency SIGKILLs a writer three times: once while it
// holds a transaction open half-way through, twice at whatever point it has
// reached when the parent reads a randomly chosen progress line. After each
// kill the database must be intact, hold every round the child reported
// committed, and show no part of an unfinished transaction.
func TestSQLiteCrashConsistency(t *testing.T) {
	path := filepath.Join(t.TempDir(), "steward.db")
	committed := map[int]bool{}
	for round := range 3 {
		first := round * 1_000_000
		env := append(os.Environ(), envCrashDB+"="+path, envCrashFirst+"="+strconv.Itoa(first))
		stopAt := func(line string) bool { return line == "paused" }
		if round == 0 {
			env = append(env, fmt.Sprintf("%s=%d:%d", envCrashPause, first+10, crashBatch/2))
		} else {
			lines := 20 + rand.IntN(200) // of "row" and "committed" lines
			stopAt = func(string) bool { lines--; return lines == 0 }
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = env
		stdin, err := cmd.StdinPipe() // kept open and silent: a paused child waits on it
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		stopped := false
		for !stopped && sc.Scan() {
			line := sc.Text()
			if n, ok := strings.CutPrefix(line, "committed "); ok {
				i, err := strconv.Atoi(n)
				if err != nil {
					t.Fatalf("child said %q", line)
				}
				committed[i] = true
			}
			stopped = stopAt(line)
		}
		// The child is somewhere in its next statements, or paused.
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		stdin.Close()
		if !stopped {
			t.Fatalf("round %d: child ended before it was killed: %s", round, stderr.String())
		}
		checkCrashDB(t, path, committed)
	}
}

func checkCrashDB(t *testing.T, path string, committed map[int]bool) {
	t.Helper()
	ctx := context.Background()
	s, err := metastore.Open(ctx, "sqlite:"+path, "")
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	defer s.Close()

	var res string
	if err := s.QueryRow(ctx, `PRAGMA integrity_check`).Scan(&res); err != nil || res != "ok" {
		t.Fatalf("integrity_check = %q, %v", res, err)
	}
	rows, err := s.Query(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		t.Fatal(err)
	}
	if rows.Next() {
		t.Fatal("foreign_key_check reports violations")
	}
	rows.Close()
	var orphans int
	if err := s.QueryRow(ctx, `SELECT COUNT(*) FROM principals p WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.username = p.name)`).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	if orphans != 0 {
		t.Fatalf("%d principals without their user row: a partial CreateUser is visible", orphans)
	}

	users, err := s.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	batches := map[int]int{}
	singles := map[int]bool{}
	for _, u := range users {
		if u.Email != u.Username+"@example.com" || u.DisplayName != crashPadding || u.CreatedAt.IsZero() {
			t.Fatalf("user %s incomplete: email %q, display name of %d bytes, created %v", u.Username, u.Email, len(u.DisplayName), u.CreatedAt)
		}
		h, err := s.PasswordHash(ctx, u.Username)
		if err != nil || h != "hash-"+u.Username {
			t.Fatalf("user %s password hash %q, %v", u.Username, h, err)
		}
		var i, j int
		switch {
		case strings.HasPrefix(u.Username, "b"):
			if _, err := fmt.Sscanf(u.Username, "b%d-%d", &i, &j); err != nil {
				t.Fatalf("unexpected user %s", u.Username)
			}
			batches[i]++
		case strings.HasPrefix(u.Username, "s"):
			if _, err := fmt.Sscanf(u.Username, "s%d", &i); err != nil {
				t.Fatalf("unexpected user %s", u.Username)
			}
			singles[i] = true
		}
	}
	for i, n := range batches {
		if n != crashBatch {
			t.Fatalf("transaction %d is partly visible: %d of %d users", i, n, crashBatch)
		}
	}
	for i := range committed {
		if batches[i] != crashBatch || !singles[i] {
			t.Fatalf("round %d was reported committed but is missing after the crash", i)
		}
	}
	for i := range singles {
		if batches[i] != crashBatch {
			t.Fatalf("user s%d exists without the transaction before it", i)
		}
	}
}
