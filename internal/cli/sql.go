package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward"
)

func newSQLCmd(stdio IO) *cobra.Command {
	var command, format string
	cmd := &cobra.Command{
		Use:   "sql [-c QUERY]",
		Short: "Query catalog tables with SQL, with your masks and row filters applied",
		Long: "Runs governed SQL through the server's REST API with your stored login. Tables are named " +
			"namespace.schema.table (see SHOW TABLES). Without -c, reads statements ending in ';' from standard input.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sf, _ := cmd.Flags().GetString("server")
			cl, err := newClient(cmd.Context(), stdio, sf)
			if err != nil {
				return err
			}
			if outputJSON(cmd) {
				format = "jsonl"
			}
			if command != "" {
				return cl.sql(cmd.Context(), stdio.Out, command, format)
			}
			return sqlLoop(cmd.Context(), stdio, cl, format)
		},
	}
	cmd.Flags().StringVarP(&command, "command", "c", "", "run this one query and exit")
	cmd.Flags().StringVar(&format, "format", "table", "result format: table, csv or jsonl")
	return cmd
}

// sqlLoop reads statements from stdin; an error is reported and the loop
// goes on, as psql does.
func sqlLoop(ctx context.Context, stdio IO, cl *client, format string) error {
	sc := bufio.NewScanner(stdio.In)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var stmt strings.Builder
	failed := false
	for sc.Scan() {
		line := sc.Text()
		if stmt.Len() == 0 && (strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "--")) {
			continue
		}
		if t := strings.TrimSpace(line); stmt.Len() == 0 && (t == `\q` || t == "quit" || t == "exit") {
			break
		}
		stmt.WriteString(line)
		stmt.WriteByte('\n')
		if strings.HasSuffix(strings.TrimSpace(line), ";") {
			if err := cl.sql(ctx, stdio.Out, stmt.String(), format); err != nil {
				fmt.Fprintln(stdio.Err, errorText(err))
				failed = true
			}
			stmt.Reset()
		}
	}
	if strings.TrimSpace(stmt.String()) != "" {
		if err := cl.sql(ctx, stdio.Out, stmt.String(), format); err != nil {
			fmt.Fprintln(stdio.Err, errorText(err))
			failed = true
		}
	}
	if failed {
		return &exitError{code: 1, msg: "some statements failed"}
	}
	return sc.Err()
}

// sql runs one query and prints its result as it streams in.
func (c *client) sql(ctx context.Context, w io.Writer, query, format string) error {
	reqFormat := "jsonl"
	if format == "csv" {
		reqFormat = "csv"
	}
	body, _ := json.Marshal(map[string]string{"sql": query, "format": reqFormat})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.server+"/api/v1/query", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := (&http.Client{}).Do(req) // no timeout: the server bounds queries
	if err != nil {
		return fmt.Errorf("cannot reach Steward at %s: %w", c.server, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		var p struct {
			problem
			SQLState string `json:"sqlstate"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, &p) == nil && p.Detail != "" {
			return &steward.Error{Kind: steward.ErrorKind(p.Code), Message: sqlMessage(p.Detail, p.SQLState)}
		}
		return fmt.Errorf("query: %s", resp.Status)
	}
	switch format {
	case "csv", "jsonl":
		_, err := io.Copy(w, resp.Body)
		return err
	}
	return printTable(w, resp.Body)
}

func sqlMessage(msg, state string) string {
	if state != "" {
		return msg + " (SQLSTATE " + state + ")"
	}
	return msg
}

// printTable renders the JSON-lines stream as an aligned table.
func printTable(w io.Writer, r io.Reader) error {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	for {
		var line json.RawMessage
		if err := dec.Decode(&line); err != nil {
			if err == io.EOF {
				return fmt.Errorf("the result ended early")
			}
			return err
		}
		if len(line) > 0 && line[0] == '[' {
			var row []any
			if err := json.Unmarshal(line, &row); err != nil {
				return err
			}
			cells := make([]string, len(row))
			for i, v := range row {
				switch x := v.(type) {
				case nil:
					cells[i] = "NULL"
				case string:
					cells[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(x)
				default:
					b, _ := json.Marshal(x)
					cells[i] = string(b)
				}
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
			continue
		}
		var m struct {
			Columns []struct {
				Name string `json:"name"`
			} `json:"columns"`
			Complete *struct {
				Rows int64 `json:"rows"`
			} `json:"complete"`
			Error *struct {
				Code     string `json:"code"`
				SQLState string `json:"sqlstate"`
				Message  string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(line, &m); err != nil {
			return err
		}
		switch {
		case m.Columns != nil:
			names := make([]string, len(m.Columns))
			for i, c := range m.Columns {
				names[i] = c.Name
			}
			fmt.Fprintln(tw, strings.Join(names, "\t"))
		case m.Complete != nil:
			tw.Flush()
			fmt.Fprintf(w, "(%d rows)\n", m.Complete.Rows)
			return nil
		case m.Error != nil:
			tw.Flush()
			return &steward.Error{Kind: steward.ErrorKind(m.Error.Code), Message: sqlMessage(m.Error.Message, m.Error.SQLState)}
		}
	}
}
