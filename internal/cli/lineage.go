package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

type lineageNode struct {
	ID       string          `json:"id"`
	Type     string          `json:"type"`
	Data     json.RawMessage `json:"data"`
	InEdges  []lineageEdge   `json:"inEdges"`
	OutEdges []lineageEdge   `json:"outEdges"`
}

type lineageEdge struct {
	Origin      string `json:"origin"`
	Destination string `json:"destination"`
}

// lineageNodeID turns NAMESPACE:NAME (or a node id) into a node id; with
// a column, a datasetField id.
func lineageNodeID(arg, column string) string {
	id := arg
	if !strings.HasPrefix(id, "dataset:") && !strings.HasPrefix(id, "job:") && !strings.HasPrefix(id, "datasetField:") {
		id = "dataset:" + id
	}
	if column != "" && strings.HasPrefix(id, "dataset:") {
		id = "datasetField:" + strings.TrimPrefix(id, "dataset:") + ":" + column
	}
	return id
}

func newLineageCmd(stdio IO) *cobra.Command {
	var depth int
	var direction, column string
	var columns bool
	cmd := &cobra.Command{
		Use:   "lineage NAMESPACE:NAME",
		Short: "Show where a dataset comes from and what depends on it (--column for column lineage)",
		Long: "Show the lineage graph around a dataset (NAMESPACE:NAME, or a node id such as job:NS:NAME).\n" +
			"--direction upstream shows its sources, downstream what depends on it (impact).\n" +
			"--column FIELD shows the lineage of one column; --columns that of all its columns.\n" +
			"Datasets you may not discover appear as redacted placeholders.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sf, _ := cmd.Flags().GetString("server")
			cl, err := newClient(cmd.Context(), stdio, sf)
			if err != nil {
				return err
			}
			path := "/lineage"
			id := lineageNodeID(args[0], column)
			if column != "" || columns {
				path = "/column-lineage"
			}
			q := url.Values{"nodeId": {id}, "depth": {strconv.Itoa(depth)}, "direction": {direction}}
			var g struct {
				Graph []lineageNode `json:"graph"`
			}
			if err := cl.do(cmd.Context(), "GET", path+"?"+q.Encode(), nil, &g); err != nil {
				return err
			}
			if outputJSON(cmd) {
				return printJSON(stdio.Out, g)
			}
			for _, n := range g.Graph {
				mark := ""
				if n.ID == id {
					mark = "  *"
				}
				fmt.Fprintf(stdio.Out, "%s%s\n", n.ID, mark)
				var cls struct {
					Classification string `json:"classification"`
				}
				if json.Unmarshal(n.Data, &cls) == nil && cls.Classification != "" {
					fmt.Fprintf(stdio.Out, "    classification %s\n", cls.Classification)
				}
				for _, e := range n.InEdges {
					fmt.Fprintf(stdio.Out, "    <- %s\n", e.Origin)
				}
				for _, e := range n.OutEdges {
					fmt.Fprintf(stdio.Out, "    -> %s\n", e.Destination)
				}
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&depth, "depth", 20, "how many jobs (column hops) to follow")
	cmd.Flags().StringVar(&direction, "direction", "both", "both, upstream or downstream")
	cmd.Flags().StringVar(&column, "column", "", "show the lineage of this column")
	cmd.Flags().BoolVar(&columns, "columns", false, "show the column lineage of every column")

	explain := &cobra.Command{
		Use:   "explain NAMESPACE:NAME",
		Short: "Explain a dataset's classification: own tags and what it inherits, through which job and run",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sf, _ := cmd.Flags().GetString("server")
			cl, err := newClient(cmd.Context(), stdio, sf)
			if err != nil {
				return err
			}
			var ex struct {
				Classification string   `json:"classification"`
				Reasons        []string `json:"reasons"`
				Own            []struct {
					Name, Value, Field, Classification string
				} `json:"own"`
			}
			ds := strings.TrimPrefix(args[0], "dataset:")
			if err := cl.do(cmd.Context(), "GET", "/lineage/explain?"+url.Values{"dataset": {ds}}.Encode(), nil, &ex); err != nil {
				return err
			}
			if outputJSON(cmd) {
				return printJSON(stdio.Out, ex)
			}
			c := ex.Classification
			if c == "" {
				c = "unclassified"
			}
			fmt.Fprintf(stdio.Out, "%s: %s\n", ds, c)
			for _, t := range ex.Own {
				where := ""
				if t.Field != "" {
					where = " on column " + t.Field
				}
				if t.Classification != "" && t.Classification != t.Value {
					where += " (" + t.Classification + ")"
				}
				fmt.Fprintf(stdio.Out, "  own %s%s%s\n", t.Name, map[bool]string{true: "=" + t.Value, false: ""}[t.Value != ""], where)
			}
			for _, r := range ex.Reasons {
				fmt.Fprintf(stdio.Out, "  %s\n", r)
			}
			return nil
		},
	}
	post := &cobra.Command{
		Use:   "post FILE...",
		Short: "Send OpenLineage events (a JSON object or array per file) to Steward",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sf, _ := cmd.Flags().GetString("server")
			cl, err := newClient(cmd.Context(), stdio, sf)
			if err != nil {
				return err
			}
			for _, f := range args {
				b, err := os.ReadFile(f)
				if err != nil {
					return err
				}
				path := "/lineage"
				if t := strings.TrimSpace(string(b)); strings.HasPrefix(t, "[") {
					path = "/lineage/batch"
				}
				var res struct {
					Accepted   int `json:"accepted"`
					Duplicates int `json:"duplicates"`
				}
				if err := cl.do(cmd.Context(), "POST", path, json.RawMessage(b), &res); err != nil {
					return fmt.Errorf("%s: %w", f, err)
				}
				fmt.Fprintf(stdio.Out, "%s: %d accepted, %d already recorded\n", f, res.Accepted, res.Duplicates)
			}
			return nil
		},
	}
	cmd.AddCommand(explain, post)
	return cmd
}
