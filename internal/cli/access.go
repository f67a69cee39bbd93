package cli

import (
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/policystore"
)

func accessTable(rs ...*policystore.AccessRequest) func(*tabwriter.Writer) {
	return func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "ID\tSTATUS\tREQUESTER\tRESOURCE\tACCESS\tDURATION\tAPPROVERS\tDECIDED BY\tUNTIL")
		for _, r := range rs {
			until := ""
			if !r.GrantEnd.IsZero() {
				until = r.GrantEnd.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Status, r.Requester, r.Resource, strings.Join(r.Accesses, ","),
				time.Duration(r.DurationSeconds)*time.Second, approvers(r.Approvers), r.DecidedBy, until)
		}
	}
}

func approvers(o *policystore.Owners) string {
	if o == nil {
		return "(admins)"
	}
	var s []string
	s = append(s, o.Users...)
	for _, g := range o.Groups {
		s = append(s, "group:"+g)
	}
	return strings.Join(s, ",")
}

func newAccessCmd(stdio IO) *cobra.Command {
	cmd := &cobra.Command{Use: "access", Short: "Request, approve and revoke time-bound access"}

	req := apiCmd(stdio, "request RESOURCE", "Ask for time-bound access to a path (s3://bucket/prefix) or dataset", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		acc, _ := cmd.Flags().GetStringSlice("access")
		dur, _ := cmd.Flags().GetString("duration")
		just, _ := cmd.Flags().GetString("justification")
		if just == "" {
			return nil, nil, steward.Errorf(steward.EInvalid, "say why with --justification")
		}
		var r policystore.AccessRequest
		err := cl.do(cmd.Context(), "POST", "/access-requests", map[string]any{"resource": a[0], "accesses": acc, "duration": dur, "justification": just}, &r)
		return &r, accessTable(&r), err
	})
	req.Flags().StringSlice("access", []string{"read"}, "access types: read, write, list, create, delete, select, discover (repeatable or comma-separated)")
	req.Flags().String("duration", "8h", "for how long, e.g. 2h, 30m, 7d")
	req.Flags().String("justification", "", "why you need it (required)")
	cmd.AddCommand(req)

	ls := apiCmd(stdio, "list", "List your requests and those you can decide", cobra.NoArgs, func(cmd *cobra.Command, cl *client, _ []string) (any, func(*tabwriter.Writer), error) {
		q := url.Values{}
		if s, _ := cmd.Flags().GetString("scope"); s != "" {
			q.Set("scope", s)
		}
		if s, _ := cmd.Flags().GetString("status"); s != "" {
			q.Set("status", s)
		}
		var rs []*policystore.AccessRequest
		err := cl.do(cmd.Context(), "GET", "/access-requests?"+q.Encode(), nil, &rs)
		return rs, accessTable(rs...), err
	})
	ls.Flags().String("scope", "", "mine, approvable or all (administrators)")
	ls.Flags().String("status", "", "pending, approved, denied, revoked or expired")
	cmd.AddCommand(ls)

	cmd.AddCommand(apiCmd(stdio, "get ID", "Show an access request", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		var r policystore.AccessRequest
		err := cl.do(cmd.Context(), "GET", "/access-requests/"+url.PathEscape(a[0]), nil, &r)
		return &r, func(tw *tabwriter.Writer) {
			accessTable(&r)(tw)
			fmt.Fprintf(tw, "\njustification:\t%s\n", r.Justification)
			if r.Comment != "" {
				fmt.Fprintf(tw, "comment:\t%s\n", r.Comment)
			}
			if r.RevokeComment != "" {
				fmt.Fprintf(tw, "revoked by %s:\t%s\n", r.RevokedBy, r.RevokeComment)
			}
		}, err
	}))

	decide := func(verb, short string, withDuration bool) *cobra.Command {
		c := apiCmd(stdio, verb+" ID", short, cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
			comment, _ := cmd.Flags().GetString("comment")
			in := map[string]any{"comment": comment}
			if withDuration {
				if d, _ := cmd.Flags().GetString("duration"); d != "" {
					in["duration"] = d
				}
			}
			var r policystore.AccessRequest
			err := cl.do(cmd.Context(), "POST", "/access-requests/"+url.PathEscape(a[0])+"/"+verb, in, &r)
			return &r, accessTable(&r), err
		})
		c.Flags().String("comment", "", "a comment for the requester and the audit trail")
		if withDuration {
			c.Flags().String("duration", "", "grant for less than requested, e.g. 1h")
		}
		return c
	}
	cmd.AddCommand(
		decide("approve", "Approve a request: the grant starts now and ends by itself", true),
		decide("deny", "Deny a request", false),
		decide("revoke", "End an approved grant early", false),
	)

	owners := &cobra.Command{Use: "owners", Short: "Who owns which resources and approves requests for them"}
	set := apiCmd(stdio, "set RESOURCE", "Set the owners of a resource pattern (administrators)", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		users, _ := cmd.Flags().GetStringSlice("user")
		groups, _ := cmd.Flags().GetStringSlice("group")
		return nil, nil, cl.do(cmd.Context(), "PUT", "/resource-owners", map[string]any{"resource": a[0], "users": users, "groups": groups}, nil)
	})
	set.Flags().StringSlice("user", nil, "an owning user (repeatable)")
	set.Flags().StringSlice("group", nil, "an owning group (repeatable)")
	owners.AddCommand(set)
	owners.AddCommand(apiCmd(stdio, "list", "List resource owners", cobra.NoArgs, func(cmd *cobra.Command, cl *client, _ []string) (any, func(*tabwriter.Writer), error) {
		var os []*policystore.Owners
		err := cl.do(cmd.Context(), "GET", "/resource-owners", nil, &os)
		return os, func(tw *tabwriter.Writer) {
			fmt.Fprintln(tw, "RESOURCE\tUSERS\tGROUPS\tUPDATED BY")
			for _, o := range os {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", o.Resource, list(o.Users), list(o.Groups), o.UpdatedBy)
			}
		}, err
	}))
	owners.AddCommand(apiCmd(stdio, "delete RESOURCE", "Remove the owners of a resource pattern (administrators)", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		return nil, nil, cl.do(cmd.Context(), "DELETE", "/resource-owners?resource="+url.QueryEscape(a[0]), nil, nil)
	}))
	cmd.AddCommand(owners)
	return cmd
}
