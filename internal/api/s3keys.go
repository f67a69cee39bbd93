package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/sts"
)

type accessKeyWithSecret struct {
	Body struct {
		*sts.AccessKey
		SecretAccessKey string `json:"secret_access_key" doc:"Shown once; store it in your secret manager."`
	}
}

type accessKeysBody struct{ Body []*sts.AccessKey }

type createAccessKeyInput struct {
	Name string `path:"name" maxLength:"64"`
	Body struct {
		Description string `json:"description,omitempty" maxLength:"1024"`
	}
}

type accessKeyPath struct {
	ID string `path:"id" maxLength:"128"`
}

type revokeSessionsInput struct {
	Body struct {
		User      string `json:"user,omitempty" maxLength:"64" doc:"Revoke every S3 session of this user issued until now."`
		SessionID string `json:"session_id,omitempty" maxLength:"128" doc:"Revoke this one S3 session."`
	}
}

// registerS3Keys adds long-lived S3 access keys for service accounts and
// revocation of short-term S3 sessions (admins only).
func (a *API) registerS3Keys() {
	c := a.d.S3Credentials
	op := func(id, method, path, summary string, errs ...int) huma.Operation {
		return huma.Operation{OperationID: id, Method: method, Path: path, Summary: summary,
			Tags: []string{"s3"}, Security: bearer, Errors: append([]int{400, 401, 403}, errs...)}
	}
	huma.Register(a.h, op("list-access-keys", http.MethodGet, "/service-accounts/{name}/access-keys", "List a service account's S3 access keys", 404),
		func(ctx context.Context, in *saPath) (*accessKeysBody, error) {
			if _, err := a.admit(ctx, "accesskey.list", "serviceaccount:"+in.Name, nil); err != nil {
				return nil, a.problem(ctx, "accesskey.list", err)
			}
			ks, err := c.ListAccessKeys(ctx, in.Name)
			if err != nil {
				return nil, a.problem(ctx, "accesskey.list", err)
			}
			if ks == nil {
				ks = []*sts.AccessKey{}
			}
			return &accessKeysBody{Body: ks}, nil
		})
	huma.Register(a.h, op("create-access-key", http.MethodPost, "/service-accounts/{name}/access-keys", "Create an S3 access key; its secret is returned once", 404, 409),
		func(ctx context.Context, in *createAccessKeyInput) (*accessKeyWithSecret, error) {
			res := "serviceaccount:" + in.Name
			p, err := a.admit(ctx, "accesskey.create", res, nil)
			if err != nil {
				return nil, a.problem(ctx, "accesskey.create", err)
			}
			k, secret, err := c.CreateAccessKey(ctx, in.Name, in.Body.Description, p.Username)
			if err != nil {
				a.failed(ctx, p, "accesskey.create", res, err)
				return nil, a.problem(ctx, "accesskey.create", err)
			}
			return keyWithSecret(k, secret), nil
		})
	huma.Register(a.h, op("rotate-access-key", http.MethodPost, "/access-keys/{id}/rotate", "Replace an S3 access key by a new one; the new secret is returned once", 404),
		func(ctx context.Context, in *accessKeyPath) (*accessKeyWithSecret, error) {
			res := "accesskey:" + in.ID
			p, err := a.admit(ctx, "accesskey.rotate", res, nil)
			if err != nil {
				return nil, a.problem(ctx, "accesskey.rotate", err)
			}
			k, secret, err := c.RotateAccessKey(ctx, in.ID, p.Username)
			if err != nil {
				a.failed(ctx, p, "accesskey.rotate", res, err)
				return nil, a.problem(ctx, "accesskey.rotate", err)
			}
			return keyWithSecret(k, secret), nil
		})
	huma.Register(a.h, op("delete-access-key", http.MethodDelete, "/access-keys/{id}", "Delete an S3 access key", 404),
		func(ctx context.Context, in *accessKeyPath) (*struct{}, error) {
			res := "accesskey:" + in.ID
			p, err := a.admit(ctx, "accesskey.delete", res, nil)
			if err != nil {
				return nil, a.problem(ctx, "accesskey.delete", err)
			}
			if err := c.DeleteAccessKey(ctx, in.ID); err != nil {
				a.failed(ctx, p, "accesskey.delete", res, err)
				return nil, a.problem(ctx, "accesskey.delete", err)
			}
			return nil, nil
		})
	huma.Register(a.h, op("revoke-sessions", http.MethodPost, "/sessions/revoke", "Revoke a user's S3 sessions, or one session (effective on every replica within a minute)"),
		func(ctx context.Context, in *revokeSessionsInput) (*struct{}, error) {
			b := in.Body
			if (b.User == "") == (b.SessionID == "") {
				return nil, a.problem(ctx, "session.revoke", steward.Errorf(steward.EInvalid, "name exactly one of user or session_id"))
			}
			res := "user:" + b.User
			if b.SessionID != "" {
				res = "session:" + b.SessionID
			}
			p, err := a.admit(ctx, "session.revoke", res, nil)
			if err != nil {
				return nil, a.problem(ctx, "session.revoke", err)
			}
			if b.User != "" {
				err = c.RevokeUser(ctx, b.User, p.Username)
			} else {
				err = c.RevokeSession(ctx, b.SessionID, p.Username)
			}
			if err != nil {
				a.failed(ctx, p, "session.revoke", res, err)
				return nil, a.problem(ctx, "session.revoke", err)
			}
			return nil, nil
		})
}

func keyWithSecret(k *sts.AccessKey, secret steward.Secret) *accessKeyWithSecret {
	out := &accessKeyWithSecret{}
	out.Body.AccessKey = k
	out.Body.SecretAccessKey = secret.Reveal()
	return out
}
