// Command stewardbench measures Steward's S3 gateway side by side with peer
// S3 servers in one run, on loopback, with one Go client (aws-sdk-go-v2):
// 4 KiB PUT and GET operations per second at 16 clients, 32 MiB PUT and GET
// throughput at 4 clients, each for a fixed duration after a warm-up, and
// the peak resident memory of Steward while one large object streams
// through it (PUT as a multipart upload, GET as one stream; the client
// generates and checks the body, nothing is buffered on disk).
//
// Steward runs as `steward serve --demo` (authorization, audit and durable
// writes on, as always) and the client uses short-term credentials from
// its STS through `steward creds` as the demo administrator carol. Peers:
// versitygw with its posix backend and MinIO (single drive), each when
// its binary is given and exists.
//
// Forward mode is measured as a pair: versitygw (posix) directly, then
// Steward in forward mode in front of a second, fresh versitygw with the
// same settings, and the ratio forward/direct of every figure.
//
// Usage:
//
//	stewardbench -steward bin/steward [-servers steward,versitygw,minio,forward]
//		[-versitygw PATH] [-minio PATH] [-duration 10s] [-rss-size 10GiB]
//
// -minio defaults to the first of /tmp/steward-peers/bin/minio and
// /tmp/minio-build/bin/minio that exists (`go install
// github.com/minio/minio@...` with GOBIN set to either).
//
// The result is a Markdown table on standard output; progress goes to
// standard error.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

const (
	mib          = 1 << 20
	benchBucket  = "bench"
	demoPassword = "stewardbench-demo-password"
)

// Server names -servers selects.
const (
	srvSteward   = "steward"
	srvVersitygw = "versitygw"
	srvMinio     = "minio"
	srvForward   = "forward"
)

// minioCandidates are where -minio looks by default.
var minioCandidates = []string{"/tmp/steward-peers/bin/minio", "/tmp/minio-build/bin/minio"}

type options struct {
	steward, versitygw, minio  string
	servers                    map[string]bool
	keepAlive                  bool
	work                       string
	duration, warmup           time.Duration
	smallClients, largeClients int
	smallSize, largeSize       int64
	rssSize, rssPart           int64
}

func main() {
	var o options
	var small, large, rss, part, servers string
	flag.StringVar(&o.steward, "steward", "bin/steward", "steward binary")
	flag.StringVar(&servers, "servers", "steward,versitygw,minio,forward", "servers to measure, comma-separated: steward, versitygw, minio, forward (versitygw direct and Steward forwarding to a versitygw)")
	flag.StringVar(&o.versitygw, "versitygw", "/tmp/steward-peers/bin/versitygw", "versitygw binary (skipped if missing; empty to skip)")
	flag.BoolVar(&o.keepAlive, "versitygw-keep-alive", true, "run versitygw with --keep-alive (off by default in versitygw: every request on a new connection)")
	flag.StringVar(&o.minio, "minio", "auto", "minio binary (skipped if missing; empty to skip; auto: the first of "+strings.Join(minioCandidates, ", ")+" that exists)")
	flag.StringVar(&o.work, "work", "", "working directory for the servers' data (default: a new directory under /tmp, removed at the end)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured duration of each phase")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up before each measured phase")
	flag.IntVar(&o.smallClients, "small-clients", 16, "concurrent clients for small objects")
	flag.IntVar(&o.largeClients, "large-clients", 4, "concurrent clients for large objects")
	flag.StringVar(&small, "small-size", "4KiB", "small object size")
	flag.StringVar(&large, "large-size", "32MiB", "large object size")
	flag.StringVar(&rss, "rss-size", "10GiB", "size of the object streamed through Steward while its RSS is sampled (0 to skip)")
	flag.StringVar(&part, "rss-part", "256MiB", "part size of that object's multipart upload")
	flag.Parse()
	var err error
	if o.servers, err = parseServers(servers); err != nil {
		fatal(err)
	}
	if o.minio == "auto" {
		o.minio = firstExisting(minioCandidates)
	}
	for _, s := range []struct {
		in  string
		out *int64
	}{{small, &o.smallSize}, {large, &o.largeSize}, {rss, &o.rssSize}, {part, &o.rssPart}} {
		n, err := parseSize(s.in)
		if err != nil {
			fatal(err)
		}
		*s.out = n
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(context.Background(), o, log, os.Stdout); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "stewardbench:", err)
	os.Exit(1)
}

// parseServers parses the -servers list.
func parseServers(list string) (map[string]bool, error) {
	m := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		switch s = strings.TrimSpace(s); s {
		case srvSteward, srvVersitygw, srvMinio, srvForward:
			m[s] = true
		case "":
		default:
			return nil, fmt.Errorf("unknown server %q in -servers (steward, versitygw, minio, forward)", s)
		}
	}
	if len(m) == 0 {
		return nil, errors.New("-servers names no server")
	}
	return m, nil
}

// firstExisting returns the first of paths that exists, else the first.
func firstExisting(paths []string) string {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return paths[0]
}

// parseSize parses 4096, 4KiB, 32MiB, 10GiB.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// server is one S3 server under test.
type server struct {
	name     string
	endpoint string
	creds    aws.Credentials
	cmd      *exec.Cmd
	note     string
	// upstream is the server a forwarding server sends to; its CPU time
	// counts with the forwarder's.
	upstream *server
}

// pids are the processes whose CPU time a phase charges to srv.
func (s *server) pids() []int {
	var p []int
	for ; s != nil; s = s.upstream {
		if s.cmd != nil && s.cmd.Process != nil {
			p = append(p, s.cmd.Process.Pid)
		}
	}
	return p
}

func (s *server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			s.cmd.Process.Kill()
			<-done
		}
	}
}

type result struct {
	name               string
	note               string
	upstream           bool // the server forwards to another
	smallPut, smallGet phase
	largePut, largeGet phase
}

type phase struct {
	ops   int64
	bytes int64
	d     time.Duration
	p50   time.Duration
	p99   time.Duration
	errs  int64
	// cpu is the servers' CPU time (user+system) during the measured
	// window; cpuOwn is the first server's alone.
	cpu, cpuOwn time.Duration
}

// cpuPerOp is the servers' CPU time per operation in microseconds.
func (p phase) cpuPerOp() float64 {
	if p.ops == 0 {
		return 0
	}
	return float64(p.cpu) / float64(time.Microsecond) / float64(p.ops)
}

func (p phase) opsPerSec() float64 { return float64(p.ops) / p.d.Seconds() }
func (p phase) mibPerSec() float64 { return float64(p.bytes) / mib / p.d.Seconds() }

func run(ctx context.Context, o options, log *slog.Logger, out io.Writer) error {
	work := o.work
	if work == "" {
		d, err := os.MkdirTemp("/tmp", "stewardbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		work = d
	}
	type starter struct {
		name  string
		bin   string
		start func(context.Context, string, string) (*server, error)
	}
	var starters []starter
	if o.servers[srvSteward] {
		starters = append(starters, starter{"Steward", o.steward, func(ctx context.Context, bin, dir string) (*server, error) {
			return startSteward(ctx, bin, dir)
		}})
	}
	for _, p := range []struct {
		key string
		starter
	}{{srvVersitygw, starter{"versitygw (posix)", o.versitygw, func(ctx context.Context, bin, dir string) (*server, error) {
		return startVersitygw(ctx, bin, dir, o.keepAlive)
	}}}, {srvMinio, starter{"MinIO (single drive)", o.minio, startMinio}}} {
		if !o.servers[p.key] || p.bin == "" {
			continue
		}
		if _, err := os.Stat(p.bin); err != nil {
			log.Warn("peer skipped: binary missing", "peer", p.name, "bin", p.bin)
			continue
		}
		starters = append(starters, p.starter)
	}
	var results, forward []result
	var rssLines []string
	for _, st := range starters {
		dir := filepath.Join(work, strings.Fields(st.name)[0])
		log.Info("starting", "server", st.name)
		srv, err := st.start(ctx, st.bin, dir)
		if err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
		srv.name = st.name
		r, line, err := measureAndCheck(ctx, o, srv, st.name == "Steward", log)
		srv.stop()
		os.RemoveAll(dir)
		if err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
		results = append(results, r)
		if line != "" {
			rssLines = append(rssLines, line)
		}
	}
	if o.servers[srvForward] {
		var line string
		var err error
		forward, line, err = forwardPair(ctx, o, work, log)
		if err != nil {
			return err
		}
		if line != "" {
			rssLines = append(rssLines, line)
		}
	}
	fmt.Fprintf(out, "%s objects at %d clients and %s objects at %d clients, %s measured after %s warm-up per phase; %s, %d CPUs, %s.\n",
		sizeName(o.smallSize), o.smallClients, sizeName(o.largeSize), o.largeClients, o.duration, o.warmup,
		runtime.Version(), runtime.NumCPU(), time.Now().UTC().Format("2006-01-02"))
	if len(results) > 0 {
		fmt.Fprintln(out)
		table(out, o, results, false)
		fmt.Fprintln(out, "\nServer CPU time (user+system) per operation in the measured window:")
		fmt.Fprintln(out)
		cpuTable(out, o, results, false)
	}
	if len(forward) == 2 {
		fmt.Fprintln(out, "\nForward mode: versitygw (posix) directly, and Steward in forward mode in front of a second versitygw with the same settings.")
		fmt.Fprintln(out)
		table(out, o, forward, true)
		fmt.Fprintln(out, "\nServer CPU time (user+system) per operation in the measured window; forward mode: Steward and its upstream together (Steward alone):")
		fmt.Fprintln(out)
		cpuTable(out, o, forward, true)
	}
	for _, r := range slices.Concat(results, forward) {
		for _, p := range []struct {
			n string
			p phase
		}{{"small PUT", r.smallPut}, {"small GET", r.smallGet}, {"large PUT", r.largePut}, {"large GET", r.largeGet}} {
			if p.p.errs > 0 {
				fmt.Fprintf(out, "\n%s %s: %d failed requests (not counted)", r.name, p.n, p.p.errs)
			}
		}
	}
	for _, l := range rssLines {
		fmt.Fprintf(out, "\n%s\n", l)
	}
	return nil
}

// measureAndCheck measures srv and, for a Steward, streams the RSS
// check's large object through it.
func measureAndCheck(ctx context.Context, o options, srv *server, isSteward bool, log *slog.Logger) (result, string, error) {
	r, err := measure(ctx, o, srv, log)
	if err != nil || !isSteward || o.rssSize <= 0 {
		return r, "", err
	}
	line, err := rssCheck(ctx, o, srv, log)
	return r, line, err
}

// forwardPair measures versitygw directly, then Steward in forward mode
// in front of a fresh versitygw started the same way, one after the
// other so that both see the same machine.
func forwardPair(ctx context.Context, o options, work string, log *slog.Logger) ([]result, string, error) {
	if o.versitygw == "" {
		return nil, "", errors.New("forward mode needs -versitygw")
	}
	if _, err := os.Stat(o.versitygw); err != nil {
		return nil, "", fmt.Errorf("forward mode needs the versitygw binary: %w", err)
	}
	directDir, upDir, stewardDir := filepath.Join(work, "fwd-direct"), filepath.Join(work, "fwd-upstream"), filepath.Join(work, "fwd-steward")
	defer func() {
		for _, d := range []string{directDir, upDir, stewardDir} {
			os.RemoveAll(d)
		}
	}()

	log.Info("starting", "server", "versitygw, direct")
	direct, err := startVersitygw(ctx, o.versitygw, directDir, o.keepAlive)
	if err != nil {
		return nil, "", fmt.Errorf("versitygw (direct): %w", err)
	}
	direct.name = "versitygw (posix), direct"
	rd, err := measure(ctx, o, direct, log)
	direct.stop()
	if err != nil {
		return nil, "", fmt.Errorf("versitygw (direct): %w", err)
	}

	log.Info("starting", "server", "versitygw, upstream of Steward")
	up, err := startVersitygw(ctx, o.versitygw, upDir, o.keepAlive)
	if err != nil {
		return nil, "", fmt.Errorf("versitygw (upstream): %w", err)
	}
	defer up.stop()
	log.Info("starting", "server", "Steward, forward mode")
	fwd, err := startSteward(ctx, o.steward, stewardDir, forwardArgs(up)...)
	if err != nil {
		return nil, "", fmt.Errorf("Steward (forward): %w", err)
	}
	fwd.name = "Steward forward mode → versitygw (posix)"
	fwd.upstream = up
	rf, line, err := measureAndCheck(ctx, o, fwd, true, log)
	fwd.stop()
	if err != nil {
		return nil, "", fmt.Errorf("Steward (forward): %w", err)
	}
	return []result{rd, rf}, line, nil
}

// forwardArgs are the `steward serve` flags that forward to up.
func forwardArgs(up *server) []string {
	return []string{"--objects-upstream-endpoint", up.endpoint, "--objects-upstream-access-key", up.creds.AccessKeyID,
		"--objects-upstream-secret-key", up.creds.SecretAccessKey, "--objects-upstream-path-style"}
}

// table prints results as a Markdown table; with ratio, a last row
// gives the second result's figures over the first's.
func table(out io.Writer, o options, results []result, ratio bool) {
	fmt.Fprintf(out, "| Server | %[1]s PUT op/s | %[1]s PUT p50 / p99 | %[1]s GET op/s | %[1]s GET p50 / p99 | %[2]s PUT MiB/s | %[2]s GET MiB/s |\n", sizeName(o.smallSize), sizeName(o.largeSize))
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range results {
		name := r.name
		if r.note != "" {
			name += " (" + r.note + ")"
		}
		fmt.Fprintf(out, "| %s | %.0f | %s / %s | %.0f | %s / %s | %.0f | %.0f |\n", name,
			r.smallPut.opsPerSec(), ms(r.smallPut.p50), ms(r.smallPut.p99),
			r.smallGet.opsPerSec(), ms(r.smallGet.p50), ms(r.smallGet.p99),
			r.largePut.mibPerSec(), r.largeGet.mibPerSec())
	}
	if ratio && len(results) == 2 {
		a, b := results[0], results[1]
		fmt.Fprintf(out, "| **forward / direct** | **%s** | %s / %s | **%s** | %s / %s | **%s** | **%s** |\n",
			pct(b.smallPut.opsPerSec(), a.smallPut.opsPerSec()),
			pct(float64(b.smallPut.p50), float64(a.smallPut.p50)), pct(float64(b.smallPut.p99), float64(a.smallPut.p99)),
			pct(b.smallGet.opsPerSec(), a.smallGet.opsPerSec()),
			pct(float64(b.smallGet.p50), float64(a.smallGet.p50)), pct(float64(b.smallGet.p99), float64(a.smallGet.p99)),
			pct(b.largePut.mibPerSec(), a.largePut.mibPerSec()), pct(b.largeGet.mibPerSec(), a.largeGet.mibPerSec()))
	}
}

// cpuTable prints the servers' CPU time per operation; with ratio, a last
// row gives the second result's over the first's.
func cpuTable(out io.Writer, o options, results []result, ratio bool) {
	fmt.Fprintf(out, "| Server | %[1]s PUT | %[1]s GET | %[2]s PUT | %[2]s GET |\n", sizeName(o.smallSize), sizeName(o.largeSize))
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|")
	cell := func(p phase, own bool) string {
		c := fmt.Sprintf("%.0f µs", p.cpuPerOp())
		if own && p.ops > 0 {
			c += fmt.Sprintf(" (%.0f µs)", float64(p.cpuOwn)/float64(time.Microsecond)/float64(p.ops))
		}
		return c
	}
	for _, r := range results {
		own := r.upstream
		fmt.Fprintf(out, "| %s | %s | %s | %s | %s |\n", r.name, cell(r.smallPut, own), cell(r.smallGet, own), cell(r.largePut, own), cell(r.largeGet, own))
	}
	if ratio && len(results) == 2 {
		a, b := results[0], results[1]
		fmt.Fprintf(out, "| forward / direct | %s | %s | %s | %s |\n", pct(b.smallPut.cpuPerOp(), a.smallPut.cpuPerOp()),
			pct(b.smallGet.cpuPerOp(), a.smallGet.cpuPerOp()), pct(b.largePut.cpuPerOp(), a.largePut.cpuPerOp()), pct(b.largeGet.cpuPerOp(), a.largeGet.cpuPerOp()))
	}
}

// pct is a/b as a percentage, "n/a" when b is zero.
func pct(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", 100*a/b)
}

func sizeName(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= mib && n%mib == 0:
		return fmt.Sprintf("%d MiB", n/mib)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitHTTP polls url until it answers (any status when anyStatus).
func waitHTTP(ctx context.Context, url string, anyStatus bool, cmd *exec.Cmd) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if cmd.ProcessState != nil {
			return errors.New("server exited")
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if anyStatus || resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not become ready", url)
}

func startCmd(dir, logName, bin string, env []string, args ...string) (*exec.Cmd, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(filepath.Dir(dir), logName))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { cmd.Wait(); logf.Close() }()
	return cmd, nil
}

// startSteward starts `steward serve --demo` with extra flags and logs in
// as carol for short-term credentials.
func startSteward(ctx context.Context, bin, dir string, extra ...string) (*server, error) {
	httpAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	s3Addr, err := freePort()
	if err != nil {
		return nil, err
	}
	args := append([]string{"serve", "--demo", "--demo-rows", "10000", "--demo-password", demoPassword,
		"--data-dir", filepath.Join(dir, "data"), "--http-addr", httpAddr, "--s3-addr", s3Addr, "--log-level", "warn"}, extra...)
	cmd, err := startCmd(filepath.Join(dir, "data"), "steward.log", bin, nil, args...)
	if err != nil {
		return nil, err
	}
	srv := &server{endpoint: "http://" + s3Addr, cmd: cmd}
	if err := waitHTTP(ctx, "http://"+httpAddr+"/readyz", false, cmd); err != nil {
		srv.stop()
		return nil, err
	}
	home := filepath.Join(dir, "home")
	os.MkdirAll(home, 0o700)
	cli := func(stdin string, args ...string) ([]byte, error) {
		c := exec.CommandContext(ctx, bin, args...)
		c.Env = append(os.Environ(), "STEWARD_HOME="+home)
		c.Stdin = strings.NewReader(stdin)
		out, err := c.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return nil, fmt.Errorf("steward %s: %w: %s", args[0], err, ee.Stderr)
			}
			return nil, err
		}
		return out, nil
	}
	if _, err := cli(demoPassword+"\n", "login", "--server", "http://"+httpAddr, "--username", "carol", "--password-stdin"); err != nil {
		srv.stop()
		return nil, err
	}
	out, err := cli("", "creds", "--no-cache")
	if err != nil {
		srv.stop()
		return nil, err
	}
	var c struct{ AccessKeyId, SecretAccessKey, SessionToken string }
	if err := json.Unmarshal(out, &c); err != nil {
		srv.stop()
		return nil, fmt.Errorf("steward creds: %w", err)
	}
	srv.creds = aws.Credentials{AccessKeyID: c.AccessKeyId, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
	return srv, nil
}

func randomKey(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// startVersitygw starts versitygw with its posix backend, with HTTP
// keep-alive when keepAlive (versitygw answers "Connection: close" to
// every request otherwise).
func startVersitygw(ctx context.Context, bin, dir string, keepAlive bool) (*server, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	ak, sk := randomKey(20), randomKey(40)
	args := []string{"--access", ak, "--secret", sk, "--port", addr}
	note := "no fsync"
	if keepAlive {
		args = append(args, "--keep-alive")
	} else {
		note += ", no keep-alive"
	}
	cmd, err := startCmd(filepath.Join(dir, "root"), "versitygw.log", bin, nil, append(args, "posix", filepath.Join(dir, "root"))...)
	if err != nil {
		return nil, err
	}
	srv := &server{endpoint: "http://" + addr, cmd: cmd, creds: aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}, note: note}
	if err := waitHTTP(ctx, srv.endpoint+"/", true, cmd); err != nil {
		srv.stop()
		return nil, err
	}
	return srv, nil
}

func startMinio(ctx context.Context, bin, dir string) (*server, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	console, err := freePort()
	if err != nil {
		return nil, err
	}
	ak, sk := randomKey(20), randomKey(40)
	cmd, err := startCmd(filepath.Join(dir, "data"), "minio.log", bin, []string{"MINIO_ROOT_USER=" + ak, "MINIO_ROOT_PASSWORD=" + sk, "MINIO_BROWSER=off"},
		"server", "--quiet", "--address", addr, "--console-address", console, filepath.Join(dir, "data"))
	if err != nil {
		return nil, err
	}
	srv := &server{endpoint: "http://" + addr, cmd: cmd, creds: aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}}
	if err := waitHTTP(ctx, srv.endpoint+"/minio/health/ready", false, cmd); err != nil {
		srv.stop()
		return nil, err
	}
	// Ready for health checks is not yet ready for requests
	// (XMinioServerNotInitialized): wait until a signed call succeeds.
	if err := waitS3(ctx, srv); err != nil {
		srv.stop()
		return nil, err
	}
	return srv, nil
}

// waitS3 polls srv with ListBuckets until it succeeds.
func waitS3(ctx context.Context, srv *server) error {
	c := client(srv, 1)
	var err error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if srv.cmd.ProcessState != nil {
			return errors.New("server exited")
		}
		if _, err = c.ListBuckets(ctx, &s3.ListBucketsInput{}); err == nil {
			return nil
		}
	}
	return fmt.Errorf("not ready for S3 requests: %w", err)
}

// client returns the SDK client every server is measured with: path-style,
// unsigned payload (the body is not hashed by the client, which would
// dominate on a small machine) and no optional checksums.
func client(srv *server, conns int) *s3.Client {
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = conns * 2
		t.MaxIdleConnsPerHost = conns * 2
		t.Proxy = nil
	})
	return s3.New(s3.Options{
		Region:                     "us-east-1",
		BaseEndpoint:               aws.String(srv.endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.StaticCredentialsProvider{Value: srv.creds},
		HTTPClient:                 hc,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RetryMaxAttempts:           1,
	}, s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware))
}

func measure(ctx context.Context, o options, srv *server, log *slog.Logger) (result, error) {
	r := result{name: srv.name, note: srv.note, upstream: srv.upstream != nil}
	c := client(srv, max(o.smallClients, o.largeClients))
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(benchBucket)}); err != nil {
		return r, fmt.Errorf("create bucket: %w", err)
	}
	smallBody := make([]byte, o.smallSize)
	rand.Read(smallBody)
	largeBody := make([]byte, o.largeSize)
	rand.Read(largeBody)

	put := func(prefix string, body []byte, clients int) (phase, [][]string, error) {
		keys := make([][]string, clients)
		p, err := load(ctx, o, clients, srv.pids(), func(ctx context.Context, w, i int) (int64, error) {
			key := fmt.Sprintf("%s/%02d/%08d", prefix, w, i)
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(benchBucket), Key: aws.String(key),
				Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body)))})
			if err == nil {
				keys[w] = append(keys[w], key)
			}
			return int64(len(body)), err
		})
		return p, keys, err
	}
	get := func(keys [][]string, clients int, size int64) (phase, error) {
		var all []string
		for _, k := range keys {
			all = append(all, k...)
		}
		if len(all) == 0 {
			return phase{}, errors.New("nothing was written to read back")
		}
		return load(ctx, o, clients, srv.pids(), func(ctx context.Context, w, i int) (int64, error) {
			res, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(benchBucket), Key: aws.String(all[mrand.IntN(len(all))])})
			if err != nil {
				return 0, err
			}
			n, err := io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if err == nil && n != size {
				err = fmt.Errorf("short read: %d of %d bytes", n, size)
			}
			return n, err
		})
	}
	var err error
	var keys [][]string
	log.Info("small PUT", "server", srv.name)
	if r.smallPut, keys, err = put("small", smallBody, o.smallClients); err != nil {
		return r, err
	}
	log.Info("small GET", "server", srv.name)
	if r.smallGet, err = get(keys, o.smallClients, o.smallSize); err != nil {
		return r, err
	}
	log.Info("large PUT", "server", srv.name)
	if r.largePut, keys, err = put("large", largeBody, o.largeClients); err != nil {
		return r, err
	}
	log.Info("large GET", "server", srv.name)
	if r.largeGet, err = get(keys, o.largeClients, o.largeSize); err != nil {
		return r, err
	}
	return r, nil
}

// load runs op on clients workers for warmup+duration and counts the
// operations that started after the warm-up and ended within the window.
func load(ctx context.Context, o options, clients int, pids []int, op func(ctx context.Context, w, i int) (int64, error)) (phase, error) {
	start := time.Now()
	measureFrom := start.Add(o.warmup)
	end := measureFrom.Add(o.duration)
	cpuDone := make(chan [2]time.Duration, 1)
	go func() {
		time.Sleep(time.Until(measureFrom))
		before := cpuTimes(pids)
		time.Sleep(time.Until(end))
		after := cpuTimes(pids)
		var d [2]time.Duration
		for i := range after {
			d[0] += after[i] - before[i]
		}
		if len(after) > 0 {
			d[1] = after[0] - before[0]
		}
		cpuDone <- d
	}()
	var ops, byteCount, errs atomic.Int64
	var firstErr atomic.Pointer[error]
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				n, err := op(ctx, w, i)
				t1 := time.Now()
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, &err)
					if errs.Load() > 100 {
						return
					}
					continue
				}
				if !t0.Before(measureFrom) && !t1.After(end) {
					ops.Add(1)
					byteCount.Add(n)
					lat[w] = append(lat[w], t1.Sub(t0))
				}
			}
		}()
	}
	wg.Wait()
	cpu := <-cpuDone
	p := phase{ops: ops.Load(), bytes: byteCount.Load(), d: o.duration, errs: errs.Load(), cpu: cpu[0], cpuOwn: cpu[1]}
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) > 0 {
		p.p50 = all[len(all)/2]
		p.p99 = all[int(math.Ceil(float64(len(all))*0.99))-1]
	}
	if p.ops == 0 {
		if e := firstErr.Load(); e != nil {
			return p, *e
		}
		return p, errors.New("no operation completed")
	}
	return p, nil
}

// clockTick is the unit of /proc/PID/stat's times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuTimes reads each process's user+system CPU time.
func cpuTimes(pids []int) []time.Duration {
	out := make([]time.Duration, len(pids))
	for i, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		out[i] = statCPU(string(b))
	}
	return out
}

// statCPU parses utime+stime out of a /proc/PID/stat line (the fields
// after the parenthesised command name, which may contain spaces).
func statCPU(stat string) time.Duration {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(u+s) * clockTick
}

// pattern is a deterministic, seekable body of size bytes generated from a
// 1 MiB block, so a client can send and check any size without memory.
type pattern struct {
	block []byte
	size  int64
	off   int64
}

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(b) && p.off < p.size {
		i := p.off % int64(len(p.block))
		c := copy(b[n:], p.block[i:min(int64(len(p.block)), i+p.size-p.off)])
		n += c
		p.off += int64(c)
	}
	return n, nil
}

func (p *pattern) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += p.off
	case io.SeekEnd:
		offset += p.size
	}
	if offset < 0 {
		return 0, errors.New("negative offset")
	}
	p.off = offset
	return offset, nil
}

// checker compares what it is written with the pattern at its offset.
type checker struct {
	p   pattern
	buf []byte
	bad bool
}

func (c *checker) Write(b []byte) (int, error) {
	if len(c.buf) < len(b) {
		c.buf = make([]byte, len(b))
	}
	n, _ := io.ReadFull(&c.p, c.buf[:len(b)])
	if n != len(b) || !bytes.Equal(c.buf[:n], b) {
		c.bad = true
	}
	return len(b), nil
}

// rssSampler samples VmRSS of pid until stopped and reports the maximum.
func rssSampler(pid int) (stop func() int64) {
	var peak atomic.Int64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if kb := procStatusKB(pid, "VmRSS"); kb > peak.Load() {
				peak.Store(kb)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 { close(done); <-finished; return peak.Load() }
}

func procStatusKB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// rssCheck streams one rssSize object through srv (multipart PUT, single
// GET) while sampling the server's RSS.
func rssCheck(ctx context.Context, o options, srv *server, log *slog.Logger) (string, error) {
	c := client(srv, 2)
	block := make([]byte, mib)
	rand.Read(block)
	key := "rss/large.bin"
	pid := srv.cmd.Process.Pid
	before := procStatusKB(pid, "VmRSS")

	log.Info("RSS check: multipart PUT", "size", sizeName(o.rssSize), "part", sizeName(o.rssPart))
	stopPut := rssSampler(pid)
	t0 := time.Now()
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(benchBucket), Key: aws.String(key)})
	if err != nil {
		stopPut()
		return "", err
	}
	var parts []types.CompletedPart
	for off, n := int64(0), int32(1); off < o.rssSize; off, n = off+o.rssPart, n+1 {
		size := min(o.rssPart, o.rssSize-off)
		body := &pattern{block: rotate(block, off), size: size}
		res, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(benchBucket), Key: aws.String(key), UploadId: up.UploadId,
			PartNumber: aws.Int32(n), Body: body, ContentLength: aws.Int64(size)})
		if err != nil {
			stopPut()
			return "", fmt.Errorf("part %d: %w", n, err)
		}
		parts = append(parts, types.CompletedPart{ETag: res.ETag, PartNumber: aws.Int32(n)})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(benchBucket), Key: aws.String(key), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		stopPut()
		return "", err
	}
	putPeak, putTime := stopPut(), time.Since(t0)

	log.Info("RSS check: GET")
	stopGet := rssSampler(pid)
	t0 = time.Now()
	res, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(benchBucket), Key: aws.String(key)})
	if err != nil {
		stopGet()
		return "", err
	}
	chk := &checker{p: pattern{block: block, size: o.rssSize}}
	n, err := io.Copy(chk, res.Body)
	res.Body.Close()
	getPeak, getTime := stopGet(), time.Since(t0)
	if err != nil {
		return "", err
	}
	if n != o.rssSize || chk.bad {
		return "", fmt.Errorf("GET returned %d of %d bytes, content ok: %v", n, o.rssSize, !chk.bad)
	}
	c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(benchBucket), Key: aws.String(key)})
	return fmt.Sprintf("%s: RSS while streaming one %s object (content checked): before %d MiB; peak %d MiB during the multipart PUT (%s parts, %.0f MiB/s), peak %d MiB during the GET (%.0f MiB/s); VmHWM of the whole run %d MiB.",
		srv.name, sizeName(o.rssSize), before>>10, putPeak>>10, sizeName(o.rssPart), float64(o.rssSize)/mib/putTime.Seconds(),
		getPeak>>10, float64(o.rssSize)/mib/getTime.Seconds(), procStatusKB(pid, "VmHWM")>>10), nil
}

// rotate returns block rotated so that pattern offset 0 of the result is
// offset off of the pattern generated from block.
func rotate(block []byte, off int64) []byte {
	i := off % int64(len(block))
	return append(append([]byte(nil), block[i:]...), block[:i]...)
}
