package sts

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// SessionCredentials are credentials returned by AssumeRoleWithWebIdentity.
type SessionCredentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time
}

// AssumeOptions qualify a credentials request; all optional.
type AssumeOptions struct {
	RoleARN     string        // narrow to one group or role
	Duration    time.Duration // session length
	SessionName string        // defaults to "steward-cli"
	Policy      string        // IAM JSON session policy
}

// AssumeRoleWithWebIdentity exchanges a web identity token (the user's
// OpenID access token) for session credentials at endpoint, the S3
// gateway's base URL.
func AssumeRoleWithWebIdentity(ctx context.Context, client *http.Client, endpoint, token string, o AssumeOptions) (*SessionCredentials, error) {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	form := url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"}, "WebIdentityToken": {token}}
	name := o.SessionName
	if name == "" {
		name = "steward-cli"
	}
	form.Set("RoleSessionName", name)
	if o.RoleARN != "" {
		form.Set("RoleArn", o.RoleARN)
	}
	if o.Duration > 0 {
		form.Set("DurationSeconds", strconv.Itoa(int(o.Duration/time.Second)))
	}
	if o.Policy != "" {
		form.Set("Policy", o.Policy)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(endpoint, "/")+"/", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the S3 endpoint %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e errorResponse
		if xml.Unmarshal(b, &e) == nil && e.Error.Code != "" {
			return nil, fmt.Errorf("%s: %s", e.Error.Code, e.Error.Message)
		}
		return nil, fmt.Errorf("AssumeRoleWithWebIdentity: %s", resp.Status)
	}
	var out assumeResponse
	if err := xml.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("AssumeRoleWithWebIdentity: unreadable response: %w", err)
	}
	c := out.Result.Credentials
	exp, err := time.Parse(time.RFC3339, c.Expiration)
	if err != nil || c.AccessKeyID == "" || c.SecretAccessKey == "" || c.SessionToken == "" {
		return nil, fmt.Errorf("AssumeRoleWithWebIdentity: incomplete credentials in the response")
	}
	return &SessionCredentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, Expiration: exp}, nil
}

// CredentialProcessJSON renders c in the format of the AWS
// credential_process setting.
func CredentialProcessJSON(c *SessionCredentials) ([]byte, error) {
	return json.Marshal(struct {
		Version         int
		AccessKeyId     string
		SecretAccessKey string
		SessionToken    string
		Expiration      string
	}{1, c.AccessKeyID, c.SecretAccessKey, c.SessionToken, c.Expiration.UTC().Format(time.RFC3339)})
}

// CredentialProcess is `steward creds`: it exchanges token at endpoint and
// writes the credential_process JSON to w. Use it from ~/.aws/config:
//
//	[profile steward]
//	credential_process = steward creds
//	endpoint_url = https://s3.steward.example
func CredentialProcess(ctx context.Context, client *http.Client, endpoint, token string, o AssumeOptions, w io.Writer) error {
	c, err := AssumeRoleWithWebIdentity(ctx, client, endpoint, token, o)
	if err != nil {
		return err
	}
	b, err := CredentialProcessJSON(c)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
