package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/api"
	"github.com/stewardhq/steward/internal/identity"
	"github.com/stewardhq/steward/internal/sqlengine"
)

// restClient runs queries through Steward's REST endpoint, POST
// /api/v1/query, served on loopback by the same handlers `steward serve`
// mounts (the identity middleware in front of the huma API), and reads
// every result to the end, decoding it the way a client would: each JSON
// line into Go values, each CSV record into strings, each Arrow record
// batch into columns.
type restClient struct {
	url    string
	format string
	hc     *http.Client
}

// serveREST serves svc's REST endpoint on a loopback port and returns a
// client for it and the function that stops the server.
func serveREST(svc api.SQLQuerier, aud steward.Auditor, verify identity.TokenVerifier, format string, log *slog.Logger) (*restClient, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	a := api.New(api.Deps{Auditor: aud, SQL: svc, Logger: log, Version: "sqlbench"})
	mux := http.NewServeMux()
	mux.Handle(api.Prefix+"/", identity.Middleware(verify, a.Handler(), identity.MiddlewareOptions{
		AllowAnonymous: true, Realm: "steward", Logger: log,
	}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 4}
	stop := func() {
		tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	}
	return &restClient{url: "http://" + ln.Addr().String() + api.Prefix + "/query", format: format, hc: &http.Client{Transport: tr}}, stop, nil
}

func (c *restClient) query(ctx context.Context, q query, _ bool) (result, error) {
	body, err := json.Marshal(map[string]string{"sql": q.sql, "format": c.format})
	if err != nil {
		return result{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return result{}, err
	}
	req.Header.Set("Authorization", "Bearer token-"+q.user)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return result{}, fmt.Errorf("HTTP %d: %s", resp.StatusCode, msg)
	}
	var r result
	switch c.format {
	case "csv":
		r, err = readCSV(resp.Body)
	case "arrow":
		r, err = readArrow(resp.Body)
	default:
		r, err = readJSONL(resp.Body)
	}
	if err != nil {
		return r, err
	}
	// Drain, so the connection is reused.
	_, err = io.Copy(io.Discard, resp.Body)
	return r, err
}

// readJSONL reads a JSON-lines result: a columns line, one array per row,
// then a complete line whose row count must match, or an error line.
func readJSONL(rd io.Reader) (result, error) {
	var r result
	d := json.NewDecoder(rd)
	d.UseNumber()
	var head struct {
		Columns []sqlengine.Column `json:"columns"`
	}
	if err := d.Decode(&head); err != nil {
		return r, fmt.Errorf("columns line: %w", err)
	}
	for {
		var line any
		if err := d.Decode(&line); err != nil {
			if err == io.EOF {
				return r, errors.New("result ended without a complete line")
			}
			return r, err
		}
		switch v := line.(type) {
		case []any:
			if len(v) != len(head.Columns) {
				return r, fmt.Errorf("row %d has %d values for %d columns", r.n+1, len(v), len(head.Columns))
			}
			r.n++
		case map[string]any:
			if e, ok := v["error"]; ok {
				return r, fmt.Errorf("query failed after %d rows: %v", r.n, e)
			}
			c, _ := v["complete"].(map[string]any)
			n, _ := c["rows"].(json.Number)
			if got, err := n.Int64(); err != nil || got != r.n {
				return r, fmt.Errorf("complete line says %v rows, read %d", c["rows"], r.n)
			}
			return r, nil
		default:
			return r, fmt.Errorf("unexpected line %v", v)
		}
	}
}

// readCSV reads a CSV result: a header, then one record per row.
func readCSV(rd io.Reader) (result, error) {
	var r result
	cr := csv.NewReader(rd)
	cr.ReuseRecord = true
	if _, err := cr.Read(); err != nil {
		return r, fmt.Errorf("header: %w", err)
	}
	for {
		if _, err := cr.Read(); err != nil {
			if err == io.EOF {
				return r, nil
			}
			return r, err
		}
		r.n++
	}
}

// readArrow reads an Arrow IPC stream to its end-of-stream marker.
func readArrow(rd io.Reader) (result, error) {
	var r result
	ar, err := ipc.NewReader(rd)
	if err != nil {
		return r, err
	}
	defer ar.Release()
	for ar.Next() {
		r.n += ar.RecordBatch().NumRows()
	}
	return r, ar.Err()
}
