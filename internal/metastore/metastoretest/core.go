package metastoretest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/metastore"
)

// RunTx checks InTx: all or nothing, and concurrent writers.
func RunTx(t *testing.T, open OpenFunc) {
	t.Run("RollbackOnError", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		boom := errors.New("boom")
		err := s.InTx(ctx, func(tx *metastore.Tx) error {
			for _, n := range []string{"r1", "r2", "r3"} {
				if _, err := tx.Exec(ctx, `INSERT INTO groups (name, description, created_at) VALUES (?, ?, ?)`,
					n, "", metastore.TimeValue(tx.Dialect(), nowUTC())); err != nil {
					return err
				}
			}
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM groups`).Scan(&n); err != nil {
				return err
			}
			if n != 3 {
				return fmt.Errorf("inside the transaction %d groups are visible, want 3", n)
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx returned %v, want the function's error", err)
		}
		groups, err := s.ListGroups(ctx)
		must(t, err)
		equal(t, "groups after rollback", len(groups), 0)
	})
	t.Run("RollbackAfterFailedStatement", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		must(t, s.CreateGroup(ctx, &steward.Group{Name: "dup"}))
		err := s.InTx(ctx, func(tx *metastore.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO groups (name, description, created_at) VALUES (?, ?, ?)`,
				"fresh", "", metastore.TimeValue(tx.Dialect(), nowUTC())); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO groups (name, description, created_at) VALUES (?, ?, ?)`,
				"dup", "", metastore.TimeValue(tx.Dialect(), nowUTC()))
			return err
		})
		if !metastore.IsUniqueViolation(err) {
			t.Fatalf("InTx returned %v, want a unique violation", err)
		}
		_, err = s.GetGroup(ctx, "fresh")
		Kind(t, err, steward.ENotFound)
	})
	t.Run("Commit", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		must(t, s.InTx(ctx, func(tx *metastore.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO groups (name, description, created_at) VALUES (?, ?, ?)`,
				"c", "committed", metastore.TimeValue(tx.Dialect(), nowUTC()))
			return err
		}))
		g, err := s.GetGroup(ctx, "c")
		must(t, err)
		equal(t, "description", g.Description, "committed")
	})
	t.Run("ConcurrentWriters", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		must(t, s.CreateGroup(ctx, &steward.Group{Name: "all"}))
		const writers, each = 8, 10
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					name := fmt.Sprintf("w%d-u%d", w, i)
					if err := s.CreateUser(ctx, &steward.User{Username: name, Groups: []string{"all"}}, "h"); err != nil {
						errs <- fmt.Errorf("CreateUser %s: %w", name, err)
						continue
					}
					// A multi-statement transaction of our own too.
					err := s.InTx(ctx, func(tx *metastore.Tx) error {
						var n int
						if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM users WHERE username = ?`, name).Scan(&n); err != nil {
							return err
						}
						_, err := tx.Exec(ctx, `UPDATE users SET display_name = ? WHERE username = ?`, fmt.Sprint(n), name)
						return err
					})
					if err != nil {
						errs <- fmt.Errorf("InTx %s: %w", name, err)
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		users, err := s.ListUsers(ctx)
		must(t, err)
		equal(t, "users", len(users), writers*each)
		for _, u := range users {
			if u.DisplayName != "1" || len(u.Groups) != 1 {
				t.Fatalf("user %s incomplete: display name %q groups %q", u.Username, u.DisplayName, u.Groups)
			}
		}
		g, err := s.GetGroup(ctx, "all")
		must(t, err)
		equal(t, "members", len(g.Members), writers*each)
	})
}

// RunMigrations checks that migrations apply once and reopening is a no-op.
func RunMigrations(t *testing.T, open OpenFunc) {
	t.Run("Idempotent", func(t *testing.T) {
		ctx := context.Background()
		s1 := open(t)
		before := migrationVersions(t, s1)
		if len(before) == 0 || before[0] != 1 {
			t.Fatalf("schema_migrations versions = %v, want to start at 1", before)
		}
		must(t, s1.CreateUser(ctx, &steward.User{Username: "kept"}, ""))

		s2 := open(t) // same database, migrations run again
		after := migrationVersions(t, s2)
		if fmt.Sprint(before) != fmt.Sprint(after) {
			t.Fatalf("versions changed on reopen: %v -> %v", before, after)
		}
		_, err := s2.GetUser(ctx, "kept")
		must(t, err)
		var dup int
		must(t, s2.QueryRow(ctx, `SELECT COUNT(*) FROM (SELECT version FROM schema_migrations GROUP BY version HAVING COUNT(*) > 1) d`).Scan(&dup))
		equal(t, "versions recorded more than once", dup, 0)
		var unnamed int
		must(t, s2.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE name = '' OR applied_at = ''`).Scan(&unnamed))
		equal(t, "migrations without name or time", unnamed, 0)
	})
}

func migrationVersions(t *testing.T, s *metastore.Store) []int {
	t.Helper()
	rows, err := s.Query(context.Background(), `SELECT version FROM schema_migrations ORDER BY version`)
	must(t, err)
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		must(t, rows.Scan(&v))
		vs = append(vs, v)
	}
	must(t, rows.Err())
	return vs
}

// RunSQL checks the portable SQL layer: placeholder rebinding and error
// classification.
func RunSQL(t *testing.T, open OpenFunc) {
	s := open(t)
	ctx := context.Background()
	t.Run("RebindSkipsQuotesAndComments", func(t *testing.T) {
		cases := []struct {
			name  string
			query string
			args  []any
			want  []string
		}{
			{"string", `SELECT 'a?b', ?`, []any{"x"}, []string{"a?b", "x"}},
			{"doubled quote", `SELECT 'it''s ?', ?, '?'`, []any{"y"}, []string{"it's ?", "y", "?"}},
			{"quoted identifier", `SELECT ? AS "q?", ?`, []any{"1", "2"}, []string{"1", "2"}},
			{"line comment", "SELECT ? -- what? 'no\n, ?", []any{"1", "2"}, []string{"1", "2"}},
			{"block comment", `SELECT ? /* ?, '?' */, ?`, []any{"1", "2"}, []string{"1", "2"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got := make([]string, len(tc.want))
				dest := make([]any, len(got))
				for i := range got {
					dest[i] = &got[i]
				}
				// Cast so that PostgreSQL knows the parameter types.
				q := tc.query
				if s.Dialect() == metastore.Postgres {
					q = castParams(q)
				}
				must(t, s.QueryRow(ctx, q, tc.args...).Scan(dest...))
				equalSlice(t, "row", got, tc.want)
			})
		}
	})
	t.Run("IsUniqueViolation", func(t *testing.T) {
		ins := `INSERT INTO principals (name, kind) VALUES (?, ?)`
		_, err := s.Exec(ctx, ins, "uniq", "user")
		must(t, err)
		_, err = s.Exec(ctx, ins, "uniq", "service")
		if !metastore.IsUniqueViolation(err) {
			t.Fatalf("duplicate key: IsUniqueViolation(%v) = false", err)
		}
		if metastore.IsForeignKeyViolation(err) {
			t.Fatalf("duplicate key: IsForeignKeyViolation(%v) = true", err)
		}
		_, err = s.Exec(ctx, `INSERT INTO group_members (group_name, member) VALUES (?, ?)`, "no-group", "uniq")
		if !metastore.IsForeignKeyViolation(err) {
			t.Fatalf("missing parent: IsForeignKeyViolation(%v) = false", err)
		}
		if metastore.IsUniqueViolation(err) {
			t.Fatalf("missing parent: IsUniqueViolation(%v) = true", err)
		}
		for _, e := range []error{nil, errors.New("x"), sql.ErrNoRows} {
			if metastore.IsUniqueViolation(e) {
				t.Fatalf("IsUniqueViolation(%v) = true", e)
			}
		}
		// Through InTx the error keeps its cause.
		err = s.InTx(ctx, func(tx *metastore.Tx) error {
			_, err := tx.Exec(ctx, ins, "uniq", "user")
			return err
		})
		if !metastore.IsUniqueViolation(err) {
			t.Fatalf("in a transaction: IsUniqueViolation(%v) = false", err)
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		var x string
		err := metastore.NotFound(s.QueryRow(ctx, `SELECT name FROM principals WHERE name = ?`, "absent").Scan(&x), "principal")
		Kind(t, err, steward.ENotFound)
	})
}

// castParams makes every "?" in the select list of the rebind cases a text
// parameter for PostgreSQL ("?::text"), outside quotes and comments the
// same way rebind sees them. Only for the simple queries above.
func castParams(q string) string {
	var out []byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(q) && q[j] != c {
				j++
			}
			out = append(out, q[i:min(j+1, len(q))]...)
			i = j
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := i
			for j < len(q) && q[j] != '\n' {
				j++
			}
			out = append(out, q[i:j]...)
			i = j - 1
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			j := i + 2
			for j+1 < len(q) && !(q[j] == '*' && q[j+1] == '/') {
				j++
			}
			out = append(out, q[i:min(j+2, len(q))]...)
			i = j + 1
		case c == '?':
			out = append(out, "?::text"...)
		default:
			out = append(out, c)
		}
	}
	return string(out)
}

func nowUTC() time.Time { return time.Now().UTC() }
