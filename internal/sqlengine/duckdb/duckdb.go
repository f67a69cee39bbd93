// Package duckdb is the sqlengine.Backend on embedded DuckDB. Each query
// gets its own in-memory database that can read nothing but the directory
// of files staged for it (allowed_directories, then
// enable_external_access=false), loads and installs no extensions, has its
// configuration locked, its memory and threads bounded, and holds only the
// views Steward built. Statements are parsed by DuckDB itself
// (json_serialize_sql) and checked before they run: one plain SELECT, table
// references only to catalog tables, no table functions but range,
// generate_series and unnest, no getenv or other settings readers.
package duckdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"

	duckdbdrv "github.com/duckdb/duckdb-go/v2"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/sqlengine"
)

// Backend runs queries on embedded DuckDB.
type Backend struct {
	log *slog.Logger

	once    sync.Once
	parser  *sql.DB
	initErr error

	// Opening a DuckDB instance takes tens of milliseconds; a few fresh,
	// never-used instances wait here so that a query does not pay for it.
	// An instance serves one query and is closed after it.
	poolOnce sync.Once
	pool     chan *instance
	// want asks the filler for one more instance in the pool.
	want     chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	filler   sync.WaitGroup

	// busy counts background work (closing used instances, opening
	// replacements); Settle waits for it to reach zero.
	mu      sync.Mutex
	idle    *sync.Cond
	busy    int
	stopped bool // no more requests on want
}

// instance is a fresh in-memory database and its one connection, with the
// settings that do not depend on the query already applied. It serves one
// query and is then closed.
type instance struct {
	db   *sql.DB
	conn *sql.Conn
	// refill asks for a replacement once this instance is released: it
	// was taken while others were still ready, so its replacement need
	// not compete with its own query for the CPU.
	refill bool
}

// close releases the instance.
func (in *instance) close() {
	in.conn.Close()
	in.db.Close()
}

// staticSetup is applied to every instance before it waits in the pool:
// no extension is loaded or installed, no secret persisted, nothing
// spilled. External access stays on until the query's own setup has set
// allowed_directories (which DuckDB accepts only while it is on). The
// Parquet metadata cache belongs to the instance: the footers read when
// the views are created serve the query's own binding (about 2.5 ms less
// per query over 12 files) and die with the instance.
var staticSetup = "SET autoload_known_extensions=false;" +
	"SET autoinstall_known_extensions=false;" +
	"SET allow_community_extensions=false;" +
	"SET allow_persistent_secrets=false;" +
	"SET max_temp_directory_size='0B';" +
	"SET parquet_metadata_cache=true"

// PoolSize is how many fresh DuckDB instances a Backend keeps ready.
const PoolSize = 2

// fresh returns a never-used in-memory database.
//
// Its replacement is opened in the background when the query is over
// (release), not while it runs: opening an instance costs 20-25 ms of
// CPU, which on a small machine a running query would otherwise lose.
// Only when the last ready instance is taken is the replacement opened at
// once, so that the next query still finds one.
func (b *Backend) fresh(ctx context.Context) (*instance, error) {
	b.poolOnce.Do(func() {
		b.pool = make(chan *instance, PoolSize)
		b.want = make(chan struct{}, 4*PoolSize)
		b.filler.Add(1)
		go b.fill()
		for range PoolSize {
			b.ask()
		}
	})
	select {
	case in := <-b.pool:
		if len(b.pool) == 0 {
			b.ask()
		} else {
			in.refill = true
		}
		return in, nil
	default:
		b.ask()
		return open(ctx)
	}
}

// ask requests one more instance for the pool, unless enough requests
// are already waiting or the Backend is closing.
func (b *Backend) ask() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return
	}
	select {
	case b.want <- struct{}{}:
		b.busy++
	default:
	}
}

func (b *Backend) begin() {
	b.mu.Lock()
	b.busy++
	b.mu.Unlock()
}

func (b *Backend) end() {
	b.mu.Lock()
	if b.busy--; b.busy == 0 {
		b.idle.Broadcast()
	}
	b.mu.Unlock()
}

// Settle waits until no used instance is being closed and no replacement
// is being opened in the background, so that a bench can charge that work
// to the query that caused it.
func (b *Backend) Settle() {
	b.mu.Lock()
	for b.busy > 0 {
		b.idle.Wait()
	}
	b.mu.Unlock()
}

// open starts an in-memory database with staticSetup applied.
func open(ctx context.Context) (*instance, error) {
	c, err := duckdbdrv.NewConnector("", nil)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(c)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	in := &instance{db: db, conn: conn}
	if _, err := conn.ExecContext(ctx, staticSetup); err != nil {
		in.close()
		return nil, err
	}
	return in, nil
}

// release closes a used instance in the background, then asks for its
// replacement if fresh did not already.
func (b *Backend) release(in *instance) {
	b.begin()
	go func() {
		defer b.end()
		in.close()
		if in.refill {
			b.ask()
		}
	}()
}

// fill opens an instance for every request on want while the pool has
// room.
func (b *Backend) fill() {
	defer b.filler.Done()
	for {
		select {
		case <-b.stop:
			return
		case <-b.want:
		}
		if len(b.pool) < cap(b.pool) {
			in, err := open(context.Background())
			if err != nil {
				b.log.Error("cannot open DuckDB", "err", err)
			} else {
				select {
				case b.pool <- in:
				default:
					in.close()
				}
			}
		}
		b.end()
	}
}

var _ sqlengine.Backend = (*Backend)(nil)

// New returns a Backend.
func New(log *slog.Logger) *Backend {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Backend{log: log, stop: make(chan struct{})}
	b.idle = sync.NewCond(&b.mu)
	return b
}

// Close releases the parser database and the ready instances.
func (b *Backend) Close() error {
	b.mu.Lock()
	b.stopped = true
	b.mu.Unlock()
	b.stopOnce.Do(func() { close(b.stop) })
	b.filler.Wait()
	// Requests the filler will not serve any more.
	if b.want != nil {
		for {
			select {
			case <-b.want:
				b.end()
				continue
			default:
			}
			break
		}
	}
	b.Settle()
	if b.pool != nil {
		for {
			select {
			case in := <-b.pool:
				in.close()
				continue
			default:
			}
			break
		}
	}
	if b.parser != nil {
		return b.parser.Close()
	}
	return nil
}

// parserDB is a locked, offline database used only to parse statements.
func (b *Backend) parserDB() (*sql.DB, error) {
	b.once.Do(func() {
		c, err := duckdbdrv.NewConnector("", nil)
		if err != nil {
			b.initErr = err
			return
		}
		db := sql.OpenDB(c)
		for _, s := range []string{
			"SET enable_external_access=false",
			"SET autoload_known_extensions=false",
			"SET autoinstall_known_extensions=false",
			"SET allow_community_extensions=false",
			"SET threads=1",
			"SET lock_configuration=true",
		} {
			if _, err := db.Exec(s); err != nil {
				db.Close()
				b.initErr = err
				return
			}
		}
		b.parser = db
	})
	return b.parser, b.initErr
}

// Analyze implements sqlengine.Backend.
func (b *Backend) Analyze(ctx context.Context, query string) (*sqlengine.Analysis, error) {
	db, err := b.parserDB()
	if err != nil {
		return nil, steward.WrapError(steward.EInternal, "duckdb.Analyze", err, "SQL engine unavailable")
	}
	var js string
	if err := db.QueryRowContext(ctx, "SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", query).Scan(&js); err != nil {
		return nil, steward.WrapError(steward.EInternal, "duckdb.Analyze", err, "cannot parse statement")
	}
	return Check([]byte(js))
}

// Check inspects the output of json_serialize_sql and returns the catalog
// tables the statement names, or an error for anything not allowed.
func Check(js []byte) (*sqlengine.Analysis, error) {
	var top struct {
		Error      bool              `json:"error"`
		ErrorType  string            `json:"error_type"`
		Message    string            `json:"error_message"`
		Statements []json.RawMessage `json:"statements"`
	}
	if err := json.Unmarshal(js, &top); err != nil {
		return nil, steward.WrapError(steward.EInternal, "duckdb.Check", err, "cannot parse statement")
	}
	if top.Error {
		if top.ErrorType == "parser" {
			return nil, sqlengine.Errorf(steward.EInvalid, sqlengine.StateSyntax, "%s", top.Message)
		}
		return nil, sqlengine.Errorf(steward.EPermission, sqlengine.StatePrivilege, "only SELECT queries are allowed")
	}
	if len(top.Statements) != 1 {
		return nil, sqlengine.Errorf(steward.EInvalid, sqlengine.StateSyntax, "exactly one statement is allowed, got %d", len(top.Statements))
	}
	var root any
	d := json.NewDecoder(strings.NewReader(string(top.Statements[0])))
	d.UseNumber()
	if err := d.Decode(&root); err != nil {
		return nil, steward.WrapError(steward.EInternal, "duckdb.Check", err, "cannot parse statement")
	}
	w := walker{seen: map[string]bool{}}
	if err := w.walk(root, nil, 0); err != nil {
		return nil, err
	}
	return &sqlengine.Analysis{Tables: w.tables}, nil
}

// allowedTableFuncs are table functions that read nothing.
var allowedTableFuncs = map[string]bool{"range": true, "generate_series": true, "unnest": true}

// deniedFuncs are scalar functions that reveal the host or the engine's
// configuration, or reach outside the query.
var deniedFuncs = map[string]bool{
	"getenv": true, "current_setting": true, "getvariable": true, "setvariable": true,
	"query": true, "query_table": true, "read_text": true, "read_blob": true, "glob": true,
	"nextval": true, "setval": true, "currval": true,
	"json_serialize_sql": true, "json_deserialize_sql": true, "json_execute_serialized_sql": true,
	"sql_auto_complete": true, "checkpoint": true, "force_checkpoint": true,
	// error() raises on purpose: a predicate that errors on rows outside a
	// row filter would reveal them if the optimizer evaluated it first.
	"error": true,
}

const maxDepth = 2000

type walker struct {
	tables []sqlengine.TableRef
	seen   map[string]bool
}

// walk visits every node; ctes are the CTE names in scope.
func (w *walker) walk(v any, ctes []string, depth int) error {
	if depth > maxDepth {
		return sqlengine.Errorf(steward.EInvalid, sqlengine.StateLimit, "statement too deeply nested")
	}
	switch n := v.(type) {
	case []any:
		for _, c := range n {
			if err := w.walk(c, ctes, depth+1); err != nil {
				return err
			}
		}
	case map[string]any:
		if cm, ok := n["cte_map"].(map[string]any); ok {
			if m, ok := cm["map"].([]any); ok {
				for _, e := range m {
					if kv, ok := e.(map[string]any); ok {
						if k, ok := kv["key"].(string); ok {
							ctes = append(ctes[:len(ctes):len(ctes)], strings.ToLower(k))
						}
					}
				}
			}
		}
		typ, _ := n["type"].(string)
		class, _ := n["class"].(string)
		switch {
		case typ == "BASE_TABLE":
			cat, _ := n["catalog_name"].(string)
			sch, _ := n["schema_name"].(string)
			tbl, _ := n["table_name"].(string)
			if _, ok := n["at_clause"].(map[string]any); ok {
				return sqlengine.Errorf(steward.EPermission, sqlengine.StatePrivilege, "time travel (AT) is not allowed")
			}
			if l := strings.ToLower(tbl); strings.HasPrefix(l, "duckdb_") || strings.HasPrefix(l, "sqlite_") || strings.HasPrefix(l, "pragma_") {
				return sqlengine.Errorf(steward.EPermission, sqlengine.StatePrivilege, "system table %s is not allowed", tbl)
			}
			if cat == "" && sch == "" && containsFold(ctes, tbl) {
				break
			}
			var ref sqlengine.TableRef
			for _, p := range []string{cat, sch, tbl} {
				if p != "" {
					ref = append(ref, p)
				}
			}
			if !w.seen[ref.Name()] {
				w.seen[ref.Name()] = true
				w.tables = append(w.tables, ref)
			}
		case typ == "TABLE_FUNCTION":
			f, _ := n["function"].(map[string]any)
			name, _ := f["function_name"].(string)
			if !allowedTableFuncs[strings.ToLower(name)] {
				return sqlengine.Errorf(steward.EPermission, sqlengine.StatePrivilege, "table function %s is not allowed; query catalog tables by name", name)
			}
		case typ == "SHOW_REF":
			return sqlengine.Errorf(steward.EPermission, sqlengine.StateFeature, "SHOW and DESCRIBE are not supported here; use SHOW TABLES")
		case class == "FUNCTION":
			name, _ := n["function_name"].(string)
			l := strings.ToLower(name)
			if deniedFuncs[l] || strings.HasPrefix(l, "duckdb_") || strings.HasPrefix(l, "pragma_") || strings.HasPrefix(l, "read_") || strings.HasPrefix(l, "parquet_") {
				return sqlengine.Errorf(steward.EPermission, sqlengine.StatePrivilege, "function %s is not allowed", name)
			}
		}
		for k, c := range n {
			if k == "value" && class == "CONSTANT" {
				continue
			}
			if err := w.walk(c, ctes, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

func containsFold(l []string, s string) bool {
	s = strings.ToLower(s)
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
