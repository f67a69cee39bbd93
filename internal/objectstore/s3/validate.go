package s3store

import (
	"encoding/base64"
	"net/netip"
	"sort"
	"strings"
	"unicode/utf8"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
)

var unsignedPayload = v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware

// validBucketName checks S3's bucket naming rules (the same rules as the
// embedded store, so both answer InvalidBucketName alike).
func validBucketName(name string) error {
	bad := func(why string) error {
		return objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidBucketName, "invalid bucket name: %s", why)
	}
	if len(name) < 3 || len(name) > 63 {
		return bad("must be 3 to 63 characters long")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return bad("only lower-case letters, digits, dots and hyphens are allowed")
		}
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	if !alnum(name[0]) || !alnum(name[len(name)-1]) {
		return bad("must begin and end with a letter or digit")
	}
	if strings.Contains(name, "..") || strings.Contains(name, ".-") || strings.Contains(name, "-.") {
		return bad("dots may not be adjacent to dots or hyphens")
	}
	if a, err := netip.ParseAddr(name); err == nil && a.Is4() {
		return bad("must not be formatted as an IP address")
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(name, p) {
			return bad("reserved prefix " + p)
		}
	}
	for _, sfx := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(name, sfx) {
			return bad("reserved suffix " + sfx)
		}
	}
	return nil
}

const maxKeyLen = 1024

func validKey(key string) error {
	if key == "" {
		return objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidArgument, "object key must not be empty")
	}
	if len(key) > maxKeyLen {
		return objectstore.Errorf(steward.EInvalid, objectstore.CodeKeyTooLong, "your key is too long (at most %d bytes)", maxKeyLen)
	}
	if !utf8.ValidString(key) || strings.IndexByte(key, 0) >= 0 {
		return objectstore.Errorf(steward.EInvalid, objectstore.CodeInvalidArgument, "object key must be valid UTF-8 without NUL")
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
