package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/metastore"
)

// Store persists datasets in the metastore. Every change bumps the catalog
// version in the same transaction, which replicas poll (see Index).
type Store struct {
	db  *metastore.Store
	now func() time.Time
}

// NewStore returns a Store over db (migrated by metastore.Open).
func NewStore(db *metastore.Store) *Store {
	return &Store{db: db, now: func() time.Time { return time.Now().UTC() }}
}

// Version returns the catalog version.
func (s *Store) Version(ctx context.Context) (int64, error) {
	var v int64
	if err := s.db.QueryRow(ctx, `SELECT version FROM catalog_state WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("catalog: version: %w", err)
	}
	return v, nil
}

// Get returns one dataset. Errors: ENotFound.
func (s *Store) Get(ctx context.Context, namespace, name string) (*Dataset, error) {
	return get(ctx, s.db, namespace, name)
}

func get(ctx context.Context, q metastore.Querier, namespace, name string) (*Dataset, error) {
	var body string
	err := q.QueryRow(ctx, `SELECT body FROM catalog_datasets WHERE namespace = ? AND name = ?`, namespace, name).Scan(&body)
	if err != nil {
		return nil, metastore.NotFound(err, fmt.Sprintf("dataset %q", clip(Ref(namespace, name))))
	}
	return decode(body)
}

func decode(body string) (*Dataset, error) {
	var d Dataset
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		return nil, fmt.Errorf("catalog: stored dataset: %w", err)
	}
	return &d, nil
}

func bump(ctx context.Context, tx *metastore.Tx) (int64, error) {
	if _, err := tx.Exec(ctx, `UPDATE catalog_state SET version = version + 1 WHERE id = 1`); err != nil {
		return 0, err
	}
	var v int64
	err := tx.QueryRow(ctx, `SELECT version FROM catalog_state WHERE id = 1`).Scan(&v)
	return v, err
}

// Update reads the dataset, lets fn change it and stores it, all in one
// transaction. If the dataset does not exist and create is true, fn gets a
// new Dataset with only Namespace and Name set; otherwise ENotFound. fn
// may return an error to abort. The stored dataset is validated (EInvalid)
// and returned.
func (s *Store) Update(ctx context.Context, namespace, name string, create bool, fn func(d *Dataset, isNew bool) error) (*Dataset, error) {
	var out *Dataset
	err := s.db.InTx(ctx, func(tx *metastore.Tx) error {
		d, err := get(ctx, tx, namespace, name)
		isNew := false
		if steward.KindOf(err) == steward.ENotFound && create {
			now := s.now()
			d, isNew, err = &Dataset{Namespace: namespace, Name: name, Created: now, Changed: now}, true, nil
		}
		if err != nil {
			return err
		}
		if err := fn(d, isNew); err != nil {
			return err
		}
		d.Namespace, d.Name = namespace, name
		d.normalize()
		if err := d.Validate(); err != nil {
			return err
		}
		v, err := bump(ctx, tx)
		if err != nil {
			return err
		}
		d.Version++
		d.Updated = s.now()
		body, err := json.Marshal(d)
		if err != nil {
			return err
		}
		if isNew {
			_, err = tx.Exec(ctx, `INSERT INTO catalog_datasets (namespace, name, seq, classification, body) VALUES (?, ?, ?, ?, ?)`,
				namespace, name, v, int(d.Level()), string(body))
			if err == nil {
				_, err = tx.Exec(ctx, `DELETE FROM catalog_tombstones WHERE namespace = ? AND name = ?`, namespace, name)
			}
		} else {
			_, err = tx.Exec(ctx, `UPDATE catalog_datasets SET seq = ?, classification = ?, body = ? WHERE namespace = ? AND name = ?`,
				v, int(d.Level()), string(body), namespace, name)
		}
		if metastore.IsUniqueViolation(err) {
			return steward.Errorf(steward.EConflict, "dataset %q was created concurrently", clip(Ref(namespace, name)))
		}
		out = d
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Create stores a new dataset. Errors: EConflict if it exists, EInvalid.
func (s *Store) Create(ctx context.Context, d *Dataset) (*Dataset, error) {
	return s.Update(ctx, d.Namespace, d.Name, true, func(cur *Dataset, isNew bool) error {
		if !isNew {
			return steward.Errorf(steward.EConflict, "dataset %q already exists", clip(Ref(d.Namespace, d.Name)))
		}
		created, changed := cur.Created, cur.Changed
		*cur = *d
		cur.Created, cur.Changed, cur.Version = created, changed, 0
		return nil
	})
}

// Delete removes a dataset. Errors: ENotFound.
func (s *Store) Delete(ctx context.Context, namespace, name string) error {
	return s.db.InTx(ctx, func(tx *metastore.Tx) error {
		res, err := tx.Exec(ctx, `DELETE FROM catalog_datasets WHERE namespace = ? AND name = ?`, namespace, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return steward.Errorf(steward.ENotFound, "dataset %q not found", clip(Ref(namespace, name)))
		}
		v, err := bump(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM catalog_tombstones WHERE namespace = ? AND name = ?`, namespace, name); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO catalog_tombstones (namespace, name, seq) VALUES (?, ?, ?)`, namespace, name, v)
		return err
	})
}

// Key names a dataset.
type Key struct{ Namespace, Name string }

// Since returns the datasets changed and the keys deleted after catalog
// version seq, and the version they bring the reader to. Since(0) loads
// everything.
func (s *Store) Since(ctx context.Context, seq int64) (changed []*Dataset, deleted []Key, version int64, err error) {
	err = s.db.InTx(ctx, func(tx *metastore.Tx) error {
		changed, deleted = nil, nil
		if err := tx.QueryRow(ctx, `SELECT version FROM catalog_state WHERE id = 1`).Scan(&version); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT body FROM catalog_datasets WHERE seq > ? AND seq <= ?`, seq, version)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var body string
			if err := rows.Scan(&body); err != nil {
				return err
			}
			d, err := decode(body)
			if err != nil {
				return err
			}
			changed = append(changed, d)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if seq == 0 {
			return nil
		}
		trows, err := tx.Query(ctx, `SELECT namespace, name FROM catalog_tombstones WHERE seq > ? AND seq <= ?`, seq, version)
		if err != nil {
			return err
		}
		defer trows.Close()
		for trows.Next() {
			var k Key
			if err := trows.Scan(&k.Namespace, &k.Name); err != nil {
				return err
			}
			deleted = append(deleted, k)
		}
		return trows.Err()
	})
	if err != nil {
		return nil, nil, 0, fmt.Errorf("catalog: load: %w", err)
	}
	return changed, deleted, version, nil
}

// Change is a dataset whose files changed and which waits for a crawl.
type Change struct {
	Namespace, Name string
	At              time.Time
}

// MarkChanged records that a dataset's files changed at t (the latest mark
// wins).
func (s *Store) MarkChanged(ctx context.Context, namespace, name string, t time.Time) error {
	return s.db.InTx(ctx, func(tx *metastore.Tx) error { return markChanged(ctx, tx, namespace, name, t) })
}

// MarkChangedAll records many marks in one transaction (one fsync).
func (s *Store) MarkChangedAll(ctx context.Context, marks map[Key]time.Time) error {
	if len(marks) == 0 {
		return nil
	}
	return s.db.InTx(ctx, func(tx *metastore.Tx) error {
		for k, t := range marks {
			if err := markChanged(ctx, tx, k.Namespace, k.Name, t); err != nil {
				return err
			}
		}
		return nil
	})
}

// markChanged upserts one mark; the latest time wins. One statement, so
// a concurrent replica's mark never aborts the batch it is part of.
func markChanged(ctx context.Context, tx *metastore.Tx, namespace, name string, t time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO catalog_changes (namespace, name, changed_at) VALUES (?, ?, ?)
		ON CONFLICT (namespace, name) DO UPDATE SET changed_at = excluded.changed_at WHERE catalog_changes.changed_at < excluded.changed_at`,
		namespace, name, t.UnixNano())
	return err
}

// Pending returns up to limit changes marked before `before` (the
// debounce: a dataset still being written waits), oldest first.
func (s *Store) Pending(ctx context.Context, before time.Time, limit int) ([]Change, error) {
	rows, err := s.db.Query(ctx, `SELECT namespace, name, changed_at FROM catalog_changes WHERE changed_at < ? ORDER BY changed_at LIMIT ?`, before.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("catalog: pending changes: %w", err)
	}
	defer rows.Close()
	var out []Change
	for rows.Next() {
		var c Change
		var at int64
		if err := rows.Scan(&c.Namespace, &c.Name, &at); err != nil {
			return nil, err
		}
		c.At = time.Unix(0, at).UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}

// Done removes a change mark, unless a newer change arrived since c.
func (s *Store) Done(ctx context.Context, c Change) error {
	_, err := s.db.Exec(ctx, `DELETE FROM catalog_changes WHERE namespace = ? AND name = ? AND changed_at <= ?`, c.Namespace, c.Name, c.At.UnixNano())
	return err
}
