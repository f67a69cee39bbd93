package s3api

import (
	"testing"
	"time"
)

func TestParseHTTPDate(t *testing.T) {
	want := time.Date(2026, 11, 26, 8, 50, 7, 0, time.UTC)
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"Thu, 26 Nov 2026 08:50:07 GMT", true},
		{"Thu, 26 Nov 2026 08:50:07 -0000", true}, // Python's email.utils.formatdate, as botocore signs
		{"Thu, 26 Nov 2026 09:50:07 +0100", true},
		{"Thursday, 26-Nov-26 08:50:07 GMT", true},
		{"Thu Nov 26 08:50:07 2026", true},
		{"20261126T085007Z", false},
		{"", false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseHTTPDate(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && !got.Equal(want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestAuthorizationMalformedMessages(t *testing.T) {
	const sig = "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"
	for _, tc := range []struct{ header, want string }{
		{"AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request", "the authorization header requires three components: Credential, SignedHeaders, and Signature."},
		{"AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request,SignedHeaders-Content-Length,Signature=" + sig, `the authorization component "SignedHeaders-Content-Length" is malformed.`},
		{"AWS4-HMAC-SHA256 Cred=AKID/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=" + sig, "missing Credential."},
		{"AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request,Signed=host,Signature=" + sig, "missing SignedHeaders."},
		{"AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Sig=" + sig, "missing Signature."},
		{"AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3,SignedHeaders=host,Signature=" + sig, `the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`},
		{"AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/ec2/aws4_request,SignedHeaders=host,Signature=" + sig, `incorrect service "ec2". This endpoint belongs to "s3".`},
		{"AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws_request,SignedHeaders=host,Signature=" + sig, `incorrect terminal "aws_request". This endpoint uses "aws4_request".`},
		{"AWS4-HMAC-SHA256 Credential=AKID/3223423234/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=" + sig, `incorrect date format "3223423234". This date in the credential must be in the format "yyyyMMdd".`},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, err := parseAuthorization(tc.header)
			ae, ok := err.(*APIError)
			if !ok || ae.Code != "AuthorizationHeaderMalformed" || ae.Message != "The authorization header is malformed; "+tc.want {
				t.Errorf("got %v", err)
			}
		})
	}
	if in, err := parseAuthorization("AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + sig); err != nil || in.AccessKeyID != "AKID" || len(in.SignedHeaders) != 2 {
		t.Errorf("a good header: %+v %v", in, err)
	}
}
