package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward/internal/sts"
)

// cachedSession is a short-term S3 credential kept between calls, so that
// every aws command does not start a new session.
type cachedSession struct {
	Endpoint string                  `json:"endpoint"`
	Role     string                  `json:"role"`
	Creds    *sts.SessionCredentials `json:"credentials"`
}

func newCredsCmd(stdio IO) *cobra.Command {
	var role, endpoint, profile string
	var duration time.Duration
	var noCache bool
	cmd := &cobra.Command{
		Use:   "creds",
		Short: "Print short-term S3 credentials in the aws credential_process format",
		Long: `Print short-term S3 credentials for the logged-in user, obtained from
Steward's STS (AssumeRoleWithWebIdentity) with your access token, in the
format of the aws credential_process setting. Put this in ~/.aws/config:

  [profile steward]
  credential_process = steward creds
  endpoint_url = http://127.0.0.1:9000

(steward creds --aws-profile steward prints that section for your server.)
Credentials are cached in your Steward config dir until five minutes
before they expire.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, err := validToken(ctx, stdio.Getenv)
			if err != nil {
				return err
			}
			if endpoint == "" {
				var info serverInfo
				if err := getJSON(ctx, c.Server+"/api/v1/info", &info); err != nil {
					return fmt.Errorf("cannot reach Steward at %s: %w", c.Server, err)
				}
				endpoint = info.S3Endpoint
			}
			if endpoint == "" {
				return errors.New("the server announces no S3 endpoint: pass --endpoint")
			}
			if profile != "" {
				self, _ := os.Executable()
				if self == "" {
					self = "steward"
				}
				fmt.Fprintf(stdio.Out, "[profile %s]\ncredential_process = %s creds\nendpoint_url = %s\nregion = us-east-1\n", profile, self, endpoint)
				return nil
			}
			cachePath := ""
			if dir, err := configDir(stdio.Getenv); err == nil && !noCache {
				cachePath = filepath.Join(dir, "s3-session.json")
				if b, err := os.ReadFile(cachePath); err == nil {
					var cs cachedSession
					if json.Unmarshal(b, &cs) == nil && cs.Creds != nil && cs.Endpoint == endpoint && cs.Role == role &&
						time.Until(cs.Creds.Expiration) > 5*time.Minute && duration == 0 {
						out, err := sts.CredentialProcessJSON(cs.Creds)
						if err != nil {
							return err
						}
						fmt.Fprintln(stdio.Out, string(out))
						return nil
					}
				}
			}
			sc, err := sts.AssumeRoleWithWebIdentity(ctx, defaultHTTP(), endpoint, c.AccessToken, sts.AssumeOptions{RoleARN: role, Duration: duration, SessionName: "steward-cli"})
			if err != nil {
				return err
			}
			if cachePath != "" {
				if b, err := json.Marshal(cachedSession{Endpoint: endpoint, Role: role, Creds: sc}); err == nil {
					writePrivate(cachePath, b)
				}
			}
			out, err := sts.CredentialProcessJSON(sc)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdio.Out, string(out))
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "narrow the session to one of your groups or roles (arn:aws:iam::steward:role/NAME)")
	cmd.Flags().DurationVar(&duration, "duration", 0, "session length (default 1h; 15m to 12h)")
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "S3 endpoint URL (default: the one the server announces)")
	cmd.Flags().StringVar(&profile, "aws-profile", "", "print an ~/.aws/config section named this instead of credentials")
	cmd.Flags().BoolVar(&noCache, "no-cache", false, "always start a new session")
	return cmd
}

// writePrivate writes b to path atomically with mode 0600.
func writePrivate(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+strings.TrimSuffix(filepath.Base(path), ".json")+"-*")
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
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
