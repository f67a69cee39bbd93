package s3store

import (
	"encoding/base64"
	"sort"
	"strings"
	"unicode/utf8"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
)

var unsignedPayload = v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware

// validBucketName and validKey apply the rules every store shares, so
// that both stores answer alike.
func validBucketName(name string) error { return objectstore.ValidBucketName(name) }

func validKey(key string) error {
	if err := objectstore.ValidKey(key); err != nil {
		return err
	}
	// A "." or ".." segment could be resolved by an upstream that treats
	// keys as paths (or by a proxy before it), so that the request lands
	// outside the bucket and key the gateway authorized: refused before
	// anything is sent (fail closed). The embedded store keeps such keys
	// literally.
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "." || seg == ".." {
			return objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidArgument, "object keys with \".\" or \"..\" path segments are not accepted by this gateway's upstream store")
		}
	}
	return nil
}

func validTags(tags map[string]string) error {
	if len(tags) > 10 {
		return objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidArgument, "object tags cannot be greater than 10")
	}
	for k, v := range tags {
		if k == "" || utf8.RuneCountInString(k) > 128 || utf8.RuneCountInString(v) > 256 || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidArgument, "the tag key or value is invalid")
		}
	}
	return nil
}

// checksumSizes are the raw sizes of the S3 checksum algorithms.
var checksumSizes = map[string]int{"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8, "SHA1": 20, "SHA256": 32}

func checkChecksums(sums map[string]string) error {
	for alg, v := range sums {
		n, ok := checksumSizes[alg]
		if !ok {
			return objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidArgument, "unknown checksum algorithm %q", alg)
		}
		raw, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(raw) != n {
			return objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidArgument, "value for x-amz-checksum-%s header is invalid", strings.ToLower(alg))
		}
	}
	return nil
}

func sortBuckets(b []objectstore.BucketInfo) {
	sort.Slice(b, func(i, j int) bool { return b[i].Name < b[j].Name })
}
