// Package pgtest gives tests a fresh database on a real PostgreSQL server.
//
// The server is started once per test binary from the PostgreSQL binaries
// installed under /usr/lib/postgresql/<version>/bin (the newest version),
// in a temporary directory, listening only on 127.0.0.1 on a free port,
// with fsync off. Each Start call creates its own database and drops it
// when the test ends. When STEWARD_TEST_POSTGRES_DSN is set (a postgres://
// URL of a role allowed to CREATE DATABASE), that server is used instead.
//
// Use it from a package's TestMain so that the server stops when the tests
// end:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestX(t *testing.T) {
//		dsn := pgtest.Start(t) // postgres://...
//		...
//	}
//
// PostgreSQL refuses to run as root. When the tests run as root the server
// and initdb run as the "postgres" system user (or "nobody" if there is
// none), by setting the child's credentials directly; the temporary
// directory is made under a world-traversable directory and chowned to
// that user.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// EnvDSN names the environment variable that points the tests at an
// existing PostgreSQL server instead of starting one.
const EnvDSN = "STEWARD_TEST_POSTGRES_DSN"

type server struct {
	admin    *url.URL // DSN of the maintenance database
	db       *sql.DB  // connection to it, for CREATE/DROP DATABASE
	dir      string   // temp dir we own, "" for an external server
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the postmaster exits
	startErr error
}

var (
	mu   sync.Mutex
	srv  *server
	seq  int
	once sync.Once
)

// Start returns the DSN (a postgres:// URL) of a new, empty database on the
// test PostgreSQL server, starting the server on first use. The database is
// dropped when tb's test ends, forcibly closing connections still open. If
// PostgreSQL is not installed, Start fails the test: run `make test`, which
// installs it, or set STEWARD_TEST_POSTGRES_DSN.
func Start(tb testing.TB) string {
	tb.Helper()
	s, err := get()
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	mu.Lock()
	seq++
	name := fmt.Sprintf("test_%d_%d_%s", os.Getpid(), seq, randHex(4))
	mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, `CREATE DATABASE `+quoteIdent(name)); err != nil {
		tb.Fatalf("pgtest: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := s.db.ExecContext(ctx, `DROP DATABASE IF EXISTS `+quoteIdent(name)+` WITH (FORCE)`); err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u := *s.admin
	u.Path = "/" + name
	return u.String()
}

// Main runs the tests of m, then stops the server Start started (if any)
// and removes its directory, and exits with the tests' status. Call it from
// TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if err := Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// Stop stops the server started by Start and removes its directory. Main
// calls it; call it yourself only if you do not use Main. A server not
// stopped is still killed when the test binary exits, but its directory is
// left behind.
func Stop() error {
	mu.Lock()
	s := srv
	mu.Unlock()
	if s == nil || s.startErr != nil {
		return nil
	}
	if s.db != nil {
		s.db.Close()
	}
	if s.cmd == nil {
		return nil
	}
	var err error
	// SIGINT is PostgreSQL's fast shutdown: abort sessions, checkpoint, exit.
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		err = errors.New("server did not stop in 30s; killed it")
	}
	if rerr := os.RemoveAll(s.dir); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

func get() (*server, error) {
	once.Do(func() {
		s, err := start()
		if err != nil {
			s = &server{startErr: err}
		}
		mu.Lock()
		srv = s
		mu.Unlock()
	})
	mu.Lock()
	defer mu.Unlock()
	return srv, srv.startErr
}

func start() (*server, error) {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		u, err := url.Parse(dsn)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return nil, fmt.Errorf("%s must be a postgres:// URL", EnvDSN)
		}
		s := &server{admin: u}
		if err := s.connect(30 * time.Second); err != nil {
			return nil, fmt.Errorf("connect to %s: %w", EnvDSN, err)
		}
		return s, nil
	}
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // the free port may be taken before the server binds it
		s, err := startLocal(bin)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// installRoot is where Debian and Ubuntu install PostgreSQL versions.
var installRoot = "/usr/lib/postgresql"

// findBin returns the bin directory of the newest PostgreSQL installed
// under /usr/lib/postgresql.
func findBin() (string, error) {
	dirs, _ := filepath.Glob(filepath.Join(installRoot, "*", "bin"))
	var ok []string
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			ok = append(ok, d)
		}
	}
	if len(ok) == 0 {
		return "", fmt.Errorf("PostgreSQL server binaries (initdb, postgres) not found under %s/*/bin: "+
			"run `make test`, which installs postgresql, or set %s to a postgres:// URL", installRoot, EnvDSN)
	}
	sort.Slice(ok, func(i, j int) bool { return version(ok[i]) < version(ok[j]) })
	return ok[len(ok)-1], nil
}

func version(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// runAs returns the credential to run PostgreSQL with: nil unless we are
// root, in which case the postgres (or nobody) system user.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
	}
	return nil, errors.New("running as root and there is no postgres or nobody user to run PostgreSQL as")
}

// tempBase returns a directory for the server's files that cred's user can
// reach: os.TempDir() if every ancestor is world-searchable, else /tmp.
func tempBase(cred *syscall.Credential) string {
	base := os.TempDir()
	if cred == nil {
		return base
	}
	for d := base; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return "/tmp"
		}
		if d == filepath.Dir(d) {
			return base
		}
	}
}

func startLocal(bin string) (s *server, err error) {
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	removeStale(tempBase(cred))
	dir, err := os.MkdirTemp(tempBase(cred), dirPrefix)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	logPath := filepath.Join(dir, "postgres.log")

	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.Dir = dir
	initdb.Env = childEnv()
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}

	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	if cred != nil {
		os.Chown(logPath, int(cred.Uid), int(cred.Gid))
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-k", dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=32MB",
		"-c", "listen_addresses=127.0.0.1", "-c", "log_min_messages=warning",
		// Containers often have a tiny /dev/shm: keep dynamic shared
		// memory in the data dir and run no parallel workers.
		"-c", "dynamic_shared_memory_type=mmap", "-c", "max_parallel_workers_per_gather=0")
	cmd.Dir = dir
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Pdeathsig stops the server if the test binary dies without calling
	// Stop. It is delivered when the starting OS thread exits, so the
	// server is started from a goroutine locked to its thread that lives
	// until the server exits.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGINT, Setpgid: true}
	s = &server{
		dir:    dir,
		cmd:    cmd,
		exited: make(chan struct{}),
		admin:  &url.URL{Scheme: "postgres", User: url.User("postgres"), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Path: "/postgres", RawQuery: "sslmode=disable"},
	}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		err := cmd.Start()
		started <- err
		if err == nil {
			cmd.Wait()
		}
		close(s.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	if err := s.connect(60 * time.Second); err != nil {
		cmd.Process.Kill()
		<-s.exited
		log, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("postgres did not come up: %v\n%s", err, tail(log, 4000))
	}
	return s, nil
}

const dirPrefix = "steward-pgtest-"

// removeStale removes the directories of servers whose test binary was
// killed before it could call Stop (Pdeathsig stopped the server, nothing
// removed its files): those whose postmaster is gone, and those an hour old
// that never got one. A directory of another binary's live or starting
// server is left alone.
func removeStale(base string) {
	dirs, _ := filepath.Glob(filepath.Join(base, dirPrefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid"))
		if err != nil {
			if fi, err := os.Stat(d); err == nil && time.Since(fi.ModTime()) > time.Hour {
				os.RemoveAll(d)
			}
			continue
		}
		first, _, _ := strings.Cut(string(b), "\n")
		pid, err := strconv.Atoi(strings.TrimSpace(first))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(d)
		}
	}
}

// connect waits until the admin database accepts connections.
func (s *server) connect(wait time.Duration) error {
	db, err := sql.Open("pgx", s.admin.String())
	if err != nil {
		return err
	}
	deadline := time.Now().Add(wait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			s.db = db
			return nil
		}
		if s.exited != nil {
			select {
			case <-s.exited:
				db.Close()
				return fmt.Errorf("server exited: %w", err)
			default:
			}
		}
		if time.Now().After(deadline) {
			db.Close()
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func childEnv() []string {
	env := []string{"LC_ALL=C", "LANG=C", "TZ=UTC"}
	if p := os.Getenv("PATH"); p != "" {
		env = append(env, "PATH="+p)
	}
	return env
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
