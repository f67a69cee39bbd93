package cli

import (
	"errors"
	"fmt"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

type accessKey struct {
	AccessKeyID     string    `json:"access_key_id"`
	ServiceAccount  string    `json:"service_account"`
	Description     string    `json:"description,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	CreatedBy       string    `json:"created_by"`
	SecretAccessKey string    `json:"secret_access_key,omitempty"`
}

func keyTable(ks ...*accessKey) func(*tabwriter.Writer) {
	return func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "ACCESS KEY ID\tSERVICE ACCOUNT\tCREATED\tBY\tDESCRIPTION")
		for _, k := range ks {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.AccessKeyID, k.ServiceAccount, k.CreatedAt.Format(time.RFC3339), k.CreatedBy, k.Description)
		}
		if len(ks) == 1 && ks[0].SecretAccessKey != "" {
			fmt.Fprintf(tw, "\naws_access_key_id:\t%s\naws_secret_access_key:\t%s\n(shown once: store it in your secret manager)\n", ks[0].AccessKeyID, ks[0].SecretAccessKey)
		}
	}
}

// newAccessKeyCmd administers service accounts' long-lived S3 access keys.
func newAccessKeyCmd(stdio IO) *cobra.Command {
	cmd := &cobra.Command{Use: "access-key", Aliases: []string{"key"}, Short: "Long-lived S3 access keys of service accounts"}
	cmd.AddCommand(apiCmd(stdio, "list NAME", "List a service account's S3 access keys", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		var ks []*accessKey
		err := cl.do(cmd.Context(), "GET", "/service-accounts/"+url.PathEscape(a[0])+"/access-keys", nil, &ks)
		return ks, keyTable(ks...), err
	}))
	create := apiCmd(stdio, "create NAME", "Create an S3 access key and print its secret once", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		desc, _ := cmd.Flags().GetString("description")
		var k accessKey
		err := cl.do(cmd.Context(), "POST", "/service-accounts/"+url.PathEscape(a[0])+"/access-keys", map[string]any{"description": desc}, &k)
		return &k, keyTable(&k), err
	})
	create.Flags().String("description", "", "what the key is for")
	cmd.AddCommand(create)
	cmd.AddCommand(apiCmd(stdio, "rotate ACCESS_KEY_ID", "Replace an access key by a new one and print its secret once", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		var k accessKey
		err := cl.do(cmd.Context(), "POST", "/access-keys/"+url.PathEscape(a[0])+"/rotate", nil, &k)
		return &k, keyTable(&k), err
	}))
	cmd.AddCommand(apiCmd(stdio, "delete ACCESS_KEY_ID", "Delete an access key", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		return nil, nil, cl.do(cmd.Context(), "DELETE", "/access-keys/"+url.PathEscape(a[0]), nil, nil)
	}))
	return cmd
}

// newRevokeSessionsCmd revokes short-term S3 sessions.
func newRevokeSessionsCmd(stdio IO) *cobra.Command {
	c := apiCmd(stdio, "revoke-sessions", "Revoke a user's S3 sessions (--user) or one session (--session)", cobra.NoArgs, func(cmd *cobra.Command, cl *client, _ []string) (any, func(*tabwriter.Writer), error) {
		user, _ := cmd.Flags().GetString("user")
		sess, _ := cmd.Flags().GetString("session")
		if (user == "") == (sess == "") {
			return nil, nil, errors.New("give exactly one of --user or --session")
		}
		return nil, nil, cl.do(cmd.Context(), "POST", "/sessions/revoke", map[string]any{"user": user, "session_id": sess}, nil)
	})
	c.Flags().String("user", "", "revoke every S3 session of this user")
	c.Flags().String("session", "", "revoke this S3 session id")
	return c
}
