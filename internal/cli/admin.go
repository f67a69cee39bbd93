package cli

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward"
)

func defaultHTTP() *http.Client { return &http.Client{Timeout: 60 * time.Second} }

// apiCmd builds a command that calls the API with the stored login and
// prints the result as JSON or with the given text renderer.
func apiCmd(stdio IO, use, short string, args cobra.PositionalArgs, run func(cmd *cobra.Command, cl *client, args []string) (any, func(*tabwriter.Writer), error)) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: args,
		RunE: func(cmd *cobra.Command, a []string) error {
			sf, _ := cmd.Flags().GetString("server")
			cl, err := newClient(cmd.Context(), stdio, sf)
			if err != nil {
				return err
			}
			v, text, err := run(cmd, cl, a)
			if err != nil {
				return err
			}
			if outputJSON(cmd) {
				if v == nil {
					v = map[string]string{"status": "ok"}
				}
				return printJSON(stdio.Out, v)
			}
			if text == nil {
				fmt.Fprintln(stdio.Out, "OK")
				return nil
			}
			tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
			text(tw)
			return tw.Flush()
		},
	}
}

func readSecretLine(stdio IO) (string, error) {
	s, err := bufio.NewReader(stdio.In).ReadString('\n')
	s = strings.TrimRight(s, "\r\n")
	if s == "" {
		if err != nil {
			return "", errors.New("no password on standard input")
		}
		return "", errors.New("empty password")
	}
	return s, nil
}

func userTable(us ...*steward.User) func(*tabwriter.Writer) {
	return func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "USERNAME\tGROUPS\tROLES\tDISABLED\tEMAIL")
		for _, u := range us {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\n", u.Username, list(u.Groups), list(u.Roles), u.Disabled, u.Email)
		}
	}
}

func newUserCmd(stdio IO) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Administer users of the built-in identity provider"}
	cmd.AddCommand(apiCmd(stdio, "list", "List users", cobra.NoArgs, func(cmd *cobra.Command, cl *client, _ []string) (any, func(*tabwriter.Writer), error) {
		var us []*steward.User
		err := cl.do(cmd.Context(), "GET", "/users", nil, &us)
		return us, userTable(us...), err
	}))
	cmd.AddCommand(apiCmd(stdio, "get USERNAME", "Show a user", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		var u steward.User
		err := cl.do(cmd.Context(), "GET", "/users/"+url.PathEscape(a[0]), nil, &u)
		return &u, userTable(&u), err
	}))
	create := apiCmd(stdio, "create USERNAME", "Create a user; the password is read from standard input", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		pw, err := readSecretLine(stdio)
		if err != nil {
			return nil, nil, err
		}
		email, _ := cmd.Flags().GetString("email")
		name, _ := cmd.Flags().GetString("display-name")
		groups, _ := cmd.Flags().GetStringSlice("group")
		roles, _ := cmd.Flags().GetStringSlice("role")
		in := map[string]any{"username": a[0], "password": pw, "email": email, "display_name": name, "groups": groups, "roles": roles}
		var u steward.User
		err = cl.do(cmd.Context(), "POST", "/users", in, &u)
		return &u, userTable(&u), err
	})
	create.Flags().String("email", "", "e-mail address")
	create.Flags().String("display-name", "", "display name")
	create.Flags().StringSlice("group", nil, "group to join (repeatable)")
	create.Flags().StringSlice("role", nil, "role to hold (repeatable)")
	cmd.AddCommand(create)
	update := apiCmd(stdio, "update USERNAME", "Change a user's details, roles, or disable or enable them", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		in := map[string]any{}
		if cmd.Flags().Changed("email") {
			v, _ := cmd.Flags().GetString("email")
			in["email"] = v
		}
		if cmd.Flags().Changed("display-name") {
			v, _ := cmd.Flags().GetString("display-name")
			in["display_name"] = v
		}
		if cmd.Flags().Changed("role") {
			v, _ := cmd.Flags().GetStringSlice("role")
			in["roles"] = v
		}
		if cmd.Flags().Changed("disabled") {
			v, _ := cmd.Flags().GetBool("disabled")
			in["disabled"] = v
		}
		var u steward.User
		err := cl.do(cmd.Context(), "PATCH", "/users/"+url.PathEscape(a[0]), in, &u)
		return &u, userTable(&u), err
	})
	update.Flags().String("email", "", "e-mail address")
	update.Flags().String("display-name", "", "display name")
	update.Flags().StringSlice("role", nil, "the user's roles (replaces them)")
	update.Flags().Bool("disabled", false, "disable (true) or enable (false) the user")
	cmd.AddCommand(update)
	cmd.AddCommand(apiCmd(stdio, "set-password USERNAME", "Set a user's password, read from standard input", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		pw, err := readSecretLine(stdio)
		if err != nil {
			return nil, nil, err
		}
		return nil, nil, cl.do(cmd.Context(), "PUT", "/users/"+url.PathEscape(a[0])+"/password", map[string]any{"password": pw}, nil)
	}))
	cmd.AddCommand(apiCmd(stdio, "delete USERNAME", "Delete a user", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		return nil, nil, cl.do(cmd.Context(), "DELETE", "/users/"+url.PathEscape(a[0]), nil, nil)
	}))
	return cmd
}

func groupTable(gs ...*steward.Group) func(*tabwriter.Writer) {
	return func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "GROUP\tMEMBERS\tDESCRIPTION")
		for _, g := range gs {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", g.Name, list(g.Members), g.Description)
		}
	}
}

func newGroupCmd(stdio IO) *cobra.Command {
	cmd := &cobra.Command{Use: "group", Short: "Administer groups"}
	cmd.AddCommand(apiCmd(stdio, "list", "List groups", cobra.NoArgs, func(cmd *cobra.Command, cl *client, _ []string) (any, func(*tabwriter.Writer), error) {
		var gs []*steward.Group
		err := cl.do(cmd.Context(), "GET", "/groups", nil, &gs)
		return gs, groupTable(gs...), err
	}))
	cmd.AddCommand(apiCmd(stdio, "get NAME", "Show a group and its members", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		var g steward.Group
		err := cl.do(cmd.Context(), "GET", "/groups/"+url.PathEscape(a[0]), nil, &g)
		return &g, groupTable(&g), err
	}))
	create := apiCmd(stdio, "create NAME", "Create a group", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		desc, _ := cmd.Flags().GetString("description")
		var g steward.Group
		err := cl.do(cmd.Context(), "POST", "/groups", map[string]any{"name": a[0], "description": desc}, &g)
		return &g, groupTable(&g), err
	})
	create.Flags().String("description", "", "what the group is for")
	cmd.AddCommand(create)
	cmd.AddCommand(apiCmd(stdio, "delete NAME", "Delete a group", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		return nil, nil, cl.do(cmd.Context(), "DELETE", "/groups/"+url.PathEscape(a[0]), nil, nil)
	}))
	cmd.AddCommand(apiCmd(stdio, "add-member GROUP MEMBER", "Add a user or service account to a group", cobra.ExactArgs(2), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		return nil, nil, cl.do(cmd.Context(), "PUT", "/groups/"+url.PathEscape(a[0])+"/members/"+url.PathEscape(a[1]), nil, nil)
	}))
	cmd.AddCommand(apiCmd(stdio, "remove-member GROUP MEMBER", "Remove a member from a group", cobra.ExactArgs(2), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		return nil, nil, cl.do(cmd.Context(), "DELETE", "/groups/"+url.PathEscape(a[0])+"/members/"+url.PathEscape(a[1]), nil, nil)
	}))
	return cmd
}

type saSecret struct {
	steward.ServiceAccount
	ClientSecret string `json:"client_secret"`
}

func saTable(sas ...*steward.ServiceAccount) func(*tabwriter.Writer) {
	return func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "NAME\tGROUPS\tROLES\tOWNER\tDISABLED\tSECRET ROTATED")
		for _, s := range sas {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%s\n", s.Name, list(s.Groups), list(s.Roles), s.Owner, s.Disabled, s.RotatedAt.Format(time.RFC3339))
		}
	}
}

func secretText(s *saSecret) func(*tabwriter.Writer) {
	return func(tw *tabwriter.Writer) {
		saTable(&s.ServiceAccount)(tw)
		fmt.Fprintf(tw, "\nclient_id:\t%s\nclient_secret:\t%s\n(shown once: store it in your secret manager)\n", s.Name, s.ClientSecret)
	}
}

func newServiceAccountCmd(stdio IO) *cobra.Command {
	cmd := &cobra.Command{Use: "service-account", Aliases: []string{"sa"}, Short: "Administer service accounts for pipelines and engines"}
	cmd.AddCommand(newAccessKeyCmd(stdio))
	cmd.AddCommand(apiCmd(stdio, "list", "List service accounts", cobra.NoArgs, func(cmd *cobra.Command, cl *client, _ []string) (any, func(*tabwriter.Writer), error) {
		var sas []*steward.ServiceAccount
		err := cl.do(cmd.Context(), "GET", "/service-accounts", nil, &sas)
		return sas, saTable(sas...), err
	}))
	cmd.AddCommand(apiCmd(stdio, "get NAME", "Show a service account", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		var s steward.ServiceAccount
		err := cl.do(cmd.Context(), "GET", "/service-accounts/"+url.PathEscape(a[0]), nil, &s)
		return &s, saTable(&s), err
	}))
	create := apiCmd(stdio, "create NAME", "Create a service account and print its secret once", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		desc, _ := cmd.Flags().GetString("description")
		groups, _ := cmd.Flags().GetStringSlice("group")
		roles, _ := cmd.Flags().GetStringSlice("role")
		var s saSecret
		err := cl.do(cmd.Context(), "POST", "/service-accounts", map[string]any{"name": a[0], "description": desc, "groups": groups, "roles": roles}, &s)
		return &s, secretText(&s), err
	})
	create.Flags().String("description", "", "what the account is for")
	create.Flags().StringSlice("group", nil, "group to join (repeatable)")
	create.Flags().StringSlice("role", nil, "role to hold (repeatable)")
	cmd.AddCommand(create)
	cmd.AddCommand(apiCmd(stdio, "rotate NAME", "Replace a service account's secret and print the new one once", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		var s saSecret
		err := cl.do(cmd.Context(), "POST", "/service-accounts/"+url.PathEscape(a[0])+"/rotate", nil, &s)
		return &s, secretText(&s), err
	}))
	cmd.AddCommand(apiCmd(stdio, "delete NAME", "Delete a service account", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		return nil, nil, cl.do(cmd.Context(), "DELETE", "/service-accounts/"+url.PathEscape(a[0]), nil, nil)
	}))
	return cmd
}
