package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/stewardhq/steward"
)

type usernamePath struct {
	Username string `path:"username" maxLength:"64"`
}

type userBody struct {
	Body *steward.User
}

type usersBody struct {
	Body []*steward.User
}

type createUserInput struct {
	Body struct {
		Username    string   `json:"username" minLength:"1" maxLength:"64"`
		Email       string   `json:"email,omitempty" maxLength:"256"`
		DisplayName string   `json:"display_name,omitempty" maxLength:"256"`
		Roles       []string `json:"roles,omitempty" maxItems:"64"`
		Groups      []string `json:"groups,omitempty" maxItems:"256"`
		Password    string   `json:"password" minLength:"12" maxLength:"1024" doc:"At least 12 characters." writeOnly:"true"`
	}
}

type updateUserInput struct {
	Username string `path:"username" maxLength:"64"`
	Body     struct {
		Email       *string  `json:"email,omitempty" maxLength:"256"`
		DisplayName *string  `json:"display_name,omitempty" maxLength:"256"`
		Roles       []string `json:"roles,omitempty" maxItems:"64"`
		Disabled    *bool    `json:"disabled,omitempty"`
	}
}

type passwordInput struct {
	Username string `path:"username" maxLength:"64"`
	Body     struct {
		Password string `json:"password" minLength:"12" maxLength:"1024" writeOnly:"true"`
	}
}

type groupPath struct {
	Name string `path:"name" maxLength:"64"`
}

type memberPath struct {
	Name   string `path:"name" maxLength:"64"`
	Member string `path:"member" maxLength:"64"`
}

type createGroupInput struct {
	Body struct {
		Name        string `json:"name" minLength:"1" maxLength:"64"`
		Description string `json:"description,omitempty" maxLength:"1024"`
	}
}

type groupBody struct{ Body *steward.Group }
type groupsBody struct{ Body []*steward.Group }

type createSAInput struct {
	Body struct {
		Name        string   `json:"name" minLength:"1" maxLength:"64"`
		Description string   `json:"description,omitempty" maxLength:"1024"`
		Groups      []string `json:"groups,omitempty" maxItems:"256"`
		Roles       []string `json:"roles,omitempty" maxItems:"64"`
	}
}

type saPath struct {
	Name string `path:"name" maxLength:"64"`
}

type saWithSecret struct {
	Body struct {
		*steward.ServiceAccount
		ClientSecret string `json:"client_secret" doc:"Shown once; store it in your secret manager."`
	}
}

type saBody struct{ Body *steward.ServiceAccount }
type sasBody struct{ Body []*steward.ServiceAccount }

func (a *API) registerAdmin() {
	ids := a.d.Identities
	adminOp := func(id, method, path, summary string, errs ...int) huma.Operation {
		return huma.Operation{OperationID: id, Method: method, Path: path, Summary: summary,
			Tags: []string{"admin"}, Security: bearer, Errors: append([]int{400, 401, 403}, errs...)}
	}

	// Users.
	huma.Register(a.h, adminOp("list-users", http.MethodGet, "/users", "List users"),
		func(ctx context.Context, _ *struct{}) (*usersBody, error) {
			if _, err := a.admit(ctx, "user.list", "users", nil); err != nil {
				return nil, a.problem(ctx, "user.list", err)
			}
			us, err := ids.ListUsers(ctx)
			if err != nil {
				return nil, a.problem(ctx, "user.list", err)
			}
			return &usersBody{Body: us}, nil
		})
	huma.Register(a.h, adminOp("create-user", http.MethodPost, "/users", "Create a user", 409),
		func(ctx context.Context, in *createUserInput) (*userBody, error) {
			b := in.Body
			res := "user:" + b.Username
			p, err := a.admit(ctx, "user.create", res, map[string]any{"groups": b.Groups, "roles": b.Roles})
			if err != nil {
				return nil, a.problem(ctx, "user.create", err)
			}
			hash, err := a.d.Hasher.HashPassword(b.Password)
			if err == nil {
				err = ids.CreateUser(ctx, &steward.User{Username: b.Username, Email: b.Email, DisplayName: b.DisplayName, Roles: b.Roles}, hash)
			}
			for _, g := range b.Groups {
				if err == nil {
					err = ids.AddGroupMember(ctx, g, b.Username)
				}
			}
			if err != nil {
				a.failed(ctx, p, "user.create", res, err)
				return nil, a.problem(ctx, "user.create", err)
			}
			u, err := ids.GetUser(ctx, b.Username)
			if err != nil {
				return nil, a.problem(ctx, "user.create", err)
			}
			return &userBody{Body: u}, nil
		})
	huma.Register(a.h, adminOp("get-user", http.MethodGet, "/users/{username}", "Get a user", 404),
		func(ctx context.Context, in *usernamePath) (*userBody, error) {
			if _, err := a.admit(ctx, "user.get", "user:"+in.Username, nil); err != nil {
				return nil, a.problem(ctx, "user.get", err)
			}
			u, err := ids.GetUser(ctx, in.Username)
			if err != nil {
				return nil, a.problem(ctx, "user.get", err)
			}
			return &userBody{Body: u}, nil
		})
	huma.Register(a.h, adminOp("update-user", http.MethodPatch, "/users/{username}", "Change a user's details, roles or disabled flag", 404),
		func(ctx context.Context, in *updateUserInput) (*userBody, error) {
			res := "user:" + in.Username
			p, err := a.admit(ctx, "user.update", res, map[string]any{"roles": in.Body.Roles, "disabled": in.Body.Disabled})
			if err != nil {
				return nil, a.problem(ctx, "user.update", err)
			}
			u, err := ids.GetUser(ctx, in.Username)
			if err == nil {
				if in.Body.Email != nil {
					u.Email = *in.Body.Email
				}
				if in.Body.DisplayName != nil {
					u.DisplayName = *in.Body.DisplayName
				}
				if in.Body.Roles != nil {
					u.Roles = in.Body.Roles
				}
				if in.Body.Disabled != nil {
					u.Disabled = *in.Body.Disabled
				}
				err = ids.UpdateUser(ctx, u)
			}
			if err != nil {
				a.failed(ctx, p, "user.update", res, err)
				return nil, a.problem(ctx, "user.update", err)
			}
			u, err = ids.GetUser(ctx, in.Username)
			if err != nil {
				return nil, a.problem(ctx, "user.update", err)
			}
			return &userBody{Body: u}, nil
		})
	huma.Register(a.h, adminOp("set-user-password", http.MethodPut, "/users/{username}/password", "Set a user's password", 404),
		func(ctx context.Context, in *passwordInput) (*struct{}, error) {
			res := "user:" + in.Username
			p, err := a.admit(ctx, "user.password", res, nil)
			if err != nil {
				return nil, a.problem(ctx, "user.password", err)
			}
			hash, err := a.d.Hasher.HashPassword(in.Body.Password)
			if err == nil {
				err = ids.SetPasswordHash(ctx, in.Username, hash)
			}
			if err != nil {
				a.failed(ctx, p, "user.password", res, err)
				return nil, a.problem(ctx, "user.password", err)
			}
			return nil, nil
		})
	huma.Register(a.h, adminOp("delete-user", http.MethodDelete, "/users/{username}", "Delete a user", 404),
		func(ctx context.Context, in *usernamePath) (*struct{}, error) {
			res := "user:" + in.Username
			p, err := a.admit(ctx, "user.delete", res, nil)
			if err != nil {
				return nil, a.problem(ctx, "user.delete", err)
			}
			if err := ids.DeleteUser(ctx, in.Username); err != nil {
				a.failed(ctx, p, "user.delete", res, err)
				return nil, a.problem(ctx, "user.delete", err)
			}
			return nil, nil
		})

	// Groups.
	huma.Register(a.h, adminOp("list-groups", http.MethodGet, "/groups", "List groups"),
		func(ctx context.Context, _ *struct{}) (*groupsBody, error) {
			if _, err := a.admit(ctx, "group.list", "groups", nil); err != nil {
				return nil, a.problem(ctx, "group.list", err)
			}
			gs, err := ids.ListGroups(ctx)
			if err != nil {
				return nil, a.problem(ctx, "group.list", err)
			}
			return &groupsBody{Body: gs}, nil
		})
	huma.Register(a.h, adminOp("create-group", http.MethodPost, "/groups", "Create a group", 409),
		func(ctx context.Context, in *createGroupInput) (*groupBody, error) {
			res := "group:" + in.Body.Name
			p, err := a.admit(ctx, "group.create", res, nil)
			if err != nil {
				return nil, a.problem(ctx, "group.create", err)
			}
			if err := ids.CreateGroup(ctx, &steward.Group{Name: in.Body.Name, Description: in.Body.Description}); err != nil {
				a.failed(ctx, p, "group.create", res, err)
				return nil, a.problem(ctx, "group.create", err)
			}
			g, err := ids.GetGroup(ctx, in.Body.Name)
			if err != nil {
				return nil, a.problem(ctx, "group.create", err)
			}
			return &groupBody{Body: g}, nil
		})
	huma.Register(a.h, adminOp("get-group", http.MethodGet, "/groups/{name}", "Get a group and its members", 404),
		func(ctx context.Context, in *groupPath) (*groupBody, error) {
			if _, err := a.admit(ctx, "group.get", "group:"+in.Name, nil); err != nil {
				return nil, a.problem(ctx, "group.get", err)
			}
			g, err := ids.GetGroup(ctx, in.Name)
			if err != nil {
				return nil, a.problem(ctx, "group.get", err)
			}
			return &groupBody{Body: g}, nil
		})
	huma.Register(a.h, adminOp("delete-group", http.MethodDelete, "/groups/{name}", "Delete a group", 404),
		func(ctx context.Context, in *groupPath) (*struct{}, error) {
			res := "group:" + in.Name
			p, err := a.admit(ctx, "group.delete", res, nil)
			if err != nil {
				return nil, a.problem(ctx, "group.delete", err)
			}
			if err := ids.DeleteGroup(ctx, in.Name); err != nil {
				a.failed(ctx, p, "group.delete", res, err)
				return nil, a.problem(ctx, "group.delete", err)
			}
			return nil, nil
		})
	huma.Register(a.h, adminOp("add-group-member", http.MethodPut, "/groups/{name}/members/{member}", "Add a user or service account to a group", 404),
		func(ctx context.Context, in *memberPath) (*struct{}, error) {
			res := "group:" + in.Name
			p, err := a.admit(ctx, "group.member.add", res, map[string]any{"member": in.Member})
			if err != nil {
				return nil, a.problem(ctx, "group.member.add", err)
			}
			if err := ids.AddGroupMember(ctx, in.Name, in.Member); err != nil {
				a.failed(ctx, p, "group.member.add", res, err)
				return nil, a.problem(ctx, "group.member.add", err)
			}
			return nil, nil
		})
	huma.Register(a.h, adminOp("remove-group-member", http.MethodDelete, "/groups/{name}/members/{member}", "Remove a member from a group", 404),
		func(ctx context.Context, in *memberPath) (*struct{}, error) {
			res := "group:" + in.Name
			p, err := a.admit(ctx, "group.member.remove", res, map[string]any{"member": in.Member})
			if err != nil {
				return nil, a.problem(ctx, "group.member.remove", err)
			}
			if err := ids.RemoveGroupMember(ctx, in.Name, in.Member); err != nil {
				a.failed(ctx, p, "group.member.remove", res, err)
				return nil, a.problem(ctx, "group.member.remove", err)
			}
			return nil, nil
		})

	// Service accounts.
	huma.Register(a.h, adminOp("list-service-accounts", http.MethodGet, "/service-accounts", "List service accounts"),
		func(ctx context.Context, _ *struct{}) (*sasBody, error) {
			if _, err := a.admit(ctx, "serviceaccount.list", "service-accounts", nil); err != nil {
				return nil, a.problem(ctx, "serviceaccount.list", err)
			}
			sas, err := ids.ListServiceAccounts(ctx)
			if err != nil {
				return nil, a.problem(ctx, "serviceaccount.list", err)
			}
			return &sasBody{Body: sas}, nil
		})
	huma.Register(a.h, adminOp("create-service-account", http.MethodPost, "/service-accounts", "Create a service account; its secret is returned once", 409),
		func(ctx context.Context, in *createSAInput) (*saWithSecret, error) {
			b := in.Body
			res := "serviceaccount:" + b.Name
			p, err := a.admit(ctx, "serviceaccount.create", res, map[string]any{"groups": b.Groups, "roles": b.Roles})
			if err != nil {
				return nil, a.problem(ctx, "serviceaccount.create", err)
			}
			secret, hash, err := a.newSecret()
			if err == nil {
				err = ids.CreateServiceAccount(ctx, &steward.ServiceAccount{Name: b.Name, Description: b.Description, Owner: p.Username, Roles: b.Roles}, hash)
			}
			for _, g := range b.Groups {
				if err == nil {
					err = ids.AddGroupMember(ctx, g, b.Name)
				}
			}
			if err != nil {
				a.failed(ctx, p, "serviceaccount.create", res, err)
				return nil, a.problem(ctx, "serviceaccount.create", err)
			}
			return a.saWithSecret(ctx, b.Name, secret)
		})
	huma.Register(a.h, adminOp("get-service-account", http.MethodGet, "/service-accounts/{name}", "Get a service account", 404),
		func(ctx context.Context, in *saPath) (*saBody, error) {
			if _, err := a.admit(ctx, "serviceaccount.get", "serviceaccount:"+in.Name, nil); err != nil {
				return nil, a.problem(ctx, "serviceaccount.get", err)
			}
			sa, err := ids.GetServiceAccount(ctx, in.Name)
			if err != nil {
				return nil, a.problem(ctx, "serviceaccount.get", err)
			}
			return &saBody{Body: sa}, nil
		})
	huma.Register(a.h, adminOp("rotate-service-account-secret", http.MethodPost, "/service-accounts/{name}/rotate", "Replace a service account's secret; the new one is returned once", 404),
		func(ctx context.Context, in *saPath) (*saWithSecret, error) {
			res := "serviceaccount:" + in.Name
			p, err := a.admit(ctx, "serviceaccount.rotate", res, nil)
			if err != nil {
				return nil, a.problem(ctx, "serviceaccount.rotate", err)
			}
			secret, hash, err := a.newSecret()
			if err == nil {
				err = ids.SetServiceAccountSecretHash(ctx, in.Name, hash)
			}
			if err != nil {
				a.failed(ctx, p, "serviceaccount.rotate", res, err)
				return nil, a.problem(ctx, "serviceaccount.rotate", err)
			}
			return a.saWithSecret(ctx, in.Name, secret)
		})
	huma.Register(a.h, adminOp("delete-service-account", http.MethodDelete, "/service-accounts/{name}", "Delete a service account", 404),
		func(ctx context.Context, in *saPath) (*struct{}, error) {
			res := "serviceaccount:" + in.Name
			p, err := a.admit(ctx, "serviceaccount.delete", res, nil)
			if err != nil {
				return nil, a.problem(ctx, "serviceaccount.delete", err)
			}
			if err := ids.DeleteServiceAccount(ctx, in.Name); err != nil {
				a.failed(ctx, p, "serviceaccount.delete", res, err)
				return nil, a.problem(ctx, "serviceaccount.delete", err)
			}
			return nil, nil
		})
}

func (a *API) newSecret() (steward.Secret, string, error) {
	s, err := a.d.Hasher.NewSecret()
	if err != nil {
		return "", "", err
	}
	h, err := a.d.Hasher.HashPassword(s.Reveal())
	return s, h, err
}

func (a *API) saWithSecret(ctx context.Context, name string, secret steward.Secret) (*saWithSecret, error) {
	sa, err := a.d.Identities.GetServiceAccount(ctx, name)
	if err != nil {
		return nil, a.problem(ctx, "serviceaccount", err)
	}
	out := &saWithSecret{}
	out.Body.ServiceAccount = sa
	out.Body.ClientSecret = secret.Reveal()
	return out, nil
}
