package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDerivedDataInheritsPII is the lineage issue's scenario as a user
// lives it: a job reads the customers (whose e-mail column the catalog
// tagged PII) and writes a new dataset in the open bucket; from the moment
// lineage knows, the new dataset is PII and at least C3, and a PII policy
// keeps analysts from reading it through the gateway, with an explanation.
func TestDerivedDataInheritsPII(t *testing.T) {
	p := serve(t, t.TempDir())
	alice, carol := awsEnv(t, p, "alice"), awsEnv(t, p, "carol")
	file := filepath.Join(t.TempDir(), "contacts.csv")
	// The file's own columns show nothing sensitive (the crawler would tag
	// an e-mail column by itself); what makes it PII is where it came from.
	os.WriteFile(file, []byte("customer_id,contact\n1,ref-1\n"), 0o600)
	if out, code := awsCLI(t, p, alice, "s3", "cp", file, "s3://public/derived/contacts/contacts.csv"); code != 0 {
		t.Fatalf("alice writes open data: %s", out)
	}
	pol := filepath.Join(t.TempDir(), "pii.yaml")
	os.WriteFile(pol, []byte(`policies:
  - id: pii-no-analysts
    tags:
      - name: PII
    deny:
      - groups: [analysts]
        accesses: [read]
`), 0o600)
	if out, code := run(t, "", carol, "policy", "apply", "-f", pol); code != 0 {
		t.Fatalf("apply: %s", out)
	}
	if out, code := awsCLI(t, p, alice, "s3", "cp", "s3://public/derived/contacts/contacts.csv", "-"); code != 0 {
		t.Fatalf("before lineage the file is open data: %s", out)
	}
	ev := filepath.Join(t.TempDir(), "run.json")
	os.WriteFile(ev, []byte(`{
  "eventType": "START",
  "eventTime": "2026-11-26T07:00:00Z",
  "run": {"runId": "0190d3b0-0000-7000-8000-000000000001"},
  "job": {"namespace": "etl", "name": "export_contacts"},
  "inputs": [{"namespace": "s3://mortgages", "name": "retail/customers"}],
  "outputs": [{"namespace": "s3://public", "name": "derived/contacts", "facets": {"columnLineage": {
    "_producer": "https://example.com/etl", "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet",
    "fields": {"contact": {"inputFields": [{"namespace": "s3://mortgages", "name": "retail/customers", "field": "email",
      "transformations": [{"type": "DIRECT", "subtype": "IDENTITY", "masking": false}]}]}}}}}],
  "producer": "https://example.com/etl",
  "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
}`), 0o600)
	if out, code := run(t, "", carol, "lineage", "post", ev); code != 0 {
		t.Fatalf("post lineage: %s", out)
	}
	// The crawler tags the customers' e-mail column a moment after start;
	// the tag then flows to the derived dataset.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, code := awsCLI(t, p, alice, "s3", "cp", "s3://public/derived/contacts/contacts.csv", "-")
		if code != 0 && (strings.Contains(out, "403") || strings.Contains(out, "AccessDenied")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("derived PII data still readable by analysts: %s", out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	out, code := run(t, "", carol, "lineage", "explain", "s3://public:derived/contacts")
	if code != 0 || !strings.Contains(out, "PII") || !strings.Contains(out, "retail/customers") {
		t.Errorf("explanation: %d %s", code, out)
	}
	// The owner takes the PII tag off the customers' e-mail column: the
	// derived dataset no longer inherits it, and the file is readable again.
	bob := awsEnv(t, p, "bob")
	if out, code := run(t, "", bob, "dataset", "tag", "s3://mortgages/retail/customers", "PII", "--column", "email", "--remove"); code != 0 {
		t.Fatalf("remove tag: %s", out)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		out, code := awsCLI(t, p, alice, "s3", "cp", "s3://public/derived/contacts/contacts.csv", "-")
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still denied after the source tag was removed: %s", out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Other open data stays open.
	os.WriteFile(file, []byte("x\n"), 0o600)
	if out, code := awsCLI(t, p, alice, "s3", "cp", file, "s3://public/other/x.csv"); code != 0 {
		t.Errorf("write other open data: %s", out)
	}
	if out, code := awsCLI(t, p, alice, "s3", "cp", "s3://public/other/x.csv", "-"); code != 0 {
		t.Errorf("other open data denied: %s", out)
	}
}

// TestS3CopyRecordsLineage: a server-side copy through the gateway (aws s3
// cp between buckets) is lineage: the target dataset inherits the
// source's PII at once, and the explanation names the copy job and the
// source.
func TestS3CopyRecordsLineage(t *testing.T) {
	p := serve(t, t.TempDir())
	carol := awsEnv(t, p, "carol")
	// The crawler tags the customers' e-mail column a moment after start.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, code := run(t, "", carol, "dataset", "show", "s3://mortgages/retail/customers")
		if code == 0 && strings.Contains(out, "PII:type=email") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("customers not tagged: %s", out)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if out, code := awsCLI(t, p, carol, "s3", "cp", "s3://mortgages/retail/customers/customers.parquet", "s3://public/copies/customers/customers.parquet"); code != 0 {
		t.Fatalf("server-side copy: %s", out)
	}
	out, code := run(t, "", carol, "lineage", "explain", "s3://public:copies/customers")
	if code != 0 || !strings.Contains(out, "PII") || !strings.Contains(out, "retail/customers") || !strings.Contains(out, "copy") {
		t.Errorf("explanation of the copy: %d %s", code, out)
	}
}
