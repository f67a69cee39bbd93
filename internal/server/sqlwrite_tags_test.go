package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/stewardhq/steward/internal/catalog"
	"github.com/stewardhq/steward/internal/lineage"
	"github.com/stewardhq/steward/internal/policy"
	"github.com/stewardhq/steward/internal/server"
)

// Policies for the tag-following test: analysts may read bob's home
// tables and files, but nothing classified C3 or above and nothing
// tagged PII; the mortgage line may.
const sqlTagPolicies = `policies:
  - id: share-bob-home
    resources:
      tables: ["home.bob.*"]
    allow:
      - groups: [analysts]
        accesses: [select, discover]
  - id: share-bob-home-files
    resources:
      paths: ["s3://home/bob"]
      recursive: true
    allow:
      - groups: [analysts]
        accesses: [read, list]
  - id: c3-mortgage-line-only
    tags:
      - classification: C3
    deny:
      - groups: [public]
        accesses: [select, read]
    deny_exceptions:
      - groups: [mortgages]
        accesses: [select, read]
  - id: pii-mortgage-line-only
    tags:
      - name: PII
    deny:
      - groups: [public]
        accesses: [select, read]
    deny_exceptions:
      - groups: [mortgages]
        accesses: [select, read]
`

// TestSQLTableTagsFollowSources: a table made with CREATE TABLE AS from
// customers' e-mail addresses is C3 and PII the moment it exists, for
// the catalog (lineage's explanation), SQL and S3 alike, without a
// classification of its own; its inherited tags follow the source both
// ways (the source's PII tag and classification removed, then restored);
// a tag its owner set stays throughout.
//
// The table holds md5(email), a pseudonym the crawler does not detect as
// an e-mail address, so that every PII it carries is inherited: a plain
// copy of the addresses would also be tagged by the crawler's detection
// as its own (content-based), which rightly stays when the source's tag
// goes.
func TestSQLTableTagsFollowSources(t *testing.T) {
	s := start(t)
	carol, alice, bob := newCLI(t, s), newCLI(t, s), newCLI(t, s)
	carol.login("carol")
	alice.login("alice")
	bob.login("bob")
	carol.must(sqlTagPolicies, "policy", "apply", "-f", "-")

	const source = "s3://mortgages/retail/customers"
	eventually(t, "customers crawled and e-mail tagged PII", func() bool {
		d := showDataset(t, bob, source)
		c := d.Column("email")
		return c != nil && catalog.HasTag(c.Tags, catalog.TagPII) && d.Level() >= policy.C3
	})

	bob.must("", "sql", "-c", "CREATE TABLE home.bob.contacts AS SELECT customer_id, md5(email) AS contact_key, country_code FROM mortgages.retail.customers")
	copyKey := lineage.DatasetKey{Namespace: "s3://home", Name: "bob/contacts"}

	// At once, without waiting for any background sync.
	d := showDataset(t, bob, "s3://home/bob/contacts")
	if !slices.Equal(d.Owners, []string{"bob"}) || d.Classification != "" || len(d.Tags) != 0 || d.Column("contact_key") == nil {
		t.Errorf("catalog entry: owners %v, own classification %q, own tags %v, schema %+v", d.Owners, d.Classification, d.Tags, d.Schema)
	}
	explain := carol.must("", "lineage", "explain", "s3://home:bob/contacts")
	if !strings.Contains(explain, "s3://home:bob/contacts: C3") || !strings.Contains(explain, "PII") {
		t.Errorf("lineage explain at once:\n%s", explain)
	}
	wantEffective(t, s, copyKey, true)
	denied := func(what string, allowed bool) {
		t.Helper()
		if allowed {
			t.Errorf("%s: alice allowed, want denied", what)
		}
	}
	granted := func(what string, allowed bool) {
		t.Helper()
		if !allowed {
			t.Errorf("%s: alice denied, want allowed", what)
		}
	}
	sqlOK := func(c *steward, q string) bool {
		t.Helper()
		_, errs, code := c.run("", "sql", "-c", q, "--format", "csv")
		if code != 0 && !strings.Contains(errs, "42501") {
			t.Fatalf("%s: exit %d, not a permission error: %s", q, code, errs)
		}
		return code == 0
	}
	bobS3, aliceS3 := s3As(t, s, bob), s3As(t, s, alice)
	objKey := onlyKey(t, bobS3, "home", "bob/contacts/")
	getOK := func(c *s3.Client) bool {
		t.Helper()
		out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("home"), Key: aws.String(objKey)})
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "AccessDenied" {
			return false
		}
		if err != nil {
			t.Fatalf("GET %s: %v", objKey, err)
		}
		defer out.Body.Close()
		if _, err := io.Copy(io.Discard, out.Body); err != nil {
			t.Fatal(err)
		}
		return true
	}
	denied("SQL country_code at once", sqlOK(alice, "SELECT country_code FROM home.bob.contacts LIMIT 1"))
	denied("S3 GET at once", getOK(aliceS3))
	if !sqlOK(bob, "SELECT contact_key FROM home.bob.contacts LIMIT 1") || !getOK(bobS3) {
		t.Errorf("bob (mortgage line) cannot read his own table")
	}

	// The owner tags the table; that tag is the table's own.
	bob.must("", "dataset", "tag", "s3://home/bob/contacts", "campaign")
	eventually(t, "the owner's tag reaches lineage", func() bool {
		return hasPolicyTag(s, copyKey, "campaign")
	})

	// The source loses its PII tag and is reclassified C2: the copy
	// follows within the catalog-to-lineage sync.
	bob.must("", "dataset", "tag", source, "PII", "--column", "email", "--remove")
	bob.must("", "dataset", "edit", source, "--classification", "C2")
	eventually(t, "the copy's effective classification drops", func() bool {
		_, cls := s.Lineage().PolicyTags(copyKey)
		return cls < policy.C3 && !hasPolicyTag(s, copyKey, catalog.TagPII)
	})
	wantEffective(t, s, copyKey, false)
	granted("SQL contact_key after the source's PII went", sqlOK(alice, "SELECT contact_key FROM home.bob.contacts LIMIT 1"))
	granted("S3 GET after the source's PII went", getOK(aliceS3))
	if d := showDataset(t, bob, "s3://home/bob/contacts"); !catalog.HasTag(d.Tags, "campaign") || d.Classification != "" {
		t.Errorf("own tags after the drop: %v, own classification %q", d.Tags, d.Classification)
	}
	if !hasPolicyTag(s, copyKey, "campaign") {
		t.Errorf("the owner's tag is no longer effective")
	}

	// Restored: a table written now inherits at once (the write syncs the
	// source itself, whatever the background sync has done so far), and
	// the first copy goes back up.
	bob.must("", "dataset", "tag", source, "PII:type=email", "--column", "email")
	bob.must("", "dataset", "edit", source, "--classification", "C3")
	bob.must("", "sql", "-c", "CREATE TABLE home.bob.contacts2 AS SELECT md5(email) AS contact_key FROM mortgages.retail.customers")
	wantEffective(t, s, lineage.DatasetKey{Namespace: "s3://home", Name: "bob/contacts2"}, true)
	denied("SQL on the new copy at once", sqlOK(alice, "SELECT count(*) FROM home.bob.contacts2"))
	eventually(t, "the copy's effective classification rises again", func() bool {
		_, cls := s.Lineage().PolicyTags(copyKey)
		return cls >= policy.C3 && hasPolicyTag(s, copyKey, catalog.TagPII)
	})
	wantEffective(t, s, copyKey, true)
	denied("SQL country_code after the source's PII came back", sqlOK(alice, "SELECT country_code FROM home.bob.contacts LIMIT 1"))
	denied("S3 GET after the source's PII came back", getOK(aliceS3))
	if !hasPolicyTag(s, copyKey, "campaign") {
		t.Errorf("the owner's tag is no longer effective")
	}
	if d := showDataset(t, bob, "s3://home/bob/contacts"); d.Classification != "" {
		t.Errorf("the copy got a classification of its own: %q", d.Classification)
	}

	// INSERT: a table made from nothing sensitive is readable; rows
	// inserted from the e-mails make it C3 and PII at once, through the
	// INSERT's own lineage run, and its catalog entry still holds nothing
	// its owner did not set.
	bob.must("", "sql", "-c", "CREATE TABLE home.bob.keys AS SELECT 'none' AS contact_key FROM range(1)")
	keysKey := lineage.DatasetKey{Namespace: "s3://home", Name: "bob/keys"}
	granted("SQL on a table made from nothing sensitive", sqlOK(alice, "SELECT contact_key FROM home.bob.keys"))
	bob.must("", "sql", "-c", "INSERT INTO home.bob.keys SELECT md5(email) FROM mortgages.retail.customers")
	wantEffective(t, s, keysKey, true)
	denied("SQL after INSERT from the e-mails", sqlOK(alice, "SELECT contact_key FROM home.bob.keys"))
	if d := showDataset(t, bob, "s3://home/bob/keys"); d.Classification != "" || len(d.Tags) != 0 {
		t.Errorf("INSERT changed the table's own tags: %v, classification %q", d.Tags, d.Classification)
	}
}

// wantEffective checks the copy's effective tags as the S3 gateway and
// SQL see them: C3 with PII on contact_key through the column edge from
// customers.email when sensitive, neither otherwise.
func wantEffective(t *testing.T, s *server.Server, k lineage.DatasetKey, sensitive bool) {
	t.Helper()
	tags, cls := s.Lineage().PolicyTags(k)
	inh, _, err := s.Lineage().ColumnInheritedTags(context.Background(), k.Namespace, k.Name, "contact_key")
	if err != nil {
		t.Fatal(err)
	}
	fromEmail := false
	for _, it := range inh {
		if it.Name == catalog.TagPII && it.Origin.Name == "retail/customers" && it.OriginField == "email" {
			fromEmail = true
		}
	}
	if got := cls >= policy.C3 && fromEmail; got != sensitive {
		t.Errorf("%s: effective classification %v, tags %v, contact_key inherits %+v; want sensitive=%v", k.Name, cls, tags, inh, sensitive)
	}
	if !sensitive && cls >= policy.C3 {
		t.Errorf("%s still %v", k.Name, cls)
	}
}

func hasPolicyTag(s *server.Server, k lineage.DatasetKey, name string) bool {
	tags, _ := s.Lineage().PolicyTags(k)
	return slices.ContainsFunc(tags, func(t policy.Tag) bool { return t.Name == name })
}

func showDataset(t *testing.T, c *steward, ref string) *catalog.Dataset {
	t.Helper()
	var d catalog.Dataset
	out := c.must("", "dataset", "show", ref, "-o", "json")
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("dataset show %s: %v\n%s", ref, err, out)
	}
	return &d
}

// eventually polls cond until it holds; the bound is generous (the
// background syncs run every second) and is not a timing assertion.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i == 600 {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// s3As returns an S3 client with c's short-term credentials from
// Steward's STS (steward creds).
func s3As(t *testing.T, s *server.Server, c *steward) *s3.Client {
	t.Helper()
	var cr struct{ AccessKeyId, SecretAccessKey, SessionToken string }
	out := c.must("", "creds", "--no-cache", "--endpoint", s.S3URL())
	if err := json.Unmarshal([]byte(out), &cr); err != nil {
		t.Fatalf("creds: %v\n%s", err, out)
	}
	return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.S3URL()), UsePathStyle: true, RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(cr.AccessKeyId, cr.SecretAccessKey, cr.SessionToken)})
}

// onlyKey lists prefix in bucket and returns its one object's key.
func onlyKey(t *testing.T, c *s3.Client, bucket, prefix string) string {
	t.Helper()
	res, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Contents) != 1 {
		t.Fatalf("%d objects under %s/%s, want 1", len(res.Contents), bucket, prefix)
	}
	return aws.ToString(res.Contents[0].Key)
}
