package trino

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Limits on a request from Trino.
const (
	// MaxBodySize is the largest request body read.
	MaxBodySize = 8 << 20
	// MaxFilterResources is the most items one batch request may filter.
	MaxFilterResources = 100_000
	// MaxColumns is the most columns one table resource may name.
	MaxColumns = 100_000
	maxName    = 1024
)

// The OPA input document Trino's OPA access control sends (see
// io.trino.plugin.opa.schema). Unknown fields are ignored, as Trino adds
// fields across versions.
type request struct {
	Input *input `json:"input"`
}

type input struct {
	Context queryContext `json:"context"`
	Action  action       `json:"action"`

	// The user's visible tables, once Handler.Tables was asked.
	visible []string
	listed  bool
}

type queryContext struct {
	Identity      identity `json:"identity"`
	QueryID       string   `json:"queryId"`
	SoftwareStack struct {
		TrinoVersion string `json:"trinoVersion"`
	} `json:"softwareStack"`
}

type identity struct {
	User   string   `json:"user"`
	Groups []string `json:"groups"`
}

type action struct {
	Operation       string          `json:"operation"`
	Resource        *resource       `json:"resource"`
	TargetResource  *resource       `json:"targetResource"`
	FilterResources []resource      `json:"filterResources"`
	Grantee         json.RawMessage `json:"grantee"`
}

type resource struct {
	User                   *userRes        `json:"user"`
	SystemSessionProperty  *named          `json:"systemSessionProperty"`
	CatalogSessionProperty *catalogSession `json:"catalogSessionProperty"`
	Function               *function       `json:"function"`
	Catalog                *named          `json:"catalog"`
	Schema                 *schema         `json:"schema"`
	Table                  *table          `json:"table"`
	Column                 *column         `json:"column"`
}

type named struct {
	Name string `json:"name"`
}

type userRes struct {
	User   string   `json:"user"`
	Groups []string `json:"groups"`
}

type catalogSession struct {
	CatalogName  string `json:"catalogName"`
	PropertyName string `json:"propertyName"`
}

type function struct {
	CatalogName  string `json:"catalogName"`
	SchemaName   string `json:"schemaName"`
	FunctionName string `json:"functionName"`
}

type schema struct {
	CatalogName string `json:"catalogName"`
	SchemaName  string `json:"schemaName"`
}

type table struct {
	CatalogName string   `json:"catalogName"`
	SchemaName  string   `json:"schemaName"`
	TableName   string   `json:"tableName"`
	Columns     []string `json:"columns"`
}

type column struct {
	CatalogName string `json:"catalogName"`
	SchemaName  string `json:"schemaName"`
	TableName   string `json:"tableName"`
	ColumnName  string `json:"columnName"`
	ColumnType  string `json:"columnType"`
}

// parseRequest decodes and checks a request body. Errors are safe to show
// to the caller.
func parseRequest(body []byte) (*input, error) {
	if len(body) > MaxBodySize {
		return nil, fmt.Errorf("request body larger than %d bytes", MaxBodySize)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errors.New("empty request body")
	}
	var req request
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, fmt.Errorf("invalid JSON at byte %d", se.Offset)
		case errors.As(err, &te):
			return nil, fmt.Errorf("field %q: want %s, found JSON %s", te.Field, te.Type, te.Value)
		}
		return nil, errors.New("invalid JSON")
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON document")
	}
	if req.Input == nil {
		return nil, errors.New(`missing "input"`)
	}
	in := req.Input
	if in.Context.Identity.User == "" {
		return nil, errors.New(`missing "input.context.identity.user"`)
	}
	if in.Action.Operation == "" {
		return nil, errors.New(`missing "input.action.operation"`)
	}
	if len(in.Action.FilterResources) > MaxFilterResources {
		return nil, fmt.Errorf("more than %d filterResources", MaxFilterResources)
	}
	check := func(field string, r *resource) error {
		if r == nil {
			return nil
		}
		if r.Table != nil && len(r.Table.Columns) > MaxColumns {
			return fmt.Errorf("%s.table: more than %d columns", field, MaxColumns)
		}
		return nil
	}
	if err := check("input.action.resource", in.Action.Resource); err != nil {
		return nil, err
	}
	if err := check("input.action.targetResource", in.Action.TargetResource); err != nil {
		return nil, err
	}
	for i := range in.Action.FilterResources {
		if err := check(fmt.Sprintf("input.action.filterResources[%d]", i), &in.Action.FilterResources[i]); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// name checks one name component: non-empty, bounded, without the
// hierarchy separator (which would let "a.b" pose as two levels).
func nameOK(s string) bool {
	return s != "" && len(s) <= maxName && !strings.ContainsAny(s, ".\x00")
}
