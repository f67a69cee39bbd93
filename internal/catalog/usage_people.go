package catalog

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/stewardhq/steward"
)

// Bookmark is a dataset a user saved.
type Bookmark struct {
	Dataset *Dataset  `json:"dataset"`
	Created time.Time `json:"created"`
}

func needUser(v Viewer) error {
	if v.User == "" {
		return steward.Errorf(steward.EUnauthenticated, "bookmarks and recommendations are per user: log in")
	}
	return nil
}

// AddBookmark saves a dataset v may discover for v (adding it again is
// not an error). Errors: ENotFound (also when v may not discover it),
// EInvalid (more than MaxBookmarks), EUnauthenticated.
func (u *Usage) AddBookmark(ctx context.Context, v Viewer, namespace, name string) error {
	if err := needUser(v); err != nil {
		return err
	}
	if _, err := u.cat.Get(ctx, v, namespace, name); err != nil {
		return err
	}
	var n int
	if err := u.db.QueryRow(ctx, `SELECT COUNT(*) FROM catalog_bookmarks WHERE actor = ?`, v.User).Scan(&n); err != nil {
		return fmt.Errorf("catalog: bookmarks: %w", err)
	}
	if n >= MaxBookmarks {
		return steward.Errorf(steward.EInvalid, "at most %d bookmarks", MaxBookmarks)
	}
	if _, err := u.db.Exec(ctx, `INSERT INTO catalog_bookmarks (actor, namespace, name, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (actor, namespace, name) DO NOTHING`,
		v.User, namespace, name, u.now().UnixNano()); err != nil {
		return fmt.Errorf("catalog: bookmark: %w", err)
	}
	return nil
}

// RemoveBookmark removes v's bookmark of a dataset. Errors: ENotFound (no
// such bookmark), EUnauthenticated.
func (u *Usage) RemoveBookmark(ctx context.Context, v Viewer, namespace, name string) error {
	if err := needUser(v); err != nil {
		return err
	}
	res, err := u.db.Exec(ctx, `DELETE FROM catalog_bookmarks WHERE actor = ? AND namespace = ? AND name = ?`, v.User, namespace, name)
	if err != nil {
		return fmt.Errorf("catalog: bookmark: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return steward.Errorf(steward.ENotFound, "no bookmark of %q", clip(Ref(namespace, name)))
	}
	return nil
}

// Bookmarks returns v's bookmarks, newest first. Bookmarks of datasets
// that no longer exist or that v may no longer discover are left out.
func (u *Usage) Bookmarks(ctx context.Context, v Viewer) ([]Bookmark, error) {
	if err := needUser(v); err != nil {
		return nil, err
	}
	rows, err := u.db.Query(ctx, `SELECT namespace, name, created_at FROM catalog_bookmarks WHERE actor = ? ORDER BY created_at DESC, namespace, name`, v.User)
	if err != nil {
		return nil, fmt.Errorf("catalog: bookmarks: %w", err)
	}
	defer rows.Close()
	out := []Bookmark{}
	for rows.Next() {
		var k Key
		var at int64
		if err := rows.Scan(&k.Namespace, &k.Name, &at); err != nil {
			return nil, err
		}
		if d, ok := u.visible(v, k); ok {
			out = append(out, Bookmark{Dataset: d, Created: time.Unix(0, at).UTC()})
		}
	}
	return out, rows.Err()
}

// visible returns the indexed dataset k if it exists and v may discover it.
func (u *Usage) visible(v Viewer, k Key) (*Dataset, bool) {
	d, ok := u.cat.Index.Get(k)
	if !ok || !u.cat.CanDiscover(v, d) {
		return nil, false
	}
	return d, true
}

func (u *Usage) bookmarked(ctx context.Context, user string) (map[Key]bool, error) {
	rows, err := u.db.Query(ctx, `SELECT namespace, name FROM catalog_bookmarks WHERE actor = ?`, user)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[Key]bool{}
	for rows.Next() {
		var k Key
		if err := rows.Scan(&k.Namespace, &k.Name); err != nil {
			return nil, err
		}
		out[k] = true
	}
	return out, rows.Err()
}

// Recommendation is a dataset suggested to a user, with why.
type Recommendation struct {
	Dataset *Dataset `json:"dataset"`
	Score   float64  `json:"score"`
	Reasons []string `json:"reasons"`
}

// A recommendation's score: the most readers it had in one of the user's
// groups, plus the (reader, day) pairs on which it was read together with
// one of the user's datasets.
const (
	maxSeeds      = 20 // of the user's datasets, the most used, looked at for co-usage
	maxRecGroups  = 64
	maxRecReasons = 3
)

// Recommend returns up to limit (default 10, at most 100) datasets for v
// from the last 90 days of usage: datasets popular among the members of
// v's groups, and datasets often used together (same reader, same day)
// with those v uses. Datasets v already used, bookmarked or owns are left
// out, and so is every dataset v may not discover (the discover rule of
// search: C4 only with an explicit allow).
func (u *Usage) Recommend(ctx context.Context, v Viewer, limit int) ([]Recommendation, error) {
	if err := needUser(v); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 10
	}
	limit = min(limit, 100)
	since := day(u.now()) - usageWindow

	mine := map[Key]int64{} // dataset -> days v read it
	err := u.scan(ctx, `SELECT namespace, name, '', COUNT(*) FROM catalog_usage WHERE actor = ? AND day > ? GROUP BY namespace, name`,
		[]any{v.User, since}, func(k Key, _ string, n int64) { mine[k] = n })
	if err != nil {
		return nil, err
	}
	marks, err := u.bookmarked(ctx, v.User)
	if err != nil {
		return nil, fmt.Errorf("catalog: recommend: %w", err)
	}

	type cand struct {
		group, co   float64
		groupWhy    string
		coWhy       string
		coBest      int64
		groupPeople int64
	}
	cands := map[Key]*cand{}
	get := func(k Key) *cand {
		c := cands[k]
		if c == nil {
			c = &cand{}
			cands[k] = c
		}
		return c
	}

	// Popular in v's groups: distinct other readers per group.
	if gs := v.Groups; len(gs) > 0 {
		if len(gs) > maxRecGroups {
			gs = gs[:maxRecGroups]
		}
		args := []any{}
		for _, g := range gs {
			args = append(args, g)
		}
		args = append(args, v.User, since)
		q := `SELECT u.namespace, u.name, g.grp, COUNT(DISTINCT u.actor) FROM catalog_usage u JOIN catalog_usage_groups g ON g.actor = u.actor
			WHERE g.grp IN (` + placeholders(len(gs)) + `) AND u.actor <> ? AND u.day > ? GROUP BY u.namespace, u.name, g.grp`
		err := u.scan(ctx, q, args, func(k Key, grp string, n int64) {
			c := get(k)
			if n > c.groupPeople || (n == c.groupPeople && grp < c.groupWhy) {
				c.groupPeople, c.groupWhy = n, grp
			}
		})
		if err != nil {
			return nil, err
		}
		for _, c := range cands {
			c.group = float64(c.groupPeople)
		}
	}

	// Often used together with what v uses (and has bookmarked).
	seeds := make([]Key, 0, len(mine)+len(marks))
	for k := range mine {
		seeds = append(seeds, k)
	}
	sort.Slice(seeds, func(i, j int) bool {
		a, b := seeds[i], seeds[j]
		if mine[a] != mine[b] {
			return mine[a] > mine[b]
		}
		return Ref(a.Namespace, a.Name) < Ref(b.Namespace, b.Name)
	})
	for k := range marks {
		if _, ok := mine[k]; !ok {
			seeds = append(seeds, k)
		}
	}
	if len(seeds) > maxSeeds {
		seeds = seeds[:maxSeeds]
	}
	for _, s := range seeds {
		q := `SELECT b.namespace, b.name, '', COUNT(*) FROM catalog_usage a JOIN catalog_usage b ON b.actor = a.actor AND b.day = a.day
			WHERE a.namespace = ? AND a.name = ? AND a.day > ? AND (b.namespace <> a.namespace OR b.name <> a.name) GROUP BY b.namespace, b.name`
		err := u.scan(ctx, q, []any{s.Namespace, s.Name, since}, func(k Key, _ string, n int64) {
			c := get(k)
			c.co += float64(n)
			if n > c.coBest {
				c.coBest, c.coWhy = n, Ref(s.Namespace, s.Name)
			}
		})
		if err != nil {
			return nil, err
		}
	}

	out := []Recommendation{}
	for k, c := range cands {
		if _, used := mine[k]; used || marks[k] {
			continue
		}
		d, ok := u.visible(v, k)
		if !ok || v.Owns(d) {
			continue
		}
		r := Recommendation{Dataset: d, Score: c.group + c.co}
		if c.groupPeople > 0 {
			r.Reasons = append(r.Reasons, fmt.Sprintf("used by %d %s in group %s", c.groupPeople, people(c.groupPeople), c.groupWhy))
		}
		if c.coBest > 0 {
			r.Reasons = append(r.Reasons, "often used together with "+c.coWhy)
		}
		if len(r.Reasons) > maxRecReasons {
			r.Reasons = r.Reasons[:maxRecReasons]
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Score != b.Score {
			return a.Score > b.Score
		}
		return Ref(a.Dataset.Namespace, a.Dataset.Name) < Ref(b.Dataset.Namespace, b.Dataset.Name)
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func people(n int64) string {
	if n == 1 {
		return "person"
	}
	return "people"
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// scan runs a query whose rows are (namespace, name, text, count).
func (u *Usage) scan(ctx context.Context, q string, args []any, fn func(k Key, s string, n int64)) error {
	rows, err := u.db.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("catalog: recommend: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k Key
		var s string
		var n int64
		if err := rows.Scan(&k.Namespace, &k.Name, &s, &n); err != nil {
			return fmt.Errorf("catalog: recommend: %w", err)
		}
		fn(k, s, n)
	}
	return rows.Err()
}
