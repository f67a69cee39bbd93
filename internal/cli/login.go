package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/oauth2"
)

type serverInfo struct {
	Version    string `json:"version"`
	S3Endpoint string `json:"s3_endpoint"`
	Auth       struct {
		Issuer      string `json:"issuer"`
		CLIClientID string `json:"cli_client_id"`
	} `json:"auth"`
}

type discovery struct {
	Issuer                      string `json:"issuer"`
	TokenEndpoint               string `json:"token_endpoint"`
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint"`
}

func newLoginCmd(stdio IO) *cobra.Command {
	var username string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in to Steward (device flow, or --username with --password-stdin for scripts)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			sf, _ := cmd.Flags().GetString("server")
			server := serverURL(sf, stdio.Getenv)
			var info serverInfo
			if err := getJSON(ctx, server+"/api/v1/info", &info); err != nil {
				return fmt.Errorf("cannot reach Steward at %s: %w", server, err)
			}
			var d discovery
			if err := getJSON(ctx, strings.TrimRight(info.Auth.Issuer, "/")+"/.well-known/openid-configuration", &d); err != nil {
				return fmt.Errorf("cannot discover the identity provider: %w", err)
			}
			conf := &oauth2.Config{
				ClientID: info.Auth.CLIClientID,
				Scopes:   []string{"openid", "profile", "offline_access"},
				Endpoint: oauth2.Endpoint{TokenURL: d.TokenEndpoint, DeviceAuthURL: d.DeviceAuthorizationEndpoint, AuthStyle: oauth2.AuthStyleInParams},
			}
			var tok *oauth2.Token
			var err error
			switch {
			case passwordStdin:
				if username == "" {
					return errors.New("--password-stdin needs --username")
				}
				pw, rerr := bufio.NewReader(stdio.In).ReadString('\n')
				pw = strings.TrimRight(pw, "\r\n")
				if rerr != nil && pw == "" {
					return errors.New("no password on standard input")
				}
				tok, err = conf.PasswordCredentialsToken(ctx, username, pw)
			case username != "":
				return errors.New("--username needs --password-stdin (or leave both out to log in with the device flow)")
			default:
				tok, err = deviceLogin(ctx, stdio, conf)
			}
			if err != nil {
				return loginError(err)
			}
			c := &Credentials{Server: server, Issuer: d.Issuer, ClientID: conf.ClientID, TokenURL: d.TokenEndpoint,
				AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, TokenType: tok.TokenType, Expiry: tok.Expiry}
			if err := saveCredentials(stdio.Getenv, c); err != nil {
				return err
			}
			cl := &client{server: server, token: tok.AccessToken, http: defaultHTTP()}
			var me whoami
			if err := cl.do(ctx, "GET", "/whoami", nil, &me); err != nil {
				return err
			}
			if outputJSON(cmd) {
				return printJSON(stdio.Out, me)
			}
			fmt.Fprintf(stdio.Out, "Logged in to %s as %s.\n", server, me.Username)
			return nil
		},
	}
	cmd.Flags().StringVarP(&username, "username", "u", "", "username (with --password-stdin)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input")
	return cmd
}

func loginError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode == "invalid_grant" || re.ErrorCode == "access_denied" {
			return errors.New("login failed: wrong username or password, or access denied")
		}
		if re.ErrorDescription != "" {
			return fmt.Errorf("login failed: %s", re.ErrorDescription)
		}
		return fmt.Errorf("login failed: %s", re.ErrorCode)
	}
	return fmt.Errorf("login failed: %w", err)
}

func deviceLogin(ctx context.Context, stdio IO, conf *oauth2.Config) (*oauth2.Token, error) {
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		return nil, err
	}
	uri := da.VerificationURIComplete
	if uri == "" {
		uri = da.VerificationURI
	}
	fmt.Fprintf(stdio.Err, "To log in, open %s\nand enter the code %s\n", uri, da.UserCode)
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	return conf.DeviceAccessToken(ctx, da)
}

func newLogoutCmd(stdio IO) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Forget the stored login",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := loadCredentials(stdio.Getenv)
			if err != nil {
				return nil
			}
			c.AccessToken, c.RefreshToken, c.Expiry = "", "", time.Time{}
			if err := saveCredentials(stdio.Getenv, c); err != nil {
				return err
			}
			fmt.Fprintln(stdio.Out, "Logged out.")
			return nil
		},
	}
}

type whoami struct {
	Username  string    `json:"username"`
	Kind      string    `json:"kind"`
	Subject   string    `json:"subject"`
	Groups    []string  `json:"groups"`
	Roles     []string  `json:"roles"`
	Issuer    string    `json:"issuer"`
	ClientID  string    `json:"client_id,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
	Admin     bool      `json:"admin"`
}

func newWhoamiCmd(stdio IO) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show who you are logged in as: user, groups, roles, token expiry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sf, _ := cmd.Flags().GetString("server")
			cl, err := newClient(cmd.Context(), stdio, sf)
			if err != nil {
				return err
			}
			var me whoami
			if err := cl.do(cmd.Context(), "GET", "/whoami", nil, &me); err != nil {
				return err
			}
			if outputJSON(cmd) {
				return printJSON(stdio.Out, me)
			}
			tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "User:\t%s (%s)\n", me.Username, me.Kind)
			fmt.Fprintf(tw, "Groups:\t%s\n", list(me.Groups))
			fmt.Fprintf(tw, "Roles:\t%s\n", list(me.Roles))
			fmt.Fprintf(tw, "Issuer:\t%s\n", me.Issuer)
			fmt.Fprintf(tw, "Token expires:\t%s (in %s)\n", me.ExpiresAt.Local().Format(time.RFC3339), time.Until(me.ExpiresAt).Round(time.Second))
			if me.Admin {
				fmt.Fprintf(tw, "Administrator:\tyes\n")
			}
			return tw.Flush()
		},
	}
}

func list(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ", ")
}

func newTokenCmd(stdio IO) *cobra.Command {
	return &cobra.Command{
		Use:   "token",
		Short: "Print a valid access token, refreshing it when needed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := validToken(cmd.Context(), stdio.Getenv)
			if err != nil {
				return err
			}
			if outputJSON(cmd) {
				return printJSON(stdio.Out, map[string]any{"access_token": c.AccessToken, "token_type": "Bearer", "expiry": c.Expiry})
			}
			fmt.Fprintln(stdio.Out, c.AccessToken)
			return nil
		},
	}
}
