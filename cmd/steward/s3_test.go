package main_test

// The S3 gateway driven by real clients as a data scientist would: log in,
// point the aws CLI and boto3 at `steward creds`, and work.

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/testutil/s3upstream"
)

// awsEnv logs user in with a fresh STEWARD_HOME and writes an aws config
// whose profile gets credentials from `steward creds`.
func awsEnv(t *testing.T, p *proc, user string) []string {
	t.Helper()
	home := t.TempDir()
	env := []string{"STEWARD_HOME=" + home}
	if out, code := run(t, "correct-horse-battery\n", env, "login", "--server", p.url, "--username", user, "--password-stdin"); code != 0 {
		t.Fatalf("login %s: %s", user, out)
	}
	cfg := filepath.Join(home, "aws-config")
	os.WriteFile(cfg, []byte("[profile steward]\ncredential_process = "+binary+" creds\nregion = us-east-1\n"), 0o600)
	return append(env, "AWS_CONFIG_FILE="+cfg, "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "none"), "AWS_PROFILE=steward",
		"AWS_EC2_METADATA_DISABLED=true", "HOME="+home)
}

func awsCLI(t *testing.T, p *proc, env []string, args ...string) (string, int) {
	t.Helper()
	aws := "/usr/bin/aws" // Debian's aws CLI v2
	if _, err := os.Stat(aws); err != nil {
		t.Fatal("the aws CLI is missing: run `make test`, which installs it")
	}
	cmd := exec.Command(aws, append([]string{"--endpoint-url", p.s3URL}, args...)...)
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

func TestAWSCLIAsAlice(t *testing.T) {
	p := serve(t, t.TempDir())
	env := awsEnv(t, p, "alice")
	file := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(file, []byte("alice's analysis\n"), 0o600)

	must := func(args ...string) string {
		t.Helper()
		out, code := awsCLI(t, p, env, args...)
		if code != 0 {
			t.Fatalf("aws %s: exit %d: %s", strings.Join(args, " "), code, out)
		}
		return out
	}
	denied := func(args ...string) {
		t.Helper()
		out, code := awsCLI(t, p, env, args...)
		if code == 0 || !strings.Contains(out, "AccessDenied") {
			t.Errorf("aws %s: want AccessDenied, got exit %d: %s", strings.Join(args, " "), code, out)
		}
	}
	must("s3", "cp", file, "s3://home/alice/notes.txt")
	if out := must("s3", "ls", "s3://home/alice/"); !strings.Contains(out, "notes.txt") {
		t.Errorf("ls: %s", out)
	}
	if out := must("s3", "cp", "s3://home/alice/notes.txt", "-"); out != "alice's analysis\n" {
		t.Errorf("cp to stdout: %q", out)
	}
	must("s3", "cp", file, "s3://public/shared/notes.txt")
	// A presigned GET works without credentials, for what alice may read.
	url := strings.TrimSpace(must("s3", "presign", "s3://home/alice/notes.txt", "--expires-in", "300"))
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(pb) != "alice's analysis\n" {
		t.Errorf("presigned GET %s: %d %s", url, resp.StatusCode, pb)
	}
	// What alice may not touch.
	denied("s3", "cp", file, "s3://mortgages/loans.csv")
	denied("s3", "ls", "s3://mortgages/")
	denied("s3", "ls", "s3://home/bob/")
	denied("s3", "mb", "s3://alice-bucket")
	// ListBuckets shows only what alice may list.
	out := must("s3", "ls")
	if strings.Contains(out, "mortgages") || !strings.Contains(out, "home") {
		t.Errorf("bucket list leaks or lacks buckets: %s", out)
	}
	must("s3", "rm", "s3://home/alice/notes.txt")

	// Each request is in the audit trail, allowed and denied alike.
	carol := awsEnv(t, p, "carol")
	q, code := run(t, "", carol, "audit", "query", "--user", "alice", "--action", "s3:*", "--limit", "1000", "-o", "json")
	if code != 0 {
		t.Fatalf("audit query: %s", q)
	}
	for _, want := range []string{`"s3:PutObject"`, `"s3://home/alice/notes.txt"`, `"s3://mortgages/loans.csv"`, `"deny"`, `"s3:DeleteObject"`} {
		if !strings.Contains(q, want) {
			t.Errorf("audit lacks %s", want)
		}
	}
}

func TestBoto3AsBob(t *testing.T) {
	p := serve(t, t.TempDir())
	env := awsEnv(t, p, "bob")
	script := `
import boto3, botocore, sys
s3 = boto3.client("s3", endpoint_url=sys.argv[1])
s3.put_object(Bucket="mortgages", Key="nl/2026/loans.csv", Body=b"id,amount\n1,250000\n")
body = s3.get_object(Bucket="mortgages", Key="nl/2026/loans.csv")["Body"].read()
assert body == b"id,amount\n1,250000\n", body
keys = [o["Key"] for o in s3.list_objects_v2(Bucket="mortgages", Prefix="nl/")["Contents"]]
assert keys == ["nl/2026/loans.csv"], keys
try:
    s3.put_object(Bucket="public", Key="x", Body=b"no")
    print("UNEXPECTED: bob wrote to public")
    sys.exit(1)
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "AccessDenied", e.response
    assert e.response["ResponseMetadata"]["HTTPHeaders"].get("x-amz-request-id"), e.response
print("ok")
`
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Fatal("Debian's python3 with boto3 is missing: run `make test`, which installs it")
	}
	cmd := exec.Command(py, "-c", script, p.s3URL)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
}

// TestServiceAccountAccessKeys: an admin gives a pipeline a long-lived S3
// key; the pipeline works with plain static credentials; rotation retires
// the old key.
func TestServiceAccountAccessKeys(t *testing.T) {
	p := serve(t, t.TempDir())
	carol := awsEnv(t, p, "carol")
	if out, code := run(t, "", carol, "service-account", "create", "etl", "--group", "mortgages"); code != 0 {
		t.Fatalf("create sa: %s", out)
	}
	out, code := run(t, "", carol, "service-account", "access-key", "create", "etl", "--description", "nightly loads", "-o", "json")
	if code != 0 {
		t.Fatalf("create key: %s", out)
	}
	var k struct {
		ID     string `json:"access_key_id"`
		Secret string `json:"secret_access_key"`
	}
	if err := json.Unmarshal([]byte(out), &k); err != nil || k.ID == "" || k.Secret == "" {
		t.Fatalf("key: %v %s", err, out)
	}
	static := func(id, secret string) []string {
		return []string{"AWS_ACCESS_KEY_ID=" + id, "AWS_SECRET_ACCESS_KEY=" + secret, "AWS_DEFAULT_REGION=us-east-1",
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true"}
	}
	file := filepath.Join(t.TempDir(), "batch.csv")
	os.WriteFile(file, []byte("id\n1\n"), 0o600)
	if out, code := awsCLI(t, p, static(k.ID, k.Secret), "s3", "cp", file, "s3://mortgages/loads/batch.csv"); code != 0 {
		t.Fatalf("pipeline write: %s", out)
	}
	if out, code := awsCLI(t, p, static(k.ID, k.Secret), "s3", "cp", file, "s3://public/batch.csv"); code == 0 || !strings.Contains(out, "AccessDenied") {
		t.Errorf("pipeline wrote outside its grant: %s", out)
	}
	out, code = run(t, "", carol, "service-account", "access-key", "rotate", k.ID, "-o", "json")
	if code != 0 {
		t.Fatalf("rotate: %s", out)
	}
	var k2 struct {
		ID     string `json:"access_key_id"`
		Secret string `json:"secret_access_key"`
	}
	json.Unmarshal([]byte(out), &k2)
	if k2.ID == "" || k2.ID == k.ID {
		t.Fatalf("rotation gave no new key: %s", out)
	}
	if out, code := awsCLI(t, p, static(k2.ID, k2.Secret), "s3", "ls", "s3://mortgages/loads/"); code != 0 || !strings.Contains(out, "batch.csv") {
		t.Errorf("new key: %d %s", code, out)
	}
	if out, code := run(t, "", carol, "service-account", "access-key", "list", "etl"); code != 0 || strings.Contains(out, k.ID) || !strings.Contains(out, k2.ID) {
		t.Errorf("keys after rotation: %s", out)
	}
}

// TestForwardMode runs Steward in front of an independent S3 server
// (versitygw): the aws CLI talks to Steward, which authenticates,
// authorizes and audits, then re-signs and streams to the upstream.
func TestForwardMode(t *testing.T) {
	endpoint, ak, sk := s3upstream.Start(t)
	prefix := "fwd" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", ""))[:6] + "-"
	dataDir := t.TempDir()
	p := serve(t, dataDir, "--objects-upstream-endpoint", endpoint, "--objects-upstream-access-key", ak,
		"--objects-upstream-secret-key", sk, "--objects-upstream-path-style", "--objects-upstream-bucket-prefix", prefix)
	env := awsEnv(t, p, "alice")
	file := filepath.Join(t.TempDir(), "f.txt")
	os.WriteFile(file, []byte("forwarded\n"), 0o600)
	if out, code := awsCLI(t, p, env, "s3", "cp", file, "s3://home/alice/f.txt"); code != 0 {
		t.Fatalf("put through forward mode: %s", out)
	}
	if out, code := awsCLI(t, p, env, "s3", "cp", "s3://home/alice/f.txt", "-"); code != 0 || out != "forwarded\n" {
		t.Fatalf("get through forward mode: %d %q", code, out)
	}
	if out, code := awsCLI(t, p, env, "s3", "cp", file, "s3://mortgages/x.txt"); code == 0 || !strings.Contains(out, "AccessDenied") {
		t.Errorf("denied write reached the upstream or succeeded: %s", out)
	}
	// The object is really upstream, in the prefixed bucket.
	direct := []string{"AWS_ACCESS_KEY_ID=" + ak, "AWS_SECRET_ACCESS_KEY=" + sk, "AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true"}
	cmd := exec.Command("/usr/bin/aws", "--endpoint-url", endpoint, "s3", "cp", "s3://"+prefix+"home/alice/f.txt", "-")
	cmd.Env = append(os.Environ(), direct...)
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "forwarded\n" {
		t.Fatalf("object not found upstream: %v %s", err, out)
	}
	// Governed SQL reads the upstream objects through the local cache:
	// the demo bank's files are upstream too.
	q := "SELECT count(*) AS n FROM mortgages.market.mortgages_by_country"
	var sqlOut string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		var code int
		if sqlOut, code = run(t, "", env, "sql", "-c", q, "--format", "csv"); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SQL in forward mode: %s", sqlOut)
		}
	}
	if sqlOut != "n\n48\n" {
		t.Errorf("SQL in forward mode: %q", sqlOut)
	}
	// Entries are files named by the hash of bucket, key and ETag.
	entries, _ := os.ReadDir(filepath.Join(dataDir, "cache", "sql"))
	var cached []string
	for _, e := range entries {
		if e.Type().IsRegular() && len(e.Name()) == 64 {
			cached = append(cached, e.Name())
		}
	}
	if len(cached) != 1 {
		t.Errorf("SQL cache after one query over one file in forward mode: %v", entries)
	}
}

// TestCatalogClassificationReachesTheGateway: a tag policy on
// classification C4 decides S3 reads of the files of a C4 dataset, because
// the gateway asks with the dataset's effective tags and classification.
func TestCatalogClassificationReachesTheGateway(t *testing.T) {
	p := serve(t, t.TempDir())
	carol := awsEnv(t, p, "carol")
	if out, code := awsCLI(t, p, carol, "s3", "cp", "s3://mortgages/risk/credit_exposures/exposures.parquet", "-"); code != 0 {
		t.Fatalf("carol reads C4 data before the tag policy: %s", out)
	}
	pol := filepath.Join(t.TempDir(), "c4.yaml")
	os.WriteFile(pol, []byte(`policies:
  - id: c4-owners-only
    tags:
      - classification: C4
    deny:
      - groups: [public]
        accesses: [read]
    deny_exceptions:
      - users: [bob]
        accesses: [read]
`), 0o600)
	if out, code := run(t, "", carol, "policy", "apply", "-f", pol); code != 0 {
		t.Fatalf("apply: %s", out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, code := awsCLI(t, p, carol, "s3", "cp", "s3://mortgages/risk/credit_exposures/exposures.parquet", "-")
		if code != 0 && strings.Contains(out, "403") || strings.Contains(out, "AccessDenied") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("C4 read still allowed after the tag policy: %s", out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if out, code := awsCLI(t, p, carol, "s3", "cp", "s3://mortgages/market/mortgages_by_country/mortgages.csv", "-"); code != 0 {
		t.Errorf("a C2 dataset is denied too: %s", out)
	}
	bob := awsEnv(t, p, "bob")
	if out, code := awsCLI(t, p, bob, "s3", "cp", "s3://mortgages/risk/credit_exposures/exposures.parquet", "-"); code != 0 {
		t.Errorf("the owner lost access: %s", out)
	}
}
