package cli

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward/internal/catalog"
)

// withUsageCmd adds `usage` to the dataset command.
func withUsageCmd(dataset *cobra.Command, stdio IO) *cobra.Command {
	cmd := apiCmd(stdio, "usage DATASET", "Show how a dataset is used: reads per day, distinct readers, frequent users, popularity", cobra.ExactArgs(1), func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		id, err := datasetID(a[0])
		if err != nil {
			return nil, nil, err
		}
		days, _ := cmd.Flags().GetInt("days")
		var u catalog.DatasetUsage
		err = cl.do(cmd.Context(), "GET", "/datasets/"+id+"/usage?days="+strconv.Itoa(days), nil, &u)
		return &u, usageText(&u), err
	})
	cmd.Flags().Int("days", 30, "the window: the last this many days (1 to 400)")
	dataset.AddCommand(cmd)
	return dataset
}

func usageText(u *catalog.DatasetUsage) func(*tabwriter.Writer) {
	return func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "Dataset:\t%s\n", catalog.Ref(u.Namespace, u.Name))
		fmt.Fprintf(tw, "Last %d days:\t%d reads by %d readers\n", u.Days, u.Reads, u.Readers)
		fmt.Fprintf(tw, "Popularity:\t%.2f\n", u.Popularity)
		if len(u.TopUsers) > 0 {
			fmt.Fprintln(tw, "\nUSER\tREADS\tDAYS")
			for _, r := range u.TopUsers {
				fmt.Fprintf(tw, "%s\t%d\t%d\n", r.User, r.Reads, r.Days)
			}
		}
		var peak int64
		for _, d := range u.Daily {
			peak = max(peak, d.Reads)
		}
		fmt.Fprintln(tw, "\nDAY\tREADS\tREADERS\t")
		for _, d := range u.Daily {
			bar := ""
			if peak > 0 && d.Reads > 0 {
				bar = strings.Repeat("#", max(1, int(d.Reads*40/peak)))
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", d.Day, d.Reads, d.Readers, bar)
		}
	}
}

func newBookmarkCmd(stdio IO) *cobra.Command {
	cmd := &cobra.Command{Use: "bookmark", Short: "Keep a list of datasets you use (named NAMESPACE/NAME, e.g. s3://bank/sales/mortgages)"}
	change := func(method string) func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
		return func(cmd *cobra.Command, cl *client, a []string) (any, func(*tabwriter.Writer), error) {
			id, err := datasetID(a[0])
			if err != nil {
				return nil, nil, err
			}
			return nil, nil, cl.do(cmd.Context(), method, "/bookmarks/"+id, nil, nil)
		}
	}
	cmd.AddCommand(apiCmd(stdio, "add DATASET", "Bookmark a dataset", cobra.ExactArgs(1), change("PUT")))
	cmd.AddCommand(apiCmd(stdio, "rm DATASET", "Remove a bookmark", cobra.ExactArgs(1), change("DELETE")))
	cmd.AddCommand(apiCmd(stdio, "ls", "List your bookmarks, newest first", cobra.NoArgs, func(cmd *cobra.Command, cl *client, _ []string) (any, func(*tabwriter.Writer), error) {
		var out struct {
			Bookmarks []catalog.Bookmark `json:"bookmarks"`
		}
		err := cl.do(cmd.Context(), "GET", "/bookmarks", nil, &out)
		return &out, func(tw *tabwriter.Writer) {
			fmt.Fprintln(tw, "DATASET\tCLASS\tSINCE\tDESCRIPTION")
			for _, b := range out.Bookmarks {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", catalog.Ref(b.Dataset.Namespace, b.Dataset.Name), b.Dataset.Classification,
					b.Created.Format("2006-01-02"), firstLine(b.Dataset.Description))
			}
		}, err
	}))
	return cmd
}

func newRecommendCmd(stdio IO) *cobra.Command {
	cmd := apiCmd(stdio, "recommend", "Datasets for you: popular in your groups, and often used together with what you use", cobra.NoArgs, func(cmd *cobra.Command, cl *client, _ []string) (any, func(*tabwriter.Writer), error) {
		n, _ := cmd.Flags().GetInt("limit")
		var out struct {
			Recommendations []catalog.Recommendation `json:"recommendations"`
		}
		err := cl.do(cmd.Context(), "GET", "/recommendations?limit="+strconv.Itoa(n), nil, &out)
		return &out, recommendText(out.Recommendations), err
	})
	cmd.Flags().Int("limit", 10, "how many (1 to 100)")
	return cmd
}

func recommendText(rs []catalog.Recommendation) func(*tabwriter.Writer) {
	return func(tw *tabwriter.Writer) {
		if len(rs) == 0 {
			fmt.Fprintln(tw, "No recommendations yet: they come from what you and your groups read.")
			return
		}
		fmt.Fprintln(tw, "DATASET\tCLASS\tSCORE\tWHY")
		for _, r := range rs {
			fmt.Fprintf(tw, "%s\t%s\t%.1f\t%s\n", catalog.Ref(r.Dataset.Namespace, r.Dataset.Name), r.Dataset.Classification, r.Score, strings.Join(r.Reasons, "; "))
		}
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}
