package policystore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/metastore"
	"github.com/stewardhq/steward/internal/policy"
)

// Limits on access requests.
const (
	MinGrantDuration    = time.Minute
	MaxGrantDuration    = 90 * 24 * time.Hour
	MaxJustificationLen = 4000
	MaxCommentLen       = 4000
	MaxOwnerPrincipals  = 256
)

// Access request statuses. Expired is never stored: an approved request
// whose grant has ended reads as expired.
const (
	StatusPending  = "pending"
	StatusApproved = "approved"
	StatusDenied   = "denied"
	StatusRevoked  = "revoked"
	StatusExpired  = "expired"
)

// Actor is who performs an access-request step, as the API established it.
type Actor struct {
	Username string
	Groups   []string
	Admin    bool // a Steward administrator
}

// Owners are the users and groups that own the resources a pattern names
// and approve access requests for them.
type Owners struct {
	Resource  string    `json:"resource"`
	Users     []string  `json:"users"`
	Groups    []string  `json:"groups"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	UpdatedBy string    `json:"updated_by,omitempty"`
}

// has reports whether a is one of the owners.
func (o *Owners) has(a Actor) bool {
	if o == nil {
		return false
	}
	if slices.Contains(o.Users, a.Username) {
		return true
	}
	for _, g := range a.Groups {
		if slices.Contains(o.Groups, g) {
			return true
		}
	}
	return false
}

// AccessRequest is a request for time-bound access and what became of it.
type AccessRequest struct {
	ID              string    `json:"id"`
	Requester       string    `json:"requester"`
	Resource        string    `json:"resource"`
	Accesses        []string  `json:"accesses"`
	DurationSeconds int64     `json:"duration_seconds"`
	Justification   string    `json:"justification"`
	Status          string    `json:"status" doc:"pending, approved, denied, revoked or expired"`
	CreatedAt       time.Time `json:"created_at"`
	DecidedBy       string    `json:"decided_by,omitempty"`
	DecidedAt       time.Time `json:"decided_at,omitzero"`
	Comment         string    `json:"comment,omitempty"`
	GrantStart      time.Time `json:"grant_start,omitzero"`
	GrantEnd        time.Time `json:"grant_end,omitzero"`
	PolicyID        string    `json:"policy_id,omitempty"`
	RevokedBy       string    `json:"revoked_by,omitempty"`
	RevokedAt       time.Time `json:"revoked_at,omitzero"`
	RevokeComment   string    `json:"revoke_comment,omitempty"`
	// Approvers are the owners of the most specific matching resource
	// (administrators may always approve); nil when no owner is set.
	Approvers *Owners `json:"approvers,omitempty"`
}

// RequestInput is a new access request.
type RequestInput struct {
	Resource      string
	Accesses      []policy.Access
	Duration      time.Duration
	Justification string
}

// AccessHook runs inside the transaction of an access-request step, after
// its checks passed and before commit; an error rolls the step back. Use it
// to audit.
type AccessHook func(ctx context.Context, r *AccessRequest) error

// SetOwners sets (replaces) the owners of a resource pattern.
func (s *Store) SetOwners(ctx context.Context, o Owners, actor string) error {
	const op = "policystore.SetOwners"
	pat, err := parseOwnerPattern(o.Resource)
	if err != nil {
		return err
	}
	if len(o.Users)+len(o.Groups) == 0 {
		return steward.Errorf(steward.EInvalid, "owners of %q: name at least one user or group", o.Resource)
	}
	if len(o.Users)+len(o.Groups) > MaxOwnerPrincipals {
		return steward.Errorf(steward.EInvalid, "owners of %q: more than %d users and groups", o.Resource, MaxOwnerPrincipals)
	}
	for _, n := range append(slices.Clone(o.Users), o.Groups...) {
		if !metastore.ValidName(n) {
			return steward.Errorf(steward.EInvalid, "owners of %q: invalid user or group name %q", o.Resource, n)
		}
	}
	users, _ := json.Marshal(sortedUnique(o.Users))
	groups, _ := json.Marshal(sortedUnique(o.Groups))
	now := metastore.TimeValue(s.db.Dialect(), s.now())
	return internal(op, s.db.InTx(ctx, func(tx *metastore.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE resource_owners SET users = ?, groups = ?, updated_at = ?, updated_by = ? WHERE resource = ?`, string(users), string(groups), now, actor, pat.src)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `INSERT INTO resource_owners (resource, users, groups, updated_at, updated_by) VALUES (?, ?, ?, ?, ?)`, pat.src, string(users), string(groups), now, actor)
		return err
	}))
}

// DeleteOwners removes the owners entry of a resource pattern.
func (s *Store) DeleteOwners(ctx context.Context, resource string) error {
	res, err := s.db.Exec(ctx, `DELETE FROM resource_owners WHERE resource = ?`, resource)
	if err != nil {
		return internal("policystore.DeleteOwners", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return steward.Errorf(steward.ENotFound, "no owners set for %q", resource)
	}
	return nil
}

// ListOwners returns every owners entry, by resource.
func (s *Store) ListOwners(ctx context.Context) ([]*Owners, error) {
	return listOwners(ctx, s.db)
}

func listOwners(ctx context.Context, q metastore.Querier) ([]*Owners, error) {
	const op = "policystore.ListOwners"
	rows, err := q.Query(ctx, `SELECT resource, users, groups, updated_at, updated_by FROM resource_owners ORDER BY resource`)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	out := []*Owners{}
	for rows.Next() {
		o := &Owners{}
		var users, groups string
		if err := rows.Scan(&o.Resource, &users, &groups, metastore.ScanTime(&o.UpdatedAt), &o.UpdatedBy); err != nil {
			return nil, internal(op, err)
		}
		if json.Unmarshal([]byte(users), &o.Users) != nil || json.Unmarshal([]byte(groups), &o.Groups) != nil {
			return nil, steward.Errorf(steward.EInternal, "unreadable owners of %q", o.Resource)
		}
		out = append(out, o)
	}
	return out, internal(op, rows.Err())
}

// ownersOf picks the most specific owners entry covering the target.
func ownersOf(all []*Owners, t *requestTarget) *Owners {
	var best *Owners
	bl, bs := -1, -1
	for _, o := range all {
		pat, err := parseOwnerPattern(o.Resource)
		if err != nil || !pat.match(t.kind, t.name) {
			continue
		}
		l, n := pat.specificity()
		if l > bl || l == bl && n > bs {
			best, bl, bs = o, l, n
		}
	}
	return best
}

// OwnersOf returns the owners of the most specific resource pattern that
// covers resource (an access-request resource), or nil if none does.
func (s *Store) OwnersOf(ctx context.Context, resource string) (*Owners, error) {
	t, err := parseRequestTarget(resource)
	if err != nil {
		return nil, err
	}
	all, err := s.ListOwners(ctx)
	if err != nil {
		return nil, err
	}
	return ownersOf(all, t), nil
}

// CanApprove reports whether a may decide r: an owner of the most
// specific matching resource or an administrator, and never the requester.
func CanApprove(a Actor, r *AccessRequest) bool {
	if a.Username == "" || a.Username == r.Requester {
		return false
	}
	return a.Admin || r.Approvers.has(a)
}

// CanRevoke reports whether a may revoke r's grant: its requester (giving
// it up), an approver or an administrator.
func CanRevoke(a Actor, r *AccessRequest) bool {
	return a.Username != "" && (a.Username == r.Requester || a.Admin || r.Approvers.has(a))
}

// RequestAccess records a pending request by the actor.
func (s *Store) RequestAccess(ctx context.Context, a Actor, in RequestInput, hook AccessHook) (*AccessRequest, error) {
	const op = "policystore.RequestAccess"
	t, err := parseRequestTarget(in.Resource)
	if err != nil {
		return nil, err
	}
	if a.Username == "" || strings.ContainsAny(a.Username, "{}") {
		return nil, steward.Errorf(steward.EInvalid, "requester %q cannot be granted access by name", a.Username)
	}
	if len(in.Accesses) == 0 {
		return nil, steward.Errorf(steward.EInvalid, "accesses: name at least one access type")
	}
	var names []string
	for i, ac := range in.Accesses {
		if ac == policy.AccessNone || ac.String() == "" || strings.HasPrefix(ac.String(), "Access(") {
			return nil, steward.Errorf(steward.EInvalid, "accesses[%d]: unknown access type", i)
		}
		if ac == policy.AccessAdmin {
			return nil, steward.Errorf(steward.EInvalid, "accesses[%d]: admin access is given by ownership, not by request", i)
		}
		names = append(names, ac.String())
	}
	names = sortedUnique(names)
	if in.Duration < MinGrantDuration || in.Duration > MaxGrantDuration {
		return nil, steward.Errorf(steward.EInvalid, "duration: must be between %s and %s", MinGrantDuration, MaxGrantDuration)
	}
	in.Duration = in.Duration.Truncate(time.Second)
	just := strings.TrimSpace(in.Justification)
	if just == "" {
		return nil, steward.Errorf(steward.EInvalid, "justification: say why you need the access")
	}
	if len(just) > MaxJustificationLen {
		return nil, steward.Errorf(steward.EInvalid, "justification: longer than %d bytes", MaxJustificationLen)
	}
	r := &AccessRequest{
		ID: uuid.NewString(), Requester: a.Username, Resource: t.norm, Accesses: names,
		DurationSeconds: int64(in.Duration / time.Second), Justification: just,
		Status: StatusPending, CreatedAt: s.now(),
	}
	// The grant this request would become must be a valid policy.
	if _, err := policy.Compile([]*policy.Policy{grantPolicy(r, t, "check", r.CreatedAt, r.CreatedAt.Add(in.Duration))}, policy.Options{}); err != nil {
		return nil, steward.Errorf(steward.EInvalid, "resource %q: %s", in.Resource, steward.MessageOf(err))
	}
	acc, _ := json.Marshal(names)
	err = s.db.InTx(ctx, func(tx *metastore.Tx) error {
		all, err := listOwners(ctx, tx)
		if err != nil {
			return err
		}
		r.Approvers = ownersOf(all, t)
		if _, err := tx.Exec(ctx, `INSERT INTO access_requests (id, requester, resource, accesses, duration_seconds, justification, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.Requester, r.Resource, string(acc), r.DurationSeconds, r.Justification, r.Status, metastore.TimeValue(tx.Dialect(), r.CreatedAt)); err != nil {
			return internal(op, err)
		}
		if hook != nil {
			return hook(ctx, r)
		}
		return nil
	})
	if err != nil {
		return nil, internal(op, err)
	}
	return r, nil
}

func grantPolicy(r *AccessRequest, t *requestTarget, approver string, start, end time.Time) *policy.Policy {
	var acc []policy.Access
	for _, n := range r.Accesses {
		if a, ok := policy.ParseAccess(n); ok {
			acc = append(acc, a)
		}
	}
	return &policy.Policy{
		ID:          GrantPrefix + r.ID,
		Name:        "access request " + r.ID,
		Description: fmt.Sprintf("Access request %s by %s, approved by %s", r.ID, r.Requester, approver),
		Kind:        policy.KindAccess, Priority: policy.PriorityNormal, Enabled: true, Audit: true,
		Resources: t.spec,
		Allow:     []policy.Item{{Users: []string{r.Requester}, Accesses: acc}},
		Validity:  []policy.Schedule{{Start: start, End: end}},
		Labels:    map[string]string{"access_request": r.ID, "requester": r.Requester, "approved_by": approver},
	}
}

const requestCols = `id, requester, resource, accesses, duration_seconds, justification, status, created_at, decided_by, decided_at, comment, grant_start, grant_end, policy_id, revoked_by, revoked_at, revoke_comment`

type rowScanner interface{ Scan(...any) error }

func scanRequest(rs rowScanner, now time.Time) (*AccessRequest, error) {
	r := &AccessRequest{}
	var acc string
	if err := rs.Scan(&r.ID, &r.Requester, &r.Resource, &acc, &r.DurationSeconds, &r.Justification, &r.Status,
		metastore.ScanTime(&r.CreatedAt), &r.DecidedBy, metastore.ScanTime(&r.DecidedAt), &r.Comment,
		metastore.ScanTime(&r.GrantStart), metastore.ScanTime(&r.GrantEnd), &r.PolicyID,
		&r.RevokedBy, metastore.ScanTime(&r.RevokedAt), &r.RevokeComment); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(acc), &r.Accesses); err != nil {
		return nil, err
	}
	if r.Status == StatusApproved && !r.GrantEnd.IsZero() && !now.Before(r.GrantEnd) {
		r.Status = StatusExpired
	}
	return r, nil
}

func (s *Store) getRequest(ctx context.Context, q metastore.Querier, id string) (*AccessRequest, error) {
	r, err := scanRequest(q.QueryRow(ctx, `SELECT `+requestCols+` FROM access_requests WHERE id = ?`, id), s.now())
	if err != nil {
		return nil, internal("policystore.AccessRequest", metastore.NotFound(err, fmt.Sprintf("access request %q", id)))
	}
	all, err := listOwners(ctx, q)
	if err != nil {
		return nil, err
	}
	if t, err := parseRequestTarget(r.Resource); err == nil {
		r.Approvers = ownersOf(all, t)
	}
	return r, nil
}

// AccessRequest returns the request id (ENotFound if there is none), with
// its current approvers.
func (s *Store) AccessRequest(ctx context.Context, id string) (*AccessRequest, error) {
	return s.getRequest(ctx, s.db, id)
}

// AccessFilter selects access requests.
type AccessFilter struct {
	// Mine: requests by the actor; Approvable: requests the actor may
	// decide or revoke (pending or approved). With neither, the listing is
	// every request, which only administrators may see (the API checks).
	Mine, Approvable bool
	Status           string // only this status ("" for all)
	Limit            int    // at most this many, newest first (default 100, at most 1000)
}

// ListAccessRequests lists requests for actor a by f, newest first.
func (s *Store) ListAccessRequests(ctx context.Context, a Actor, f AccessFilter) ([]*AccessRequest, error) {
	const op = "policystore.ListAccessRequests"
	if f.Limit <= 0 {
		f.Limit = 100
	}
	f.Limit = min(f.Limit, 1000)
	all, err := s.ListOwners(ctx)
	if err != nil {
		return nil, err
	}
	q := `SELECT ` + requestCols + ` FROM access_requests`
	var args []any
	if f.Mine && !f.Approvable {
		q += ` WHERE requester = ?`
		args = append(args, a.Username)
	}
	q += ` ORDER BY created_at DESC, id`
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	now := s.now()
	out := []*AccessRequest{}
	for rows.Next() && len(out) < f.Limit {
		r, err := scanRequest(rows, now)
		if err != nil {
			return nil, internal(op, err)
		}
		if f.Status != "" && r.Status != f.Status {
			continue
		}
		if t, err := parseRequestTarget(r.Resource); err == nil {
			r.Approvers = ownersOf(all, t)
		}
		if f.Mine || f.Approvable {
			mine := f.Mine && r.Requester == a.Username
			appr := f.Approvable && (r.Status == StatusPending || r.Status == StatusApproved) && CanApprove(a, r)
			if !mine && !appr {
				continue
			}
		}
		out = append(out, r)
	}
	return out, internal(op, rows.Err())
}

// DecideInput is an approval or denial.
type DecideInput struct {
	Comment string
	// Duration shortens the grant (0: as requested; more than requested
	// is refused).
	Duration time.Duration
}

// Approve approves a pending request: the grant policy, valid from now for
// the approved duration, is written in the same transaction (bumping the
// policy-set version). Only an owner of the most specific matching
// resource or an administrator may approve, never the requester
// (EPermission); a request no longer pending is EConflict.
func (s *Store) Approve(ctx context.Context, id string, a Actor, in DecideInput, hook AccessHook) (*AccessRequest, error) {
	const op = "policystore.Approve"
	if len(in.Comment) > MaxCommentLen {
		return nil, steward.Errorf(steward.EInvalid, "comment: longer than %d bytes", MaxCommentLen)
	}
	var r *AccessRequest
	_, err := s.mutate(ctx, a.Username, false, nil, func(tx *metastore.Tx, _ map[string]*stored) ([]mutation, error) {
		var err error
		if r, err = s.checkDecide(ctx, tx, id, a); err != nil {
			return nil, err
		}
		t, err := parseRequestTarget(r.Resource)
		if err != nil {
			return nil, err
		}
		d := time.Duration(r.DurationSeconds) * time.Second
		if in.Duration != 0 {
			if in.Duration < MinGrantDuration || in.Duration > d {
				return nil, steward.Errorf(steward.EInvalid, "duration: must be between %s and the requested %s", MinGrantDuration, d)
			}
			d = in.Duration.Truncate(time.Second)
		}
		now := s.now()
		r.Status, r.DecidedBy, r.DecidedAt, r.Comment = StatusApproved, a.Username, now, strings.TrimSpace(in.Comment)
		r.GrantStart, r.GrantEnd, r.PolicyID = now, now.Add(d), GrantPrefix+r.ID
		return []mutation{{id: r.PolicyID, p: grantPolicy(r, t, a.Username, r.GrantStart, r.GrantEnd), managedBy: ManagedByAccessRequest}}, nil
	}, func(tx *metastore.Tx, _ *Result) error {
		dl := tx.Dialect()
		res, err := tx.Exec(ctx, `UPDATE access_requests SET status = ?, decided_by = ?, decided_at = ?, comment = ?, grant_start = ?, grant_end = ?, policy_id = ? WHERE id = ? AND status = ?`,
			StatusApproved, r.DecidedBy, metastore.TimeValue(dl, r.DecidedAt), r.Comment, metastore.TimeValue(dl, r.GrantStart), metastore.TimeValue(dl, r.GrantEnd), r.PolicyID, r.ID, StatusPending)
		if err := oneRow(res, err, r.ID); err != nil {
			return err
		}
		if hook != nil {
			return hook(ctx, r)
		}
		return nil
	})
	if err != nil {
		return nil, internal(op, err)
	}
	return r, nil
}

func oneRow(res sql.Result, err error, id string) error {
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return steward.Errorf(steward.EConflict, "access request %q changed meanwhile; try again", id)
	}
	return nil
}

// checkDecide loads a pending request and checks a may decide it.
func (s *Store) checkDecide(ctx context.Context, q metastore.Querier, id string, a Actor) (*AccessRequest, error) {
	r, err := s.getRequest(ctx, q, id)
	if err != nil {
		return nil, err
	}
	if a.Username == r.Requester {
		return nil, steward.Errorf(steward.EPermission, "you cannot decide your own access request")
	}
	if !CanApprove(a, r) {
		return nil, steward.Errorf(steward.EPermission, "only an owner of %s or an administrator may decide this request", r.Resource)
	}
	if r.Status != StatusPending {
		return nil, steward.Errorf(steward.EConflict, "access request %q is %s, not pending", id, r.Status)
	}
	return r, nil
}

// Deny denies a pending request, with the same rules as Approve.
func (s *Store) Deny(ctx context.Context, id string, a Actor, in DecideInput, hook AccessHook) (*AccessRequest, error) {
	const op = "policystore.Deny"
	if len(in.Comment) > MaxCommentLen {
		return nil, steward.Errorf(steward.EInvalid, "comment: longer than %d bytes", MaxCommentLen)
	}
	var r *AccessRequest
	err := s.db.InTx(ctx, func(tx *metastore.Tx) error {
		var err error
		if r, err = s.checkDecide(ctx, tx, id, a); err != nil {
			return err
		}
		r.Status, r.DecidedBy, r.DecidedAt, r.Comment = StatusDenied, a.Username, s.now(), strings.TrimSpace(in.Comment)
		res, err := tx.Exec(ctx, `UPDATE access_requests SET status = ?, decided_by = ?, decided_at = ?, comment = ? WHERE id = ? AND status = ?`,
			r.Status, r.DecidedBy, metastore.TimeValue(tx.Dialect(), r.DecidedAt), r.Comment, r.ID, StatusPending)
		if err := oneRow(res, err, r.ID); err != nil {
			return err
		}
		if hook != nil {
			return hook(ctx, r)
		}
		return nil
	})
	if err != nil {
		return nil, internal(op, err)
	}
	return r, nil
}

// Revoke ends an approved request's grant early: its policy is deleted
// (bumping the policy-set version). The requester, an owner or an
// administrator may revoke.
func (s *Store) Revoke(ctx context.Context, id string, a Actor, comment string, hook AccessHook) (*AccessRequest, error) {
	const op = "policystore.Revoke"
	if len(comment) > MaxCommentLen {
		return nil, steward.Errorf(steward.EInvalid, "comment: longer than %d bytes", MaxCommentLen)
	}
	var r *AccessRequest
	_, err := s.mutate(ctx, a.Username, false, nil, func(tx *metastore.Tx, cur map[string]*stored) ([]mutation, error) {
		var err error
		if r, err = s.getRequest(ctx, tx, id); err != nil {
			return nil, err
		}
		if !CanRevoke(a, r) {
			return nil, steward.Errorf(steward.EPermission, "only the requester, an owner of %s or an administrator may revoke this grant", r.Resource)
		}
		if r.Status != StatusApproved && r.Status != StatusExpired {
			return nil, steward.Errorf(steward.EConflict, "access request %q is %s; only approved requests can be revoked", id, r.Status)
		}
		r.Status, r.RevokedBy, r.RevokedAt, r.RevokeComment = StatusRevoked, a.Username, s.now(), strings.TrimSpace(comment)
		if _, ok := cur[r.PolicyID]; !ok {
			return nil, nil
		}
		return []mutation{{id: r.PolicyID}}, nil
	}, func(tx *metastore.Tx, _ *Result) error {
		return s.markRevoked(ctx, tx, r, hook)
	})
	if err != nil {
		return nil, internal(op, err)
	}
	return r, nil
}

func (s *Store) markRevoked(ctx context.Context, tx *metastore.Tx, r *AccessRequest, hook AccessHook) error {
	res, err := tx.Exec(ctx, `UPDATE access_requests SET status = ?, revoked_by = ?, revoked_at = ?, revoke_comment = ? WHERE id = ? AND status = ?`,
		StatusRevoked, r.RevokedBy, metastore.TimeValue(tx.Dialect(), r.RevokedAt), r.RevokeComment, r.ID, StatusApproved)
	if err := oneRow(res, err, r.ID); err != nil {
		return err
	}
	if hook != nil {
		return hook(ctx, r)
	}
	return nil
}

func sortedUnique(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	out = slices.Compact(out)
	if out == nil {
		out = []string{}
	}
	return out
}
