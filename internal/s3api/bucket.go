package s3api

import (
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stewardhq/steward/internal/objectstore"
	"github.com/stewardhq/steward/internal/policy"
)

type owner struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

type bucketXML struct {
	Name         string `xml:"Name"`
	CreationDate string `xml:"CreationDate"`
	BucketRegion string `xml:"BucketRegion,omitempty"`
}

type listAllMyBucketsResult struct {
	XMLName           xml.Name    `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListAllMyBucketsResult"`
	Owner             owner       `xml:"Owner"`
	Buckets           []bucketXML `xml:"Buckets>Bucket"`
	ContinuationToken string      `xml:"ContinuationToken,omitempty"`
	Prefix            string      `xml:"Prefix,omitempty"`
}

func s3Time(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (rc *reqCtx) owner() owner {
	return owner{ID: rc.principal.Username, DisplayName: rc.principal.Username}
}

// opListBuckets lists the buckets the principal may list; the others stay
// invisible. max-buckets pages by name (the continuation token is the
// last name shown, which the principal may see), prefix filters.
func opListBuckets(rc *reqCtx) error {
	q := rc.r.URL.Query()
	maxN := 10000
	if v := q.Get("max-buckets"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return errInvalidArgument.with("Argument max-buckets must be an integer between 1 and 10000.")
		}
		maxN = n
	}
	after := ""
	if t := q.Get("continuation-token"); t != "" {
		b, err := base64.RawURLEncoding.DecodeString(t)
		if err != nil || !utf8.Valid(b) {
			return errInvalidArgument.with("The continuation token provided is incorrect")
		}
		after = string(b)
	}
	prefix := q.Get("prefix")
	bs, err := rc.h.store.ListBuckets(rc.ctx)
	if err != nil {
		return err
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].Name < bs[j].Name })
	res := listAllMyBucketsResult{Owner: rc.owner(), Buckets: []bucketXML{}, Prefix: prefix}
	hidden := 0
	for _, b := range bs {
		if b.Name <= after || !strings.HasPrefix(b.Name, prefix) {
			continue
		}
		d, err := rc.decide("s3:ListBucket", policy.AccessList, b.Name, "")
		if err != nil {
			return err
		}
		if !d.Allowed {
			hidden++
			continue
		}
		if len(res.Buckets) == maxN {
			res.ContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(res.Buckets[maxN-1].Name))
			break
		}
		res.Buckets = append(res.Buckets, bucketXML{Name: b.Name, CreationDate: s3Time(b.Created), BucketRegion: rc.h.cfg.Region})
	}
	rc.decision = "allow"
	rc.details = map[string]any{"shown": len(res.Buckets), "hidden": hidden}
	return rc.writeXML(http.StatusOK, res)
}

type createBucketConfiguration struct {
	XMLName            xml.Name `xml:"CreateBucketConfiguration"`
	LocationConstraint string   `xml:"LocationConstraint"`
}

func opCreateBucket(rc *reqCtx) error {
	if err := rc.authorize("s3:CreateBucket", policy.AccessCreate, rc.bucket, ""); err != nil {
		return err
	}
	data, err := rc.readSmallBody(maxSmallXMLBody)
	if err != nil {
		return err
	}
	if len(data) > 0 {
		var c createBucketConfiguration
		if err := decodeXML(data, &c); err != nil {
			return err
		}
		if c.LocationConstraint != "" && c.LocationConstraint != rc.h.cfg.Region {
			return apiErr("InvalidLocationConstraint", 400, "The specified location-constraint is not valid")
		}
	}
	if err := rc.begin(); err != nil {
		return err
	}
	if err := rc.h.store.CreateBucket(rc.ctx, rc.bucket); err != nil {
		// In us-east-1 S3 answers 200 to creating a bucket one already
		// owns (BucketAlreadyOwnedByYou elsewhere).
		if toAPIError(err).Code != objectstore.CodeBucketExists || rc.h.cfg.Region != "us-east-1" {
			return err
		}
	}
	rc.w.Header().Set("Location", "/"+rc.bucket)
	rc.w.WriteHeader(http.StatusOK)
	return nil
}

func opHeadBucket(rc *reqCtx) error {
	if err := rc.authorize("s3:ListBucket", policy.AccessList, rc.bucket, ""); err != nil {
		return err
	}
	if _, err := rc.h.store.HeadBucket(rc.ctx, rc.bucket); err != nil {
		return err
	}
	rc.w.Header().Set("X-Amz-Bucket-Region", rc.h.cfg.Region)
	rc.w.WriteHeader(http.StatusOK)
	return nil
}

func opDeleteBucket(rc *reqCtx) error {
	if err := rc.authorize("s3:DeleteBucket", policy.AccessDelete, rc.bucket, ""); err != nil {
		return err
	}
	if err := rc.begin(); err != nil {
		return err
	}
	if err := rc.h.store.DeleteBucket(rc.ctx, rc.bucket); err != nil {
		return err
	}
	rc.w.WriteHeader(http.StatusNoContent)
	return nil
}

type locationConstraint struct {
	XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ LocationConstraint"`
	Value   string   `xml:",chardata"`
}

func opGetBucketLocation(rc *reqCtx) error {
	if err := rc.authorize("s3:GetBucketLocation", policy.AccessList, rc.bucket, ""); err != nil {
		return err
	}
	if _, err := rc.h.store.HeadBucket(rc.ctx, rc.bucket); err != nil {
		return err
	}
	v := rc.h.cfg.Region
	if v == "us-east-1" {
		v = ""
	}
	return rc.writeXML(http.StatusOK, locationConstraint{Value: v})
}

type versioningConfiguration struct {
	XMLName   xml.Name `xml:"VersioningConfiguration"`
	Xmlns     string   `xml:"xmlns,attr,omitempty"`
	Status    string   `xml:"Status,omitempty"`
	MfaDelete string   `xml:"MfaDelete,omitempty"`
}

func opGetBucketVersioning(rc *reqCtx) error {
	if err := rc.authorize("s3:GetBucketVersioning", policy.AccessAdmin, rc.bucket, ""); err != nil {
		return err
	}
	bi, err := rc.h.store.HeadBucket(rc.ctx, rc.bucket)
	if err != nil {
		return err
	}
	return rc.writeXML(http.StatusOK, versioningConfiguration{Xmlns: s3NS, Status: string(bi.Versioning)})
}

func opPutBucketVersioning(rc *reqCtx) error {
	if err := rc.authorize("s3:PutBucketVersioning", policy.AccessAdmin, rc.bucket, ""); err != nil {
		return err
	}
	data, err := rc.readSmallBody(maxSmallXMLBody)
	if err != nil {
		return err
	}
	var c versioningConfiguration
	if err := decodeXML(data, &c); err != nil {
		return err
	}
	var v objectstore.Versioning
	switch c.Status {
	case "Enabled":
		v = objectstore.VersioningEnabled
	case "Suspended":
		v = objectstore.VersioningSuspended
	default:
		return errIllegalVersioning
	}
	if c.MfaDelete == "Enabled" {
		return errNotImplemented.with("MFA delete is not supported.")
	}
	if err := rc.begin(); err != nil {
		return err
	}
	if err := rc.h.store.SetVersioning(rc.ctx, rc.bucket, v); err != nil {
		return err
	}
	rc.w.WriteHeader(http.StatusOK)
	return nil
}
