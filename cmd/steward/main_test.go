package main_test

// End-to-end tests of the real binary: signals, bad settings, unclean stops.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/testutil/s3upstream"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "steward-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "steward")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	// Forward mode's upstream (versitygw) is built before m.Run so that a
	// first build on a fresh machine does not count against -timeout.
	if _, err := s3upstream.Binary(); err != nil {
		fmt.Fprintf(os.Stderr, "versitygw build: %v\n", err)
	}
	code := m.Run()
	s3upstream.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type proc struct {
	cmd    *exec.Cmd
	url    string
	s3URL  string
	stdout *syncBuffer
	stderr *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serve starts `steward serve --demo` and waits until it is ready.
func serve(t *testing.T, dataDir string, extra ...string) *proc {
	t.Helper()
	addr, s3addr := freePort(t), freePort(t)
	args := append([]string{"serve", "--demo", "--demo-password", "correct-horse-battery", "--demo-rows", "10000", "--data-dir", dataDir, "--http-addr", addr, "--s3-addr", s3addr, "--shutdown-grace", "10s"}, extra...)
	p := &proc{cmd: exec.Command(binary, args...), url: "http://" + addr, s3URL: "http://" + s3addr, stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("steward did not become ready\nstderr: %s", p.stderr.String())
	return nil
}

func run(t *testing.T, stdin string, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func passwordToken(t *testing.T, p *proc, user string) string {
	t.Helper()
	resp, err := http.PostForm(p.url+"/oidc/oauth/token", url.Values{
		"grant_type": {"password"}, "client_id": {"steward-cli"}, "username": {user},
		"password": {"correct-horse-battery"}, "scope": {"openid"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("password grant: %d %s", resp.StatusCode, b)
	}
	i := bytes.Index(b, []byte(`"access_token":"`))
	rest := b[i+len(`"access_token":"`):]
	return string(rest[:bytes.IndexByte(rest, '"')])
}

func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	p := serve(t, t.TempDir())
	tok := passwordToken(t, p, "alice")
	// Keep requests in flight while SIGTERM arrives: each must complete.
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	stop := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", p.url+"/api/v1/whoami", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return // the listener is closed: no request was accepted and dropped
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("in-flight request got %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\nstderr: %s", err, p.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("steward did not stop after SIGTERM")
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s := p.stderr.String(); strings.Contains(s, "correct-horse-battery") || strings.Contains(s, tok) {
		t.Error("a secret reached the logs")
	}
}

func TestBadSettingsStopAtOnceNamingTheSetting(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o600)
	badYAML := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(badYAML, []byte("http_addr: [oops\n"), 0o600)
	unknown := filepath.Join(t.TempDir(), "unknown.yaml")
	os.WriteFile(unknown, []byte("http_adress: 127.0.0.1:1\n"), 0o600)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"port in use", []string{"--http-addr", busy.Addr().String()}, "http_addr"},
		{"unwritable data dir", []string{"--data-dir", filepath.Join(file, "sub")}, "data_dir"},
		{"invalid yaml", []string{"--config", badYAML}, "bad.yaml"},
		{"unknown key", []string{"--config", unknown}, "http_adress"},
		{"demo off loopback", []string{"--demo", "--http-addr", "0.0.0.0:0"}, "loopback"},
		{"bad log level", []string{"--log-level", "loud"}, "log_level"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--data-dir", t.TempDir()}, tc.args...)
			start := time.Now()
			out, code := run(t, "", nil, args...)
			if code == 0 || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, output %q lacks %q", code, out, tc.want)
			}
			_ = start
		})
	}
}

func TestKillLeavesAuditAndMetastoreConsistent(t *testing.T) {
	dir := t.TempDir()
	p := serve(t, dir)
	// Load: logins (audited) from several clients while we kill -9.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.PostForm(p.url+"/oidc/oauth/token", url.Values{
					"grant_type": {"password"}, "client_id": {"steward-cli"}, "username": {"bob"},
					"password": {"correct-horse-battery"}, "scope": {"openid"},
				})
				if err != nil {
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	close(stop)
	wg.Wait()

	out, code := run(t, "", nil, "audit", "verify", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("audit verify after kill -9: %d %s", code, out)
	}
	// It starts again on the same data, and the chain continues.
	p2 := serve(t, dir)
	passwordToken(t, p2, "alice")
	p2.cmd.Process.Signal(syscall.SIGTERM)
	p2.cmd.Wait()
	out, code = run(t, "", nil, "audit", "verify", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("audit verify after restart: %s", out)
	}
}

func TestEditingOneByteIsFoundByVerify(t *testing.T) {
	dir := t.TempDir()
	p := serve(t, dir)
	for _, u := range []string{"alice", "bob", "carol"} {
		passwordToken(t, p, u)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()
	segs, _ := filepath.Glob(filepath.Join(dir, "audit", "*.jsonl"))
	if len(segs) == 0 {
		t.Fatal("no audit segments")
	}
	b, _ := os.ReadFile(segs[0])
	// Change one byte inside the third record: "bob" -> "bop".
	lines := bytes.SplitAfter(b, []byte("\n"))
	target := -1
	for i, l := range lines {
		if bytes.Contains(l, []byte(`"bob"`)) {
			target = i
			break
		}
	}
	if target < 0 {
		t.Fatalf("no record of bob in %s", b)
	}
	lines[target] = bytes.Replace(lines[target], []byte(`"bob"`), []byte(`"bop"`), 1)
	os.WriteFile(segs[0], bytes.Join(lines, nil), 0o600)
	out, code := run(t, "", nil, "audit", "verify", "--data-dir", dir)
	if code == 0 {
		t.Fatalf("verify passed on an edited trail: %s", out)
	}
	if !strings.Contains(out, "edited") || !strings.Contains(out, fmt.Sprintf("line %d", target+1)) {
		t.Errorf("verify did not name the record: %s", out)
	}
}

func TestCLILoginWithRealBinary(t *testing.T) {
	p := serve(t, t.TempDir())
	home := t.TempDir()
	env := []string{"STEWARD_HOME=" + home}
	out, code := run(t, "correct-horse-battery\n", env, "login", "--server", p.url, "--username", "alice", "--password-stdin")
	if code != 0 {
		t.Fatalf("login: %s", out)
	}
	out, code = run(t, "", env, "whoami")
	if code != 0 || !strings.Contains(out, "alice") || !strings.Contains(out, "analysts") {
		t.Fatalf("whoami: %d %s", code, out)
	}
	sc := bufio.NewScanner(strings.NewReader(p.stdout.String()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "correct-horse-battery") {
			t.Error("a given demo password must not be echoed")
		}
	}
}

// TestDeviceFlowLogin logs in as a person would: `steward login` prints a
// URL and a code; the user opens the page, signs in and approves; the CLI
// then holds a token.
func TestDeviceFlowLogin(t *testing.T) {
	p := serve(t, t.TempDir())
	home := t.TempDir()
	cmd := exec.Command(binary, "login", "--server", p.url)
	cmd.Env = append(os.Environ(), "STEWARD_HOME="+home)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var verifyURL, code string
	sc := bufio.NewScanner(stderr)
	for (verifyURL == "" || code == "") && sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "open "); i >= 0 {
			verifyURL = strings.TrimSpace(line[i+len("open "):])
		}
		if i := strings.Index(line, "enter the code "); i >= 0 {
			code = strings.TrimSpace(line[i+len("enter the code "):])
		}
	}
	if verifyURL == "" || code == "" {
		t.Fatalf("login printed no URL and code")
	}
	go io.Copy(io.Discard, stderr)

	// The browser: GET the page (cookie + CSRF token), POST the form.
	jar := newJar()
	browser := &http.Client{Jar: jar}
	resp, err := browser.Get(verifyURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csrf := formValue(string(page), "csrf_token")
	if csrf == "" {
		t.Fatalf("no CSRF token in the device page: %s", page)
	}
	u, _ := url.Parse(verifyURL)
	resp, err = browser.PostForm(u.Scheme+"://"+u.Host+u.Path, url.Values{
		"csrf_token": {csrf}, "user_code": {code}, "username": {"bob"},
		"password": {"correct-horse-battery"}, "action": {"approve"},
	})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "signed in") {
		t.Fatalf("approve: %d %s", resp.StatusCode, body)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("login: %v, stdout %s", err, stdout.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("login did not finish after approval")
	}
	if !strings.Contains(stdout.String(), "as bob") {
		t.Errorf("login output: %s", stdout.String())
	}
	out, code2 := run(t, "", []string{"STEWARD_HOME=" + home}, "whoami")
	if code2 != 0 || !strings.Contains(out, "bob") || !strings.Contains(out, "mortgages") {
		t.Fatalf("whoami after device login: %s", out)
	}
}

func formValue(page, name string) string {
	i := strings.Index(page, `name="`+name+`" value="`)
	if i < 0 {
		return ""
	}
	rest := page[i+len(`name="`+name+`" value="`):]
	return rest[:strings.IndexByte(rest, '"')]
}

func newJar() http.CookieJar {
	j, _ := cookiejar.New(nil)
	return j
}
