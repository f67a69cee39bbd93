// Command s3clean deletes every bucket except the ones named with -keep,
// with their objects, versions and unfinished multipart uploads, so that a
// failed compatibility test cannot make the next one fail. A test tool:
// never point it at data you want to keep.
//
// Usage: s3clean -endpoint URL -keep home,public,mortgages (keys in
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func main() {
	endpoint := flag.String("endpoint", "", "S3 endpoint URL")
	keep := flag.String("keep", "", "comma-separated buckets to keep")
	flag.Parse()
	c := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(*endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), ""),
	})
	if err := clean(context.Background(), c, strings.Split(*keep, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "s3clean:", err)
		os.Exit(1)
	}
}

func clean(ctx context.Context, c *s3.Client, keep []string) error {
	bs, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		return err
	}
	for _, b := range bs.Buckets {
		name := aws.ToString(b.Name)
		if slices.Contains(keep, name) {
			continue
		}
		ups, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: b.Name})
		if err == nil {
			for _, u := range ups.Uploads {
				c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: b.Name, Key: u.Key, UploadId: u.UploadId})
			}
		}
		var km, vm *string
		for {
			vs, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: b.Name, KeyMarker: km, VersionIdMarker: vm})
			if err != nil {
				break
			}
			var ids []types.ObjectIdentifier
			for _, v := range vs.Versions {
				ids = append(ids, types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
			}
			for _, d := range vs.DeleteMarkers {
				ids = append(ids, types.ObjectIdentifier{Key: d.Key, VersionId: d.VersionId})
			}
			for _, id := range ids {
				c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b.Name, Key: id.Key, VersionId: id.VersionId})
			}
			if !aws.ToBool(vs.IsTruncated) {
				break
			}
			km, vm = vs.NextKeyMarker, vs.NextVersionIdMarker
		}
		// Unversioned listing too, in case versions are not listed.
		for range 100 {
			ls, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b.Name})
			if err != nil || len(ls.Contents) == 0 {
				break
			}
			for _, o := range ls.Contents {
				c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b.Name, Key: o.Key})
			}
		}
		if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: b.Name}); err != nil {
			fmt.Fprintf(os.Stderr, "s3clean: %s: %v\n", name, err)
		}
	}
	return nil
}
