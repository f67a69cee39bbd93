package cli

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward/internal/audit"
)

type auditEntry struct {
	Seq        uint64         `json:"seq"`
	Hash       string         `json:"hash"`
	Time       time.Time      `json:"time"`
	RequestID  string         `json:"request_id,omitempty"`
	Actor      string         `json:"actor"`
	ActorKind  string         `json:"actor_kind"`
	Action     string         `json:"action"`
	Resource   string         `json:"resource,omitempty"`
	Decision   string         `json:"decision,omitempty"`
	Policy     string         `json:"policy,omitempty"`
	Outcome    string         `json:"outcome"`
	Reason     string         `json:"reason,omitempty"`
	ClientAddr string         `json:"client_addr,omitempty"`
	Details    map[string]any `json:"details,omitempty"`
}

func auditDir(cmd *cobra.Command) string {
	dir, _ := cmd.Flags().GetString("dir")
	if dir != "" {
		return dir
	}
	if dd, _ := cmd.Flags().GetString("data-dir"); dd != "" {
		return filepath.Join(dd, "audit")
	}
	return ""
}

func newAuditCmd(stdio IO) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Verify and query the audit trail"}
	cmd.PersistentFlags().String("dir", "", "audit trail directory to read directly (on the server's machine)")
	cmd.PersistentFlags().String("data-dir", "", "Steward data dir whose audit trail to read directly")

	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check the hash chain; name the first edited, deleted, inserted or reordered record",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := auditDir(cmd)
			if dir == "" {
				sf, _ := cmd.Flags().GetString("server")
				cl, err := newClient(cmd.Context(), stdio, sf)
				if err != nil {
					return err
				}
				var res struct {
					OK       bool   `json:"ok"`
					Records  int64  `json:"records"`
					Segments int    `json:"segments"`
					Problem  string `json:"problem"`
				}
				if err := cl.do(cmd.Context(), "POST", "/audit/verify", nil, &res); err != nil {
					return err
				}
				if outputJSON(cmd) {
					printJSON(stdio.Out, res)
				} else if res.OK {
					fmt.Fprintf(stdio.Out, "OK: %d records in %d segments, chain intact\n", res.Records, res.Segments)
				}
				if !res.OK {
					return &exitError{code: 1, msg: "audit trail damaged: " + res.Problem}
				}
				return nil
			}
			rep, err := audit.Verify(dir)
			if err != nil {
				return err
			}
			if outputJSON(cmd) {
				out := map[string]any{"ok": rep.OK(), "records": rep.Records, "segments": rep.Segments}
				if !rep.OK() {
					out["problem"] = rep.Problem.Message
				}
				printJSON(stdio.Out, out)
			} else if rep.OK() {
				fmt.Fprintf(stdio.Out, "OK: %d records in %d segments, chain intact\n", rep.Records, rep.Segments)
			}
			if !rep.OK() {
				return &exitError{code: 1, msg: "audit trail damaged: " + rep.Problem.Message}
			}
			return nil
		},
	}

	var user, action, resource, decision, since, until string
	var limit int
	query := &cobra.Command{
		Use:   "query",
		Short: "List audit records by user, action, resource and time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := parseWhen(since)
			if err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			u, err := parseWhen(until)
			if err != nil {
				return fmt.Errorf("--until: %w", err)
			}
			var entries []auditEntry
			if dir := auditDir(cmd); dir != "" {
				err = audit.Query(dir, audit.Filter{Actor: user, Action: action, Resource: resource, Decision: decision, Since: s, Until: u, Limit: limit},
					func(r audit.Record) error {
						e := r.AuditEvent
						entries = append(entries, auditEntry{Seq: r.Seq, Hash: r.Hash, Time: e.Time, RequestID: e.RequestID, Actor: e.Actor, ActorKind: e.ActorKind,
							Action: e.Action, Resource: e.Resource, Decision: e.Decision, Policy: e.Policy, Outcome: e.Outcome, Reason: e.Reason, ClientAddr: e.ClientAddr, Details: e.Details})
						return nil
					})
				if err != nil {
					return err
				}
			} else {
				sf, _ := cmd.Flags().GetString("server")
				cl, err := newClient(cmd.Context(), stdio, sf)
				if err != nil {
					return err
				}
				q := url.Values{}
				for k, v := range map[string]string{"actor": user, "action": action, "resource": resource, "decision": decision} {
					if v != "" {
						q.Set(k, v)
					}
				}
				if !s.IsZero() {
					q.Set("since", s.Format(time.RFC3339Nano))
				}
				if !u.IsZero() {
					q.Set("until", u.Format(time.RFC3339Nano))
				}
				q.Set("limit", strconv.Itoa(limit))
				if err := cl.do(cmd.Context(), "GET", "/audit?"+q.Encode(), nil, &entries); err != nil {
					return err
				}
			}
			if outputJSON(cmd) {
				if entries == nil {
					entries = []auditEntry{}
				}
				return printJSON(stdio.Out, entries)
			}
			tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tACTION\tRESOURCE\tDECISION\tOUTCOME")
			for _, e := range entries {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.Local().Format(time.RFC3339), e.Actor, e.Action, e.Resource, dash(e.Decision), e.Outcome)
			}
			return tw.Flush()
		},
	}
	query.Flags().StringVar(&user, "user", "", "only this actor (user or service account)")
	query.Flags().StringVar(&action, "action", "", "only this action; a trailing * matches a prefix (auth.*)")
	query.Flags().StringVar(&resource, "resource", "", "only resources starting with this")
	query.Flags().StringVar(&decision, "decision", "", "only allow or deny decisions")
	query.Flags().StringVar(&since, "since", "", "from this time (RFC 3339) or this long ago (1h, 30m)")
	query.Flags().StringVar(&until, "until", "", "before this time (RFC 3339) or this long ago")
	query.Flags().IntVar(&limit, "limit", 100, "at most this many records")
	cmd.AddCommand(verify, query)
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parseWhen accepts RFC 3339 or a duration meaning that long ago.
func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("want RFC 3339 time or a duration like 1h, got %q", s)
	}
	return t, nil
}
