// Package cli is Steward's command line: `steward serve` runs the server,
// and every other command is a client of its REST API and OpenID provider
// (login, whoami, token, administration, audit).
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward"
)

// Version is set at build time with -ldflags "-X ...cli.Version=...".
var Version = "dev"

// IO is where a command reads and writes; tests substitute buffers.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
	Getenv   func(string) string
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, stdio IO) int {
	if stdio.Getenv == nil {
		stdio.Getenv = os.Getenv
	}
	root := NewRoot(stdio)
	root.SetArgs(args)
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	if err := root.ExecuteContext(ctx); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(stdio.Err, "steward:", ee.msg)
			}
			return ee.code
		}
		fmt.Fprintln(stdio.Err, "steward:", errorText(err))
		return 1
	}
	return 0
}

// exitError ends the program with a specific code.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func errorText(err error) string {
	var se *steward.Error
	if errors.As(err, &se) && se.Message != "" {
		return se.Message
	}
	return err.Error()
}

// NewRoot builds the command tree.
func NewRoot(stdio IO) *cobra.Command {
	root := &cobra.Command{
		Use:           "steward",
		Short:         "Steward: governed data analytics, one identity, one authorization system, one audit trail",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringP("output", "o", "text", "output format: text or json")
	root.PersistentFlags().String("server", "", "Steward server URL (default: the one you logged in to, or $STEWARD_SERVER, or http://127.0.0.1:8080)")
	root.AddCommand(
		newServeCmd(stdio),
		newLoginCmd(stdio),
		newLogoutCmd(stdio),
		newWhoamiCmd(stdio),
		newTokenCmd(stdio),
		newCredsCmd(stdio),
		newRevokeSessionsCmd(stdio),
		newUserCmd(stdio),
		newGroupCmd(stdio),
		newServiceAccountCmd(stdio),
		newAuditCmd(stdio),
		newPolicyCmd(stdio),
		newAccessCmd(stdio),
		newSearchCmd(stdio), withUsageCmd(newDatasetCmd(stdio), stdio),
		newBookmarkCmd(stdio), newRecommendCmd(stdio),
		newSQLCmd(stdio),
		newLineageCmd(stdio),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), "steward", Version) },
		},
	)
	return root
}

func outputJSON(cmd *cobra.Command) bool {
	o, _ := cmd.Flags().GetString("output")
	return o == "json"
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
