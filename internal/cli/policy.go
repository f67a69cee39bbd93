package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/policy"
	"github.com/stewardhq/steward/internal/policy/ranger"
	"github.com/stewardhq/steward/internal/policystore"
)

// applyResult is the API's answer to apply and delete.
type applyResult struct {
	policystore.Result
	Diff string `json:"diff"`
}

func diffText(r *applyResult) func(*tabwriter.Writer) {
	return func(tw *tabwriter.Writer) { fmt.Fprint(tw, r.Diff) }
}

// readPolicyFile reads FILE, or standard input for "-".
func readPolicyFile(stdio IO, name string) (string, []byte, error) {
	if name == "" {
		return "", nil, steward.Errorf(steward.EInvalid, "name the policy file with -f FILE (or -f - for standard input)")
	}
	var r io.Reader
	if name == "-" {
		r, name = stdio.In, "stdin"
	} else {
		f, err := os.Open(name)
		if err != nil {
			return "", nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, policy.MaxFileSize+1))
	if err != nil {
		return "", nil, err
	}
	if len(b) > policy.MaxFileSize {
		return "", nil, steward.Errorf(steward.ETooLarge, "%s: larger than %d bytes", name, policy.MaxFileSize)
	}
	return filepath.Base(name), b, nil
}

func newPolicyCmd(stdio IO) *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Administer authorization policies"}

	apply := apiCmd(stdio, "apply -f FILE", "Apply a policy file (YAML or JSON): declarative, idempotent, all or nothing", cobra.NoArgs, func(cmd *cobra.Command, cl *client, _ []string) (any, func(*tabwriter.Writer), error) {
		f, _ := cmd.Flags().GetString("file")
		name, data, err := readPolicyFile(stdio, f)
		if err != nil {
			return nil, nil, err
		}
		dry, _ := cmd.Flags().GetBool("dry-run")
		prune, _ := cmd.Flags().GetBool("prune")
		var r applyResult
		err = cl.do(cmd.Context(), "POST", "/policies/apply", map[string]any{"file": name, "content": string(data), "dry_run": dry, "prune": prune}, &r)
		return &r, diffText(&r), err
	})
	apply.Flags().StringP("file", "f", "", "the policy file (- for standard input)")
	apply.Flags().Bool("dry-run", false, "print the difference; change nothing")
	apply.Flags().Bool("prune", false, "also delete the policies the file does not name (grants are kept)")
	cmd.AddCommand(apply)

	cmd.AddCommand(apiCmd(stdio, "list", "List policies", cobra.NoArgs, func(cmd *cobra.Command, cl *client, _ []string) (any, func(*tabwriter.Writer), error) {
		var rs []*policystore.Record
		err := cl.do(cmd.Context(), "GET", "/policies", nil, &rs)
		return rs, func(tw *tabwriter.Writer) {
			fmt.Fprintln(tw, "ID\tVERSION\tKIND\tPRIORITY\tENABLED\tUPDATED BY\tUPDATED\tNAME")
			for _, r := range rs {
				p := r.Policy
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%t\t%s\t%s\t%s\n", p.ID, p.Version, p.Kind, p.Priority, p.Enabled, r.UpdatedBy, r.UpdatedAt.Format(time.RFC3339), p.Name)
			}
		}, err
	}))

	cmd.AddCommand(apiCmd(stdio, "get ID", "Show a policy in the policy file format", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		var r policystore.Record
		if err := cl.do(cmd.Context(), "GET", "/policies/"+url.PathEscape(a[0]), nil, &r); err != nil {
			return nil, nil, err
		}
		y, err := policystore.FormatFile([]*policy.Policy{r.Policy})
		return &r, func(tw *tabwriter.Writer) {
			fmt.Fprintf(tw, "# %s version %d, changed by %s at %s\n%s", r.Policy.ID, r.Policy.Version, r.UpdatedBy, r.UpdatedAt.Format(time.RFC3339), y)
		}, err
	}))

	del := apiCmd(stdio, "delete ID", "Delete a policy", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		dry, _ := cmd.Flags().GetBool("dry-run")
		var r applyResult
		err := cl.do(cmd.Context(), "DELETE", "/policies/"+url.PathEscape(a[0])+fmt.Sprintf("?dry_run=%t", dry), nil, &r)
		return &r, diffText(&r), err
	})
	del.Flags().Bool("dry-run", false, "print the difference; change nothing")
	cmd.AddCommand(del)

	cmd.AddCommand(apiCmd(stdio, "history ID", "Every change of a policy: who, when, what", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		var hs []*policystore.HistoryEntry
		err := cl.do(cmd.Context(), "GET", "/policies/"+url.PathEscape(a[0])+"/history", nil, &hs)
		return hs, func(tw *tabwriter.Writer) {
			fmt.Fprintln(tw, "TIME\tSET VERSION\tVERSION\tOP\tACTOR\tCHANGES")
			for _, h := range hs {
				var ch []string
				for _, d := range h.Diff {
					ch = append(ch, fmt.Sprintf("%s: %s -> %s", d.Path, none(string(d.Old)), none(string(d.New))))
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", h.Time.Format(time.RFC3339), h.SetVersion, h.Version, h.Op, h.Actor, strings.Join(ch, "; "))
			}
		}, err
	}))

	export := &cobra.Command{
		Use: "export", Short: "Export the policy set as a policy file (YAML)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sf, _ := cmd.Flags().GetString("server")
			cl, err := newClient(cmd.Context(), stdio, sf)
			if err != nil {
				return err
			}
			grants, _ := cmd.Flags().GetBool("include-grants")
			b, err := cl.raw(cmd.Context(), "/policies/export?include_grants="+fmt.Sprint(grants))
			if err != nil {
				return err
			}
			if out, _ := cmd.Flags().GetString("file"); out != "" && out != "-" {
				return os.WriteFile(out, b, 0o644)
			}
			_, err = stdio.Out.Write(b)
			return err
		},
	}
	export.Flags().StringP("file", "f", "", "write to this file instead of standard output")
	export.Flags().Bool("include-grants", false, "include the grants of access requests")
	cmd.AddCommand(export)

	explain := apiCmd(stdio, "explain", "Explain a decision: which policies applied and why", cobra.NoArgs, func(cmd *cobra.Command, cl *client, _ []string) (any, func(*tabwriter.Writer), error) {
		q, err := decisionQueryFlags(cmd)
		if err != nil {
			return nil, nil, err
		}
		var ex policy.Explanation
		err = cl.do(cmd.Context(), "POST", "/policies/explain", q, &ex)
		return &ex, func(tw *tabwriter.Writer) {
			verdict := "DENY"
			if ex.Allowed {
				verdict = "ALLOW"
			}
			fmt.Fprintf(tw, "%s\t%s\n", verdict, ex.Reason)
			if ex.PolicyID != "" {
				fmt.Fprintf(tw, "decided by\t%s (version %d)\n", ex.PolicyID, ex.Version)
			}
			fmt.Fprintf(tw, "policy set\tversion %d, %d policies, %d candidates\n", ex.SetVersion, ex.Policies, ex.Candidates)
			fmt.Fprintf(tw, "resolution\t%s\n\n", ex.Resolution)
			fmt.Fprintln(tw, "POLICY\tVERSION\tKIND\tSOURCE\tPRIORITY\tOUTCOME\tDECISIVE\tWHY")
			for _, s := range ex.Steps {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%t\t%s\n", s.PolicyID, s.Version, s.Kind, s.Source, s.Priority, s.Outcome, s.Decisive, s.Why)
			}
		}, err
	})
	explain.Flags().String("user", "", "the user (required)")
	explain.Flags().StringSlice("group", nil, "a group of the user (repeatable)")
	explain.Flags().StringSlice("role", nil, "a role of the user (repeatable)")
	explain.Flags().String("action", "", "the access: read, write, list, create, delete, select, admin or discover")
	explain.Flags().String("resource", "", "s3://bucket/key, dataset:NAME, table:NAME or table:NAME#column")
	explain.Flags().StringSlice("tag", nil, "an effective tag of the resource, NAME or NAME:k=v;k2=v2 (repeatable)")
	explain.Flags().String("classification", "", "the resource's classification, C1..C4")
	explain.Flags().String("time", "", "decide as of this time (RFC 3339); now if empty")
	explain.Flags().String("ip", "", "the client address")
	cmd.AddCommand(explain)

	imp := apiCmd(stdio, "import --ranger FILE", "Import an Apache Ranger policy export and apply it", cobra.NoArgs, func(cmd *cobra.Command, cl *client, _ []string) (any, func(*tabwriter.Writer), error) {
		f, _ := cmd.Flags().GetString("ranger")
		if f == "" {
			return nil, nil, steward.Errorf(steward.EInvalid, "name the Ranger export with --ranger FILE")
		}
		var opts ranger.Options
		opts.IDPrefix, _ = cmd.Flags().GetString("id-prefix")
		opts.HiveCatalog, _ = cmd.Flags().GetString("hive-catalog")
		opts.PathBucket, _ = cmd.Flags().GetString("path-bucket")
		opts.TimeZone, _ = cmd.Flags().GetString("time-zone")
		r, err := os.Open(f)
		if err != nil {
			return nil, nil, err
		}
		defer r.Close()
		res, err := ranger.Import(r, opts)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %s", filepath.Base(f), errorText(err))
		}
		for _, is := range res.Report {
			fmt.Fprintln(stdio.Err, is.String())
		}
		fmt.Fprintf(stdio.Err, "%s: %d policies converted, %d skipped, %d issues\n", filepath.Base(f), len(res.Policies), res.Skipped, len(res.Report))
		if len(res.Policies) == 0 {
			return nil, nil, steward.Errorf(steward.EInvalid, "%s: no policy could be imported", filepath.Base(f))
		}
		content, err := policystore.FormatFile(res.Policies)
		if err != nil {
			return nil, nil, err
		}
		dry, _ := cmd.Flags().GetBool("dry-run")
		var out struct {
			applyResult
			Report []ranger.Issue `json:"report"`
		}
		err = cl.do(cmd.Context(), "POST", "/policies/apply", map[string]any{"file": filepath.Base(f), "content": string(content), "dry_run": dry}, &out.applyResult)
		out.Report = res.Report
		return &out, diffText(&out.applyResult), err
	})
	imp.Flags().String("ranger", "", "the Ranger export (JSON)")
	imp.Flags().Bool("dry-run", false, "print the report and the difference; change nothing")
	imp.Flags().String("id-prefix", "", "prefix of the imported policy IDs (default ranger)")
	imp.Flags().String("hive-catalog", "", "the catalog Hive databases appear under (default hive)")
	imp.Flags().String("path-bucket", "", "put every HDFS path under this bucket (default: the first path component)")
	imp.Flags().String("time-zone", "", "time zone of validity schedules that name none (default UTC)")
	cmd.AddCommand(imp)
	return cmd
}

func none(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// decisionQueryFlags builds a decision question from explain's flags.
func decisionQueryFlags(cmd *cobra.Command) (map[string]any, error) {
	user, _ := cmd.Flags().GetString("user")
	action, _ := cmd.Flags().GetString("action")
	res, _ := cmd.Flags().GetString("resource")
	if user == "" || action == "" || res == "" {
		return nil, steward.Errorf(steward.EInvalid, "--user, --action and --resource are required")
	}
	groups, _ := cmd.Flags().GetStringSlice("group")
	roles, _ := cmd.Flags().GetStringSlice("role")
	q := map[string]any{"user": user, "groups": groups, "roles": roles, "access": action, "resource": res}
	tags, _ := cmd.Flags().GetStringSlice("tag")
	var ts []map[string]any
	for _, t := range tags {
		name, attrs, _ := strings.Cut(t, ":")
		m := map[string]any{"name": name}
		if attrs != "" {
			am := map[string]string{}
			for _, kv := range strings.Split(attrs, ";") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return nil, steward.Errorf(steward.EInvalid, "--tag %q: want NAME or NAME:k=v;k2=v2", t)
				}
				am[k] = v
			}
			m["attrs"] = am
		}
		ts = append(ts, m)
	}
	if ts != nil {
		q["tags"] = ts
	}
	if c, _ := cmd.Flags().GetString("classification"); c != "" {
		q["classification"] = strings.ToUpper(c)
	}
	if s, _ := cmd.Flags().GetString("time"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return nil, steward.Errorf(steward.EInvalid, "--time %q: want RFC 3339, e.g. 2026-01-02T15:04:05Z", s)
		}
		q["time"] = t
	}
	if ip, _ := cmd.Flags().GetString("ip"); ip != "" {
		q["client_ip"] = ip
	}
	return q, nil
}

// raw GETs /api/v1+path and returns the body as is.
func (c *client) raw(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.server+"/api/v1"+path, nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Steward at %s: %w", c.server, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, problemError("GET", path, resp.Status, b)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 256<<20))
}

// problemError turns an API problem body into an error, as client.do does.
func problemError(method, path, status string, b []byte) error {
	var p problem
	if json.Unmarshal(b, &p) == nil && p.Detail != "" {
		msg := p.Detail
		for _, e := range p.Errors {
			msg += "; " + strings.TrimSpace(e.Location+" "+e.Message)
		}
		return &steward.Error{Kind: steward.ErrorKind(p.Code), Message: msg}
	}
	return fmt.Errorf("%s %s: %s", method, path, status)
}
