// Package s3upstream gives tests a real, independent S3 server to forward
// to: versitygw (github.com/versity/versitygw) with its posix backend, on
// loopback, in a temporary directory.
//
// The versitygw binary is built once per machine with `go install` from
// the Go module proxy into a cache directory ($STEWARD_TEST_BIN_DIR, else
// os.UserCacheDir()/steward/test-bin, else /tmp/steward-test-bin) and
// reused by every later run; concurrent test binaries wait on a lock file
// while one builds. The first build takes minutes on a small machine
// (about 7 minutes of wall time, 3 of CPU, with module downloads, on the
// 2-core development machine under load); Main does it before m.Run so
// that it does not count against go test's -timeout. If it fails, the
// test fails with the build output: forward mode is never silently
// untested.
//
// One server is started per test binary, on first use. Use it from the
// package's TestMain so that the server stops when the tests end:
//
//	func TestMain(m *testing.M) { s3upstream.Main(m) }
//
//	func TestX(t *testing.T) {
//		endpoint, access, secret := s3upstream.Start(t)
//		...
//	}
package s3upstream

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Module and Version name the versitygw release the tests run against: the
// newest that builds with the repository's Go toolchain.
const (
	Module  = "github.com/versity/versitygw"
	Version = "v1.8.0"
)

// EnvBinDir overrides the directory the versitygw binary is cached in.
const EnvBinDir = "STEWARD_TEST_BIN_DIR"

type server struct {
	endpoint, access, secret string
	dir                      string
	cmd                      *exec.Cmd
	exited                   chan struct{}
	log                      *bytes.Buffer
	err                      error
}

var (
	once sync.Once
	srv  *server
)

// Start returns the endpoint (http://127.0.0.1:PORT) and root credentials
// of the test's versitygw, building and starting it on first use. It fails
// tb if versitygw cannot be built or started.
func Start(tb testing.TB) (endpoint, accessKey, secretKey string) {
	tb.Helper()
	once.Do(func() { srv = start() })
	if srv.err != nil {
		tb.Fatalf("s3upstream: %v", srv.err)
	}
	select {
	case <-srv.exited:
		tb.Fatalf("s3upstream: versitygw exited: %s", srv.log.String())
	default:
	}
	return srv.endpoint, srv.access, srv.secret
}

// Main builds versitygw if it is not cached yet, runs the tests and then
// stops the server. The build happens before m.Run, so that its minutes on
// a fresh machine do not count against go test's -timeout (whose alarm
// m.Run starts); a build error fails the first test that calls Start.
func Main(m *testing.M) {
	if _, err := Binary(); err != nil {
		once.Do(func() { srv = &server{err: err} })
	}
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop kills the server started by Start and removes its directory.
func Stop() {
	s := srv
	if s == nil || s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	os.RemoveAll(s.dir)
}

// BinDir is where the versitygw binary is cached.
func BinDir() string {
	if d := os.Getenv(EnvBinDir); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "steward", "test-bin")
	}
	return filepath.Join(os.TempDir(), "steward-test-bin")
}

// Binary returns the path of the versitygw binary, building it first if
// it is not cached yet.
func Binary() (string, error) {
	return build(filepath.Join(BinDir(), "versitygw-"+Version), Version)
}

// build returns dir/versitygw, installing version of versitygw there first
// if it is missing; env is added to the go command's environment.
func build(dir, version string, env ...string) (string, error) {
	bin := filepath.Join(dir, "versitygw")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // another test binary built it while we waited
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "install", Module+"/cmd/versitygw@"+version)
	cmd.Dir = tmp // outside any module: `go install pkg@version` ignores ours
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOTOOLCHAIN=local", "GOFLAGS=-buildvcs=false", "CGO_ENABLED=0", "GOWORK=off")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building versitygw %s with `go install` failed (it needs the Go module proxy): %v\n%s", version, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "versitygw"), bin); err != nil {
		return "", err
	}
	return bin, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func start() *server {
	bin, err := Binary()
	if err != nil {
		return &server{err: err}
	}
	dir, err := os.MkdirTemp("", "s3upstream-")
	if err != nil {
		return &server{err: err}
	}
	for _, d := range []string{"data", "versions"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			return &server{err: err}
		}
	}
	var last error
	for range 5 { // a free port can be taken between probe and bind
		s, err := launch(bin, dir)
		if err == nil {
			return s
		}
		last = err
	}
	os.RemoveAll(dir)
	return &server{err: last}
}

func launch(bin, dir string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &server{
		endpoint: fmt.Sprintf("http://127.0.0.1:%d", port),
		access:   "steward-" + randomHex(6),
		secret:   randomHex(20),
		dir:      dir,
		exited:   make(chan struct{}),
		log:      &bytes.Buffer{},
	}
	s.cmd = exec.Command(bin,
		"--port", fmt.Sprintf("127.0.0.1:%d", port),
		"--health", "/health",
		"--quiet",
		// Without it versitygw answers every request with Connection:
		// close, and each upstream call pays a new TCP connection.
		"--keep-alive",
		"posix", "--versioning-dir", filepath.Join(dir, "versions"), filepath.Join(dir, "data"))
	// Credentials through the environment, not argv (ps shows argv).
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.access, "ROOT_SECRET_KEY="+s.secret)
	s.cmd.Dir = dir
	s.cmd.Stdout = &syncWriter{w: s.log}
	s.cmd.Stderr = s.cmd.Stdout
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.endpoint + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("versitygw exited at start: %s", s.log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.cmd.Process.Kill()
			<-s.exited
			return nil, errors.New("versitygw did not become ready in 30s: " + s.log.String())
		}
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
