package api

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/sqlengine"
)

// SQLQuerier runs governed queries; *sqlengine.Service implements it.
type SQLQuerier interface {
	Query(ctx context.Context, req sqlengine.Request, sink sqlengine.RowSink) (*sqlengine.Summary, error)
}

type queryInput struct {
	Body struct {
		SQL    string `json:"sql" minLength:"1" maxLength:"1048576" doc:"One SELECT statement over catalog tables (ns.schema.table), or SHOW TABLES."`
		Format string `json:"format,omitempty" enum:"jsonl,csv," doc:"jsonl (default) or csv."`
	}
}

// The JSON-lines result format: a {"columns": [...]} line, one JSON array
// per row, then {"complete": {"rows": n}} or, if the query fails after
// rows were sent, {"error": {...}}.
type jsonlColumns struct {
	Columns []sqlengine.Column `json:"columns"`
}

type jsonlError struct {
	Code     string `json:"code"`
	SQLState string `json:"sqlstate"`
	Message  string `json:"message"`
}

func (a *API) registerSQL() {
	huma.Register(a.h, huma.Operation{
		OperationID: "query-sql", Method: http.MethodPost, Path: "/query", Tags: []string{"sql"},
		Summary:     "Run a governed SQL query",
		Description: "Runs one SELECT with the caller's masks and row filters applied and streams the result as JSON lines (a columns line, one JSON array per row, then a complete or error line) or CSV (a header, then rows; a failure after rows were sent aborts the response). Every query is audited.",
		Security:    bearer, Errors: []int{400, 401, 403, 404, 413, 503},
	}, func(ctx context.Context, in *queryInput) (*huma.StreamResponse, error) {
		p, err := requireUser(ctx)
		if err != nil {
			return nil, a.problem(ctx, "sql.query", err)
		}
		return &huma.StreamResponse{Body: func(hc huma.Context) {
			a.streamQuery(hc, p, in.Body.SQL, in.Body.Format)
		}}, nil
	})
}

func (a *API) streamQuery(hc huma.Context, p *steward.Principal, q, format string) {
	ctx := hc.Context()
	sink := &httpSink{hc: hc, csv: format == "csv"}
	sum, err := a.d.SQL.Query(ctx, sqlengine.Request{Principal: p, SQL: q, ClientAddr: steward.ClientAddrFrom(ctx), RequestID: RequestID(ctx)}, sink)
	if sink.err != nil {
		return // the client is gone
	}
	if err != nil {
		if !sink.started {
			pr := a.problem(ctx, "sql.query", err).(*Problem)
			hc.SetHeader("Content-Type", "application/problem+json")
			hc.SetStatus(pr.Status)
			json.NewEncoder(hc.BodyWriter()).Encode(struct {
				*Problem
				SQLState string `json:"sqlstate"`
			}{pr, sqlengine.SQLState(err)})
			return
		}
		if sink.csv {
			sink.cw.Flush()
			panic(http.ErrAbortHandler) // a short CSV must not look complete
		}
		json.NewEncoder(hc.BodyWriter()).Encode(map[string]jsonlError{"error": {Code: string(steward.KindOf(err)), SQLState: sqlengine.SQLState(err), Message: steward.MessageOf(err)}})
		return
	}
	if !sink.started {
		sink.Columns(nil)
	}
	if sink.csv {
		sink.cw.Flush()
		return
	}
	json.NewEncoder(hc.BodyWriter()).Encode(map[string]map[string]int64{"complete": {"rows": sum.Rows}})
}

// httpSink writes rows as they come, flushing every so often.
type httpSink struct {
	hc      huma.Context
	csv     bool
	cw      *csv.Writer
	enc     *json.Encoder
	started bool
	n       int
	err     error
}

func (s *httpSink) Columns(cols []sqlengine.Column) error {
	s.started = true
	w := s.hc.BodyWriter()
	if s.csv {
		s.hc.SetHeader("Content-Type", "text/csv; charset=utf-8")
		s.hc.SetStatus(http.StatusOK)
		s.cw = csv.NewWriter(w)
		names := make([]string, len(cols))
		for i, c := range cols {
			names[i] = c.Name
		}
		return s.fail(s.cw.Write(names))
	}
	s.hc.SetHeader("Content-Type", "application/jsonl")
	s.hc.SetStatus(http.StatusOK)
	s.enc = json.NewEncoder(w)
	if cols == nil {
		cols = []sqlengine.Column{}
	}
	return s.fail(s.enc.Encode(jsonlColumns{Columns: cols}))
}

func (s *httpSink) Row(vals []any) error {
	var err error
	if s.csv {
		rec := make([]string, len(vals))
		for i, v := range vals {
			if v != nil {
				rec[i] = textOf(v)
			}
		}
		err = s.cw.Write(rec)
	} else {
		row := make([]any, len(vals))
		for i, v := range vals {
			row[i] = jsonOf(v)
		}
		err = s.enc.Encode(row)
	}
	if s.n++; err == nil && s.n%256 == 0 {
		if s.csv {
			s.cw.Flush()
			err = s.cw.Error()
		}
		if f, ok := s.hc.BodyWriter().(http.Flusher); ok {
			f.Flush()
		}
	}
	return s.fail(err)
}

func (s *httpSink) fail(err error) error {
	if err != nil {
		s.err = err
	}
	return err
}

// jsonOf makes v encodable: bytes as text, everything else as is unless
// it cannot be encoded.
func jsonOf(v any) any {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Sprint(x)
		}
		return x
	case float32:
		return jsonOf(float64(x))
	case nil, string, bool, int64, int32, int16, int8, int, uint64, uint32, uint16, uint8:
		return x
	}
	if _, err := json.Marshal(v); err != nil {
		return textOf(v)
	}
	return v
}

func textOf(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := string(b)
	if strings.HasPrefix(s, `"`) {
		var u string
		if json.Unmarshal(b, &u) == nil {
			return u
		}
	}
	return s
}
