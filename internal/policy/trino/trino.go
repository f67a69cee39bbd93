// Package trino lets a Trino cluster use Steward as its access control,
// speaking the protocol of Trino's Open Policy Agent access control plugin
// (access-control.name=opa). Handler serves the endpoints the plugin's
// opa.policy.uri, opa.policy.batched-uri, opa.policy.row-filters-uri,
// opa.policy.column-masking-uri and opa.policy.batch-column-masking-uri
// point at, deciding every request with Steward's policy engine and
// auditing every decision. OPERATIONS.md maps each Trino operation onto
// Steward's accesses and resources.
package trino

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/policy"
)

// EngineSource returns the current compiled policy set. *policy.Atomic
// satisfies it. A nil Engine denies everything.
type EngineSource interface {
	Load() *policy.Engine
}

// EngineFunc adapts a function to EngineSource.
type EngineFunc func() *policy.Engine

// Load calls f.
func (f EngineFunc) Load() *policy.Engine { return f() }

// TagSource returns the effective tags and classification of a table
// ("catalog.schema.table"), or of one of its columns when column is set.
// Catalog- and schema-level names are asked too. An error fails the
// request (Trino then fails the query).
type TagSource interface {
	Tags(ctx context.Context, name, column string) ([]policy.Tag, policy.Classification, error)
}

// TableLister lists the tables a user may select, by Steward table name
// ("catalog.schema.table"), as Steward's own SQL lists them (SHOW TABLES).
type TableLister interface {
	VisibleTables(ctx context.Context, user string, groups []string) ([]string, error)
}

// TablesFunc adapts a function to TableLister.
type TablesFunc func(ctx context.Context, user string, groups []string) ([]string, error)

// VisibleTables calls f.
func (f TablesFunc) VisibleTables(ctx context.Context, user string, groups []string) ([]string, error) {
	return f(ctx, user, groups)
}

// NoTags is the TagSource of a deployment without a catalog: no tags,
// unclassified.
type NoTags struct{}

// Tags returns nothing.
func (NoTags) Tags(context.Context, string, string) ([]policy.Tag, policy.Classification, error) {
	return nil, policy.Unclassified, nil
}

// Handler serves Trino's OPA access control requests:
//
//	POST /allow               opa.policy.uri
//	POST /batch               opa.policy.batched-uri
//	POST /row-filters         opa.policy.row-filters-uri
//	POST /column-masks        opa.policy.column-masking-uri
//	POST /batch-column-masks  opa.policy.batch-column-masking-uri
//
// Mount it with http.StripPrefix (the server mounts it under /trino/v1/). Bad requests
// get 400 with {"error": "..."}; a failed audit write or tag lookup gets
// 500, which Trino treats as a denial.
type Handler struct {
	src     EngineSource
	tags    TagSource
	auditor steward.Auditor
	log     *slog.Logger
	mux     *http.ServeMux
	// Now is the clock for validity schedules (time.Now if nil).
	Now func() time.Time
	// Tables, if set, also makes a catalog or schema visible (AccessCatalog,
	// FilterCatalogs, FilterSchemas, ShowTables, ...) when the user may
	// select a table in it, as Steward's own SQL lists it: Trino asks
	// AccessCatalog before every table check, and Steward's SQL needs no
	// grant on the catalog or schema name. Without it, only a policy on the
	// catalog or schema name itself makes it visible.
	Tables TableLister
}

// NewHandler returns a Handler. tags may be nil (NoTags); logger may be nil
// (discard).
func NewHandler(src EngineSource, tags TagSource, auditor steward.Auditor, logger *slog.Logger) *Handler {
	if tags == nil {
		tags = NoTags{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{src: src, tags: tags, auditor: auditor, log: logger.With("component", "trino-opa")}
	mux := http.NewServeMux()
	mux.HandleFunc("/allow", h.post(h.allow))
	mux.HandleFunc("/batch", h.post(h.batch))
	mux.HandleFunc("/row-filters", h.post(h.rowFilters))
	mux.HandleFunc("/column-masks", h.post(h.columnMask))
	mux.HandleFunc("/batch-column-masks", h.post(h.batchColumnMasks))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "unknown endpoint; want /allow, /batch, /row-filters, /column-masks or /batch-column-masks")
	})
	h.mux = mux
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

type endpoint func(ctx context.Context, in *input) (any, error)

func (h *Handler) post(fn endpoint) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "use POST")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodySize))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("request body larger than %d bytes", MaxBodySize))
				return
			}
			writeError(w, http.StatusBadRequest, "cannot read the request body")
			return
		}
		in, err := parseRequest(body)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		out, err := fn(r.Context(), in)
		if err != nil {
			h.log.ErrorContext(r.Context(), "trino decision failed", "operation", in.Action.Operation, "user", in.Context.Identity.User, "err", err)
			status := http.StatusInternalServerError
			if steward.KindOf(err) == steward.EInvalid {
				status = http.StatusBadRequest
			}
			writeError(w, status, steward.MessageOf(err))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// check is one policy question an operation needs answered.
type check struct {
	access  policy.Access
	res     policy.Resource
	visible bool   // discover or select
	self    bool   // allowed without asking (own user)
	tagName string // table-kind names: ask the TagSource
	holder  bool   // catalog or schema: also visible through a table in it
}

// outcome is the result of deciding a list of checks.
type outcome struct {
	allowed  bool
	policyID string
	version  int64
	reason   string
	audit    bool
	resource string
}

// checks turns an operation on one resource into policy questions. ok is
// false when the resource does not fit the operation (denied).
func checks(o op, user string, r, target *resource) ([]check, string, bool) {
	tableCheck := func(name string, col string, a policy.Access, vis bool) check {
		return check{access: a, visible: vis, res: policy.Resource{Kind: policy.ResourceTable, Name: name, Column: col}, tagName: name}
	}
	dataset := func(name string, a policy.Access) check {
		return check{access: a, res: policy.Resource{Kind: policy.ResourceDataset, Name: name}}
	}
	switch o.target {
	case tAlways:
		return nil, "", true
	case tSystem:
		return []check{dataset("_trino.system", o.access)}, "dataset:_trino.system", true
	}
	if r == nil {
		return nil, "", false
	}
	switch o.target {
	case tUser:
		if r.User == nil || !nameOK(r.User.User) {
			return nil, "", false
		}
		c := dataset(o.prefix+"."+r.User.User, o.access)
		c.self = r.User.User == user
		return []check{c}, c.res.String(), true
	case tSystemSession:
		if r.SystemSessionProperty == nil || !nameOK(r.SystemSessionProperty.Name) {
			return nil, "", false
		}
		c := dataset("_trino.session."+r.SystemSessionProperty.Name, o.access)
		return []check{c}, c.res.String(), true
	case tCatalogSession:
		p := r.CatalogSessionProperty
		if p == nil || !nameOK(p.CatalogName) || !nameOK(p.PropertyName) {
			return nil, "", false
		}
		c := dataset("_trino.session."+p.CatalogName+"."+p.PropertyName, o.access)
		return []check{c}, c.res.String(), true
	case tCatalog:
		if r.Catalog == nil || !nameOK(r.Catalog.Name) {
			return nil, "", false
		}
		c := tableCheck(r.Catalog.Name, "", o.access, o.visible)
		c.holder = o.visible
		return []check{c}, c.res.String(), true
	case tSchema:
		if r.Schema == nil || !nameOK(r.Schema.CatalogName) || !nameOK(r.Schema.SchemaName) {
			return nil, "", false
		}
		c := tableCheck(r.Schema.CatalogName+"."+r.Schema.SchemaName, "", o.access, o.visible)
		c.holder = o.visible
		return []check{c}, c.res.String(), true
	case tTable, tColumns:
		t := r.Table
		if t == nil || !nameOK(t.CatalogName) || !nameOK(t.SchemaName) || !nameOK(t.TableName) {
			return nil, "", false
		}
		name := t.CatalogName + "." + t.SchemaName + "." + t.TableName
		if o.target == tTable || len(t.Columns) == 0 {
			c := tableCheck(name, "", o.access, o.visible)
			return []check{c}, c.res.String(), true
		}
		cs := make([]check, 0, len(t.Columns))
		for _, col := range t.Columns {
			if col == "" || len(col) > maxName {
				return nil, "", false
			}
			cs = append(cs, tableCheck(name, col, o.access, o.visible))
		}
		return cs, "table:" + name + "#" + strings.Join(t.Columns, ","), true
	case tFunction:
		f := r.Function
		if f == nil || !nameOK(f.CatalogName) || !nameOK(f.SchemaName) || !nameOK(f.FunctionName) {
			return nil, "", false
		}
		c := tableCheck(f.CatalogName+"."+f.SchemaName+"."+f.FunctionName, "", o.access, o.visible)
		return []check{c}, c.res.String(), true
	case tRename:
		if target == nil {
			return nil, "", false
		}
		var from, to []check
		var ok1, ok2 bool
		var desc string
		switch {
		case r.Table != nil:
			from, desc, ok1 = checks(accessOp(tTable, policy.AccessDelete), user, r, nil)
			to, _, ok2 = checks(accessOp(tTable, policy.AccessCreate), user, target, nil)
		case r.Schema != nil:
			from, desc, ok1 = checks(accessOp(tSchema, policy.AccessDelete), user, r, nil)
			to, _, ok2 = checks(accessOp(tSchema, policy.AccessCreate), user, target, nil)
		}
		if !ok1 || !ok2 || len(to) == 0 {
			return nil, "", false
		}
		return append(from, to...), desc + " -> " + to[0].res.String(), true
	}
	return nil, "", false
}

// decide answers checks: all must be allowed. It stops at the first denial.
func (h *Handler) decide(ctx context.Context, e *policy.Engine, in *input, cs []check, d *policy.Decision) (outcome, error) {
	out := outcome{allowed: true}
	id := &in.Context.Identity
	now := h.now()
	for i := range cs {
		c := &cs[i]
		if c.self {
			out.reason = "the user's own queries and identity are always allowed"
			continue
		}
		req := policy.Request{User: id.User, Groups: id.Groups, Access: c.access, Resource: c.res, Time: now}
		if c.tagName != "" {
			tags, class, err := h.tags.Tags(ctx, c.tagName, c.res.Column)
			if err != nil {
				return out, steward.WrapError(steward.EUnavailable, "trino.decide", err, "tags of the resource are unavailable")
			}
			req.Tags, req.Classification = tags, class
		}
		e.Decide(&req, d)
		if !d.Allowed && c.visible {
			req.Access = policy.AccessSelect
			var d2 policy.Decision
			e.Decide(&req, &d2)
			if d2.Allowed {
				*d = d2
			}
		}
		if !d.Allowed && c.holder && h.Tables != nil {
			ok, err := h.holdsVisible(ctx, in, c.res.Name)
			if err != nil {
				return out, steward.WrapError(steward.EUnavailable, "trino.decide", err, "the table list is unavailable")
			}
			if ok {
				d.Allowed, d.Reason = true, reasonHoldsVisible
			}
		}
		out.policyID, out.version, out.reason = d.PolicyID, d.PolicyVersion, d.Reason
		out.audit = out.audit || d.Audit
		if !d.Allowed {
			out.allowed = false
			out.resource = c.res.String()
			return out, nil
		}
	}
	return out, nil
}

const reasonHoldsVisible = "visible: holds a table the user may select"

// holdsVisible reports whether the catalog or schema name holds a table
// the user may select. The list is fetched once per request.
func (h *Handler) holdsVisible(ctx context.Context, in *input, name string) (bool, error) {
	if !in.listed {
		names, err := h.Tables.VisibleTables(ctx, in.Context.Identity.User, in.Context.Identity.Groups)
		if err != nil {
			return false, err
		}
		in.visible, in.listed = names, true
	}
	for _, t := range in.visible {
		if strings.HasPrefix(t, name+".") {
			return true, nil
		}
	}
	return false, nil
}

func (h *Handler) record(ctx context.Context, in *input, resource string, out outcome, details map[string]any) error {
	ev := steward.AuditEvent{
		Time:      h.now(),
		RequestID: in.Context.QueryID,
		Actor:     in.Context.Identity.User,
		ActorKind: "user",
		Action:    "trino:" + in.Action.Operation,
		Resource:  resource,
		Decision:  "deny",
		Outcome:   "success",
		Reason:    out.reason,
		Details:   details,
	}
	if out.allowed {
		ev.Decision = "allow"
	}
	if out.policyID != "" {
		ev.Policy = out.policyID + "@" + strconv.FormatInt(out.version, 10)
	}
	if h.auditor == nil {
		return nil
	}
	if err := h.auditor.Record(ctx, ev); err != nil {
		return steward.WrapError(steward.EUnavailable, "trino.audit", err, "the audit trail is unavailable")
	}
	return nil
}

// resolve looks up the operation; unknown operations are denied and logged.
func (h *Handler) resolve(ctx context.Context, in *input) (op, bool) {
	o, ok := operations[in.Action.Operation]
	if !ok {
		h.log.WarnContext(ctx, "unknown Trino operation denied", "operation", in.Action.Operation, "user", in.Context.Identity.User,
			"trino_version", in.Context.SoftwareStack.TrinoVersion)
	}
	return o, ok
}

const reasonUnknownOp = "unknown operation: denied (fail closed)"
const reasonBadResource = "the resource does not fit the operation: denied"

func (h *Handler) allow(ctx context.Context, in *input) (any, error) {
	out := outcome{}
	resource := ""
	o, ok := h.resolve(ctx, in)
	switch {
	case !ok:
		out.reason = reasonUnknownOp
	default:
		cs, desc, fits := checks(o, in.Context.Identity.User, in.Action.Resource, in.Action.TargetResource)
		resource = desc
		if !fits {
			out.reason = reasonBadResource
			break
		}
		var d policy.Decision
		var err error
		out, err = h.decide(ctx, h.src.Load(), in, cs, &d)
		if err != nil {
			return nil, err
		}
		if len(cs) == 0 {
			out.reason = "allowed for every authenticated user; objects are checked per operation"
		}
	}
	var details map[string]any
	if !out.allowed && out.resource != "" && out.resource != resource {
		details = map[string]any{"denied": out.resource}
	}
	if err := h.record(ctx, in, resource, out, details); err != nil {
		return nil, err
	}
	return map[string]any{"result": out.allowed}, nil
}

func (h *Handler) batch(ctx context.Context, in *input) (any, error) {
	allowed := []int{}
	o, ok := h.resolve(ctx, in)
	items := len(in.Action.FilterResources)
	sum := outcome{}
	if !ok {
		sum.reason = reasonUnknownOp
	} else {
		e := h.src.Load()
		var d policy.Decision
		user := in.Context.Identity.User
		frs := in.Action.FilterResources
		if o.target == tColumns && len(frs) == 1 && frs[0].Table != nil && len(frs[0].Table.Columns) > 0 {
			// FilterColumns: one table, the indices are its columns'.
			cs, _, fits := checks(o, user, &frs[0], nil)
			items = len(frs[0].Table.Columns)
			if fits {
				for i := range cs {
					out, err := h.decide(ctx, e, in, cs[i:i+1], &d)
					if err != nil {
						return nil, err
					}
					if out.allowed {
						allowed = append(allowed, i)
					}
				}
			}
		} else {
			for i := range frs {
				cs, _, fits := checks(o, user, &frs[i], nil)
				if !fits {
					continue
				}
				out, err := h.decide(ctx, e, in, cs, &d)
				if err != nil {
					return nil, err
				}
				if out.allowed {
					allowed = append(allowed, i)
				}
			}
		}
		sum.allowed = len(allowed) > 0
		sum.reason = fmt.Sprintf("%d of %d allowed", len(allowed), items)
	}
	details := map[string]any{"items": items, "allowed": len(allowed), "denied": items - len(allowed)}
	if err := h.record(ctx, in, batchResource(in), sum, details); err != nil {
		return nil, err
	}
	return map[string]any{"result": allowed}, nil
}

// batchResource names what a batch filters, for the audit record.
func batchResource(in *input) string {
	frs := in.Action.FilterResources
	if len(frs) == 0 {
		return ""
	}
	r := &frs[0]
	switch {
	case r.Table != nil:
		return "table:" + r.Table.CatalogName + "." + r.Table.SchemaName
	case r.Schema != nil:
		return "table:" + r.Schema.CatalogName
	case r.Column != nil:
		return "table:" + r.Column.CatalogName + "." + r.Column.SchemaName + "." + r.Column.TableName
	case r.Function != nil:
		return "table:" + r.Function.CatalogName + "." + r.Function.SchemaName
	}
	return ""
}

type viewExpression struct {
	Expression string `json:"expression"`
}

// rowFilters answers GetRowFilters. A table the user may not select at
// table level gets the filter "false": its rows are not shown (fail
// closed; see OPERATIONS.md).
func (h *Handler) rowFilters(ctx context.Context, in *input) (any, error) {
	r := in.Action.Resource
	if r == nil || r.Table == nil || !nameOK(r.Table.CatalogName) || !nameOK(r.Table.SchemaName) || !nameOK(r.Table.TableName) {
		return nil, steward.Errorf(steward.EInvalid, "row filters need input.action.resource.table")
	}
	name := r.Table.CatalogName + "." + r.Table.SchemaName + "." + r.Table.TableName
	cs := []check{{access: policy.AccessSelect, res: policy.Resource{Kind: policy.ResourceTable, Name: name}, tagName: name}}
	var d policy.Decision
	out, err := h.decide(ctx, h.src.Load(), in, cs, &d)
	if err != nil {
		return nil, err
	}
	filters := []viewExpression{}
	if !out.allowed {
		filters = append(filters, viewExpression{Expression: "false"})
	} else {
		for _, f := range d.RowFilters {
			filters = append(filters, viewExpression{Expression: f})
		}
	}
	exprs := make([]string, len(filters))
	for i, f := range filters {
		exprs[i] = f.Expression
	}
	if err := h.record(ctx, in, "table:"+name, out, map[string]any{"row_filters": exprs}); err != nil {
		return nil, err
	}
	return map[string]any{"result": filters}, nil
}

// maskFor decides the mask of one column: nil when shown as is. A column
// the user may not select is masked to NULL (fail closed).
func (h *Handler) maskFor(ctx context.Context, e *policy.Engine, in *input, c *column, d *policy.Decision) (*viewExpression, outcome, error) {
	if c == nil || !nameOK(c.CatalogName) || !nameOK(c.SchemaName) || !nameOK(c.TableName) || c.ColumnName == "" || len(c.ColumnName) > maxName {
		return &viewExpression{Expression: "NULL"}, outcome{reason: reasonBadResource}, nil
	}
	name := c.CatalogName + "." + c.SchemaName + "." + c.TableName
	cs := []check{{access: policy.AccessSelect, res: policy.Resource{Kind: policy.ResourceTable, Name: name, Column: c.ColumnName}, tagName: name}}
	out, err := h.decide(ctx, e, in, cs, d)
	if err != nil {
		return nil, out, err
	}
	if !out.allowed {
		return &viewExpression{Expression: "NULL"}, out, nil
	}
	if len(d.Masks) == 0 {
		return nil, out, nil
	}
	expr, ok := MaskSQL(d.Masks[0], c.ColumnName, c.ColumnType)
	if !ok {
		return nil, out, nil
	}
	return &viewExpression{Expression: expr}, out, nil
}

func (h *Handler) columnMask(ctx context.Context, in *input) (any, error) {
	var c *column
	if in.Action.Resource != nil {
		c = in.Action.Resource.Column
	}
	var d policy.Decision
	ve, out, err := h.maskFor(ctx, h.src.Load(), in, c, &d)
	if err != nil {
		return nil, err
	}
	resource := ""
	if c != nil {
		resource = "table:" + c.CatalogName + "." + c.SchemaName + "." + c.TableName + "#" + c.ColumnName
	}
	details := map[string]any{"masked": ve != nil}
	if ve != nil {
		details["expression"] = ve.Expression
	}
	if err := h.record(ctx, in, resource, out, details); err != nil {
		return nil, err
	}
	if ve == nil {
		return struct{}{}, nil // as OPA answers an undefined rule
	}
	return map[string]any{"result": ve}, nil
}

type batchMask struct {
	Index          int            `json:"index"`
	ViewExpression viewExpression `json:"viewExpression"`
}

func (h *Handler) batchColumnMasks(ctx context.Context, in *input) (any, error) {
	e := h.src.Load()
	var d policy.Decision
	masks := []batchMask{}
	denied := 0
	for i := range in.Action.FilterResources {
		ve, out, err := h.maskFor(ctx, e, in, in.Action.FilterResources[i].Column, &d)
		if err != nil {
			return nil, err
		}
		if !out.allowed {
			denied++
		}
		if ve != nil {
			masks = append(masks, batchMask{Index: i, ViewExpression: *ve})
		}
	}
	n := len(in.Action.FilterResources)
	sum := outcome{allowed: denied < n, reason: fmt.Sprintf("%d of %d columns masked", len(masks), n)}
	details := map[string]any{"items": n, "masked": len(masks), "denied": denied}
	if err := h.record(ctx, in, batchResource(in), sum, details); err != nil {
		return nil, err
	}
	return map[string]any{"result": masks}, nil
}
