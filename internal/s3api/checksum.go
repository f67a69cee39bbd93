package s3api

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"net/http"
	"strings"
)

// The checksum algorithms S3 defines, as objectstore names them.
var checksumAlgs = []string{"CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"}

// crc64NVMETable is the reflected CRC-64/NVME polynomial (0xad93d23594c93659).
var crc64NVMETable = crc64.MakeTable(0x9a6c9329ac4bc9b5)

var crc32cTable = crc32.MakeTable(crc32.Castagnoli)

// newChecksum returns a hash for alg, or nil for an unknown one.
func newChecksum(alg string) hash.Hash {
	switch alg {
	case "CRC32":
		return crc32.NewIEEE()
	case "CRC32C":
		return crc32.New(crc32cTable)
	case "CRC64NVME":
		return crc64.New(crc64NVMETable)
	case "SHA1":
		return sha1.New()
	case "SHA256":
		return sha256.New()
	}
	return nil
}

// checksumLen is the raw length of alg's digest.
func checksumLen(alg string) int {
	switch alg {
	case "CRC32", "CRC32C":
		return 4
	case "CRC64NVME":
		return 8
	case "SHA1":
		return 20
	case "SHA256":
		return 32
	}
	return 0
}

// checksumHeader is the header carrying alg: "x-amz-checksum-crc32".
func checksumHeader(alg string) string { return "x-amz-checksum-" + strings.ToLower(alg) }

// algOfHeader returns the algorithm a checksum header names, or "".
func algOfHeader(h string) string {
	a, ok := strings.CutPrefix(strings.ToLower(h), "x-amz-checksum-")
	if !ok {
		return ""
	}
	a = strings.ToUpper(a)
	if newChecksum(a) == nil {
		return ""
	}
	return a
}

// validChecksumValue reports whether v is the base64 of a digest of alg.
func validChecksumValue(alg, v string) bool {
	b, err := base64.StdEncoding.DecodeString(v)
	return err == nil && len(b) == checksumLen(alg)
}

// headerChecksums returns the checksums sent as request headers, checked
// for form. The values are verified against the body by the store.
func headerChecksums(h http.Header) (map[string]string, error) {
	var out map[string]string
	for _, alg := range checksumAlgs {
		v := h.Get(checksumHeader(alg))
		if v == "" {
			continue
		}
		if !validChecksumValue(alg, v) {
			return nil, errInvalidChecksum.with("Value for " + checksumHeader(alg) + " header is invalid.")
		}
		if out == nil {
			out = map[string]string{}
		}
		out[alg] = v
	}
	if len(out) > 1 {
		return nil, errInvalidRequest.with("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
	}
	return out, nil
}
