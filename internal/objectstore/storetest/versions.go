package storetest

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/objectstore"
)

type ver struct {
	key, body  string
	dm, latest bool
}

// versionsOf lists every version of the bucket in one call, with bodies.
func versionsOf(t *testing.T, s objectstore.Store, b string) ([]ver, []objectstore.ObjectInfo) {
	t.Helper()
	res, err := s.ListVersions(ctx, b, objectstore.ListVersionsOptions{})
	WantCode(t, err, "")
	var out []ver
	for _, v := range res.Versions {
		x := ver{key: v.Key, dm: v.DeleteMarker, latest: v.IsLatest}
		if !v.DeleteMarker {
			x.body, _ = Get(t, s, b, v.Key, objectstore.GetOptions{VersionID: v.VersionID})
		}
		out = append(out, x)
	}
	return out, res.Versions
}

func testVersioning(t *testing.T, s objectstore.Store) {
	b := NewBucket(t, s)
	WantCode(t, s.SetVersioning(ctx, b, objectstore.VersioningEnabled), "")
	v1 := Put(t, s, b, "k", "one", objectstore.PutOptions{})
	v2 := Put(t, s, b, "k", "two", objectstore.PutOptions{})
	if v1.VersionID == "" || v1.VersionID == "null" || v1.VersionID == v2.VersionID {
		t.Fatalf("version IDs %q %q", v1.VersionID, v2.VersionID)
	}
	if body, info := Get(t, s, b, "k", objectstore.GetOptions{}); body != "two" || info.VersionID != v2.VersionID || !info.IsLatest {
		t.Fatalf("latest = %q %+v", body, info)
	}
	if body, info := Get(t, s, b, "k", objectstore.GetOptions{VersionID: v1.VersionID}); body != "one" || info.IsLatest || info.VersionID != v1.VersionID {
		t.Fatalf("v1 = %q %+v", body, info)
	}
	del, err := s.Delete(ctx, b, "k", "")
	WantCode(t, err, "")
	if !del.DeleteMarker || del.VersionID == "" || del.VersionID == v2.VersionID {
		t.Fatalf("delete = %+v", del)
	}
	_, _, err = s.Get(ctx, b, "k", objectstore.GetOptions{})
	WantCode(t, err, objectstore.CodeNoSuchKey)
	_, err = s.Head(ctx, b, "k", objectstore.GetOptions{})
	WantCode(t, err, objectstore.CodeNoSuchKey)
	_, _, err = s.Get(ctx, b, "k", objectstore.GetOptions{VersionID: del.VersionID})
	WantCode(t, err, objectstore.CodeMethodNotAllowed)
	if l, _ := s.List(ctx, b, objectstore.ListOptions{}); len(l.Objects) != 0 {
		t.Fatalf("deleted key listed: %+v", l.Objects)
	}
	got, infos := versionsOf(t, s, b)
	want := []ver{{"k", "", true, true}, {"k", "two", false, false}, {"k", "one", false, false}}
	if !slices.Equal(got, want) {
		t.Fatalf("versions = %+v, want %+v", got, want)
	}
	if infos[0].VersionID != del.VersionID || infos[1].VersionID != v2.VersionID || infos[2].VersionID != v1.VersionID {
		t.Fatalf("version IDs out of order: %+v", infos)
	}
	// Removing the marker brings the object back.
	res, err := s.Delete(ctx, b, "k", del.VersionID)
	WantCode(t, err, "")
	if !res.DeleteMarker || res.VersionID != del.VersionID {
		t.Fatalf("delete marker removal = %+v", res)
	}
	if body, info := Get(t, s, b, "k", objectstore.GetOptions{}); body != "two" || !info.IsLatest {
		t.Fatalf("after marker removal: %q %+v", body, info)
	}
	// Removing the latest version promotes the previous one.
	res, err = s.Delete(ctx, b, "k", v2.VersionID)
	WantCode(t, err, "")
	if res.DeleteMarker || res.VersionID != v2.VersionID {
		t.Fatalf("version delete = %+v", res)
	}
	if body, info := Get(t, s, b, "k", objectstore.GetOptions{}); body != "one" || !info.IsLatest {
		t.Fatalf("after v2 removal: %q %+v", body, info)
	}
	_, _, err = s.Get(ctx, b, "k", objectstore.GetOptions{VersionID: v2.VersionID})
	WantCode(t, err, objectstore.CodeNoSuchVersion)
	_, err = s.Delete(ctx, b, "k", v1.VersionID)
	WantCode(t, err, "")
	_, err = s.Head(ctx, b, "k", objectstore.GetOptions{})
	WantCode(t, err, objectstore.CodeNoSuchKey)
	if got, _ := versionsOf(t, s, b); len(got) != 0 {
		t.Fatalf("versions left: %+v", got)
	}
	// Deleting a key that never existed still leaves a marker.
	res, err = s.Delete(ctx, b, "never", "")
	WantCode(t, err, "")
	if !res.DeleteMarker && !capsOf(s).NoMarkerForMissingKey {
		t.Fatalf("delete of missing key in versioned bucket = %+v", res)
	}
	_, err = s.ListVersions(ctx, "storetest-missing", objectstore.ListVersionsOptions{})
	WantCode(t, err, objectstore.CodeNoSuchBucket)
}

func testNullVersion(t *testing.T, s objectstore.Store) {
	b := NewBucket(t, s)
	pre := Put(t, s, b, "k", "pre", objectstore.PutOptions{})
	if pre.VersionID != "" {
		t.Fatalf("never-versioned bucket gave version %q", pre.VersionID)
	}
	WantCode(t, s.SetVersioning(ctx, b, objectstore.VersioningEnabled), "")
	if h := mustHead(t, s, b, "k", objectstore.GetOptions{}); h.VersionID != "null" && !(capsOf(s).NoNullVersionID && h.VersionID == "") {
		t.Fatalf("pre-versioning object has version %q, want null", h.VersionID)
	}
	v1 := Put(t, s, b, "k", "v1", objectstore.PutOptions{})
	if body, _ := Get(t, s, b, "k", objectstore.GetOptions{VersionID: "null"}); body != "pre" {
		t.Fatalf("null version = %q", body)
	}
	if got, _ := versionsOf(t, s, b); !slices.Equal(got, []ver{{"k", "v1", false, true}, {"k", "pre", false, false}}) {
		t.Fatalf("versions = %+v", got)
	}
	WantCode(t, s.SetVersioning(ctx, b, objectstore.VersioningSuspended), "")
	s1 := Put(t, s, b, "k", "s1", objectstore.PutOptions{})
	if s1.VersionID != "null" && !(capsOf(s).NoNullVersionID && s1.VersionID == "") {
		t.Fatalf("suspended put version %q", s1.VersionID)
	}
	// The new null version replaces the old one; v1 stays.
	if got, _ := versionsOf(t, s, b); !slices.Equal(got, []ver{{"k", "s1", false, true}, {"k", "v1", false, false}}) {
		t.Fatalf("versions = %+v", got)
	}
	Put(t, s, b, "k", "s2", objectstore.PutOptions{})
	if got, _ := versionsOf(t, s, b); !slices.Equal(got, []ver{{"k", "s2", false, true}, {"k", "v1", false, false}}) {
		t.Fatalf("versions = %+v", got)
	}
	res, err := s.Delete(ctx, b, "k", "")
	WantCode(t, err, "")
	if !res.DeleteMarker || (res.VersionID != "null" && !(capsOf(s).NoNullVersionID && res.VersionID == "")) {
		t.Fatalf("suspended delete = %+v", res)
	}
	if got, _ := versionsOf(t, s, b); !slices.Equal(got, []ver{{"k", "", true, true}, {"k", "v1", false, false}}) {
		t.Fatalf("versions = %+v", got)
	}
	_, err = s.Head(ctx, b, "k", objectstore.GetOptions{})
	WantCode(t, err, objectstore.CodeNoSuchKey)
	if body, _ := Get(t, s, b, "k", objectstore.GetOptions{VersionID: v1.VersionID}); body != "v1" {
		t.Fatalf("v1 = %q", body)
	}
}

func testListVersionsPaging(t *testing.T, s objectstore.Store) {
	for _, versioned := range []bool{false, true} {
		t.Run(fmt.Sprintf("versioned=%v", versioned), func(t *testing.T) {
			b := NewBucket(t, s)
			if versioned {
				WantCode(t, s.SetVersioning(ctx, b, objectstore.VersioningEnabled), "")
			}
			for i, k := range []string{"a", "a/b", "a", "b", "a/c", "a", "c", "a/b", "d/e/f"} {
				if k == "a" && capsOf(s).PathKeys {
					k = "a-" // "a" cannot be both a key and a directory
				}
				Put(t, s, b, k, fmt.Sprint(i), objectstore.PutOptions{})
			}
			if versioned {
				s.Delete(ctx, b, "b", "")
			}
			for _, delim := range []string{"", "/"} {
				full, err := s.ListVersions(ctx, b, objectstore.ListVersionsOptions{Delimiter: delim})
				WantCode(t, err, "")
				if full.IsTruncated {
					t.Fatal("full listing truncated")
				}
				want := flatVersions(full)
				if delim == "" && len(want) != map[bool]int{false: 6, true: 10}[versioned] {
					t.Fatalf("full listing %q", want)
				}
				for i := 1; i < len(full.Versions); i++ {
					p, c := full.Versions[i-1], full.Versions[i]
					if p.Key > c.Key || (p.Key == c.Key && c.IsLatest) {
						t.Fatalf("order: %q then %q", p.Key, c.Key)
					}
				}
				for _, max := range []int{1, 2, 3} {
					t.Run(fmt.Sprintf("d=%q/max=%d", delim, max), func(t *testing.T) {
						opts := objectstore.ListVersionsOptions{Delimiter: delim, MaxKeys: max}
						var got []string
						for pages := 0; ; pages++ {
							res, err := s.ListVersions(ctx, b, opts)
							WantCode(t, err, "")
							if n := len(res.Versions) + len(res.CommonPrefixes); n > max || (res.IsTruncated && n == 0) || pages > 50 {
								t.Fatalf("bad page of %d", n)
							}
							got = append(got, flatVersions(res)...)
							if !res.IsTruncated {
								break
							}
							opts.KeyMarker, opts.VersionIDMarker = res.NextKeyMarker, res.NextVersionIDMarker
						}
						if !slices.Equal(got, want) {
							t.Fatalf("\n got %q\nwant %q", got, want)
						}
					})
				}
			}
			res, err := s.ListVersions(ctx, b, objectstore.ListVersionsOptions{Prefix: "a/"})
			WantCode(t, err, "")
			for _, v := range res.Versions {
				if !strings.HasPrefix(v.Key, "a/") {
					t.Fatalf("prefix a/ listed %q", v.Key)
				}
			}
		})
	}
}

func flatVersions(res objectstore.ListVersionsResult) []string {
	var out []string
	vs := res.Versions
	cps := res.CommonPrefixes
	for len(vs) > 0 || len(cps) > 0 {
		if len(cps) == 0 || (len(vs) > 0 && vs[0].Key < cps[0]) {
			out = append(out, fmt.Sprintf("%s@%s/%v/%v", vs[0].Key, vs[0].VersionID, vs[0].DeleteMarker, vs[0].IsLatest))
			vs = vs[1:]
		} else {
			out = append(out, cps[0]+"|CP")
			cps = cps[1:]
		}
	}
	return out
}

func testTags(t *testing.T, s objectstore.Store) {
	b := NewBucket(t, s)
	Put(t, s, b, "k", "v", objectstore.PutOptions{Tags: map[string]string{"a": "1"}})
	tags, err := s.GetTags(ctx, b, "k", "")
	WantCode(t, err, "")
	if len(tags) != 1 || tags["a"] != "1" {
		t.Fatalf("tags = %v", tags)
	}
	WantCode(t, s.PutTags(ctx, b, "k", "", map[string]string{"b": "2", "class": "C3"}), "")
	tags, _ = s.GetTags(ctx, b, "k", "")
	if len(tags) != 2 || tags["b"] != "2" || tags["class"] != "C3" {
		t.Fatalf("tags = %v", tags)
	}
	if h := mustHead(t, s, b, "k", objectstore.GetOptions{}); h.Tags["class"] != "C3" {
		t.Fatalf("Head tags = %v", h.Tags)
	}
	WantCode(t, s.PutTags(ctx, b, "k", "", map[string]string{}), "")
	tags, _ = s.GetTags(ctx, b, "k", "")
	if len(tags) != 0 {
		t.Fatalf("cleared tags = %v", tags)
	}
	tooMany := map[string]string{}
	for i := range 11 {
		tooMany[fmt.Sprint(i)] = "v"
	}
	cases := []struct {
		name, bucket, key, version string
		tags                       map[string]string
		code                       string
	}{
		{"no such bucket", "storetest-missing", "k", "", nil, objectstore.CodeNoSuchBucket},
		{"no such key", b, "nothing", "", nil, objectstore.CodeNoSuchKey},
		{"no such version", b, "k", "v-missing", nil, objectstore.CodeNoSuchVersion},
		{"too many tags", b, "k", "", tooMany, objectstore.CodeInvalidArgument},
		{"empty tag key", b, "k", "", map[string]string{"": "v"}, objectstore.CodeInvalidArgument},
		{"tag key too long", b, "k", "", map[string]string{strings.Repeat("k", 129): "v"}, objectstore.CodeInvalidArgument},
		{"tag value too long", b, "k", "", map[string]string{"k": strings.Repeat("v", 257)}, objectstore.CodeInvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tags := c.tags
			if tags == nil {
				tags = map[string]string{"x": "y"}
			}
			WantCode(t, s.PutTags(ctx, c.bucket, c.key, c.version, tags), c.code)
			if c.tags == nil {
				_, err := s.GetTags(ctx, c.bucket, c.key, c.version)
				WantCode(t, err, c.code)
			}
		})
	}
	vb := NewBucket(t, s)
	WantCode(t, s.SetVersioning(ctx, vb, objectstore.VersioningEnabled), "")
	v1 := Put(t, s, vb, "k", "1", objectstore.PutOptions{})
	Put(t, s, vb, "k", "2", objectstore.PutOptions{Tags: map[string]string{"new": "yes"}})
	WantCode(t, s.PutTags(ctx, vb, "k", v1.VersionID, map[string]string{"old": "yes"}), "")
	if tags, _ := s.GetTags(ctx, vb, "k", v1.VersionID); tags["old"] != "yes" || len(tags) != 1 {
		t.Fatalf("v1 tags = %v", tags)
	}
	if tags, _ := s.GetTags(ctx, vb, "k", ""); tags["new"] != "yes" || len(tags) != 1 {
		t.Fatalf("latest tags = %v", tags)
	}
	del, _ := s.Delete(ctx, vb, "k", "")
	_, err = s.GetTags(ctx, vb, "k", "")
	WantCode(t, err, objectstore.CodeNoSuchKey)
	_, err = s.GetTags(ctx, vb, "k", del.VersionID)
	WantCode(t, err, objectstore.CodeMethodNotAllowed)
	WantCode(t, s.PutTags(ctx, vb, "k", del.VersionID, map[string]string{"a": "b"}), objectstore.CodeMethodNotAllowed)
}

func md5hex(r io.Reader) string {
	h := md5.New()
	io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil))
}

func uploadPart(t *testing.T, s objectstore.Store, b, k, id string, n int, r io.Reader, size int64) objectstore.Part {
	t.Helper()
	p, err := s.UploadPart(ctx, b, k, id, n, r, size, objectstore.PutOptions{})
	if err != nil {
		t.Fatalf("UploadPart %d: %v", n, err)
	}
	return p
}

const mib = 1 << 20

func testMultipart(t *testing.T, s objectstore.Store) {
	b := NewBucket(t, s)
	u, err := s.CreateMultipart(ctx, b, "mp/obj", objectstore.PutOptions{ContentType: "application/x-test", Metadata: map[string]string{"m": "1"}, Tags: map[string]string{"t": "2"}})
	WantCode(t, err, "")
	if u.UploadID == "" || u.Key != "mp/obj" || u.Bucket != b {
		t.Fatalf("upload = %+v", u)
	}
	p1 := uploadPart(t, s, b, "mp/obj", u.UploadID, 1, Body(1, 5*mib), 5*mib)
	p2 := uploadPart(t, s, b, "mp/obj", u.UploadID, 2, strings.NewReader("tail"), 4)
	if p1.ETag != BodyMD5(1, 5*mib) || p1.Size != 5*mib || p2.ETag != etagOf("tail") || p1.Number != 1 {
		t.Fatalf("parts %+v %+v", p1, p2)
	}
	parts, trunc, err := s.ListParts(ctx, b, "mp/obj", u.UploadID, 0, 0)
	WantCode(t, err, "")
	if trunc || len(parts) != 2 || parts[0].ETag != p1.ETag || parts[1].Size != 4 {
		t.Fatalf("ListParts = %+v %v", parts, trunc)
	}
	if parts, trunc, _ = s.ListParts(ctx, b, "mp/obj", u.UploadID, 0, 1); !trunc || len(parts) != 1 || parts[0].Number != 1 {
		t.Fatalf("ListParts max 1 = %+v %v", parts, trunc)
	}
	if parts, trunc, _ = s.ListParts(ctx, b, "mp/obj", u.UploadID, 1, 0); trunc || len(parts) != 1 || parts[0].Number != 2 {
		t.Fatalf("ListParts after 1 = %+v %v", parts, trunc)
	}
	for _, c := range []struct {
		prefix string
		n      int
	}{{"", 1}, {"mp/", 1}, {"mp/obj", 1}, {"x", 0}} {
		ups, err := s.ListUploads(ctx, b, objectstore.ListUploadsOptions{Prefix: c.prefix})
		WantCode(t, err, "")
		if len(ups) != c.n || (c.n == 1 && (ups[0].UploadID != u.UploadID || ups[0].Key != "mp/obj")) {
			t.Fatalf("ListUploads(%q) = %+v", c.prefix, ups)
		}
	}
	if _, err := s.Head(ctx, b, "mp/obj", objectstore.GetOptions{}); err == nil {
		t.Fatal("incomplete upload visible")
	}
	info, err := s.CompleteMultipart(ctx, b, "mp/obj", u.UploadID, []objectstore.CompletePart{{Number: 1, ETag: p1.ETag}, {Number: 2, ETag: strings.Trim(p2.ETag, `"`)}})
	WantCode(t, err, "")
	h := md5.New()
	for _, p := range []objectstore.Part{p1, p2} {
		raw, _ := hex.DecodeString(strings.Trim(p.ETag, `"`))
		h.Write(raw)
	}
	wantETag := fmt.Sprintf(`"%x-2"`, h.Sum(nil))
	if info.ETag != wantETag || info.Size != 5*mib+4 {
		t.Fatalf("complete info = %+v, want ETag %s", info, wantETag)
	}
	rc, gi, err := s.Get(ctx, b, "mp/obj", objectstore.GetOptions{})
	WantCode(t, err, "")
	got := md5hex(rc)
	rc.Close()
	if want := md5hex(io.MultiReader(Body(1, 5*mib), strings.NewReader("tail"))); got != want {
		t.Fatalf("assembled body md5 %s, want %s", got, want)
	}
	if gi.ETag != wantETag || gi.ContentType != "application/x-test" || gi.Metadata["m"] != "1" || gi.Tags["t"] != "2" {
		t.Fatalf("assembled info = %+v", gi)
	}
	if ups, _ := s.ListUploads(ctx, b, objectstore.ListUploadsOptions{}); len(ups) != 0 {
		t.Fatalf("upload still listed: %+v", ups)
	}
	// Completing again with the same parts answers the same result (a
	// client that lost the first answer retries), as S3 does.
	again, err := s.CompleteMultipart(ctx, b, "mp/obj", u.UploadID, []objectstore.CompletePart{{Number: 1, ETag: p1.ETag}, {Number: 2, ETag: p2.ETag}})
	if !capsOf(s).LaxUploadIDs || err == nil {
		WantCode(t, err, "")
		if again.ETag != wantETag {
			t.Fatalf("repeated completion ETag %s, want %s", again.ETag, wantETag)
		}
	}
	_, _, err = s.ListParts(ctx, b, "mp/obj", u.UploadID, 0, 0)
	WantCode(t, err, objectstore.CodeNoSuchUpload)
	_, err = s.CompleteMultipart(ctx, b, "mp/obj", u.UploadID, []objectstore.CompletePart{{Number: 1, ETag: p1.ETag}})
	if !capsOf(s).LaxUploadIDs || err != nil {
		WantCode(t, err, objectstore.CodeNoSuchUpload)
	}

	// Re-uploading a part number replaces it; one small part is fine.
	u2, _ := s.CreateMultipart(ctx, b, "single", objectstore.PutOptions{})
	uploadPart(t, s, b, "single", u2.UploadID, 3, strings.NewReader("x"), 1)
	py := uploadPart(t, s, b, "single", u2.UploadID, 3, strings.NewReader("yy"), 2)
	if parts, _, _ := s.ListParts(ctx, b, "single", u2.UploadID, 0, 0); len(parts) != 1 || parts[0].ETag != py.ETag {
		t.Fatalf("replaced part: %+v", parts)
	}
	_, err = s.CompleteMultipart(ctx, b, "single", u2.UploadID, []objectstore.CompletePart{{Number: 3, ETag: py.ETag}})
	WantCode(t, err, "")
	if body, _ := Get(t, s, b, "single", objectstore.GetOptions{}); body != "yy" {
		t.Fatalf("single = %q", body)
	}

	// Abort.
	u3, _ := s.CreateMultipart(ctx, b, "aborted", objectstore.PutOptions{})
	uploadPart(t, s, b, "aborted", u3.UploadID, 1, strings.NewReader("zzz"), 3)
	WantCode(t, s.AbortMultipart(ctx, b, "aborted", u3.UploadID), "")
	WantCode(t, s.AbortMultipart(ctx, b, "aborted", u3.UploadID), objectstore.CodeNoSuchUpload)
	_, _, err = s.ListParts(ctx, b, "aborted", u3.UploadID, 0, 0)
	WantCode(t, err, objectstore.CodeNoSuchUpload)
	_, err = s.UploadPart(ctx, b, "aborted", u3.UploadID, 2, strings.NewReader("a"), 1, objectstore.PutOptions{})
	if !capsOf(s).LaxUploadIDs || err != nil {
		WantCode(t, err, objectstore.CodeNoSuchUpload)
	}
	_, err = s.Head(ctx, b, "aborted", objectstore.GetOptions{})
	WantCode(t, err, objectstore.CodeNoSuchKey)
}

func testMultipartErrors(t *testing.T, s objectstore.Store) {
	b := NewBucket(t, s)
	_, err := s.CreateMultipart(ctx, "storetest-missing", "k", objectstore.PutOptions{})
	WantCode(t, err, objectstore.CodeNoSuchBucket)
	_, err = s.CreateMultipart(ctx, b, strings.Repeat("k", 1025), objectstore.PutOptions{})
	WantCode(t, err, objectstore.CodeKeyTooLong)
	_, err = s.ListUploads(ctx, "storetest-missing", objectstore.ListUploadsOptions{})
	WantCode(t, err, objectstore.CodeNoSuchBucket)

	u, err := s.CreateMultipart(ctx, b, "k", objectstore.PutOptions{})
	WantCode(t, err, "")
	small := uploadPart(t, s, b, "k", u.UploadID, 1, strings.NewReader("small"), 5)
	big := uploadPart(t, s, b, "k", u.UploadID, 2, Body(2, 5*mib), 5*mib)
	last := uploadPart(t, s, b, "k", u.UploadID, 3, strings.NewReader("end"), 3)
	badMD5 := md5.Sum([]byte("nope"))

	partCases := []struct {
		name, key, id string
		n             int
		opts          objectstore.PutOptions
		code          string
	}{
		{"part 0", "k", u.UploadID, 0, objectstore.PutOptions{}, objectstore.CodeInvalidArgument},
		{"part 10001", "k", u.UploadID, 10001, objectstore.PutOptions{}, objectstore.CodeInvalidArgument},
		{"unknown upload", "k", "no-such-upload", 1, objectstore.PutOptions{}, objectstore.CodeNoSuchUpload},
		{"other key", "other", u.UploadID, 1, objectstore.PutOptions{}, objectstore.CodeNoSuchUpload},
		{"bad content-md5", "k", u.UploadID, 9, objectstore.PutOptions{ContentMD5: badMD5[:]}, objectstore.CodeBadDigest},
		{"part 10000", "k", u.UploadID, 10000, objectstore.PutOptions{}, ""},
	}
	for _, c := range partCases {
		t.Run("UploadPart/"+c.name, func(t *testing.T) {
			_, err := s.UploadPart(ctx, b, c.key, c.id, c.n, strings.NewReader("data"), 4, c.opts)
			WantCode(t, err, c.code)
		})
	}
	completeCases := []struct {
		name  string
		id    string
		parts []objectstore.CompletePart
		code  string
	}{
		{"no parts", u.UploadID, nil, objectstore.CodeInvalidArgument},
		{"unknown upload", "no-such-upload", []objectstore.CompletePart{{Number: 2, ETag: big.ETag}}, objectstore.CodeNoSuchUpload},
		{"wrong etag", u.UploadID, []objectstore.CompletePart{{Number: 2, ETag: `"0123"`}, {Number: 3, ETag: last.ETag}}, objectstore.CodeInvalidPart},
		{"missing part", u.UploadID, []objectstore.CompletePart{{Number: 2, ETag: big.ETag}, {Number: 4, ETag: last.ETag}}, objectstore.CodeInvalidPart},
		{"descending", u.UploadID, []objectstore.CompletePart{{Number: 3, ETag: last.ETag}, {Number: 2, ETag: big.ETag}}, objectstore.CodeInvalidPartOrder},
		{"duplicate", u.UploadID, []objectstore.CompletePart{{Number: 2, ETag: big.ETag}, {Number: 2, ETag: big.ETag}}, objectstore.CodeInvalidPartOrder},
		{"small part not last", u.UploadID, []objectstore.CompletePart{{Number: 1, ETag: small.ETag}, {Number: 2, ETag: big.ETag}}, objectstore.CodeEntityTooSmall},
	}
	for _, c := range completeCases {
		t.Run("Complete/"+c.name, func(t *testing.T) {
			_, err := s.CompleteMultipart(ctx, b, "k", c.id, c.parts)
			WantCode(t, err, c.code)
		})
	}
	_, err = s.Head(ctx, b, "k", objectstore.GetOptions{})
	WantCode(t, err, objectstore.CodeNoSuchKey)
	_, _, err = s.ListParts(ctx, b, "k", u.UploadID, -1, 0)
	WantCode(t, err, objectstore.CodeInvalidArgument)
	// A failed completion leaves the upload usable; unlisted parts are dropped.
	info, err := s.CompleteMultipart(ctx, b, "k", u.UploadID, []objectstore.CompletePart{{Number: 2, ETag: big.ETag}, {Number: 3, ETag: last.ETag}})
	WantCode(t, err, "")
	if info.Size != 5*mib+3 || !strings.HasSuffix(info.ETag, `-2"`) {
		t.Fatalf("info = %+v", info)
	}
	WantCode(t, s.AbortMultipart(ctx, b, "k", "no-such-upload"), objectstore.CodeNoSuchUpload)
	WantCode(t, s.AbortMultipart(ctx, "storetest-missing", "k", u.UploadID), objectstore.CodeNoSuchBucket)
}

// testListUploadsMarkers pages through uploads with key and upload-id
// markers, as ListMultipartUploads does.
func testListUploadsMarkers(t *testing.T, s objectstore.Store) {
	b := NewBucket(t, s)
	ids := map[string][]string{}
	for _, k := range []string{"a", "a", "b", "c/d"} {
		u, err := s.CreateMultipart(ctx, b, k, objectstore.PutOptions{})
		WantCode(t, err, "")
		ids[k] = append(ids[k], u.UploadID)
		t.Cleanup(func() { s.AbortMultipart(ctx, b, k, u.UploadID) })
	}
	keys := func(ups []objectstore.Upload) string {
		var out []string
		for _, u := range ups {
			out = append(out, u.Key)
		}
		return strings.Join(out, ",")
	}
	first, err := s.ListUploads(ctx, b, objectstore.ListUploadsOptions{MaxUploads: 1})
	WantCode(t, err, "")
	if keys(first) != "a" {
		t.Fatalf("first page = %s", keys(first))
	}
	if !capsOf(s).NoUploadIDMarker {
		rest, err := s.ListUploads(ctx, b, objectstore.ListUploadsOptions{KeyMarker: "a", UploadIDMarker: first[0].UploadID})
		WantCode(t, err, "")
		if keys(rest) != "a,b,c/d" || rest[0].UploadID == first[0].UploadID {
			t.Fatalf("after %s/%s = %+v", "a", first[0].UploadID, rest)
		}
	}
	for _, c := range []struct {
		opts objectstore.ListUploadsOptions
		want string
	}{
		{objectstore.ListUploadsOptions{KeyMarker: "a"}, "b,c/d"},
		{objectstore.ListUploadsOptions{KeyMarker: "b", Prefix: "c/"}, "c/d"},
		{objectstore.ListUploadsOptions{KeyMarker: "c/d"}, ""},
		{objectstore.ListUploadsOptions{MaxUploads: 3}, "a,a,b"},
	} {
		got, err := s.ListUploads(ctx, b, c.opts)
		WantCode(t, err, "")
		if keys(got) != c.want {
			t.Errorf("ListUploads(%+v) = %s, want %s", c.opts, keys(got), c.want)
		}
	}
}
