package s3api_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/identity"
	"github.com/stewardhq/steward/internal/metastore"
	"github.com/stewardhq/steward/internal/objectstore"
	"github.com/stewardhq/steward/internal/objectstore/fs"
	"github.com/stewardhq/steward/internal/policy"
	"github.com/stewardhq/steward/internal/s3api"
	"github.com/stewardhq/steward/internal/sts"
)

// recorder is an Auditor that keeps events and can be told to fail.
type recorder struct {
	mu     sync.Mutex
	events []steward.AuditEvent
	fail   bool
}

func (r *recorder) Record(_ context.Context, ev steward.AuditEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("disk full")
	}
	r.events = append(r.events, ev)
	return nil
}

// Start makes recorder an AuditStarter, so the gateway's overlapped
// decision records (PutObject) are exercised: the outcome is decided now
// and reported when the gateway waits.
func (r *recorder) Start(ctx context.Context, ev steward.AuditEvent) func() error {
	err := r.Record(ctx, ev)
	return func() error { return err }
}

func (r *recorder) setFail(v bool) { r.mu.Lock(); r.fail = v; r.mu.Unlock() }

// find returns the events for request id.
func (r *recorder) byRequest(id string) []steward.AuditEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []steward.AuditEvent
	for _, e := range r.events {
		if e.RequestID == id {
			out = append(out, e)
		}
	}
	return out
}

// testPolicies: analysts may do everything in bucket "data" except under
// "data/secret/"; group "etl" may read and list "data"; anyone may create
// buckets whose name starts with their username.
func testPolicies(t testing.TB) s3api.Authorizer {
	t.Helper()
	all := policy.Accesses()
	e, err := policy.Compile([]*policy.Policy{
		{ID: "analysts-data", Version: 1, Enabled: true, Resources: policy.ResourceSpec{Paths: []string{"s3://data"}, Recursive: true},
			Allow: []policy.Item{{Groups: []string{"analysts"}, Accesses: all}, {Groups: []string{"etl"}, Accesses: []policy.Access{policy.AccessRead, policy.AccessList}}}},
		{ID: "secret", Version: 3, Enabled: true, Resources: policy.ResourceSpec{Paths: []string{"s3://data/secret"}, Recursive: true},
			Deny: []policy.Item{{Groups: []string{"analysts"}, Accesses: all}}},
		{ID: "own-buckets", Version: 1, Enabled: true, Resources: policy.ResourceSpec{Paths: []string{"s3://{USER}-*"}, Recursive: true},
			Allow: []policy.Item{{Users: []string{"{USER}"}, Accesses: all}}},
	}, policy.Options{Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	return s3api.EngineAuthorizer{Engine: e}
}

type env struct {
	t     *testing.T
	srv   *httptest.Server
	plain *httptest.Server // the same handler over plain HTTP
	h     *s3api.Handler
	sts   *sts.Service
	ms    *metastore.Store
	audit *recorder
	store *fs.Store
}

var principals = map[string]*steward.Principal{
	"token-alice": {Kind: steward.KindUser, Subject: "sub-alice", Username: "alice", Groups: []string{"analysts", "staff"}, Roles: []string{"reader"}, Issuer: "https://idp.test", ClientID: "steward-cli"},
	"token-bob":   {Kind: steward.KindUser, Subject: "sub-bob", Username: "bob", Groups: []string{"staff"}, Issuer: "https://idp.test", ClientID: "steward-cli"},
}

func fakeVerifier() identity.TokenVerifier {
	return identity.TokenVerifierFunc(func(_ context.Context, tok string) (*steward.Principal, error) {
		p, ok := principals[tok]
		if !ok {
			return nil, steward.Errorf(steward.EUnauthenticated, "invalid token")
		}
		c := *p
		return &c, nil
	})
}

func newEnv(t *testing.T, cfg s3api.Config) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	ms, err := metastore.Open(ctx, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	store, err := fs.Open(dir+"/objects", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	rec := &recorder{}
	kek := make([]byte, 32)
	copy(kek, "test key-encryption key 32 bytes")
	svc, err := sts.New(sts.Config{}, ms, fakeVerifier(), kek, rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := s3api.New(cfg, store, svc, testPolicies(t), nil, rec, nil)
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	plain := httptest.NewServer(h)
	t.Cleanup(plain.Close)
	return &env{t: t, srv: srv, plain: plain, h: h, sts: svc, ms: ms, audit: rec, store: store}
}

// s3Client returns an SDK client with the given credentials provider.
func (e *env) s3Client(creds aws.CredentialsProvider, opts ...func(*s3.Options)) *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(e.srv.URL),
		UsePathStyle: true,
		Credentials:  creds,
		HTTPClient:   e.srv.Client(),
		// The SDK's documented default (config.LoadDefaultConfig sets it).
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
	}, opts...)
}

type tokenFile string

func (t tokenFile) GetIdentityToken() ([]byte, error) { return []byte(t), nil }

// webIdentity returns the SDK's web identity provider pointed at the
// gateway.
func (e *env) webIdentity(token, role string) aws.CredentialsProvider {
	stsClient := awssts.New(awssts.Options{Region: "us-east-1", BaseEndpoint: aws.String(e.srv.URL), HTTPClient: e.srv.Client()})
	return aws.NewCredentialsCache(stscreds.NewWebIdentityRoleProvider(stsClient, role, tokenFile(token)))
}

// session issues credentials directly.
func (e *env) session(user string) aws.CredentialsProvider {
	e.t.Helper()
	p := principals["token-"+user]
	iss, err := e.sts.Issue(context.Background(), p, 3600e9, "", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return credentials.NewStaticCredentialsProvider(iss.AccessKeyID, iss.SecretAccessKey.Reveal(), iss.SessionToken.Reveal())
}

func apiCode(err error) string {
	if err == nil {
		return ""
	}
	var ae interface{ ErrorCode() string }
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return err.Error()
}

func requestIDOf(err error) string {
	var re interface{ ServiceRequestID() string }
	if errors.As(err, &re) {
		return re.ServiceRequestID()
	}
	return ""
}

func body(s string) *strings.Reader { return strings.NewReader(s) }

var _ http.Handler = (*s3api.Handler)(nil)

// staticFrom turns an SDK credentials provider into minio credentials.
func staticFrom(t *testing.T, p aws.CredentialsProvider) *miniocreds.Credentials {
	t.Helper()
	c, err := p.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return miniocreds.NewStaticV4(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
}

func objStoreGet() objectstore.GetOptions { return objectstore.GetOptions{} }
