package steward

import (
	"context"
	"time"
)

// User is a person known to the built-in identity provider. With an external
// provider (Keycloak) users live there and Steward sees them only as
// Principals.
type User struct {
	Username    string    `json:"username"`
	Email       string    `json:"email,omitempty"`
	DisplayName string    `json:"display_name,omitempty"`
	Groups      []string  `json:"groups"`
	Roles       []string  `json:"roles"`
	Disabled    bool      `json:"disabled"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Group is a named set of users and service accounts.
type Group struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Members     []string  `json:"members"`
	CreatedAt   time.Time `json:"created_at"`
}

// ServiceAccount is a non-person principal (a pipeline, an engine). It gets
// tokens by the client-credentials grant with its client ID and secret.
type ServiceAccount struct {
	Name        string    `json:"name"` // also its OAuth client_id
	Description string    `json:"description,omitempty"`
	Owner       string    `json:"owner,omitempty"`
	Groups      []string  `json:"groups"`
	Roles       []string  `json:"roles"`
	Disabled    bool      `json:"disabled"`
	CreatedAt   time.Time `json:"created_at"`
	RotatedAt   time.Time `json:"rotated_at"`
}

// IdentityStore keeps users, groups and service accounts. Methods return
// *Error with kind ENotFound for a missing name, EConflict for a duplicate
// and EInvalid for a bad name.
type IdentityStore interface {
	CreateUser(ctx context.Context, u *User, passwordHash string) error
	GetUser(ctx context.Context, username string) (*User, error)
	ListUsers(ctx context.Context) ([]*User, error)
	UpdateUser(ctx context.Context, u *User) error // email, display name, roles, disabled
	DeleteUser(ctx context.Context, username string) error
	PasswordHash(ctx context.Context, username string) (string, error)
	SetPasswordHash(ctx context.Context, username, hash string) error

	CreateGroup(ctx context.Context, g *Group) error
	GetGroup(ctx context.Context, name string) (*Group, error)
	ListGroups(ctx context.Context) ([]*Group, error)
	DeleteGroup(ctx context.Context, name string) error
	AddGroupMember(ctx context.Context, group, member string) error
	RemoveGroupMember(ctx context.Context, group, member string) error

	CreateServiceAccount(ctx context.Context, sa *ServiceAccount, secretHash string) error
	GetServiceAccount(ctx context.Context, name string) (*ServiceAccount, error)
	ListServiceAccounts(ctx context.Context) ([]*ServiceAccount, error)
	DeleteServiceAccount(ctx context.Context, name string) error
	ServiceAccountSecretHash(ctx context.Context, name string) (string, error)
	SetServiceAccountSecretHash(ctx context.Context, name, hash string) error
}

// AuditEvent is one entry of the audit trail: who did what to which
// resource, what was decided and how it ended.
type AuditEvent struct {
	Time       time.Time      `json:"time"`
	RequestID  string         `json:"request_id,omitempty"`
	Actor      string         `json:"actor"`      // username, service account, or "anonymous"
	ActorKind  string         `json:"actor_kind"` // user, service, anonymous, system
	Action     string         `json:"action"`     // "auth.login", "user.create", "s3:GetObject", ...
	Resource   string         `json:"resource,omitempty"`
	Decision   string         `json:"decision,omitempty"` // allow, deny
	Policy     string         `json:"policy,omitempty"`   // deciding policy id@version
	Outcome    string         `json:"outcome"`            // success, failure
	Reason     string         `json:"reason,omitempty"`
	ClientAddr string         `json:"client_addr,omitempty"`
	Details    map[string]any `json:"details,omitempty"`
}

// Auditor records audit events. Record returns only once the event is
// durable; if it returns an error, the action it records must fail.
type Auditor interface {
	Record(ctx context.Context, ev AuditEvent) error
}

// AuditStarter is an Auditor that can append a record without waiting for
// it: the returned function waits until the record is durable and returns
// what Record would have. A caller overlaps the wait with work that has no
// visible effect yet and calls it before the effect becomes visible.
type AuditStarter interface {
	Auditor
	Start(ctx context.Context, ev AuditEvent) (wait func() error)
}

// StartAudit starts ev on a (an AuditStarter), or records it at once on
// any other Auditor and returns the outcome.
func StartAudit(ctx context.Context, a Auditor, ev AuditEvent) (wait func() error) {
	if st, ok := a.(AuditStarter); ok {
		return st.Start(ctx, ev)
	}
	err := a.Record(ctx, ev)
	return func() error { return err }
}
