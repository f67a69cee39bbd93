package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/chzyer/readline"
	"github.com/spf13/cobra"

	"github.com/stewardhq/steward"
)

func newSQLCmd(stdio IO) *cobra.Command {
	var command, format, database string
	cmd := &cobra.Command{
		Use:   "sql [-c QUERY]",
		Short: "Query catalog tables with SQL, with your masks and row filters applied",
		Long: "Runs governed SQL through the server's REST API with your stored login. Tables are named " +
			"namespace.schema.table (see SHOW TABLES). Without -c, reads statements ending in ';' from standard input; " +
			"on a terminal, interactively with line editing and history (" + `\q quits, \dt lists tables` + ").",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sf, _ := cmd.Flags().GetString("server")
			cl, err := newClient(cmd.Context(), stdio, sf)
			if err != nil {
				return err
			}
			switch o, _ := cmd.Flags().GetString("output"); {
			case o == "json":
				format = "jsonl"
			case o == "csv":
				format = "csv"
			}
			run := func(ctx context.Context, stmt string) error { return cl.sql(ctx, stdio.Out, stmt, format, database) }
			if command != "" {
				return run(cmd.Context(), command)
			}
			if f, ok := stdio.In.(*os.File); ok && readline.IsTerminal(int(f.Fd())) {
				lr, err := newTerminalReader(stdio, cl.token)
				if err != nil {
					return err
				}
				defer lr.Close()
				return sqlLoop(cmd.Context(), stdio, lr, run, true)
			}
			return sqlLoop(cmd.Context(), stdio, newScanReader(stdio.In), run, false)
		},
	}
	cmd.Flags().StringVarP(&command, "command", "c", "", "run this one query and exit")
	cmd.Flags().StringVar(&format, "format", "table", "result format: table, csv or jsonl (or --output csv|json)")
	cmd.Flags().StringVarP(&database, "database", "d", "", "resolve short names in this catalog, as psql -d does: schema.table is DATABASE.schema.table, a table alone DATABASE.public.table")
	return cmd
}

// sql runs one query and prints its result as it streams in.
func (c *client) sql(ctx context.Context, w io.Writer, query, format, database string) error {
	reqFormat := "jsonl"
	if format == "csv" {
		reqFormat = "csv"
	}
	fields := map[string]string{"sql": query, "format": reqFormat}
	if database != "" {
		fields["database"] = database
	}
	body, _ := json.Marshal(fields)
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

// printTable renders the JSON-lines stream as an aligned table, as psql
// does: it holds the rows to size the columns.
func printTable(w io.Writer, r io.Reader) error {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var t table
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
					cells[i] = ""
				case string:
					cells[i] = x
				case json.Number:
					cells[i] = x.String()
				case bool:
					cells[i] = map[bool]string{true: "t", false: "f"}[x]
				default:
					b, _ := json.Marshal(x)
					cells[i] = string(b)
				}
			}
			t.rows = append(t.rows, cells)
			continue
		}
		var m struct {
			Columns []struct {
				Name string `json:"name"`
				Type string `json:"type"`
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
			for _, c := range m.Columns {
				t.names = append(t.names, c.Name)
				t.right = append(t.right, isNumericType(c.Type))
			}
		case m.Complete != nil:
			t.write(w)
			return nil
		case m.Error != nil:
			return &steward.Error{Kind: steward.ErrorKind(m.Error.Code), Message: sqlMessage(m.Error.Message, m.Error.SQLState)}
		}
	}
}

func isNumericType(t string) bool {
	t = strings.ToUpper(t)
	for _, p := range []string{"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "REAL", "NUMERIC"} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

// table is a result laid out as psql's aligned format.
type table struct {
	names []string
	right []bool // right-aligned (numbers)
	rows  [][]string
}

func (t *table) write(w io.Writer) {
	width := make([]int, len(t.names))
	for i, n := range t.names {
		width[i] = utf8.RuneCountInString(n)
	}
	for _, r := range t.rows {
		for i, c := range r {
			if i < len(width) {
				width[i] = max(width[i], displayWidth(c))
			}
		}
	}
	var b strings.Builder
	line := func(cells []string, header bool) {
		var l strings.Builder
		for i := range width {
			c := ""
			if i < len(cells) {
				c = strings.NewReplacer("\n", " ", "\t", " ", "\r", " ").Replace(cells[i])
			}
			pad := width[i] - displayWidth(c)
			if i > 0 {
				l.WriteString("|")
			}
			l.WriteByte(' ')
			switch {
			case header:
				l.WriteString(strings.Repeat(" ", pad/2) + c + strings.Repeat(" ", pad-pad/2))
			case t.right[i]:
				l.WriteString(strings.Repeat(" ", pad) + c)
			default:
				l.WriteString(c + strings.Repeat(" ", pad))
			}
			l.WriteByte(' ')
		}
		b.WriteString(strings.TrimRight(l.String(), " "))
		b.WriteString("\n")
	}
	line(t.names, true)
	for i, wd := range width {
		if i > 0 {
			b.WriteString("+")
		}
		b.WriteString(strings.Repeat("-", wd+2))
	}
	b.WriteString("\n")
	for _, r := range t.rows {
		line(r, false)
	}
	fmt.Fprintf(&b, "(%d rows)\n", len(t.rows)) // "(1 rows)" too: scripts and tests match it
	io.WriteString(w, b.String())
}

func displayWidth(s string) int { return utf8.RuneCountInString(s) }
