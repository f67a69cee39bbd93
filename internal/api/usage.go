package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/stewardhq/steward/internal/catalog"
)

// Usage endpoints: a dataset's reads over time, the caller's bookmarks and
// recommendations. Datasets are addressed by ID as in the catalog
// endpoints, and everything shown passes the catalog's discover rule.

type usageInput struct {
	ID   string `path:"id" maxLength:"3000" doc:"The dataset ID: unpadded base64url of NAMESPACE|NAME."`
	Days int    `query:"days" minimum:"1" maximum:"400" default:"30" doc:"The window: the last this many days, today included."`
}

type usageBody struct {
	Body *catalog.DatasetUsage
}

type bookmarksBody struct {
	Body struct {
		Bookmarks []catalog.Bookmark `json:"bookmarks"`
	}
}

type recommendInput struct {
	Limit int `query:"limit" minimum:"1" maximum:"100" default:"10"`
}

type recommendBody struct {
	Body struct {
		Recommendations []catalog.Recommendation `json:"recommendations"`
	}
}

// registerUsage registers the usage endpoints if Deps.Usage is set.
func (a *API) registerUsage() {
	u := a.d.Usage
	if u == nil {
		return
	}
	op := func(id, method, p, summary string, errs ...int) huma.Operation {
		return huma.Operation{OperationID: id, Method: method, Path: p, Summary: summary,
			Tags: []string{"catalog"}, Security: bearer, Errors: append([]int{400, 401}, errs...)}
	}
	huma.Register(a.h, op("get-dataset-usage", http.MethodGet, "/datasets/{id}/usage", "A dataset's usage: reads per day, distinct readers, frequent users, popularity", 404),
		func(ctx context.Context, in *usageInput) (*usageBody, error) {
			const action = "catalog.usage"
			v, _, err := a.viewer(ctx)
			if err != nil {
				return nil, a.problem(ctx, action, err)
			}
			ns, name, err := catalog.ParseID(in.ID)
			var out *catalog.DatasetUsage
			if err == nil {
				out, err = u.DatasetUsage(ctx, v, ns, name, in.Days)
			}
			if err != nil {
				return nil, a.problem(ctx, action, err)
			}
			return &usageBody{Body: out}, nil
		})

	bookmark := func(add bool) func(ctx context.Context, in *datasetIDPath) (*struct{}, error) {
		return func(ctx context.Context, in *datasetIDPath) (*struct{}, error) {
			const action = "catalog.bookmark"
			v, _, err := a.viewer(ctx)
			if err != nil {
				return nil, a.problem(ctx, action, err)
			}
			ns, name, err := catalog.ParseID(in.ID)
			if err == nil {
				if add {
					err = u.AddBookmark(ctx, v, ns, name)
				} else {
					err = u.RemoveBookmark(ctx, v, ns, name)
				}
			}
			if err != nil {
				return nil, a.problem(ctx, action, err)
			}
			return nil, nil
		}
	}
	huma.Register(a.h, op("add-bookmark", http.MethodPut, "/bookmarks/{id}", "Bookmark a dataset (adding it again is fine)", 404), bookmark(true))
	huma.Register(a.h, op("remove-bookmark", http.MethodDelete, "/bookmarks/{id}", "Remove a bookmark", 404), bookmark(false))

	huma.Register(a.h, op("list-bookmarks", http.MethodGet, "/bookmarks", "Your bookmarked datasets, newest first"),
		func(ctx context.Context, _ *struct{}) (*bookmarksBody, error) {
			const action = "catalog.bookmarks"
			v, _, err := a.viewer(ctx)
			if err != nil {
				return nil, a.problem(ctx, action, err)
			}
			bs, err := u.Bookmarks(ctx, v)
			if err != nil {
				return nil, a.problem(ctx, action, err)
			}
			out := &bookmarksBody{}
			out.Body.Bookmarks = bs
			return out, nil
		})

	huma.Register(a.h, op("recommendations", http.MethodGet, "/recommendations", "Datasets for you: popular in your groups, and often used together with what you use"),
		func(ctx context.Context, in *recommendInput) (*recommendBody, error) {
			const action = "catalog.recommend"
			v, _, err := a.viewer(ctx)
			if err != nil {
				return nil, a.problem(ctx, action, err)
			}
			rs, err := u.Recommend(ctx, v, in.Limit)
			if err != nil {
				return nil, a.problem(ctx, action, err)
			}
			out := &recommendBody{}
			out.Body.Recommendations = rs
			return out, nil
		})
}
