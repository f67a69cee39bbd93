package catalog

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/metastore"
)

// Usage is the catalog's record of how people use datasets, learned from
// the audit trail as it is written (see UsageAuditor): reads per dataset
// per day, distinct readers, frequent users, a time-decayed popularity
// score that the search ranking uses, bookmarks and recommendations.
//
// Reads are counted in memory and added to the metastore every
// FlushEvery (upserts that add, so several replicas share one table). A
// crash loses at most the counts of the last FlushEvery (a few seconds of
// reads): usage is a ranking signal, not a record; the audit trail stays
// the record of every read.
type Usage struct {
	db  *metastore.Store
	cat *Service
	log *slog.Logger
	now func() time.Time

	// FlushEvery is how often buffered counts are written (default 5s).
	FlushEvery time.Duration
	// RecomputeEvery is how often popularity is recomputed and pushed to
	// Popularity (default 1 minute).
	RecomputeEvery time.Duration
	// HalfLife is the popularity decay: a day's reads count half as much
	// HalfLife later (default 14 days).
	HalfLife time.Duration
	// Popularity, if set, receives every recomputed score map (pass
	// Index.SetPopularity).
	Popularity func(map[Key]float64)

	mu     sync.Mutex
	reads  map[usageKey]int64
	groups map[groupKey]int64 // -> day last seen
}

type usageKey struct {
	ns, name string
	day      int64
	actor    string
}

type groupKey struct{ grp, actor string }

// Limits on usage bookkeeping.
const (
	// maxBuffered bounds the counts waiting for a flush; beyond it new
	// (dataset, day, reader) combinations are dropped until the next flush.
	maxBuffered = 100_000
	// usageWindow is how far back popularity and recommendations look.
	usageWindow = 90
	// usageRetention is how long daily counts are kept.
	usageRetention = 400
	// MaxBookmarks is how many bookmarks one user may keep.
	MaxBookmarks = 1000
	// maxPeers bounds the group members whose usage a recommendation reads.
	maxPeers = 2000
)

// NewUsage returns a usage recorder over db (migrated by metastore.Open)
// for the catalog cat, whose index and discover rule filter what usage
// shows. Call Run to flush and recompute.
func NewUsage(db *metastore.Store, cat *Service, log *slog.Logger) *Usage {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Usage{db: db, cat: cat, log: log, now: func() time.Time { return time.Now().UTC() },
		FlushEvery: 5 * time.Second, RecomputeEvery: time.Minute, HalfLife: 14 * 24 * time.Hour,
		reads: map[usageKey]int64{}, groups: map[groupKey]int64{}}
}

// UsageAuditor is a steward.Auditor that forwards every event unchanged
// to Next and, once Next has recorded it, tells Usage about successful
// reads. It fails exactly when Next fails (a read whose audit record
// failed was refused, so it is not counted).
type UsageAuditor struct {
	Next  steward.Auditor
	Usage *Usage
}

var _ steward.AuditStarter = UsageAuditor{}

// Record implements steward.Auditor.
func (a UsageAuditor) Record(ctx context.Context, ev steward.AuditEvent) error {
	if err := a.Next.Record(ctx, ev); err != nil {
		return err
	}
	if a.Usage != nil {
		a.Usage.Observe(ctx, ev)
	}
	return nil
}

// Start implements steward.AuditStarter: records that start ahead of
// their outcome (decision records) are never reads, so usage does not see
// them.
func (a UsageAuditor) Start(ctx context.Context, ev steward.AuditEvent) func() error {
	return steward.StartAudit(ctx, a.Next, ev)
}

func day(t time.Time) int64 { return int64(math.Floor(float64(t.Unix()) / 86400)) }

func dayString(d int64) string { return time.Unix(d*86400, 0).UTC().Format(time.DateOnly) }

// ReadsOf returns the datasets a successful read event read: an S3
// GetObject (the object's dataset by DatasetOf) or a SQL query (its tables
// by TableKey). Other events read nothing.
func ReadsOf(ev steward.AuditEvent) []Key {
	if ev.Outcome != "success" || ev.Decision == "deny" || ev.Actor == "" {
		return nil
	}
	switch ev.Action {
	case "s3:GetObject":
		if st, ok := intDetail(ev.Details, "status"); ok && (st < 200 || st > 299) {
			return nil
		}
		rest, ok := strings.CutPrefix(ev.Resource, "s3://")
		if !ok {
			return nil
		}
		bucket, key, ok := strings.Cut(rest, "/")
		if !ok || bucket == "" {
			return nil
		}
		ns, name, ok := DatasetOf(bucket, key)
		if !ok {
			return nil
		}
		return []Key{{ns, name}}
	case "sql.query":
		var tables []string
		switch ts := ev.Details["tables"].(type) {
		case []string:
			tables = ts
		case []any: // an event read back from JSON
			for _, t := range ts {
				if s, ok := t.(string); ok {
					tables = append(tables, s)
				}
			}
		default:
			if ev.Resource != "" {
				tables = strings.Split(ev.Resource, ",")
			}
		}
		var out []Key
		for _, t := range tables {
			if k, ok := TableKey(t); ok && !containsKey(out, k) {
				out = append(out, k)
			}
		}
		return out
	}
	return nil
}

func containsKey(ks []Key, k Key) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

func intDetail(d map[string]any, k string) (int64, bool) {
	switch v := d[k].(type) {
	case int:
		return int64(v), true
	case int64:
		return v, true
	case float64:
		return int64(v), true
	}
	return 0, false
}

// TableKey returns the dataset a SQL table name ("bank.sales.mortgages",
// the dataset's PolicyName) stands for: (s3://bank, sales/mortgages).
func TableKey(table string) (Key, bool) {
	table = strings.TrimSpace(table)
	bucket, rest, ok := strings.Cut(table, ".")
	if !ok || bucket == "" || rest == "" {
		return Key{}, false
	}
	k := Key{"s3://" + bucket, strings.ReplaceAll(rest, ".", "/")}
	if _, ok := BucketOf(k.Namespace); !ok || PolicyName(k.Namespace, k.Name) != table {
		return Key{}, false
	}
	return k, true
}

// Observe counts the reads of ev (see ReadsOf). The principal in ctx, if
// it is the event's actor, tells which groups the reader is in. It never
// blocks on I/O.
func (u *Usage) Observe(ctx context.Context, ev steward.AuditEvent) {
	ks := ReadsOf(ev)
	if len(ks) == 0 {
		return
	}
	t := ev.Time
	if t.IsZero() {
		t = u.now()
	}
	d := day(t)
	var grps []string
	if p := steward.PrincipalFrom(ctx); p != nil && p.Username == ev.Actor {
		grps = p.Groups
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, k := range ks {
		uk := usageKey{k.Namespace, k.Name, d, ev.Actor}
		if _, ok := u.reads[uk]; !ok && len(u.reads) >= maxBuffered {
			continue
		}
		u.reads[uk]++
	}
	for _, g := range grps {
		gk := groupKey{g, ev.Actor}
		if _, ok := u.groups[gk]; ok || len(u.groups) < maxBuffered {
			u.groups[gk] = max(u.groups[gk], d)
		}
	}
}

// Flush writes the buffered counts to the metastore. On failure they are
// kept for the next flush.
func (u *Usage) Flush(ctx context.Context) error {
	u.mu.Lock()
	reads, groups := u.reads, u.groups
	u.reads, u.groups = map[usageKey]int64{}, map[groupKey]int64{}
	u.mu.Unlock()
	if len(reads) == 0 && len(groups) == 0 {
		return nil
	}
	err := u.db.InTx(ctx, func(tx *metastore.Tx) error {
		for k, n := range reads {
			if _, err := tx.Exec(ctx, `INSERT INTO catalog_usage (namespace, name, day, actor, reads) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (namespace, name, day, actor) DO UPDATE SET reads = catalog_usage.reads + excluded.reads`,
				k.ns, k.name, k.day, k.actor, n); err != nil {
				return err
			}
		}
		for k, d := range groups {
			if _, err := tx.Exec(ctx, `INSERT INTO catalog_usage_groups (grp, actor, day) VALUES (?, ?, ?)
				ON CONFLICT (grp, actor) DO UPDATE SET day = excluded.day WHERE catalog_usage_groups.day < excluded.day`,
				k.grp, k.actor, d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Put the counts back (merging with what arrived meanwhile).
		u.mu.Lock()
		for k, n := range reads {
			if _, ok := u.reads[k]; ok || len(u.reads) < maxBuffered {
				u.reads[k] += n
			}
		}
		for k, d := range groups {
			if _, ok := u.groups[k]; ok || len(u.groups) < maxBuffered {
				u.groups[k] = max(u.groups[k], d)
			}
		}
		u.mu.Unlock()
		return fmt.Errorf("catalog: flush usage: %w", err)
	}
	return nil
}

// Run flushes counts every FlushEvery and recomputes popularity every
// RecomputeEvery (pushing it to Popularity) until ctx is done; then it
// flushes once more.
func (u *Usage) Run(ctx context.Context) {
	if u.FlushEvery <= 0 {
		u.FlushEvery = 5 * time.Second
	}
	if u.RecomputeEvery <= 0 {
		u.RecomputeEvery = time.Minute
	}
	flush := time.NewTicker(u.FlushEvery)
	defer flush.Stop()
	recompute := time.NewTicker(u.RecomputeEvery)
	defer recompute.Stop()
	u.recompute(ctx)
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := u.Flush(fctx); err != nil {
				u.log.Warn("usage counts lost at shutdown", "err", err)
			}
			cancel()
			return
		case <-flush.C:
			if err := u.Flush(ctx); err != nil && ctx.Err() == nil {
				u.log.WarnContext(ctx, "usage flush failed; retrying", "err", err)
			}
		case <-recompute.C:
			if err := u.Flush(ctx); err != nil && ctx.Err() == nil {
				u.log.WarnContext(ctx, "usage flush failed; retrying", "err", err)
			}
			u.recompute(ctx)
		}
	}
}

func (u *Usage) recompute(ctx context.Context) {
	p, err := u.Scores(ctx)
	if err != nil {
		if ctx.Err() == nil {
			u.log.WarnContext(ctx, "usage: popularity not recomputed", "err", err)
		}
		return
	}
	if u.Popularity != nil {
		u.Popularity(p)
	}
	if _, err := u.db.Exec(ctx, `DELETE FROM catalog_usage WHERE day < ?`, day(u.now())-usageRetention); err != nil && ctx.Err() == nil {
		u.log.WarnContext(ctx, "usage: pruning old counts", "err", err)
	}
}

// dayScore is one day's contribution before decay: the distinct readers
// that day, plus a little for volume (so that one reader's script reading
// a dataset ten thousand times does not outrank ten people).
func dayScore(readers, reads int64) float64 {
	return float64(readers) + 0.25*math.Log1p(float64(reads))
}

// decay is the weight of a day age days ago.
func (u *Usage) decay(age int64) float64 {
	hl := u.HalfLife.Hours() / 24
	if hl <= 0 {
		hl = 14
	}
	return math.Pow(0.5, float64(max(age, 0))/hl)
}

// Scores computes every dataset's popularity: the sum over the last 90
// days of dayScore, each day weighted 0.5^(age/HalfLife).
func (u *Usage) Scores(ctx context.Context) (map[Key]float64, error) {
	today := day(u.now())
	rows, err := u.db.Query(ctx, `SELECT namespace, name, day, COUNT(*), CAST(SUM(reads) AS BIGINT) FROM catalog_usage WHERE day > ? GROUP BY namespace, name, day`, today-usageWindow)
	if err != nil {
		return nil, fmt.Errorf("catalog: popularity: %w", err)
	}
	defer rows.Close()
	out := map[Key]float64{}
	for rows.Next() {
		var k Key
		var d, readers, reads int64
		if err := rows.Scan(&k.Namespace, &k.Name, &d, &readers, &reads); err != nil {
			return nil, err
		}
		out[k] += dayScore(readers, reads) * u.decay(today-d)
	}
	return out, rows.Err()
}

// DailyReads is one day of a dataset's usage.
type DailyReads struct {
	Day     string `json:"day" doc:"The UTC day, YYYY-MM-DD."`
	Reads   int64  `json:"reads"`
	Readers int64  `json:"readers" doc:"Distinct readers that day."`
}

// UserReads is how much one person read a dataset.
type UserReads struct {
	User  string `json:"user"`
	Reads int64  `json:"reads"`
	Days  int64  `json:"days" doc:"On how many days they read it."`
}

// DatasetUsage is a dataset's usage over a window of days.
type DatasetUsage struct {
	Namespace  string       `json:"namespace"`
	Name       string       `json:"name"`
	Days       int          `json:"days" doc:"The window: the last this many days, today included."`
	Reads      int64        `json:"reads" doc:"Reads in the window."`
	Readers    int64        `json:"readers" doc:"Distinct readers in the window."`
	Popularity float64      `json:"popularity" doc:"The time-decayed popularity score search ranks by."`
	Daily      []DailyReads `json:"daily" doc:"Every day of the window, oldest first."`
	TopUsers   []UserReads  `json:"top_users" doc:"The most frequent readers in the window."`
}

// DatasetUsage returns the usage of a dataset v may discover over the last
// days days (1..400; 30 if zero). Counts not yet flushed are not included.
// Errors: ENotFound (also when v may not discover it), EInvalid.
func (u *Usage) DatasetUsage(ctx context.Context, v Viewer, namespace, name string, days int) (*DatasetUsage, error) {
	if days == 0 {
		days = 30
	}
	if days < 1 || days > usageRetention {
		return nil, steward.Errorf(steward.EInvalid, "days: want 1 to %d", usageRetention)
	}
	if _, err := u.cat.Get(ctx, v, namespace, name); err != nil {
		return nil, err
	}
	today := day(u.now())
	from := today - int64(days) + 1
	out := &DatasetUsage{Namespace: namespace, Name: name, Days: days, Daily: []DailyReads{}, TopUsers: []UserReads{}}
	rows, err := u.db.Query(ctx, `SELECT day, COUNT(*), CAST(SUM(reads) AS BIGINT) FROM catalog_usage WHERE namespace = ? AND name = ? AND day > ? GROUP BY day`,
		namespace, name, min(from-1, today-usageWindow))
	if err != nil {
		return nil, fmt.Errorf("catalog: usage: %w", err)
	}
	byDay := map[int64]DailyReads{}
	for rows.Next() {
		var d, readers, reads int64
		if err := rows.Scan(&d, &readers, &reads); err != nil {
			rows.Close()
			return nil, err
		}
		if today-d < usageWindow {
			out.Popularity += dayScore(readers, reads) * u.decay(today-d)
		}
		if d >= from {
			byDay[d] = DailyReads{Day: dayString(d), Reads: reads, Readers: readers}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for d := from; d <= today; d++ {
		dr, ok := byDay[d]
		if !ok {
			dr = DailyReads{Day: dayString(d)}
		}
		out.Daily = append(out.Daily, dr)
		out.Reads += dr.Reads
	}
	urows, err := u.db.Query(ctx, `SELECT actor, CAST(SUM(reads) AS BIGINT), COUNT(*) FROM catalog_usage WHERE namespace = ? AND name = ? AND day >= ? GROUP BY actor`,
		namespace, name, from)
	if err != nil {
		return nil, fmt.Errorf("catalog: usage: %w", err)
	}
	defer urows.Close()
	for urows.Next() {
		var ur UserReads
		if err := urows.Scan(&ur.User, &ur.Reads, &ur.Days); err != nil {
			return nil, err
		}
		out.TopUsers = append(out.TopUsers, ur)
	}
	if err := urows.Err(); err != nil {
		return nil, err
	}
	out.Readers = int64(len(out.TopUsers))
	sort.Slice(out.TopUsers, func(i, j int) bool {
		a, b := out.TopUsers[i], out.TopUsers[j]
		if a.Reads != b.Reads {
			return a.Reads > b.Reads
		}
		return a.User < b.User
	})
	if len(out.TopUsers) > 10 {
		out.TopUsers = out.TopUsers[:10]
	}
	return out, nil
}
