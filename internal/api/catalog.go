package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/catalog"
)

// Catalog endpoints. A dataset is addressed by its ID: the unpadded
// base64url encoding of "NAMESPACE|NAME" (catalog.ID); every dataset body
// carries its id.

type datasetIDPath struct {
	ID string `path:"id" maxLength:"3000" doc:"The dataset ID: unpadded base64url of NAMESPACE|NAME."`
}

type datasetBody struct {
	Body *catalog.Dataset
}

type searchBody struct {
	Body *catalog.SearchResult
}

type searchInput struct {
	Q              string   `query:"q" maxLength:"1000" doc:"Search text: words matched in names, descriptions, columns, tags and owners, tolerant of typos and prefixes."`
	Tag            []string `query:"tag" maxItems:"16" doc:"Only datasets with every one of these tags (on the dataset or a column, own or inherited through lineage)."`
	Classification string   `query:"classification" enum:"C1,C2,C3,C4," doc:"Only datasets of this effective classification (the highest of their own and what they inherit through lineage)."`
	Owner          string   `query:"owner" maxLength:"256" doc:"Only datasets with this owner or steward (alice, group:risk)."`
	Format         string   `query:"format" enum:"parquet,csv,json," doc:"Only datasets in this format."`
	Namespace      string   `query:"namespace" maxLength:"1024" doc:"Only datasets in this namespace (s3://bucket)."`
	Limit          int      `query:"limit" minimum:"1" maximum:"1000" default:"20"`
	Offset         int      `query:"offset" minimum:"0" maximum:"100000" default:"0"`
}

func (in *searchInput) query() catalog.Query {
	return catalog.Query{Text: in.Q, Tags: in.Tag, Classification: in.Classification, Owner: in.Owner,
		Format: catalog.Format(in.Format), Namespace: in.Namespace, Limit: in.Limit, Offset: in.Offset}
}

type registerDatasetInput struct {
	Body *catalog.Dataset
}

type replaceDatasetInput struct {
	ID        string `path:"id" maxLength:"3000"`
	IfVersion int64  `query:"if_version" doc:"Replace only if the dataset is at this version."`
	Body      *catalog.Dataset
}

type patchDatasetInput struct {
	ID        string `path:"id" maxLength:"3000"`
	IfVersion int64  `query:"if_version" doc:"Change only if the dataset is at this version."`
	Body      *catalog.DatasetPatch
}

type suggestionInput struct {
	ID   string `path:"id" maxLength:"3000"`
	SID  string `path:"sid" maxLength:"3000"`
	Body struct {
		Decision string `json:"decision" enum:"accept,reject"`
	}
}

func (a *API) viewer(ctx context.Context) (catalog.Viewer, *steward.Principal, error) {
	p, err := requireUser(ctx)
	if err != nil {
		return catalog.Viewer{}, nil, err
	}
	return catalog.ViewerOf(p, IsAdmin(p, a.d.AdminGroup)), p, nil
}

// catalogAudit returns a hook that records an allowed catalog change; it
// runs inside the change's transaction once the caller is authorized, so
// a change without its audit record is rolled back.
func (a *API) catalogAudit(ctx context.Context, p *steward.Principal, action string, details map[string]any) func(*catalog.Dataset) error {
	return func(d *catalog.Dataset) error {
		ev := a.event(ctx, p, action, "dataset:"+catalog.PolicyName(d.Namespace, d.Name))
		ev.Decision, ev.Outcome = "allow", "success"
		ev.Details = map[string]any{"namespace": d.Namespace, "name": d.Name}
		for k, v := range details {
			ev.Details[k] = v
		}
		if err := a.d.Auditor.Record(ctx, ev); err != nil {
			return steward.WrapError(steward.EUnavailable, action, err, "audit trail unavailable")
		}
		return nil
	}
}

func (a *API) catalogFailed(ctx context.Context, p *steward.Principal, action, id string, err error) error {
	if k := steward.KindOf(err); k == steward.EPermission || k == steward.EConflict || k == steward.EInvalid {
		a.accessFailed(ctx, p, action, "dataset-id:"+id, err)
	}
	return a.problem(ctx, action, err)
}

func (a *API) registerCatalog() {
	c := a.d.Catalog
	op := func(id, method, p, summary string, errs ...int) huma.Operation {
		return huma.Operation{OperationID: id, Method: method, Path: p, Summary: summary,
			Tags: []string{"catalog"}, Security: bearer, Errors: append([]int{400, 401}, errs...)}
	}
	search := func(ctx context.Context, in *searchInput) (*searchBody, error) {
		v, _, err := a.viewer(ctx)
		if err != nil {
			return nil, a.problem(ctx, "catalog.search", err)
		}
		r := c.Search(v, in.query())
		return &searchBody{Body: &r}, nil
	}
	huma.Register(a.h, op("search", http.MethodGet, "/search", "Search the catalog: ranked datasets you may discover, with facets"), search)
	huma.Register(a.h, op("list-datasets", http.MethodGet, "/datasets", "List datasets you may discover, with filters (q as in search)"), search)

	huma.Register(a.h, op("register-dataset", http.MethodPost, "/datasets", "Register a dataset (administrators)", 403, 409),
		func(ctx context.Context, in *registerDatasetInput) (*datasetBody, error) {
			const action = "catalog.register"
			if in.Body == nil {
				return nil, a.problem(ctx, action, steward.Errorf(steward.EInvalid, "a dataset body is required"))
			}
			p, err := a.admit(ctx, action, "dataset:"+catalog.PolicyName(in.Body.Namespace, in.Body.Name), map[string]any{"namespace": in.Body.Namespace, "name": in.Body.Name})
			if err != nil {
				return nil, a.problem(ctx, action, err)
			}
			d, err := c.Register(ctx, catalog.ViewerOf(p, true), in.Body)
			if err != nil {
				a.failed(ctx, p, action, "dataset:"+catalog.PolicyName(in.Body.Namespace, in.Body.Name), err)
				return nil, a.problem(ctx, action, err)
			}
			return &datasetBody{Body: d}, nil
		})

	huma.Register(a.h, op("get-dataset", http.MethodGet, "/datasets/{id}", "Get a dataset: schema, owners, statistics, tags, classification (own, and effective with the tags inherited through lineage), suggestions", 404),
		func(ctx context.Context, in *datasetIDPath) (*datasetBody, error) {
			v, _, err := a.viewer(ctx)
			if err == nil {
				var ns, name string
				if ns, name, err = catalog.ParseID(in.ID); err == nil {
					var d *catalog.Dataset
					if d, err = c.Get(ctx, v, ns, name); err == nil {
						return &datasetBody{Body: d}, nil
					}
				}
			}
			return nil, a.problem(ctx, "catalog.get", err)
		})

	huma.Register(a.h, op("replace-dataset", http.MethodPut, "/datasets/{id}", "Replace a dataset's metadata (owners, stewards, administrators); crawled facts stay", 403, 404, 409),
		func(ctx context.Context, in *replaceDatasetInput) (*datasetBody, error) {
			const action = "catalog.edit"
			v, p, err := a.viewer(ctx)
			if err != nil {
				return nil, a.problem(ctx, action, err)
			}
			ns, name, err := catalog.ParseID(in.ID)
			if err == nil && in.Body == nil {
				err = steward.Errorf(steward.EInvalid, "a dataset body is required")
			}
			if err != nil {
				return nil, a.problem(ctx, action, err)
			}
			hook := a.catalogAudit(ctx, p, action, map[string]any{"replace": true})
			d, err := c.Edit(ctx, v, ns, name, in.IfVersion, func(d *catalog.Dataset) error {
				if err := hook(d); err != nil {
					return err
				}
				catalog.ReplaceMetadata(d, in.Body)
				return nil
			})
			if err != nil {
				return nil, a.catalogFailed(ctx, p, action, in.ID, err)
			}
			return &datasetBody{Body: d}, nil
		})

	huma.Register(a.h, op("patch-dataset", http.MethodPatch, "/datasets/{id}", "Change some of a dataset's metadata: description, owners, tags, classification, column descriptions and tags", 403, 404, 409),
		func(ctx context.Context, in *patchDatasetInput) (*datasetBody, error) {
			const action = "catalog.edit"
			v, p, err := a.viewer(ctx)
			if err != nil {
				return nil, a.problem(ctx, action, err)
			}
			ns, name, err := catalog.ParseID(in.ID)
			if err == nil && in.Body == nil {
				err = steward.Errorf(steward.EInvalid, "a patch body is required")
			}
			if err != nil {
				return nil, a.problem(ctx, action, err)
			}
			hook := a.catalogAudit(ctx, p, action, map[string]any{"patch": in.Body})
			d, err := c.Edit(ctx, v, ns, name, in.IfVersion, func(d *catalog.Dataset) error {
				if err := hook(d); err != nil {
					return err
				}
				return in.Body.Apply(d)
			})
			if err != nil {
				return nil, a.catalogFailed(ctx, p, action, in.ID, err)
			}
			return &datasetBody{Body: d}, nil
		})

	huma.Register(a.h, op("delete-dataset", http.MethodDelete, "/datasets/{id}", "Delete a dataset's catalog entry (owners, administrators); its files stay", 403, 404),
		func(ctx context.Context, in *datasetIDPath) (*struct{}, error) {
			const action = "catalog.delete"
			v, p, err := a.viewer(ctx)
			if err != nil {
				return nil, a.problem(ctx, action, err)
			}
			ns, name, err := catalog.ParseID(in.ID)
			if err == nil {
				err = c.Delete(ctx, v, ns, name, a.catalogAudit(ctx, p, action, nil))
			}
			if err != nil {
				return nil, a.catalogFailed(ctx, p, action, in.ID, err)
			}
			return nil, nil
		})

	huma.Register(a.h, op("decide-suggestion", http.MethodPost, "/datasets/{id}/suggestions/{sid}", "Accept or reject a detected tag suggestion (owners, stewards, administrators)", 403, 404, 409),
		func(ctx context.Context, in *suggestionInput) (*datasetBody, error) {
			const action = "catalog.suggestion"
			v, p, err := a.viewer(ctx)
			if err != nil {
				return nil, a.problem(ctx, action, err)
			}
			ns, name, err := catalog.ParseID(in.ID)
			var d *catalog.Dataset
			if err == nil {
				d, err = c.DecideSuggestion(ctx, v, ns, name, in.SID, in.Body.Decision == "accept",
					a.catalogAudit(ctx, p, action, map[string]any{"suggestion": in.SID, "decision": in.Body.Decision}))
			}
			if err != nil {
				return nil, a.catalogFailed(ctx, p, action, in.ID, err)
			}
			return &datasetBody{Body: d}, nil
		})

	huma.Register(a.h, op("crawl-dataset", http.MethodPost, "/datasets/{id}/crawl", "Crawl a dataset's files now (owners, stewards, administrators)", 403, 404, 503),
		func(ctx context.Context, in *datasetIDPath) (*datasetBody, error) {
			const action = "catalog.crawl"
			v, p, err := a.viewer(ctx)
			if err != nil {
				return nil, a.problem(ctx, action, err)
			}
			ns, name, err := catalog.ParseID(in.ID)
			var d *catalog.Dataset
			if err == nil {
				d, err = c.Get(ctx, v, ns, name)
			}
			if err == nil && !v.CanEdit(d) {
				err = steward.Errorf(steward.EPermission, "only the dataset's owners, stewards and administrators may crawl it")
			}
			if err == nil {
				err = a.catalogAudit(ctx, p, action, nil)(d)
			}
			if err == nil {
				d, err = c.Crawl(ctx, ns, name)
			}
			if err != nil {
				return nil, a.catalogFailed(ctx, p, action, in.ID, err)
			}
			return &datasetBody{Body: d}, nil
		})
}
