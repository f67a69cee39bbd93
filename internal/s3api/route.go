package s3api

import (
	"net/http"
	"net/url"
)

type opFunc func(rc *reqCtx) error

// unsupported are sub-resources Steward does not implement; asking for
// them is NotImplemented rather than a silent fall-through to another
// operation.
var unsupported = []string{
	"policy", "policyStatus", "cors", "lifecycle", "website", "encryption", "logging",
	"notification", "replication", "requestPayment", "object-lock", "retention", "legal-hold",
	"ownershipControls", "publicAccessBlock", "accelerate", "analytics", "inventory", "metrics",
	"intelligent-tiering", "restore", "select", "torrent", "attributes", "session", "renameObject",
}

// route picks the operation for a request. It always names the operation
// (for audit); the function is nil when the operation is not implemented.
func route(method, bucket, key string, q url.Values, h http.Header) (string, opFunc) {
	for _, s := range unsupported {
		if q.Has(s) {
			return "Unsupported:" + s, nil
		}
	}
	if q.Has("acl") && bucket != "" {
		return routeACL(method, key)
	}
	if bucket == "" {
		if method == http.MethodGet {
			return "ListBuckets", opListBuckets
		}
		return "Unknown", nil
	}
	if key == "" {
		switch method {
		case http.MethodPut:
			switch {
			case q.Has("versioning"):
				return "PutBucketVersioning", opPutBucketVersioning
			case q.Has("tagging"):
				return "PutBucketTagging", nil
			}
			return "CreateBucket", opCreateBucket
		case http.MethodGet:
			switch {
			case q.Has("location"):
				return "GetBucketLocation", opGetBucketLocation
			case q.Has("versioning"):
				return "GetBucketVersioning", opGetBucketVersioning
			case q.Has("versions"):
				return "ListObjectVersions", opListObjectVersions
			case q.Has("uploads"):
				return "ListMultipartUploads", opListMultipartUploads
			case q.Has("tagging"):
				return "GetBucketTagging", nil
			case q.Get("list-type") == "2":
				return "ListObjectsV2", opListObjectsV2
			}
			return "ListObjects", opListObjects
		case http.MethodHead:
			return "HeadBucket", opHeadBucket
		case http.MethodDelete:
			if q.Has("tagging") {
				return "DeleteBucketTagging", nil
			}
			return "DeleteBucket", opDeleteBucket
		case http.MethodPost:
			if q.Has("delete") {
				return "DeleteObjects", opDeleteObjects
			}
			return "PostObject", nil
		}
		return "Unknown", nil
	}
	switch method {
	case http.MethodPut:
		switch {
		case q.Has("tagging"):
			return "PutObjectTagging", opPutObjectTagging
		case q.Has("uploadId") || q.Has("partNumber"):
			if h.Get("X-Amz-Copy-Source") != "" {
				return "UploadPartCopy", opUploadPartCopy
			}
			return "UploadPart", opUploadPart
		case h.Get("X-Amz-Copy-Source") != "":
			return "CopyObject", opCopyObject
		}
		return "PutObject", opPutObject
	case http.MethodGet:
		switch {
		case q.Has("tagging"):
			return "GetObjectTagging", opGetObjectTagging
		case q.Has("uploadId"):
			return "ListParts", opListParts
		}
		return "GetObject", opGetObject
	case http.MethodHead:
		return "HeadObject", opHeadObject
	case http.MethodDelete:
		switch {
		case q.Has("tagging"):
			return "DeleteObjectTagging", opDeleteObjectTagging
		case q.Has("uploadId"):
			return "AbortMultipartUpload", opAbortMultipartUpload
		}
		return "DeleteObject", opDeleteObject
	case http.MethodPost:
		switch {
		case q.Has("uploads"):
			return "CreateMultipartUpload", opCreateMultipartUpload
		case q.Has("uploadId"):
			return "CompleteMultipartUpload", opCompleteMultipartUpload
		}
		return "PostObject", nil
	}
	return "Unknown", nil
}

// routeACL routes ?acl (see acl.go).
func routeACL(method, key string) (string, opFunc) {
	switch {
	case method == http.MethodGet && key == "":
		return "GetBucketAcl", opGetBucketACL
	case method == http.MethodPut && key == "":
		return "PutBucketAcl", opPutBucketACL
	case method == http.MethodGet:
		return "GetObjectAcl", opGetObjectACL
	case method == http.MethodPut:
		return "PutObjectAcl", opPutObjectACL
	}
	return "Unsupported:acl", nil
}
