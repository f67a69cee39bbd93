package s3api_test

import (
	"bytes"
	"context"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/s3api"
)

// TestMinioServiceAccountKey drives the gateway with minio-go over plain
// HTTP, where it signs every chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD),
// with a service account's long-lived access key.
func TestMinioServiceAccountKey(t *testing.T) {
	e := newEnv(t, s3api.Config{})
	ctx := context.Background()
	if err := e.ms.CreateGroup(ctx, &steward.Group{Name: "etl"}); err != nil {
		t.Fatal(err)
	}
	if err := e.ms.CreateServiceAccount(ctx, &steward.ServiceAccount{Name: "etl", Groups: []string{"etl"}}, "x"); err != nil {
		t.Fatal(err)
	}
	key, secret, err := e.sts.CreateAccessKey(ctx, "etl", "pipeline", "admin")
	if err != nil {
		t.Fatal(err)
	}
	// alice (analysts) makes the bucket and an object; etl can read and list.
	u, _ := url.Parse(e.plain.URL)
	am, err := minio.New(u.Host, &minio.Options{Creds: staticFrom(t, e.session("alice")), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := am.MakeBucket(ctx, "data", minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("MakeBucket: %v", err)
	}
	payload := bytes.Repeat([]byte("0123456789abcdef"), 10000)
	if _, err := am.PutObject(ctx, "data", "in/file.bin", bytes.NewReader(payload), int64(len(payload)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("PutObject (signed chunks): %v", err)
	}
	// Unknown size: minio-go uploads in parts.
	if _, err := am.PutObject(ctx, "data", "in/stream.bin", io.LimitReader(bytes.NewReader(payload), int64(len(payload))), -1, minio.PutObjectOptions{PartSize: 5 << 20}); err != nil {
		t.Fatalf("PutObject (unknown size): %v", err)
	}

	mc, err := minio.New(u.Host, &minio.Options{Creds: miniocreds.NewStaticV4(key.AccessKeyID, secret.Reveal(), ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := mc.GetObject(ctx, "data", "in/file.bin", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("GetObject as etl: %d bytes, %v", len(got), err)
	}
	var keys []string
	for o := range mc.ListObjects(ctx, "data", minio.ListObjectsOptions{Prefix: "in/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	if strings.Join(keys, ",") != "in/file.bin,in/stream.bin" {
		t.Errorf("ListObjects as etl: %v", keys)
	}
	// etl may not write.
	_, err = mc.PutObject(ctx, "data", "in/x", strings.NewReader("x"), 1, minio.PutObjectOptions{})
	if minio.ToErrorResponse(err).Code != "AccessDenied" {
		t.Errorf("PutObject as etl: %v", err)
	}
	if err := am.RemoveObject(ctx, "data", "in/stream.bin", minio.RemoveObjectOptions{}); err != nil {
		t.Errorf("RemoveObject: %v", err)
	}
	// Presigned GET with minio-go's signer.
	pu, err := mc.PresignedGetObject(ctx, "data", "in/file.bin", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.plain.Client().Get(pu.String())
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("minio presigned GET: %v %v", err, resp.Status)
	}
	resp.Body.Close()

	// A deleted key stops working (this replica drops it at once).
	if err := e.sts.DeleteAccessKey(ctx, key.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	_, err = mc.StatObject(ctx, "data", "in/file.bin", minio.StatObjectOptions{})
	if c := minio.ToErrorResponse(err).Code; c != "InvalidAccessKeyId" && c != "AccessDenied" {
		t.Errorf("deleted key: %v (%s)", err, c)
	}
}
