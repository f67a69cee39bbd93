package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/stewardhq/steward"
)

// Credentials are what `steward login` stores, with mode 0600.
type Credentials struct {
	Server       string    `json:"server"`
	Issuer       string    `json:"issuer"`
	ClientID     string    `json:"client_id"`
	TokenURL     string    `json:"token_url"`
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	Expiry       time.Time `json:"expiry"`
}

func configDir(getenv func(string) string) (string, error) {
	if d := getenv("STEWARD_HOME"); d != "" {
		return d, nil
	}
	if d := getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "steward"), nil
	}
	home := getenv("HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		home = h
	}
	return filepath.Join(home, ".config", "steward"), nil
}

func credentialsPath(getenv func(string) string) (string, error) {
	d, err := configDir(getenv)
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "credentials.json"), nil
}

func loadCredentials(getenv func(string) string) (*Credentials, error) {
	p, err := credentialsPath(getenv)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("not logged in: run `steward login`")
	}
	if err != nil {
		return nil, err
	}
	var c Credentials
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("credentials file %s is damaged: run `steward login`", p)
	}
	return &c, nil
}

// saveCredentials writes atomically with mode 0600 in a 0700 directory.
func saveCredentials(getenv func(string) string, c *Credentials) error {
	p, err := credentialsPath(getenv)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".credentials-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

func (c *Credentials) oauthConfig() *oauth2.Config {
	return &oauth2.Config{ClientID: c.ClientID, Endpoint: oauth2.Endpoint{TokenURL: c.TokenURL, AuthStyle: oauth2.AuthStyleInParams}}
}

func (c *Credentials) token() *oauth2.Token {
	return &oauth2.Token{AccessToken: c.AccessToken, RefreshToken: c.RefreshToken, TokenType: c.TokenType, Expiry: c.Expiry}
}

// validToken returns an access token valid for at least a minute,
// refreshing and saving new credentials when needed.
func validToken(ctx context.Context, getenv func(string) string) (*Credentials, error) {
	c, err := loadCredentials(getenv)
	if err != nil {
		return nil, err
	}
	if time.Until(c.Expiry) > time.Minute {
		return c, nil
	}
	if c.RefreshToken == "" {
		return nil, fmt.Errorf("your session has expired: run `steward login`")
	}
	tok := c.token()
	tok.Expiry = time.Now().Add(-time.Second) // force the refresh
	nt, err := c.oauthConfig().TokenSource(ctx, tok).Token()
	if err != nil {
		return nil, fmt.Errorf("your session has expired (refresh failed): run `steward login`")
	}
	c.AccessToken, c.Expiry, c.TokenType = nt.AccessToken, nt.Expiry, nt.TokenType
	if nt.RefreshToken != "" {
		c.RefreshToken = nt.RefreshToken
	}
	if err := saveCredentials(getenv, c); err != nil {
		return nil, err
	}
	return c, nil
}

// serverURL picks the server: --server, then the logged-in one, then
// $STEWARD_SERVER, then the default.
func serverURL(flag string, getenv func(string) string) string {
	if flag != "" {
		return strings.TrimRight(flag, "/")
	}
	if c, err := loadCredentials(getenv); err == nil && c.Server != "" {
		return c.Server
	}
	if s := getenv("STEWARD_SERVER"); s != "" {
		return strings.TrimRight(s, "/")
	}
	return "http://127.0.0.1:8080"
}

// client calls the REST API with the stored login.
type client struct {
	server string
	token  string
	http   *http.Client
}

func newClient(ctx context.Context, stdio IO, serverFlag string) (*client, error) {
	c, err := validToken(ctx, stdio.Getenv)
	if err != nil {
		return nil, err
	}
	server := c.Server
	if serverFlag != "" {
		server = strings.TrimRight(serverFlag, "/")
	}
	return &client{server: server, token: c.AccessToken, http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// problem is the API's error body.
type problem struct {
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
	Errors []struct {
		Message  string `json:"message"`
		Location string `json:"location"`
	} `json:"errors"`
}

// do sends a JSON request to /api/v1+path and decodes the response into
// out (if non-nil).
func (c *client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.server+"/api/v1"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach Steward at %s: %w", c.server, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		var p problem
		if json.Unmarshal(b, &p) == nil && p.Detail != "" {
			msg := p.Detail
			for _, e := range p.Errors {
				msg += "; " + strings.TrimSpace(e.Location+" "+e.Message)
			}
			return &steward.Error{Kind: steward.ErrorKind(p.Code), Message: msg}
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil && len(b) > 0 {
		return json.Unmarshal(b, out)
	}
	return nil
}

// getJSON fetches a public JSON document.
func getJSON(ctx context.Context, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out)
}
