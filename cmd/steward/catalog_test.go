package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestUploadIsCatalogued: as a new user would, alice uploads a CSV with an
// e-mail column through the S3 gateway with the aws CLI; within seconds the
// catalog has the dataset with its schema, the e-mail column tagged PII
// and the dataset at least C3, findable by search.
func TestUploadIsCatalogued(t *testing.T) {
	p := serve(t, t.TempDir())
	alice := awsEnv(t, p, "alice")
	file := filepath.Join(t.TempDir(), "leads.csv")
	var b strings.Builder
	b.WriteString("lead_id,full_name,email,score\n")
	for i := 1; i <= 50; i++ {
		b.WriteString(strings.Join([]string{strconv.Itoa(i), "Lead Person", "lead" + strconv.Itoa(i) + "@prospects.example", strconv.Itoa(i % 7)}, ",") + "\n")
	}
	os.WriteFile(file, []byte(b.String()), 0o600)
	start := time.Now()
	if out, code := awsCLI(t, p, alice, "s3", "cp", file, "s3://public/marketing/leads/leads.csv"); code != 0 {
		t.Fatalf("upload: %s", out)
	}
	var d struct {
		Classification string `json:"classification"`
		Format         string `json:"format"`
		RowCount       int64  `json:"row_count"`
		Schema         []struct {
			Name string `json:"name"`
			Tags []struct {
				Name string `json:"name"`
			} `json:"tags"`
		} `json:"schema"`
	}
	tagged := func() bool {
		for _, c := range d.Schema {
			for _, tg := range c.Tags {
				if c.Name == "email" && tg.Name == "PII" {
					return true
				}
			}
		}
		return false
	}
	for {
		out, code := run(t, "", alice, "dataset", "show", "s3://public/marketing/leads", "-o", "json")
		if code == 0 {
			if err := json.Unmarshal([]byte(out), &d); err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			if tagged() {
				break
			}
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("upload not catalogued with a PII e-mail column in 20 s: %d %s", code, out)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("catalogued and tagged %v after the upload", time.Since(start).Round(100*time.Millisecond))
	if d.Classification < "C3" || d.Format != "csv" || d.RowCount != 50 || len(d.Schema) != 4 {
		t.Errorf("dataset: %+v", d)
	}
	if out, code := run(t, "", alice, "search", "leads"); code != 0 || !strings.Contains(out, "s3://public/marketing/leads") {
		t.Errorf("search leads: %d %s", code, out)
	}
}
