package objectstore

import (
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/stewardhq/steward"
)

// ValidBucketName checks a bucket name against S3's naming rules
// (InvalidBucketName).
func ValidBucketName(name string) error {
	bad := func(why string) error {
		return Errorf(steward.EInvalid, CodeInvalidBucketName, "invalid bucket name: %s", why)
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

// MaxKeyLen is the longest key S3 accepts, in bytes.
const MaxKeyLen = 1024

// ValidKey checks an object key: 1 to 1,024 bytes of UTF-8 without NUL
// (KeyTooLongError, InvalidArgument).
func ValidKey(key string) error {
	if key == "" {
		return Errorf(steward.EInvalid, CodeInvalidArgument, "object key must not be empty")
	}
	if len(key) > MaxKeyLen {
		return Errorf(steward.EInvalid, CodeKeyTooLong, "your key is too long (at most %d bytes)", MaxKeyLen)
	}
	if !utf8.ValidString(key) {
		return Errorf(steward.EInvalid, CodeInvalidArgument, "object key must be valid UTF-8")
	}
	if strings.IndexByte(key, 0) >= 0 {
		return Errorf(steward.EInvalid, CodeInvalidArgument, "object key must not contain NUL")
	}
	return nil
}

// URIEncode encodes s as S3 and SigV4 require: every byte but A-Z a-z 0-9
// - _ . ~ percent-encoded (upper-case hex); '/' is kept when keepSlash. The
// gateway's signature check and forward mode's requests both use it.
func URIEncode(s string, keepSlash bool) string {
	const hexd = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || (keepSlash && c == '/') {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexd[c>>4])
		b.WriteByte(hexd[c&15])
	}
	return b.String()
}
