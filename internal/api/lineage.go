package api

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/lineage"
	"github.com/stewardhq/steward/internal/policy"
	"github.com/stewardhq/steward/internal/policystore"
)

// Limits of the lineage endpoints.
const (
	lineageMaxBatch     = 1000
	lineageMaxBatchBody = 32 << 20
)

// Discoverer decides whether the caller may see that a dataset exists in
// lineage graphs; hidden datasets appear as placeholders.
type Discoverer interface {
	CanDiscover(ctx context.Context, p *steward.Principal, ds lineage.DatasetKey, tags []policy.Tag, cls policy.Classification) bool
}

// PolicyDiscoverer decides discovery with the policy engine, with the
// catalog's rule: administrators see everything; a C4 dataset needs an
// explicit discover allow; anything else is visible unless a policy
// explicitly denies discover. With no engine only administrators see
// names (fail closed).
type PolicyDiscoverer struct {
	Engine     *policystore.Holder
	AdminGroup string
}

// CanDiscover implements Discoverer.
func (d PolicyDiscoverer) CanDiscover(ctx context.Context, p *steward.Principal, ds lineage.DatasetKey, tags []policy.Tag, cls policy.Classification) bool {
	if IsAdmin(p, d.AdminGroup) {
		return true
	}
	if p == nil || d.Engine == nil {
		return false
	}
	req := &policy.Request{
		User: p.Username, Groups: p.Groups, Roles: p.Roles, Access: policy.AccessDiscover,
		Resource: policy.Resource{Kind: policy.ResourceDataset, Name: lineage.PolicyName(ds.Namespace, ds.Name)},
		Tags:     tags, Classification: cls, Time: time.Now(),
	}
	var dec policy.Decision
	d.Engine.Decide(req, &dec)
	if dec.Allowed {
		return true
	}
	explicit := dec.PolicyID != ""
	return cls < policy.C4 && !explicit
}

// LineageDeps is what the lineage endpoints need.
type LineageDeps struct {
	Service  *lineage.Service
	Discover Discoverer // nil: only administrators see dataset names
}

type lineagePostInput struct {
	RawBody []byte `contentType:"application/json"`
}

type lineagePostOutput struct {
	Body lineage.IngestResult
}

type lineageGraphInput struct {
	NodeID    string `query:"nodeId" required:"true" maxLength:"4096" doc:"dataset:NAMESPACE:NAME or job:NAMESPACE:NAME (datasetField:NAMESPACE:NAME:FIELD for column lineage)."`
	Depth     int    `query:"depth" minimum:"0" maximum:"100" default:"20" doc:"How many jobs (column hops for column lineage) to follow."`
	Direction string `query:"direction" enum:"both,upstream,downstream" default:"both" doc:"upstream: where it comes from; downstream: what depends on it (impact)."`
}

type lineageGraphOutput struct {
	Body *lineage.LineageGraph
}

type lineageExplainInput struct {
	Dataset string `query:"dataset" required:"true" maxLength:"4096" doc:"NAMESPACE:NAME (or dataset:NAMESPACE:NAME)."`
}

type lineageExplainOutput struct {
	Body *lineage.LineageExplanation
}

type lineageTagsInput struct {
	Body struct {
		Namespace string               `json:"namespace" minLength:"1" maxLength:"1024"`
		Name      string               `json:"name" minLength:"1" maxLength:"1024"`
		Field     string               `json:"field,omitempty" maxLength:"1024" doc:"A column; empty for the dataset."`
		Tags      []lineage.LineageTag `json:"tags" maxItems:"256" doc:"The complete set of own tags set through the API (replaces the previous set)."`
	}
}

type lineageBlocksInput struct {
	Body struct {
		Namespace string   `json:"namespace" minLength:"1" maxLength:"1024" doc:"The job's namespace."`
		Name      string   `json:"name" minLength:"1" maxLength:"1024" doc:"The job's name."`
		Tags      []string `json:"tags" maxItems:"256" doc:"Tags that do not propagate through this job (* for all)."`
	}
}

// RegisterLineage adds the lineage endpoints: OpenLineage intake, the
// Marquez-shaped graph and column lineage, explanations, and the
// administration of lineage tags and block lists.
// RoleLineageProducer lets a person's token record lineage events.
const RoleLineageProducer = "lineage-producer"

func (a *API) RegisterLineage(d LineageDeps) {
	svc := d.Service
	// Lineage tags write their classification as "C1".."C4" (see
	// lineage/tagjson.go): document and validate them so.
	reg := a.h.OpenAPI().Components.Schemas
	reg.RegisterTypeAlias(reflect.TypeFor[lineage.LineageTag](), reflect.TypeFor[lineageTag]())
	reg.RegisterTypeAlias(reflect.TypeFor[lineage.InheritedTag](), reflect.TypeFor[inheritedTag]())
	op := func(id, method, p, summary string, errs ...int) huma.Operation {
		return huma.Operation{OperationID: id, Method: method, Path: p, Summary: summary,
			Tags: []string{"lineage"}, Security: bearer, Errors: append([]int{400, 401}, errs...)}
	}
	ingest := func(ctx context.Context, action string, body []byte, batch bool) (*lineagePostOutput, error) {
		p, err := requireUser(ctx)
		if err != nil {
			return nil, a.problem(ctx, action, err)
		}
		// Lineage decides what derived data inherits, so only producers may
		// write it: service accounts (pipelines, engines), holders of the
		// lineage-producer role, and administrators.
		if p.Kind != steward.KindService && !p.HasRole(RoleLineageProducer) && !IsAdmin(p, a.d.AdminGroup) {
			ev := a.event(ctx, p, action, "lineage")
			ev.Decision, ev.Outcome, ev.Reason = "deny", "failure", "not a lineage producer"
			if err := a.d.Auditor.Record(ctx, ev); err != nil {
				return nil, a.problem(ctx, action, steward.WrapError(steward.EUnavailable, action, err, "audit trail unavailable"))
			}
			return nil, a.problem(ctx, action, steward.Errorf(steward.EPermission, "only service accounts, lineage producers and administrators may record lineage"))
		}
		var evs []*lineage.Event
		if batch {
			evs, err = lineage.DecodeBatch(body, lineageMaxBatch)
		} else {
			var ev *lineage.Event
			if ev, err = lineage.Decode(body); err == nil {
				evs = []*lineage.Event{ev}
			}
		}
		if err != nil {
			return nil, a.problem(ctx, action, err)
		}
		ev := a.event(ctx, p, action, "lineage")
		ev.Decision, ev.Outcome = "allow", "success"
		ev.Details = map[string]any{"events": len(evs)}
		if err := a.d.Auditor.Record(ctx, ev); err != nil {
			return nil, a.problem(ctx, action, steward.WrapError(steward.EUnavailable, action, err, "audit trail unavailable"))
		}
		res, err := svc.Ingest(ctx, p.Username, evs)
		if err != nil {
			a.failed(ctx, p, action, "lineage", err)
			return nil, a.problem(ctx, action, err)
		}
		return &lineagePostOutput{Body: res}, nil
	}
	post := op("post-lineage", http.MethodPost, "/lineage", "Record an OpenLineage event (RunEvent, DatasetEvent or JobEvent)", 409, 413)
	// The body is validated against the OpenLineage schema, not by huma.
	post.DefaultStatus, post.MaxBodyBytes, post.SkipValidateBody = http.StatusCreated, lineage.MaxEventSize, true
	huma.Register(a.h, post, func(ctx context.Context, in *lineagePostInput) (*lineagePostOutput, error) {
		return ingest(ctx, "lineage.ingest", in.RawBody, false)
	})
	batch := op("post-lineage-batch", http.MethodPost, "/lineage/batch", "Record a JSON array of OpenLineage events, all or none", 409, 413)
	batch.DefaultStatus, batch.MaxBodyBytes, batch.SkipValidateBody = http.StatusCreated, lineageMaxBatchBody, true
	huma.Register(a.h, batch, func(ctx context.Context, in *lineagePostInput) (*lineagePostOutput, error) {
		return ingest(ctx, "lineage.ingest", in.RawBody, true)
	})

	graph := func(column bool) func(ctx context.Context, in *lineageGraphInput) (*lineageGraphOutput, error) {
		return func(ctx context.Context, in *lineageGraphInput) (*lineageGraphOutput, error) {
			p, err := requireUser(ctx)
			if err != nil {
				return nil, a.problem(ctx, "lineage.graph", err)
			}
			q := lineage.GraphQuery{NodeID: in.NodeID, Depth: in.Depth, Direction: in.Direction, CanDiscover: a.discoverFunc(ctx, d, p)}
			var g *lineage.LineageGraph
			if column {
				g, err = svc.ColumnGraph(ctx, q)
			} else {
				g, err = svc.Graph(ctx, q)
			}
			if err != nil {
				return nil, a.problem(ctx, "lineage.graph", err)
			}
			return &lineageGraphOutput{Body: g}, nil
		}
	}
	huma.Register(a.h, op("get-lineage", http.MethodGet, "/lineage", "The lineage graph around a dataset or job, in Marquez's shape", 404), graph(false))
	huma.Register(a.h, op("get-column-lineage", http.MethodGet, "/column-lineage", "The column lineage around a dataset field, in Marquez's shape", 404), graph(true))

	huma.Register(a.h, op("explain-lineage", http.MethodGet, "/lineage/explain", "Why a dataset is classified as it is: own and inherited tags with their provenance", 404),
		func(ctx context.Context, in *lineageExplainInput) (*lineageExplainOutput, error) {
			p, err := requireUser(ctx)
			if err != nil {
				return nil, a.problem(ctx, "lineage.explain", err)
			}
			id := in.Dataset
			if !strings.HasPrefix(id, "dataset:") {
				id = "dataset:" + id
			}
			kind, k, _, err := lineage.ParseNodeID(id)
			if err == nil && kind != "dataset" {
				err = steward.Errorf(steward.EInvalid, "dataset must be NAMESPACE:NAME")
			}
			if err != nil {
				return nil, a.problem(ctx, "lineage.explain", err)
			}
			can := a.discoverFunc(ctx, d, p)
			if !canSee(svc, can, k) {
				return nil, a.problem(ctx, "lineage.explain", steward.Errorf(steward.ENotFound, "dataset %s not found", k))
			}
			ex, err := svc.Explain(ctx, k.Namespace, k.Name)
			if err != nil {
				return nil, a.problem(ctx, "lineage.explain", err)
			}
			// Provenance names upstream datasets: hide those the caller may
			// not discover.
			for i, t := range ex.Inherited {
				if !canSee(svc, can, t.Origin) || !canSee(svc, can, t.From) {
					ex.Inherited[i].Origin, ex.Inherited[i].OriginField = lineage.DatasetKey{Namespace: "redacted", Name: "redacted"}, ""
					ex.Inherited[i].From, ex.Inherited[i].FromField = ex.Inherited[i].Origin, ""
					ex.Reasons[i] = ex.Inherited[i].Name + " is inherited from a dataset you may not discover, through job " + t.Job.String()
				}
			}
			return &lineageExplainOutput{Body: ex}, nil
		})

	huma.Register(a.h, op("set-lineage-tags", http.MethodPut, "/lineage/tags", "Set the own tags of a dataset or column (administrators); they propagate at once", 403),
		func(ctx context.Context, in *lineageTagsInput) (*struct{}, error) {
			b := &in.Body
			res := "dataset:" + b.Namespace + ":" + b.Name
			p, err := a.admit(ctx, "lineage.tags.set", res, map[string]any{"field": b.Field, "tags": len(b.Tags)})
			if err != nil {
				return nil, a.problem(ctx, "lineage.tags.set", err)
			}
			if err := svc.SetTags(ctx, b.Namespace, b.Name, b.Field, "api", b.Tags); err != nil {
				a.failed(ctx, p, "lineage.tags.set", res, err)
				return nil, a.problem(ctx, "lineage.tags.set", err)
			}
			return nil, nil
		})
	huma.Register(a.h, op("set-lineage-blocks", http.MethodPut, "/lineage/blocks", "Set the tags a job blocks from propagating (administrators)", 403),
		func(ctx context.Context, in *lineageBlocksInput) (*struct{}, error) {
			b := &in.Body
			res := "job:" + b.Namespace + ":" + b.Name
			p, err := a.admit(ctx, "lineage.blocks.set", res, map[string]any{"tags": b.Tags})
			if err != nil {
				return nil, a.problem(ctx, "lineage.blocks.set", err)
			}
			if err := svc.SetBlocks(ctx, lineage.JobKey{Namespace: b.Namespace, Name: b.Name}, b.Tags); err != nil {
				a.failed(ctx, p, "lineage.blocks.set", res, err)
				return nil, a.problem(ctx, "lineage.blocks.set", err)
			}
			return nil, nil
		})
}

// lineageClass is a classification in lineage JSON: "C1".."C4" ("" for
// none); numbers 0..4 are still accepted on input.
type lineageClass string

// Schema implements huma.SchemaProvider.
func (lineageClass) Schema(huma.Registry) *huma.Schema {
	zero, four := 0.0, 4.0
	return &huma.Schema{
		Description: `C1..C4 ("" or absent: unclassified); the numbers 0..4 are accepted on input for compatibility.`,
		OneOf: []*huma.Schema{
			{Type: huma.TypeString, Enum: []any{"", "C1", "C2", "C3", "C4"}},
			{Type: huma.TypeInteger, Minimum: &zero, Maximum: &four},
		},
	}
}

// lineageTag documents lineage.LineageTag's JSON form.
type lineageTag struct {
	Name           string       `json:"name" minLength:"1" maxLength:"256"`
	Value          string       `json:"value,omitempty" maxLength:"1024"`
	Field          string       `json:"field,omitempty" maxLength:"1024"`
	Classification lineageClass `json:"classification,omitempty" doc:"The classification the tag implies."`
	Propagate      bool         `json:"propagate" doc:"Whether the tag flows downstream (Apache Atlas's propagate flag)."`
	Source         string       `json:"source,omitempty" readOnly:"true"`
}

// inheritedTag documents lineage.InheritedTag's JSON form.
type inheritedTag struct {
	Name           string             `json:"name"`
	Value          string             `json:"value,omitempty"`
	Classification lineageClass       `json:"classification,omitempty"`
	Field          string             `json:"field,omitempty" doc:"The column carrying the tag; empty for the dataset."`
	Origin         lineage.DatasetKey `json:"origin" doc:"The dataset whose own tag this is."`
	OriginField    string             `json:"origin_field,omitempty"`
	From           lineage.DatasetKey `json:"from" doc:"The upstream dataset of the last hop."`
	FromField      string             `json:"from_field,omitempty"`
	Job            lineage.JobKey     `json:"job" doc:"The job of the last hop."`
	Run            string             `json:"run,omitempty"`
}

// discoverFunc returns the caller's discovery decision for datasets,
// given their effective tags as lineage knows them, memoised for one
// request.
func (a *API) discoverFunc(ctx context.Context, d LineageDeps, p *steward.Principal) func(lineage.DatasetKey, []policy.Tag, policy.Classification) bool {
	memo := map[lineage.DatasetKey]bool{}
	return func(k lineage.DatasetKey, tags []policy.Tag, cls policy.Classification) bool {
		if v, ok := memo[k]; ok {
			return v
		}
		v := IsAdmin(p, a.d.AdminGroup)
		if !v && d.Discover != nil {
			v = d.Discover.CanDiscover(ctx, p, k, tags, cls)
		}
		memo[k] = v
		return v
	}
}

// canSee decides discovery outside a graph query, fetching the tags.
func canSee(svc *lineage.Service, can func(lineage.DatasetKey, []policy.Tag, policy.Classification) bool, k lineage.DatasetKey) bool {
	tags, cls := svc.PolicyTags(k)
	return can(k, tags, cls)
}
