package metastore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/stewardhq/steward"
)

var _ steward.IdentityStore = (*Store)(nil)

// TimeLayout is how SQLite stores timestamps: fixed-width UTC with
// microseconds, so that text order is time order and values parse back
// exactly. PostgreSQL stores TIMESTAMPTZ, which also has microseconds.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// TimeValue returns t as a query argument for dialect d: truncated to
// microseconds (what both backends keep), in UTC, and on SQLite formatted
// with TimeLayout. Scan it back with ScanTime.
func TimeValue(d Dialect, t time.Time) any {
	t = t.UTC().Truncate(time.Microsecond)
	if d == SQLite {
		return t.Format(TimeLayout)
	}
	return t
}

// ScanTime returns a sql.Scanner that stores a timestamp column into dst in
// UTC, whether the driver yields a time.Time (PostgreSQL) or text (SQLite).
// NULL scans as the zero time.
func ScanTime(dst *time.Time) sql.Scanner { return timeScanner{dst} }

type timeScanner struct{ t *time.Time }

func (s timeScanner) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*s.t = time.Time{}
	case time.Time:
		*s.t = v.UTC()
	case string:
		return s.parse(v)
	case []byte:
		return s.parse(string(v))
	default:
		return fmt.Errorf("metastore: cannot scan %T into a time", src)
	}
	return nil
}

func (s timeScanner) parse(v string) error {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return fmt.Errorf("metastore: bad timestamp %q: %w", v, err)
	}
	*s.t = t.UTC()
	return nil
}

// now is the current time as the backends keep it.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

const maxNameLen = 64

// ValidName reports whether name is acceptable for a user, group or service
// account: 1 to 64 lowercase letters, digits, '.', '_' or '-', starting with
// a letter or digit.
func ValidName(name string) bool {
	if len(name) == 0 || len(name) > maxNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

func checkName(op, what, name string) error {
	if !ValidName(name) {
		return &steward.Error{Kind: steward.EInvalid, Op: op, Message: fmt.Sprintf(
			"invalid %s %q: use 1 to %d lowercase letters, digits, '.', '_' or '-', starting with a letter or digit",
			what, name, maxNameLen)}
	}
	return nil
}

// internal wraps a backend error for op; *steward.Error passes through.
func internal(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *steward.Error
	if errors.As(err, &se) {
		if se.Op == "" {
			se.Op = op
		}
		return se
	}
	return steward.WrapError(steward.EInternal, op, err, "internal error")
}

func errorf(kind steward.ErrorKind, op, format string, args ...any) error {
	return &steward.Error{Kind: kind, Op: op, Message: fmt.Sprintf(format, args...)}
}

// encodeRoles stores roles as a sorted JSON array without duplicates.
func encodeRoles(op string, roles []string) (string, error) {
	r := slices.Clone(roles)
	slices.Sort(r)
	r = slices.Compact(r)
	for _, x := range r {
		if x == "" {
			return "", errorf(steward.EInvalid, op, "empty role name")
		}
	}
	if r == nil {
		r = []string{}
	}
	b, err := json.Marshal(r)
	return string(b), err
}

func decodeRoles(s string) ([]string, error) {
	var r []string
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return nil, fmt.Errorf("metastore: bad roles %q: %w", s, err)
	}
	if r == nil {
		r = []string{}
	}
	slices.Sort(r)
	return r, nil
}

// affected returns ENotFound if res changed no rows.
func affected(op string, res sql.Result, format string, args ...any) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return errorf(steward.ENotFound, op, format, args...)
	}
	return nil
}

// insertPrincipal claims name in the namespace shared by users and service
// accounts.
func insertPrincipal(ctx context.Context, tx *Tx, op, name, kind string) error {
	_, err := tx.Exec(ctx, `INSERT INTO principals (name, kind) VALUES (?, ?)`, name, kind)
	if IsUniqueViolation(err) {
		return errorf(steward.EConflict, op, "name %q is already taken by a user or service account", name)
	}
	return err
}

// addMembers adds member to each of groups, all of which must exist.
func addMemberships(ctx context.Context, tx *Tx, op, member string, groups []string) error {
	gs := slices.Clone(groups)
	slices.Sort(gs)
	for _, g := range slices.Compact(gs) {
		if err := checkName(op, "group name", g); err != nil {
			return err
		}
		if err := addMember(ctx, tx, op, g, member); err != nil {
			return err
		}
	}
	return nil
}

func addMember(ctx context.Context, tx *Tx, op, group, member string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM groups WHERE name = ?`, group).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return errorf(steward.ENotFound, op, "group %q not found", group)
	} else if err != nil {
		return err
	}
	err = tx.QueryRow(ctx, `SELECT 1 FROM principals WHERE name = ?`, member).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return errorf(steward.ENotFound, op, "user or service account %q not found", member)
	} else if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO group_members (group_name, member) VALUES (?, ?)`, group, member)
	switch {
	case IsUniqueViolation(err):
		return errorf(steward.EConflict, op, "%q is already a member of group %q", member, group)
	case IsForeignKeyViolation(err): // deleted concurrently
		return errorf(steward.ENotFound, op, "group %q or member %q not found", group, member)
	}
	return err
}

// groupsOf returns the sorted groups of member.
func (s *Store) groupsOf(ctx context.Context, member string) ([]string, error) {
	return s.strings(ctx, `SELECT group_name FROM group_members WHERE member = ?`, member)
}

// strings runs a one-column query and returns its values sorted.
func (s *Store) strings(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.Sort(out)
	return out, nil
}

// pairs runs a two-column query (key, value) and groups the values by key,
// each list sorted.
func (s *Store) pairs(ctx context.Context, q string, args ...any) (map[string][]string, error) {
	rows, err := s.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k] = append(out[k], v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, vs := range out {
		slices.Sort(vs)
	}
	return out, nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ---- users ----

const userColumns = `username, email, display_name, roles, disabled, created_at, updated_at`

type rowScanner interface{ Scan(dest ...any) error }

// queryAll runs q and scans every row with scan; the result is never nil,
// so an empty list encodes as [] rather than null.
func queryAll[T any](ctx context.Context, q Querier, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func scanUser(r rowScanner) (*steward.User, error) {
	var u steward.User
	var roles string
	if err := r.Scan(&u.Username, &u.Email, &u.DisplayName, &roles, &u.Disabled,
		ScanTime(&u.CreatedAt), ScanTime(&u.UpdatedAt)); err != nil {
		return nil, err
	}
	var err error
	if u.Roles, err = decodeRoles(roles); err != nil {
		return nil, err
	}
	u.Groups = []string{}
	return &u, nil
}

// CreateUser stores a new user with the given password hash (empty for none).
// Zero CreatedAt and UpdatedAt are set to now and written back to u. Groups
// in u.Groups are joined and must exist (ENotFound). A name already used by a
// user or service account is EConflict.
func (s *Store) CreateUser(ctx context.Context, u *steward.User, passwordHash string) error {
	const op = "metastore.CreateUser"
	if err := checkName(op, "username", u.Username); err != nil {
		return err
	}
	roles, err := encodeRoles(op, u.Roles)
	if err != nil {
		return internal(op, err)
	}
	t := now()
	created, updated := normTime(u.CreatedAt), normTime(u.UpdatedAt)
	if created.IsZero() {
		created = t
	}
	if updated.IsZero() {
		updated = created
	}
	err = s.InTx(ctx, func(tx *Tx) error {
		if err := insertPrincipal(ctx, tx, op, u.Username, "user"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO users (username, email, display_name, roles, disabled, password_hash, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			u.Username, u.Email, u.DisplayName, roles, u.Disabled, passwordHash,
			TimeValue(s.dialect, created), TimeValue(s.dialect, updated)); err != nil {
			if IsUniqueViolation(err) {
				return errorf(steward.EConflict, op, "user %q already exists", u.Username)
			}
			return err
		}
		return addMemberships(ctx, tx, op, u.Username, u.Groups)
	})
	if err != nil {
		return internal(op, err)
	}
	u.CreatedAt, u.UpdatedAt = created, updated
	return nil
}

// GetUser returns the user with its groups, or ENotFound.
func (s *Store) GetUser(ctx context.Context, username string) (*steward.User, error) {
	const op = "metastore.GetUser"
	if err := checkName(op, "username", username); err != nil {
		return nil, err
	}
	u, err := scanUser(s.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE username = ?`, username))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errorf(steward.ENotFound, op, "user %q not found", username)
	} else if err != nil {
		return nil, internal(op, err)
	}
	if u.Groups, err = s.groupsOf(ctx, username); err != nil {
		return nil, internal(op, err)
	}
	return u, nil
}

// ListUsers returns all users sorted by username, each with its groups.
func (s *Store) ListUsers(ctx context.Context) ([]*steward.User, error) {
	const op = "metastore.ListUsers"
	users, err := queryAll(ctx, s, scanUser, `SELECT `+userColumns+` FROM users ORDER BY username`)
	if err != nil {
		return nil, internal(op, err)
	}
	groups, err := s.pairs(ctx, `SELECT m.member, m.group_name FROM group_members m JOIN users u ON u.username = m.member`)
	if err != nil {
		return nil, internal(op, err)
	}
	for _, u := range users {
		u.Groups = orEmpty(groups[u.Username])
	}
	slices.SortFunc(users, func(a, b *steward.User) int { return cmpString(a.Username, b.Username) })
	return users, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// UpdateUser changes a user's email, display name, roles and disabled flag,
// and sets u.UpdatedAt to now. Other fields of u are ignored.
func (s *Store) UpdateUser(ctx context.Context, u *steward.User) error {
	const op = "metastore.UpdateUser"
	if err := checkName(op, "username", u.Username); err != nil {
		return err
	}
	roles, err := encodeRoles(op, u.Roles)
	if err != nil {
		return internal(op, err)
	}
	t := now()
	res, err := s.Exec(ctx, `UPDATE users SET email = ?, display_name = ?, roles = ?, disabled = ?, updated_at = ? WHERE username = ?`,
		u.Email, u.DisplayName, roles, u.Disabled, TimeValue(s.dialect, t), u.Username)
	if err != nil {
		return internal(op, err)
	}
	if err := affected(op, res, "user %q not found", u.Username); err != nil {
		return internal(op, err)
	}
	u.UpdatedAt = t
	return nil
}

// DeleteUser removes a user and its group memberships.
func (s *Store) DeleteUser(ctx context.Context, username string) error {
	const op = "metastore.DeleteUser"
	if err := checkName(op, "username", username); err != nil {
		return err
	}
	return internal(op, s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM group_members WHERE member = ?`, username); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, `DELETE FROM users WHERE username = ?`, username)
		if err != nil {
			return err
		}
		if err := affected(op, res, "user %q not found", username); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM principals WHERE name = ? AND kind = 'user'`, username)
		return err
	}))
}

// PasswordHash returns the user's stored password hash ("" if none).
func (s *Store) PasswordHash(ctx context.Context, username string) (string, error) {
	const op = "metastore.PasswordHash"
	if err := checkName(op, "username", username); err != nil {
		return "", err
	}
	var h string
	err := s.QueryRow(ctx, `SELECT password_hash FROM users WHERE username = ?`, username).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errorf(steward.ENotFound, op, "user %q not found", username)
	}
	return h, internal(op, err)
}

// SetPasswordHash replaces the user's password hash and bumps UpdatedAt.
func (s *Store) SetPasswordHash(ctx context.Context, username, hash string) error {
	const op = "metastore.SetPasswordHash"
	if err := checkName(op, "username", username); err != nil {
		return err
	}
	res, err := s.Exec(ctx, `UPDATE users SET password_hash = ?, updated_at = ? WHERE username = ?`,
		hash, TimeValue(s.dialect, now()), username)
	if err != nil {
		return internal(op, err)
	}
	return internal(op, affected(op, res, "user %q not found", username))
}

// ---- groups ----

// CreateGroup stores a new group; members in g.Members must exist
// (ENotFound). Zero CreatedAt is set to now and written back to g.
func (s *Store) CreateGroup(ctx context.Context, g *steward.Group) error {
	const op = "metastore.CreateGroup"
	if err := checkName(op, "group name", g.Name); err != nil {
		return err
	}
	for _, m := range g.Members {
		if err := checkName(op, "member name", m); err != nil {
			return err
		}
	}
	created := normTime(g.CreatedAt)
	if created.IsZero() {
		created = now()
	}
	err := s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO groups (name, description, created_at) VALUES (?, ?, ?)`,
			g.Name, g.Description, TimeValue(s.dialect, created)); err != nil {
			if IsUniqueViolation(err) {
				return errorf(steward.EConflict, op, "group %q already exists", g.Name)
			}
			return err
		}
		ms := slices.Clone(g.Members)
		slices.Sort(ms)
		for _, m := range slices.Compact(ms) {
			if err := addMember(ctx, tx, op, g.Name, m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return internal(op, err)
	}
	g.CreatedAt = created
	return nil
}

// GetGroup returns the group with its sorted members, or ENotFound.
func (s *Store) GetGroup(ctx context.Context, name string) (*steward.Group, error) {
	const op = "metastore.GetGroup"
	if err := checkName(op, "group name", name); err != nil {
		return nil, err
	}
	var g steward.Group
	err := s.QueryRow(ctx, `SELECT name, description, created_at FROM groups WHERE name = ?`, name).
		Scan(&g.Name, &g.Description, ScanTime(&g.CreatedAt))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errorf(steward.ENotFound, op, "group %q not found", name)
	} else if err != nil {
		return nil, internal(op, err)
	}
	if g.Members, err = s.strings(ctx, `SELECT member FROM group_members WHERE group_name = ?`, name); err != nil {
		return nil, internal(op, err)
	}
	return &g, nil
}

// ListGroups returns all groups sorted by name, each with its members.
func (s *Store) ListGroups(ctx context.Context) ([]*steward.Group, error) {
	const op = "metastore.ListGroups"
	rows, err := s.Query(ctx, `SELECT name, description, created_at FROM groups ORDER BY name`)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	groups := []*steward.Group{}
	for rows.Next() {
		var g steward.Group
		if err := rows.Scan(&g.Name, &g.Description, ScanTime(&g.CreatedAt)); err != nil {
			return nil, internal(op, err)
		}
		groups = append(groups, &g)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(op, err)
	}
	rows.Close()
	members, err := s.pairs(ctx, `SELECT group_name, member FROM group_members`)
	if err != nil {
		return nil, internal(op, err)
	}
	for _, g := range groups {
		g.Members = orEmpty(members[g.Name])
	}
	slices.SortFunc(groups, func(a, b *steward.Group) int { return cmpString(a.Name, b.Name) })
	return groups, nil
}

// DeleteGroup removes a group and its memberships.
func (s *Store) DeleteGroup(ctx context.Context, name string) error {
	const op = "metastore.DeleteGroup"
	if err := checkName(op, "group name", name); err != nil {
		return err
	}
	return internal(op, s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM group_members WHERE group_name = ?`, name); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, `DELETE FROM groups WHERE name = ?`, name)
		if err != nil {
			return err
		}
		return affected(op, res, "group %q not found", name)
	}))
}

// AddGroupMember adds a user or service account to a group. A missing group
// or member is ENotFound; an existing membership is EConflict.
func (s *Store) AddGroupMember(ctx context.Context, group, member string) error {
	const op = "metastore.AddGroupMember"
	if err := checkName(op, "group name", group); err != nil {
		return err
	}
	if err := checkName(op, "member name", member); err != nil {
		return err
	}
	return internal(op, s.InTx(ctx, func(tx *Tx) error { return addMember(ctx, tx, op, group, member) }))
}

// RemoveGroupMember removes a member from a group; ENotFound if the group
// does not exist or member is not in it.
func (s *Store) RemoveGroupMember(ctx context.Context, group, member string) error {
	const op = "metastore.RemoveGroupMember"
	if err := checkName(op, "group name", group); err != nil {
		return err
	}
	if err := checkName(op, "member name", member); err != nil {
		return err
	}
	res, err := s.Exec(ctx, `DELETE FROM group_members WHERE group_name = ? AND member = ?`, group, member)
	if err != nil {
		return internal(op, err)
	}
	return internal(op, affected(op, res, "%q is not a member of group %q", member, group))
}

// ---- service accounts ----

const serviceAccountColumns = `name, description, owner, roles, disabled, created_at, rotated_at`

func scanServiceAccount(r rowScanner) (*steward.ServiceAccount, error) {
	var sa steward.ServiceAccount
	var roles string
	if err := r.Scan(&sa.Name, &sa.Description, &sa.Owner, &roles, &sa.Disabled,
		ScanTime(&sa.CreatedAt), ScanTime(&sa.RotatedAt)); err != nil {
		return nil, err
	}
	var err error
	if sa.Roles, err = decodeRoles(roles); err != nil {
		return nil, err
	}
	sa.Groups = []string{}
	return &sa, nil
}

// CreateServiceAccount stores a new service account with its client secret
// hash. Zero CreatedAt and RotatedAt are set to now and written back to sa.
// Groups in sa.Groups are joined and must exist (ENotFound). A name already
// used by a user or service account is EConflict.
func (s *Store) CreateServiceAccount(ctx context.Context, sa *steward.ServiceAccount, secretHash string) error {
	const op = "metastore.CreateServiceAccount"
	if err := checkName(op, "service account name", sa.Name); err != nil {
		return err
	}
	roles, err := encodeRoles(op, sa.Roles)
	if err != nil {
		return internal(op, err)
	}
	created, rotated := normTime(sa.CreatedAt), normTime(sa.RotatedAt)
	if created.IsZero() {
		created = now()
	}
	if rotated.IsZero() {
		rotated = created
	}
	err = s.InTx(ctx, func(tx *Tx) error {
		if err := insertPrincipal(ctx, tx, op, sa.Name, "service"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO service_accounts (name, description, owner, roles, disabled, secret_hash, created_at, rotated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			sa.Name, sa.Description, sa.Owner, roles, sa.Disabled, secretHash,
			TimeValue(s.dialect, created), TimeValue(s.dialect, rotated)); err != nil {
			if IsUniqueViolation(err) {
				return errorf(steward.EConflict, op, "service account %q already exists", sa.Name)
			}
			return err
		}
		return addMemberships(ctx, tx, op, sa.Name, sa.Groups)
	})
	if err != nil {
		return internal(op, err)
	}
	sa.CreatedAt, sa.RotatedAt = created, rotated
	return nil
}

// GetServiceAccount returns the service account with its groups, or
// ENotFound.
func (s *Store) GetServiceAccount(ctx context.Context, name string) (*steward.ServiceAccount, error) {
	const op = "metastore.GetServiceAccount"
	if err := checkName(op, "service account name", name); err != nil {
		return nil, err
	}
	sa, err := scanServiceAccount(s.QueryRow(ctx, `SELECT `+serviceAccountColumns+` FROM service_accounts WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errorf(steward.ENotFound, op, "service account %q not found", name)
	} else if err != nil {
		return nil, internal(op, err)
	}
	if sa.Groups, err = s.groupsOf(ctx, name); err != nil {
		return nil, internal(op, err)
	}
	return sa, nil
}

// ListServiceAccounts returns all service accounts sorted by name, each
// with its groups.
func (s *Store) ListServiceAccounts(ctx context.Context) ([]*steward.ServiceAccount, error) {
	const op = "metastore.ListServiceAccounts"
	sas, err := queryAll(ctx, s, scanServiceAccount, `SELECT `+serviceAccountColumns+` FROM service_accounts ORDER BY name`)
	if err != nil {
		return nil, internal(op, err)
	}
	groups, err := s.pairs(ctx, `SELECT m.member, m.group_name FROM group_members m JOIN service_accounts a ON a.name = m.member`)
	if err != nil {
		return nil, internal(op, err)
	}
	for _, sa := range sas {
		sa.Groups = orEmpty(groups[sa.Name])
	}
	slices.SortFunc(sas, func(a, b *steward.ServiceAccount) int { return cmpString(a.Name, b.Name) })
	return sas, nil
}

// DeleteServiceAccount removes a service account and its group memberships.
func (s *Store) DeleteServiceAccount(ctx context.Context, name string) error {
	const op = "metastore.DeleteServiceAccount"
	if err := checkName(op, "service account name", name); err != nil {
		return err
	}
	return internal(op, s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM group_members WHERE member = ?`, name); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, `DELETE FROM service_accounts WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if err := affected(op, res, "service account %q not found", name); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM principals WHERE name = ? AND kind = 'service'`, name)
		return err
	}))
}

// ServiceAccountSecretHash returns the stored client secret hash.
func (s *Store) ServiceAccountSecretHash(ctx context.Context, name string) (string, error) {
	const op = "metastore.ServiceAccountSecretHash"
	if err := checkName(op, "service account name", name); err != nil {
		return "", err
	}
	var h string
	err := s.QueryRow(ctx, `SELECT secret_hash FROM service_accounts WHERE name = ?`, name).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errorf(steward.ENotFound, op, "service account %q not found", name)
	}
	return h, internal(op, err)
}

// SetServiceAccountSecretHash replaces the client secret hash and sets
// RotatedAt to now.
func (s *Store) SetServiceAccountSecretHash(ctx context.Context, name, hash string) error {
	const op = "metastore.SetServiceAccountSecretHash"
	if err := checkName(op, "service account name", name); err != nil {
		return err
	}
	res, err := s.Exec(ctx, `UPDATE service_accounts SET secret_hash = ?, rotated_at = ? WHERE name = ?`,
		hash, TimeValue(s.dialect, now()), name)
	if err != nil {
		return internal(op, err)
	}
	return internal(op, affected(op, res, "service account %q not found", name))
}
