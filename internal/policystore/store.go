// Package policystore keeps Steward's authorization policies in the
// metastore and administers them: versioned, transactional, audited
// changes (apply, delete, history, export), the Holder through which every
// replica refreshes its compiled engine by policy-set version, resource
// owners, and access requests that end in time-bound grants.
//
// Every change bumps the single policy-set version in the same transaction
// as the change, so a replica that sees a version knows the set it names.
// Grants are ordinary policies with a validity schedule (managed by access
// requests, left alone by apply and prune): the engine checks validity at
// decision time, so a grant ends by itself without a background job.
package policystore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/metastore"
	"github.com/stewardhq/steward/internal/policy"
)

// ManagedByAccessRequest marks policies that are grants of access requests.
const ManagedByAccessRequest = "access-request"

// GrantPrefix starts the ID of every grant policy; apply refuses it.
const GrantPrefix = "grant:"

// reservedIDs are policy IDs that would be shadowed by fixed REST paths
// (GET /api/v1/policies/export).
var reservedIDs = map[string]bool{"export": true, "import": true}

// Limits on one batch.
const (
	MaxBatch = 100_000
)

// Store keeps policies, owners and access requests in the metastore. It is
// safe for concurrent use, also by several replicas on one PostgreSQL.
type Store struct {
	db *metastore.Store
	// Now is the clock (for tests); nil means time.Now.
	Now func() time.Time
}

// New returns a Store on db, which must have been migrated (metastore.Open
// does that).
func New(db *metastore.Store) *Store { return &Store{db: db} }

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

// Op is what a change does to one policy.
type Op string

const (
	OpCreate Op = "create"
	OpUpdate Op = "update"
	OpDelete Op = "delete"
)

// FieldDiff is one changed field of a policy, by JSON path
// ("allow[0].users"), with its old and new JSON values (absent when the
// field was or becomes empty).
type FieldDiff struct {
	Path string          `json:"path"`
	Old  json.RawMessage `json:"old,omitempty"`
	New  json.RawMessage `json:"new,omitempty"`
}

// Change is the difference a batch makes to one policy.
type Change struct {
	ID          string      `json:"id"`
	Op          Op          `json:"op"`
	FromVersion int64       `json:"from_version,omitempty"`
	ToVersion   int64       `json:"to_version,omitempty"`
	Fields      []FieldDiff `json:"fields,omitempty"`
}

// Result is the outcome of a change (or of its dry run).
type Result struct {
	// SetVersion is the policy-set version after the change; unchanged on
	// a dry run or when nothing changed.
	SetVersion int64    `json:"set_version"`
	Changed    bool     `json:"changed"`
	DryRun     bool     `json:"dry_run"`
	Changes    []Change `json:"changes"`
	Unchanged  int      `json:"unchanged"`
}

// Text renders the changes for people, one policy per block:
//
//   - create "a" (version 1)
//     ~ update "b" (version 2 -> 3)
//     allow[0].users: ["x"] -> ["x","y"]
//   - delete "c" (was version 4)
func (r *Result) Text() string {
	var b strings.Builder
	for _, c := range r.Changes {
		switch c.Op {
		case OpCreate:
			fmt.Fprintf(&b, "+ create %q (version %d)\n", c.ID, c.ToVersion)
		case OpUpdate:
			fmt.Fprintf(&b, "~ update %q (version %d -> %d)\n", c.ID, c.FromVersion, c.ToVersion)
			for _, f := range c.Fields {
				fmt.Fprintf(&b, "    %s: %s -> %s\n", f.Path, orNone(f.Old), orNone(f.New))
			}
		case OpDelete:
			fmt.Fprintf(&b, "- delete %q (was version %d)\n", c.ID, c.FromVersion)
		}
	}
	switch {
	case !r.Changed && !r.DryRun || r.DryRun && len(r.Changes) == 0:
		fmt.Fprintf(&b, "no changes (%d unchanged); policy set version %d\n", r.Unchanged, r.SetVersion)
	case r.DryRun:
		fmt.Fprintf(&b, "dry run: %d change(s), %d unchanged; nothing applied (policy set version %d)\n", len(r.Changes), r.Unchanged, r.SetVersion)
	default:
		fmt.Fprintf(&b, "applied %d change(s), %d unchanged; policy set version %d\n", len(r.Changes), r.Unchanged, r.SetVersion)
	}
	return b.String()
}

func orNone(m json.RawMessage) string {
	if len(m) == 0 {
		return "(none)"
	}
	return string(m)
}

// Record is a stored policy with who last changed it.
type Record struct {
	Policy    *policy.Policy `json:"policy"`
	ManagedBy string         `json:"managed_by,omitempty"`
	UpdatedAt time.Time      `json:"updated_at"`
	UpdatedBy string         `json:"updated_by"`
}

// HistoryEntry is one past change of a policy.
type HistoryEntry struct {
	Seq        int64          `json:"seq"`
	SetVersion int64          `json:"set_version"`
	PolicyID   string         `json:"policy_id"`
	Version    int64          `json:"version"`
	Op         Op             `json:"op"`
	Policy     *policy.Policy `json:"policy,omitempty"`
	Diff       []FieldDiff    `json:"diff,omitempty"`
	Actor      string         `json:"actor"`
	Time       time.Time      `json:"time"`
}

// BeforeCommit is called inside the transaction of a change, after every
// check passed and before commit (never on a dry run or when nothing
// changes). Returning an error rolls the change back: use it to write the
// audit record, so that no change happens without one.
type BeforeCommit func(ctx context.Context, r *Result) error

// ApplyOptions configure Apply.
type ApplyOptions struct {
	Actor  string // who applies; required
	DryRun bool   // compute and validate the difference, change nothing
	// Prune deletes the admin-written policies that the batch does not
	// name (grants of access requests are never pruned).
	Prune        bool
	BeforeCommit BeforeCommit
}

// ApplyFile parses a policy file (YAML or JSON, see policy.ParseFile) named
// name and applies it. Errors name the file, the policy and the field.
func (s *Store) ApplyFile(ctx context.Context, name string, data []byte, opts ApplyOptions) (*Result, error) {
	ps, err := policy.ParseFile(name, data)
	if err != nil {
		return nil, err
	}
	return s.apply(ctx, name, ps, opts)
}

// Apply makes the admin-written policies match the batch: policies whose
// content differs are created or updated (their version is set by the
// store: 1 for new, previous+1 for changed; the Version in the batch is
// ignored), unchanged ones are left as they are, and with Prune those
// absent are deleted. It is idempotent: applying the same batch again
// changes nothing and keeps the set version. The batch is all or nothing:
// any invalid policy, or a resulting set that does not compile, changes
// nothing and returns an EInvalid error naming the policy and field.
func (s *Store) Apply(ctx context.Context, policies []*policy.Policy, opts ApplyOptions) (*Result, error) {
	return s.apply(ctx, "", policies, opts)
}

func (s *Store) apply(ctx context.Context, file string, policies []*policy.Policy, opts ApplyOptions) (*Result, error) {
	const op = "policystore.Apply"
	if opts.Actor == "" {
		return nil, steward.Errorf(steward.EInvalid, "an actor is required")
	}
	if len(policies) > MaxBatch {
		return nil, &steward.Error{Kind: steward.ETooLarge, Op: op, Message: fmt.Sprintf("more than %d policies in one batch", MaxBatch)}
	}
	prefix := ""
	if file != "" {
		prefix = file + ": "
	}
	seen := make(map[string]bool, len(policies))
	for i, p := range policies {
		if p == nil {
			return nil, steward.Errorf(steward.EInvalid, "%spolicy #%d: missing", prefix, i+1)
		}
		if strings.HasPrefix(p.ID, GrantPrefix) {
			return nil, steward.Errorf(steward.EInvalid, "%spolicy %q: id: the prefix %q is reserved for grants of access requests", prefix, p.ID, GrantPrefix)
		}
		if reservedIDs[p.ID] {
			return nil, steward.Errorf(steward.EInvalid, "%spolicy %q: id: reserved (it names an endpoint under /policies/)", prefix, p.ID)
		}
		if seen[p.ID] {
			return nil, steward.Errorf(steward.EInvalid, "%spolicy %q: id: duplicate in the batch", prefix, p.ID)
		}
		seen[p.ID] = true
		// Validate each policy alone first, for a precise error.
		if _, err := policy.Compile([]*policy.Policy{p}, policy.Options{}); err != nil {
			return nil, steward.Errorf(steward.EInvalid, "%s%s", prefix, steward.MessageOf(err))
		}
	}
	return s.mutate(ctx, opts.Actor, opts.DryRun, opts.BeforeCommit, func(_ *metastore.Tx, cur map[string]*stored) ([]mutation, error) {
		var ms []mutation
		for _, p := range policies {
			if c, ok := cur[p.ID]; ok && c.managedBy != "" {
				return nil, steward.Errorf(steward.EConflict, "%spolicy %q: id: taken by a policy managed by %s", prefix, p.ID, c.managedBy)
			}
			ms = append(ms, mutation{id: p.ID, p: p})
		}
		if opts.Prune {
			for id, c := range cur {
				if c.managedBy == "" && !seen[id] {
					ms = append(ms, mutation{id: id})
				}
			}
		}
		return ms, nil
	})
}

// Delete deletes the admin-written policy id (ENotFound if there is none;
// grants are revoked through their access request instead).
func (s *Store) Delete(ctx context.Context, id, actor string, dryRun bool, before BeforeCommit) (*Result, error) {
	if actor == "" {
		return nil, steward.Errorf(steward.EInvalid, "an actor is required")
	}
	return s.mutate(ctx, actor, dryRun, before, func(_ *metastore.Tx, cur map[string]*stored) ([]mutation, error) {
		c, ok := cur[id]
		if !ok {
			return nil, steward.Errorf(steward.ENotFound, "policy %q not found", id)
		}
		if c.managedBy != "" {
			return nil, steward.Errorf(steward.EConflict, "policy %q is managed by %s; change it there", id, c.managedBy)
		}
		return []mutation{{id: id}}, nil
	})
}

// stored is a policy as read inside a change.
type stored struct {
	version   int64
	body      []byte
	managedBy string
}

// mutation sets (p != nil) or deletes (p == nil) one policy.
type mutation struct {
	id        string
	p         *policy.Policy
	managedBy string
}

// mutate runs one change: it locks the policy set, reads it, asks build
// for the mutations, computes the difference, checks the resulting set
// compiles, and (unless dry) writes the policies, their history and the
// bumped set version in one transaction. after, if set, runs in the same
// transaction (also when no policy changes, but never on a dry run).
func (s *Store) mutate(ctx context.Context, actor string, dry bool, before BeforeCommit, build func(tx *metastore.Tx, cur map[string]*stored) ([]mutation, error), after ...func(tx *metastore.Tx, r *Result) error) (*Result, error) {
	const op = "policystore.mutate"
	var res *Result
	err := s.db.InTx(ctx, func(tx *metastore.Tx) error {
		res = &Result{DryRun: dry, Changes: []Change{}}
		// Lock the set (a no-op update takes the row lock on PostgreSQL;
		// SQLite transactions here are IMMEDIATE and so already exclusive).
		if _, err := tx.Exec(ctx, `UPDATE policy_set SET version = version WHERE id = 1`); err != nil {
			return internal(op, err)
		}
		var setVersion int64
		if err := tx.QueryRow(ctx, `SELECT version FROM policy_set WHERE id = 1`).Scan(&setVersion); err != nil {
			return internal(op, err)
		}
		res.SetVersion = setVersion
		cur, err := readAll(ctx, tx)
		if err != nil {
			return internal(op, err)
		}
		ms, err := build(tx, cur)
		if err != nil {
			return err
		}
		// The difference, and the resulting set.
		type write struct {
			m       mutation
			version int64
			body    []byte
			ch      Change
		}
		var writes []write
		next := make(map[string][]byte, len(cur)+len(ms))
		for id, c := range cur {
			next[id] = c.body
		}
		for _, m := range ms {
			c, exists := cur[m.id]
			if m.p == nil {
				if !exists {
					continue
				}
				delete(next, m.id)
				writes = append(writes, write{m: m, version: c.version, ch: Change{ID: m.id, Op: OpDelete, FromVersion: c.version}})
				continue
			}
			body, err := canonical(m.p)
			if err != nil {
				return internal(op, err)
			}
			if exists && bytes.Equal(body, c.body) && c.managedBy == m.managedBy {
				res.Unchanged++
				continue
			}
			w := write{m: m, body: body, version: 1, ch: Change{ID: m.id, Op: OpCreate, ToVersion: 1}}
			if exists {
				w.version = c.version + 1
				w.ch = Change{ID: m.id, Op: OpUpdate, FromVersion: c.version, ToVersion: c.version + 1, Fields: diffJSON(c.body, body)}
			}
			next[m.id] = body
			writes = append(writes, w)
		}
		slices.SortFunc(writes, func(a, b write) int { return strings.Compare(a.m.id, b.m.id) })
		for _, w := range writes {
			res.Changes = append(res.Changes, w.ch)
		}
		if len(writes) == 0 {
			if dry {
				return nil
			}
			for _, fn := range after {
				if err := fn(tx, res); err != nil {
					return err
				}
			}
			return nil
		}
		if _, err := compileBodies(next, 0); err != nil {
			return err
		}
		if dry {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE policy_set SET version = version + 1 WHERE id = 1`); err != nil {
			return internal(op, err)
		}
		res.SetVersion = setVersion + 1
		res.Changed = true
		now := s.now()
		d := tx.Dialect()
		for _, w := range writes {
			diff := []byte("[]")
			if len(w.ch.Fields) > 0 {
				diff, _ = json.Marshal(w.ch.Fields)
			}
			var body any
			switch w.ch.Op {
			case OpDelete:
				_, err = tx.Exec(ctx, `DELETE FROM policies WHERE id = ?`, w.m.id)
			case OpCreate:
				body = string(w.body)
				_, err = tx.Exec(ctx, `INSERT INTO policies (id, version, body, managed_by, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?)`,
					w.m.id, w.version, string(w.body), w.m.managedBy, metastore.TimeValue(d, now), actor)
			default:
				body = string(w.body)
				_, err = tx.Exec(ctx, `UPDATE policies SET version = ?, body = ?, managed_by = ?, updated_at = ?, updated_by = ? WHERE id = ?`,
					w.version, string(w.body), w.m.managedBy, metastore.TimeValue(d, now), actor, w.m.id)
			}
			if err != nil {
				return internal(op, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO policy_history (set_version, policy_id, version, op, body, diff, actor, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				res.SetVersion, w.m.id, w.version, string(w.ch.Op), body, string(diff), actor, metastore.TimeValue(d, now)); err != nil {
				return internal(op, err)
			}
		}
		for _, fn := range after {
			if err := fn(tx, res); err != nil {
				return err
			}
		}
		if before != nil {
			if err := before(ctx, res); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// canonical is the stored form of p: its JSON without the version (which
// the store keeps in its own column), so equal content compares equal.
func canonical(p *policy.Policy) ([]byte, error) {
	c := *p
	c.Version = 0
	return json.Marshal(&c)
}

func decodePolicy(body []byte, version int64) (*policy.Policy, error) {
	var p policy.Policy
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, err
	}
	p.Version = version
	return &p, nil
}

func readAll(ctx context.Context, q metastore.Querier) (map[string]*stored, error) {
	rows, err := q.Query(ctx, `SELECT id, version, body, managed_by FROM policies`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]*stored{}
	for rows.Next() {
		var id, body string
		c := &stored{}
		if err := rows.Scan(&id, &c.version, &body, &c.managedBy); err != nil {
			return nil, err
		}
		c.body = []byte(body)
		out[id] = c
	}
	return out, rows.Err()
}

// compileBodies compiles a set of stored bodies in ID order.
func compileBodies(bodies map[string][]byte, version int64) (*policy.Engine, error) {
	ids := make([]string, 0, len(bodies))
	for id := range bodies {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	ps := make([]*policy.Policy, 0, len(ids))
	for _, id := range ids {
		p, err := decodePolicy(bodies[id], 1)
		if err != nil {
			return nil, steward.WrapError(steward.EInternal, "policystore.compile", err, "a stored policy is unreadable")
		}
		ps = append(ps, p)
	}
	e, err := policy.Compile(ps, policy.Options{Version: version})
	if err != nil {
		return nil, steward.Errorf(steward.EInvalid, "the resulting policy set is invalid: %s", steward.MessageOf(err))
	}
	return e, nil
}

// Version returns the current policy-set version: one cheap single-row
// query, which replicas poll.
func (s *Store) Version(ctx context.Context) (int64, error) {
	var v int64
	if err := s.db.QueryRow(ctx, `SELECT version FROM policy_set WHERE id = 1`).Scan(&v); err != nil {
		return 0, internal("policystore.Version", err)
	}
	return v, nil
}

// Load returns the policy set and its version, consistently (one
// statement, one snapshot), in ID order with each policy's version set.
func (s *Store) Load(ctx context.Context) (int64, []*policy.Policy, error) {
	const op = "policystore.Load"
	rows, err := s.db.Query(ctx, `SELECT s.version, p.id, p.version, p.body FROM policy_set s LEFT JOIN policies p ON 1 = 1 WHERE s.id = 1 ORDER BY p.id`)
	if err != nil {
		return 0, nil, internal(op, err)
	}
	defer rows.Close()
	var setVersion int64
	var out []*policy.Policy
	for rows.Next() {
		var id, body sql.NullString
		var v sql.NullInt64
		if err := rows.Scan(&setVersion, &id, &v, &body); err != nil {
			return 0, nil, internal(op, err)
		}
		if !id.Valid {
			continue
		}
		p, err := decodePolicy([]byte(body.String), v.Int64)
		if err != nil {
			return 0, nil, steward.WrapError(steward.EInternal, op, err, "a stored policy is unreadable")
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return 0, nil, internal(op, err)
	}
	return setVersion, out, nil
}

// List returns every stored policy in ID order.
func (s *Store) List(ctx context.Context) ([]*Record, error) {
	return s.records(ctx, `SELECT id, version, body, managed_by, updated_at, updated_by FROM policies ORDER BY id`)
}

// Get returns the policy id, or an ENotFound error.
func (s *Store) Get(ctx context.Context, id string) (*Record, error) {
	rs, err := s.records(ctx, `SELECT id, version, body, managed_by, updated_at, updated_by FROM policies WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, steward.Errorf(steward.ENotFound, "policy %q not found", id)
	}
	return rs[0], nil
}

func (s *Store) records(ctx context.Context, q string, args ...any) ([]*Record, error) {
	const op = "policystore.List"
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	out := []*Record{}
	for rows.Next() {
		var id, body string
		var v int64
		r := &Record{}
		if err := rows.Scan(&id, &v, &body, &r.ManagedBy, metastore.ScanTime(&r.UpdatedAt), &r.UpdatedBy); err != nil {
			return nil, internal(op, err)
		}
		if r.Policy, err = decodePolicy([]byte(body), v); err != nil {
			return nil, steward.WrapError(steward.EInternal, op, err, "a stored policy is unreadable")
		}
		out = append(out, r)
	}
	return out, internal(op, rows.Err())
}

// History returns the changes of policy id, oldest first (empty if it
// never existed).
func (s *Store) History(ctx context.Context, id string) ([]*HistoryEntry, error) {
	const op = "policystore.History"
	rows, err := s.db.Query(ctx, `SELECT seq, set_version, policy_id, version, op, body, diff, actor, changed_at FROM policy_history WHERE policy_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	out := []*HistoryEntry{}
	for rows.Next() {
		h := &HistoryEntry{}
		var o, diff string
		var body sql.NullString
		if err := rows.Scan(&h.Seq, &h.SetVersion, &h.PolicyID, &h.Version, &o, &body, &diff, &h.Actor, metastore.ScanTime(&h.Time)); err != nil {
			return nil, internal(op, err)
		}
		h.Op = Op(o)
		if body.Valid {
			if h.Policy, err = decodePolicy([]byte(body.String), h.Version); err != nil {
				return nil, steward.WrapError(steward.EInternal, op, err, "a stored policy is unreadable")
			}
		}
		if err := json.Unmarshal([]byte(diff), &h.Diff); err != nil {
			return nil, internal(op, err)
		}
		out = append(out, h)
	}
	return out, internal(op, rows.Err())
}

// internal wraps a backend error; *steward.Error passes through.
func internal(op string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*steward.Error); ok {
		return err
	}
	return steward.WrapError(steward.EInternal, op, err, "internal error")
}
