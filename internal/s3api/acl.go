package s3api

import (
	"encoding/xml"
	"net/http"
	"strings"

	"github.com/stewardhq/steward/internal/objectstore"
	"github.com/stewardhq/steward/internal/policy"
)

// Steward decides access with policies, not ACLs. The ACL operations are
// answered for the clients that call them anyway: a GET describes what is
// true (the owner has full control and nobody else is granted anything by
// an ACL), and a PUT accepts only the "private" canned ACL, which says the
// same; any other grant is refused (AccessControlListNotSupported, as S3
// answers when a bucket's ACLs are disabled) rather than silently ignored.

type grantee struct {
	XMLNS       string `xml:"xmlns:xsi,attr"`
	Type        string `xml:"xsi:type,attr"`
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

type grant struct {
	Grantee    grantee `xml:"Grantee"`
	Permission string  `xml:"Permission"`
}

type accessControlPolicy struct {
	XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ AccessControlPolicy"`
	Owner   owner    `xml:"Owner"`
	Grants  []grant  `xml:"AccessControlList>Grant"`
}

func (rc *reqCtx) privateACL() accessControlPolicy {
	o := rc.owner()
	return accessControlPolicy{Owner: o, Grants: []grant{{
		Grantee:    grantee{XMLNS: "http://www.w3.org/2001/XMLSchema-instance", Type: "CanonicalUser", ID: o.ID, DisplayName: o.DisplayName},
		Permission: "FULL_CONTROL",
	}}}
}

// errACLNotSupported is what S3 answers for a bucket whose ACLs are
// disabled (object ownership "bucket owner enforced"), which is Steward's
// case.
var errACLNotSupported = apiErr("AccessControlListNotSupported", 400, "The bucket does not allow ACLs.")

// checkPrivateACL accepts a PUT ?acl that asks for nothing but "private".
func (rc *reqCtx) checkPrivateACL() error {
	for k := range rc.r.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-grant-") {
			return errACLNotSupported
		}
	}
	if a := rc.r.Header.Get("X-Amz-Acl"); a != "" && a != "private" {
		return errACLNotSupported
	}
	data, err := rc.readSmallBody(maxSmallXMLBody)
	if err != nil {
		return err
	}
	if len(data) == 0 {
		if rc.r.Header.Get("X-Amz-Acl") == "" {
			return errMalformedACL
		}
		return nil
	}
	var p accessControlPolicy
	if err := decodeXML(data, &p); err != nil {
		return errMalformedACL.wrap(err)
	}
	o := rc.owner()
	for _, g := range p.Grants {
		if g.Permission != "FULL_CONTROL" || g.Grantee.ID != o.ID {
			return errACLNotSupported
		}
	}
	return nil
}

var errMalformedACL = apiErr("MalformedACLError", 400, "The XML you provided was not well-formed or did not validate against our published schema.")

func opGetObjectACL(rc *reqCtx) error {
	if err := rc.authorize("s3:GetObjectAcl", policy.AccessRead, rc.bucket, rc.key); err != nil {
		return err
	}
	v := rc.r.URL.Query().Get("versionId")
	info, err := rc.h.store.Head(rc.ctx, rc.bucket, rc.key, objectstore.GetOptions{VersionID: v})
	if err != nil {
		readErrorHeaders(rc, info, err)
		return err
	}
	setVersionHeader(rc.w.Header(), v)
	return rc.writeXML(http.StatusOK, rc.privateACL())
}

func opPutObjectACL(rc *reqCtx) error {
	if err := rc.authorize("s3:PutObjectAcl", policy.AccessWrite, rc.bucket, rc.key); err != nil {
		return err
	}
	if err := rc.checkPrivateACL(); err != nil {
		return err
	}
	v := rc.r.URL.Query().Get("versionId")
	info, err := rc.h.store.Head(rc.ctx, rc.bucket, rc.key, objectstore.GetOptions{VersionID: v})
	if err != nil {
		readErrorHeaders(rc, info, err)
		return err
	}
	setVersionHeader(rc.w.Header(), v)
	rc.w.WriteHeader(http.StatusOK)
	return nil
}

func opGetBucketACL(rc *reqCtx) error {
	if err := rc.authorize("s3:GetBucketAcl", policy.AccessList, rc.bucket, ""); err != nil {
		return err
	}
	if _, err := rc.h.store.HeadBucket(rc.ctx, rc.bucket); err != nil {
		return err
	}
	return rc.writeXML(http.StatusOK, rc.privateACL())
}

func opPutBucketACL(rc *reqCtx) error {
	if err := rc.authorize("s3:PutBucketAcl", policy.AccessAdmin, rc.bucket, ""); err != nil {
		return err
	}
	if err := rc.checkPrivateACL(); err != nil {
		return err
	}
	if _, err := rc.h.store.HeadBucket(rc.ctx, rc.bucket); err != nil {
		return err
	}
	rc.w.WriteHeader(http.StatusOK)
	return nil
}
