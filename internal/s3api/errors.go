package s3api

import (
	"encoding/xml"
	"errors"
	"net/http"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/objectstore"
)

// APIError is an S3 error: a code, a caller-safe message and an HTTP status.
type APIError struct {
	Code    string
	Message string
	Status  int
	// Err is internal detail for logs; never sent.
	Err error
}

func (e *APIError) Error() string {
	s := e.Code + ": " + e.Message
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *APIError) Unwrap() error { return e.Err }

func apiErr(code string, status int, msg string) *APIError {
	return &APIError{Code: code, Message: msg, Status: status}
}

// The errors the gateway itself raises.
var (
	errAccessDenied          = apiErr("AccessDenied", 403, "Access Denied.")
	errSignatureMismatch     = apiErr("SignatureDoesNotMatch", 403, "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
	errInvalidAccessKey      = apiErr("InvalidAccessKeyId", 403, "The AWS Access Key Id you provided does not exist in our records.")
	errExpiredToken          = apiErr("ExpiredToken", 400, "The provided token has expired.")
	errInvalidToken          = apiErr("InvalidToken", 400, "The provided token is malformed or otherwise invalid.")
	errTimeSkewed            = apiErr("RequestTimeTooSkewed", 403, "The difference between the request time and the current time is too large.")
	errRequestExpired        = apiErr("AccessDenied", 403, "Request has expired.")
	errMissingAuth           = apiErr("AccessDenied", 403, "Access Denied.") // anonymous access is refused
	errAuthHeaderMalformed   = apiErr("AuthorizationHeaderMalformed", 400, "The authorization header is malformed.")
	errAuthQueryMalformed    = apiErr("AuthorizationQueryParametersError", 400, "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
	errUnsupportedSig        = apiErr("InvalidRequest", 400, "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
	errMissingDate           = apiErr("AccessDenied", 403, "AWS authentication requires a valid Date or x-amz-date header.")
	errMissingContentSHA     = apiErr("InvalidRequest", 400, "Missing required header for this request: x-amz-content-sha256")
	errContentSHAMismatch    = apiErr("XAmzContentSHA256Mismatch", 400, "The provided 'x-amz-content-sha256' header does not match what was computed.")
	errInvalidContentSHA     = apiErr("InvalidArgument", 400, "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER or a valid sha256 value.")
	errHeadersNotSigned      = apiErr("AccessDenied", 403, "There were headers present in the request which were not signed")
	errMalformedXML          = apiErr("MalformedXML", 400, "The XML you provided was not well-formed or did not validate against our published schema.")
	errBodyTooLarge          = apiErr("MaxMessageLengthExceeded", 400, "Your request was too big.")
	errNotImplemented        = apiErr("NotImplemented", 501, "A header you provided implies functionality that is not implemented.")
	errMethodNotAllowed      = apiErr("MethodNotAllowed", 405, "The specified method is not allowed against this resource.")
	errInvalidBucketName     = apiErr("InvalidBucketName", 400, "The specified bucket is not valid.")
	errKeyTooLong            = apiErr("KeyTooLongError", 400, "Your key is too long.")
	errInvalidURI            = apiErr("InvalidURI", 400, "Couldn't parse the specified URI.")
	errInvalidArgument       = apiErr("InvalidArgument", 400, "Invalid argument.")
	errInvalidDigest         = apiErr("InvalidDigest", 400, "The Content-Md5 you specified is not valid.")
	errBadDigest             = apiErr("BadDigest", 400, "The Content-MD5 you specified did not match what we received.")
	errIncompleteBody        = apiErr("IncompleteBody", 400, "You did not provide the number of bytes specified by the Content-Length HTTP header")
	errMissingContentLength  = apiErr("MissingContentLength", 411, "You must provide the Content-Length HTTP header.")
	errEntityTooLarge        = apiErr("EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed object size.")
	errMetadataTooLarge      = apiErr("MetadataTooLarge", 400, "Your metadata headers exceed the maximum allowed metadata size")
	errHeaderTooLarge        = apiErr("RequestHeaderSectionTooLarge", 400, "Your request header section exceeds the maximum allowed size.")
	errInvalidPartNumber     = apiErr("InvalidArgument", 400, "Part number must be an integer between 1 and 10000, inclusive.")
	errInvalidMaxKeys        = apiErr("InvalidArgument", 400, "Argument max-keys must be an integer between 0 and 2147483647.")
	errInvalidEncodingType   = apiErr("InvalidArgument", 400, "Invalid Encoding Method specified in Request")
	errInvalidCopySource     = apiErr("InvalidArgument", 400, "Copy Source must mention the source bucket and key: sourcebucket/sourcekey.")
	errInvalidCopyDest       = apiErr("InvalidRequest", 400, "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
	errInvalidTag            = apiErr("InvalidTag", 400, "The tag provided was not a valid tag.")
	errInvalidChunk          = apiErr("InvalidChunkSizeError", 400, "Only the last chunk is allowed to have a size less than 8192 bytes")
	errInvalidTrailer        = apiErr("MalformedTrailerError", 400, "The request contained trailing data that was not well-formed or did not conform to our published schema.")
	errChunkFraming          = apiErr("IncompleteBody", 400, "The request body terminated unexpectedly")
	errTooManyDeleteKeys     = apiErr("MalformedXML", 400, "A Delete request may name at most 1000 objects.")
	errInvalidRange          = apiErr("InvalidRange", 416, "The requested range is not satisfiable")
	errServiceUnavailable    = apiErr("ServiceUnavailable", 503, "Please reduce your request rate.")
	errAuditUnavailable      = apiErr("ServiceUnavailable", 503, "The audit trail is unavailable; the request was not performed.")
	errInternal              = apiErr("InternalError", 500, "We encountered an internal error. Please try again.")
	errInvalidRequest        = apiErr("InvalidRequest", 400, "Invalid Request.")
	errChecksumMismatch      = apiErr("BadDigest", 400, "The checksum you specified did not match the one we calculated.")
	errInvalidChecksum       = apiErr("InvalidRequest", 400, "Value for x-amz-checksum header is invalid.")
	errIllegalVersioning     = apiErr("IllegalVersioningConfigurationException", 400, "The versioning configuration specified in the request is invalid.")
	errInvalidStorageClass   = apiErr("InvalidStorageClass", 400, "The storage class you specified is not valid.")
	errPreconditionFailed    = apiErr("PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold.")
	errSignatureVersionFound = apiErr("InvalidRequest", 400, "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
)

// checksumMismatch is BadDigest for a checksum of algorithm alg.
func checksumMismatch(alg string) *APIError {
	return errChecksumMismatch.with("The " + alg + " you specified did not match the calculated checksum.")
}

// with returns a copy of e with another message.
func (e *APIError) with(msg string) *APIError {
	c := *e
	c.Message = msg
	return &c
}

// wrap returns a copy of e carrying cause for logs.
func (e *APIError) wrap(cause error) *APIError {
	c := *e
	c.Err = cause
	return &c
}

var storeCodeStatus = map[string]int{
	objectstore.CodeNoSuchBucket:       404,
	objectstore.CodeNoSuchKey:          404,
	objectstore.CodeNoSuchVersion:      404,
	objectstore.CodeNoSuchUpload:       404,
	objectstore.CodeBucketExists:       409,
	objectstore.CodeBucketNotEmpty:     409,
	objectstore.CodePreconditionFailed: 412,
	objectstore.CodeNotModified:        304,
	objectstore.CodeInvalidPart:        400,
	objectstore.CodeInvalidPartOrder:   400,
	objectstore.CodeEntityTooSmall:     400,
	objectstore.CodeInvalidRange:       416,
	objectstore.CodeBadDigest:          400,
	objectstore.CodeInvalidBucketName:  400,
	objectstore.CodeKeyTooLong:         400,
	objectstore.CodeInvalidArgument:    400,
	objectstore.CodeMethodNotAllowed:   405,
	objectstore.CodeIncompleteBody:     400,
	objectstore.CodeInvalidObjectState: 403,
	objectstore.CodeNotImplemented:     501,
	"XAmzContentSHA256Mismatch":        400,
	"InvalidChunkSizeError":            400,
	"InvalidRequest":                   400,
	"InvalidDigest":                    400,
	"AccessDenied":                     403,
	"SignatureDoesNotMatch":            403,
}

// storeCodeMessage is S3's text for the errors a store reports, word for
// word (clients and test suites compare it); a code not listed keeps the
// store's message.
var storeCodeMessage = map[string]string{
	objectstore.CodeNoSuchBucket:       "The specified bucket does not exist.",
	objectstore.CodeNoSuchKey:          "The specified key does not exist.",
	objectstore.CodeNoSuchVersion:      "The specified version does not exist.",
	objectstore.CodeNoSuchUpload:       "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
	objectstore.CodeBucketExists:       "Your previous request to create the named bucket succeeded and you already own it.",
	objectstore.CodeBucketNotEmpty:     "The bucket you tried to delete is not empty.",
	objectstore.CodePreconditionFailed: "At least one of the pre-conditions you specified did not hold.",
	objectstore.CodeNotModified:        "Not Modified",
	objectstore.CodeInvalidPart:        "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
	objectstore.CodeInvalidPartOrder:   "The list of parts was not in ascending order. Parts must be ordered by part number.",
	objectstore.CodeEntityTooSmall:     "Your proposed upload is smaller than the minimum allowed size",
	objectstore.CodeInvalidRange:       "The requested range is not satisfiable",
	objectstore.CodeInvalidBucketName:  "The specified bucket is not valid.",
	objectstore.CodeKeyTooLong:         "Your key is too long.",
	objectstore.CodeMethodNotAllowed:   "The specified method is not allowed against this resource.",
	objectstore.CodeIncompleteBody:     "You did not provide the number of bytes specified by the Content-Length HTTP header",
	objectstore.CodeInvalidObjectState: "The operation is not valid for the current state of the object.",
}

// toAPIError maps any error onto the S3 error to send: *APIError as is, a
// store's *steward.Error by the S3 code it carries in Op (or by kind), and
// anything else as InternalError.
func toAPIError(err error) *APIError {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	var se *steward.Error
	if errors.As(err, &se) {
		if st, ok := storeCodeStatus[se.Op]; ok {
			msg, ok := storeCodeMessage[se.Op]
			if !ok {
				msg = se.Message
			}
			if msg == "" {
				msg = se.Op
			}
			return &APIError{Code: se.Op, Message: msg, Status: st, Err: err}
		}
		switch se.Kind {
		case steward.EInvalid:
			return &APIError{Code: "InvalidArgument", Message: steward.MessageOf(se), Status: 400, Err: err}
		case steward.ENotFound:
			return &APIError{Code: "NoSuchKey", Message: storeCodeMessage[objectstore.CodeNoSuchKey], Status: 404, Err: err}
		case steward.EConflict:
			return &APIError{Code: "OperationAborted", Message: steward.MessageOf(se), Status: 409, Err: err}
		case steward.EPermission:
			return errAccessDenied.wrap(err)
		case steward.EUnauthenticated:
			return errInvalidToken.wrap(err)
		case steward.ETooLarge:
			return errEntityTooLarge.wrap(err)
		case steward.EUnavailable:
			return errServiceUnavailable.wrap(err)
		}
	}
	return errInternal.wrap(err)
}

type errorBody struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource,omitempty"`
	RequestID string   `xml:"RequestId"`
	HostID    string   `xml:"HostId,omitempty"`
}

// writeError sends e as S3 error XML (no body for HEAD requests or 304).
func writeError(w http.ResponseWriter, r *http.Request, e *APIError, resource, requestID string) {
	h := w.Header()
	h.Del("Content-Length")
	if e.Status == http.StatusNotModified {
		// 304 describes the object (ETag, Last-Modified) as S3 does.
		w.WriteHeader(e.Status)
		return
	}
	h.Del("ETag")
	h.Del("Last-Modified")
	if r.Method == http.MethodHead {
		w.WriteHeader(e.Status)
		return
	}
	h.Set("Content-Type", "application/xml")
	w.WriteHeader(e.Status)
	b, _ := xml.Marshal(errorBody{Code: e.Code, Message: e.Message, Resource: resource, RequestID: requestID})
	w.Write([]byte(xml.Header))
	w.Write(b)
}
