package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/cli"
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/server"
)

const demoPassword = "correct-horse-battery"

// startServer runs a demo Steward (alice, bob, carol) on loopback.
func startServer(t *testing.T) *server.Server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Demo = true
	cfg.DemoPassword = demoPassword
	cfg.DemoRows = 10_000
	cfg.ShutdownGrace = 5 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	s, err := server.New(ctx, cfg, server.Options{Version: "test"})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

type user struct {
	t    *testing.T
	home string
	url  string
}

func login(t *testing.T, s *server.Server, name string) *user {
	t.Helper()
	u := &user{t: t, home: t.TempDir(), url: s.URL()}
	u.must(demoPassword+"\n", "login", "--username", name, "--password-stdin")
	return u
}

func (u *user) run(stdin string, args ...string) (string, string, int) {
	u.t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{"STEWARD_HOME": u.home, "STEWARD_SERVER": u.url}
	code := cli.Main(context.Background(), args, cli.IO{In: strings.NewReader(stdin), Out: &out, Err: &errb, Getenv: func(k string) string { return env[k] }})
	return out.String(), errb.String(), code
}

func (u *user) must(stdin string, args ...string) string {
	u.t.Helper()
	out, errs, code := u.run(stdin, args...)
	if code != 0 {
		u.t.Fatalf("steward %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

const cliPolicies = `policies:
  - id: mortgages-team
    resources:
      paths: ["s3://mortgages/**"]
    allow:
      - groups: [mortgages]
        accesses: [read, write, list]
`

func TestPolicyAndAccessCommands(t *testing.T) {
	s := startServer(t)
	carol, alice, bob := login(t, s, "carol"), login(t, s, "alice"), login(t, s, "bob")
	file := filepath.Join(t.TempDir(), "policies.yaml")
	if err := os.WriteFile(file, []byte(cliPolicies), 0o600); err != nil {
		t.Fatal(err)
	}

	out := carol.must("", "policy", "apply", "-f", file, "--dry-run")
	if !strings.Contains(out, `+ create "mortgages-team"`) || !strings.Contains(out, "dry run") {
		t.Fatalf("dry run: %s", out)
	}
	if out := carol.must("", "policy", "list"); strings.Contains(out, "mortgages-team") {
		t.Fatalf("dry run applied: %s", out)
	}
	carol.must("", "policy", "apply", "-f", file)
	if out := carol.must("", "policy", "apply", "-f", file); !strings.Contains(out, "no changes") {
		t.Fatalf("second apply: %s", out)
	}
	if _, errs, code := alice.run("", "policy", "apply", "-f", file); code == 0 || !strings.Contains(errs, "administrator") {
		t.Fatalf("alice applied policies: %d %s", code, errs)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte(strings.Replace(cliPolicies, "list]", "lsit]", 1)), 0o600)
	if _, errs, code := carol.run("", "policy", "apply", "-f", bad); code == 0 || !strings.Contains(errs, `bad.yaml: policy "mortgages-team": allow[0].accesses[2]: unknown access type "lsit"`) {
		t.Fatalf("bad file: %d %s", code, errs)
	}
	if out := carol.must("", "policy", "get", "mortgages-team"); !strings.Contains(out, "id: mortgages-team") {
		t.Fatalf("get: %s", out)
	}
	if out := carol.must("", "policy", "export"); !strings.Contains(out, "mortgages-team") {
		t.Fatalf("export: %s", out)
	}
	out = carol.must("", "policy", "explain", "--user", "bob", "--group", "mortgages", "--action", "read", "--resource", "s3://mortgages/loans/a.parquet")
	if !strings.HasPrefix(out, "ALLOW") || !strings.Contains(out, "mortgages-team") {
		t.Fatalf("explain: %s", out)
	}

	// The access-request cycle.
	carol.must("", "access", "owners", "set", "s3://mortgages/**", "--user", "bob", "--group", "mortgages")
	var r struct{ ID, Status string }
	if err := json.Unmarshal([]byte(alice.must("", "access", "request", "s3://mortgages/loans", "--access", "read", "--duration", "2h", "--justification", "risk model", "-o", "json")), &r); err != nil {
		t.Fatal(err)
	}
	if r.Status != "pending" {
		t.Fatalf("request: %+v", r)
	}
	if _, errs, code := alice.run("", "access", "approve", r.ID); code == 0 || !strings.Contains(errs, "own") {
		t.Fatalf("self-approval: %d %s", code, errs)
	}
	if out := bob.must("", "access", "list"); !strings.Contains(out, r.ID) {
		t.Fatalf("bob's list: %s", out)
	}
	explainAlice := func() string {
		return carol.must("", "policy", "explain", "--user", "alice", "--group", "analysts", "--action", "read", "--resource", "s3://mortgages/loans/a.parquet")
	}
	if out := explainAlice(); !strings.HasPrefix(out, "DENY") {
		t.Fatalf("before approval: %s", out)
	}
	bob.must("", "access", "approve", r.ID, "--comment", "ok")
	if out := explainAlice(); !strings.HasPrefix(out, "ALLOW") || !strings.Contains(out, "grant:"+r.ID) {
		t.Fatalf("after approval: %s", out)
	}
	later := time.Now().Add(3 * time.Hour).UTC().Format(time.RFC3339)
	if out := carol.must("", "policy", "explain", "--user", "alice", "--group", "analysts", "--action", "read", "--resource", "s3://mortgages/loans/a.parquet", "--time", later); !strings.HasPrefix(out, "DENY") {
		t.Fatalf("after the grant ended: %s", out)
	}
	bob.must("", "access", "revoke", r.ID, "--comment", "done")
	if out := explainAlice(); !strings.HasPrefix(out, "DENY") {
		t.Fatalf("after revoke: %s", out)
	}
	if out := alice.must("", "access", "list", "--status", "revoked"); !strings.Contains(out, r.ID) {
		t.Fatalf("alice's list: %s", out)
	}
}

func TestPolicyImportRanger(t *testing.T) {
	s := startServer(t)
	carol := login(t, s, "carol")
	out, errs, code := carol.run("", "policy", "import", "--ranger", "testdata/ranger_s3.json", "--dry-run")
	if code != 0 || !strings.Contains(errs, "policies converted") || !strings.Contains(out, "+ create") || !strings.Contains(out, "dry run") {
		t.Fatalf("import dry run: %d\n%s\n%s", code, out, errs)
	}
	if out := carol.must("", "policy", "list"); strings.Contains(out, "ranger-") {
		t.Fatalf("dry run imported: %s", out)
	}
	carol.must("", "policy", "import", "--ranger", "testdata/ranger_s3.json")
	if out := carol.must("", "policy", "list"); !strings.Contains(out, "ranger-") {
		t.Fatalf("nothing imported: %s", out)
	}
	// Importing again is no change.
	if out := carol.must("", "policy", "import", "--ranger", "testdata/ranger_s3.json"); !strings.Contains(out, "no changes") {
		t.Fatalf("second import: %s", out)
	}
	if _, errs, code := carol.run("", "policy", "import", "--ranger", "policy_test.go"); code == 0 || !strings.Contains(errs, "policy_test.go") {
		t.Fatalf("not a Ranger export: %d %s", code, errs)
	}
}
