package pgwire

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/sqlengine"
)

// What clients send on connect and around their queries (SET, SHOW,
// transaction control, version(), current_setting(...)) is answered here,
// without running it in DuckDB: the session settings below are the
// harmless ones, and none of them reaches the sandbox, so nothing a client
// sets can loosen it.

// result is a result computed without the Querier.
type result struct {
	cols []sqlengine.Column
	rows [][]any
	tag  string
}

// defaultSettings are the settings a session starts with; only these can
// be SET, SHOWn or read with current_setting.
func defaultSettings(user, appName string) map[string]string {
	return map[string]string{
		"server_version": "16.0", "server_version_num": "160000", "server_encoding": "UTF8", "client_encoding": "UTF8",
		"datestyle": "ISO, MDY", "intervalstyle": "postgres", "integer_datetimes": "on", "standard_conforming_strings": "on",
		"timezone": "UTC", "application_name": appName, "is_superuser": "off", "session_authorization": user,
		"search_path": `"$user", public`, "extra_float_digits": "1", "transaction_isolation": "read committed",
		"default_transaction_isolation": "read committed", "transaction_read_only": "off", "default_transaction_read_only": "off",
		"max_identifier_length": "63", "bytea_output": "hex", "statement_timeout": "0", "lock_timeout": "0",
		"idle_in_transaction_session_timeout": "0", "lc_messages": "C", "lc_monetary": "C", "lc_numeric": "C", "lc_time": "C",
		"client_min_messages": "notice", "jit": "off", "geqo": "on",
	}
}

// settable are the settings a client may change, each with a validator
// (nil: any value).
var settable = map[string]func(string) bool{
	"client_encoding":    func(v string) bool { return isUTF8Name(v) },
	"datestyle":          func(v string) bool { return strings.Contains(strings.ToUpper(v), "ISO") },
	"intervalstyle":      func(v string) bool { return strings.EqualFold(v, "postgres") },
	"extra_float_digits": func(v string) bool { n, err := strconv.Atoi(v); return err == nil && n >= -15 && n <= 3 },
	"application_name":   nil,
	"search_path":        nil,
	"timezone": func(v string) bool {
		_, err := loadLocation(v)
		return err == nil
	},
	"standard_conforming_strings":         func(v string) bool { return strings.EqualFold(v, "on") || strings.EqualFold(v, "true") },
	"bytea_output":                        func(v string) bool { return strings.EqualFold(v, "hex") },
	"statement_timeout":                   nil, // the server's limits apply regardless
	"lock_timeout":                        nil,
	"idle_in_transaction_session_timeout": nil,
	"client_min_messages":                 nil,
	"lc_messages":                         nil,
	"lc_monetary":                         nil,
	"lc_numeric":                          nil,
	"lc_time":                             nil,
	"default_transaction_isolation":       nil,
	"default_transaction_read_only":       nil,
	"transaction_isolation":               nil,
	"jit":                                 nil,
	"geqo":                                nil,
}

// reported are the settings whose changes are sent as ParameterStatus.
var reported = map[string]string{
	"client_encoding": "client_encoding", "datestyle": "DateStyle", "timezone": "TimeZone",
	"application_name": "application_name", "intervalstyle": "IntervalStyle",
}

func isUTF8Name(v string) bool {
	v = strings.ToUpper(strings.ReplaceAll(v, "-", ""))
	return v == "UTF8" || v == "UNICODE"
}

func loadLocation(v string) (*time.Location, error) {
	switch strings.ToUpper(v) {
	case "UTC", "GMT", "Z", "ZULU", "UCT", "LOCALTIME":
		return time.UTC, nil
	}
	return time.LoadLocation(v)
}

var (
	setRE      = regexp.MustCompile(`^set\s+(?:session\s+|local\s+)?([a-z_][a-z0-9_.]*)\s*(?:=|\s+to\s+)\s*(.+)$`)
	setTZRE    = regexp.MustCompile(`^set\s+(?:session\s+|local\s+)?time\s+zone\s+(.+)$`)
	resetRE    = regexp.MustCompile(`^reset\s+([a-z_][a-z0-9_.]*)$`)
	showRE     = regexp.MustCompile(`^show\s+([a-z_][a-z0-9_.]*)$`)
	deallocRE  = regexp.MustCompile(`^deallocate\s+(?:prepare\s+)?("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)$`)
	selectRE   = regexp.MustCompile(`^select\s+(.+)$`)
	aliasRE    = regexp.MustCompile(`^(.*?)(?:\s+as)?\s+("(?:[^"]|"")+"|[a-z_][a-z0-9_]*)$`)
	settingRE  = regexp.MustCompile(`^(?:pg_catalog\.)?current_setting\(\s*'([^']*)'\s*(?:,\s*(?:true|false)\s*)?\)$`)
	pgCatalog  = regexp.MustCompile(`(?i)\b(pg_catalog|pg_class|pg_namespace|pg_type|pg_attribute|pg_proc|pg_database|pg_settings|pg_roles|pg_user|pg_index|pg_description|pg_tables|pg_views|pg_am|pg_extension|pg_constraint|pg_inherits|pg_attrdef|pg_matviews|pg_stat_activity|pg_enum|pg_range|pg_collation|pg_trigger|pg_event_trigger|pg_policy|pg_shdescription)\b`)
	wsRE       = regexp.MustCompile(`\s+`)
	leadingCmt = regexp.MustCompile(`^(?:\s*(?:--[^\n]*\n|/\*[^*]*\*+(?:[^/*][^*]*\*+)*/))*\s*`)
)

// normalize lower-cases a statement outside quotes, collapses white space
// and drops leading comments and trailing semicolons.
func normalize(sql string) string {
	s := leadingCmt.ReplaceAllString(sql, "")
	s = strings.TrimSpace(s)
	for strings.HasSuffix(s, ";") {
		s = strings.TrimSpace(strings.TrimSuffix(s, ";"))
	}
	var b strings.Builder
	inQ := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQ != 0:
			if c == inQ {
				inQ = 0
			}
		case c == '\'' || c == '"':
			inQ = c
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == '\t' || c == '\n' || c == '\r':
			c = ' '
		}
		b.WriteByte(c)
	}
	return wsRE.ReplaceAllString(b.String(), " ")
}

func unquoteValue(v string) string {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && (v[0] == '\'' && v[len(v)-1] == '\'') {
		return strings.ReplaceAll(v[1:len(v)-1], "''", "'")
	}
	if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"') {
		return strings.ReplaceAll(v[1:len(v)-1], `""`, `"`)
	}
	return v
}

// local answers sql if it is a session command; apply says whether to
// carry out its effect (false when only describing it). ok is false for
// anything that should go to the Querier.
func (c *conn) local(sql string, apply bool) (res *result, ok bool, err error) {
	n := normalize(sql)
	if n == "" {
		return nil, false, nil
	}
	word, _, _ := strings.Cut(n, " ")
	if c.tx == 'E' && word != "commit" && word != "rollback" && word != "end" && word != "abort" {
		return nil, true, sqlengine.Errorf(steward.EInvalid, "25P02", "current transaction is aborted, commands ignored until end of transaction block")
	}
	switch {
	case n == "begin" || strings.HasPrefix(n, "begin ") || strings.HasPrefix(n, "start transaction"):
		if apply {
			c.tx = 'T'
		}
		return &result{tag: "BEGIN"}, true, nil
	case n == "commit" || n == "end" || n == "commit work" || n == "commit transaction" || n == "end transaction":
		tag := "COMMIT"
		if c.tx == 'E' {
			tag = "ROLLBACK"
		}
		if apply {
			c.tx = 'I'
		}
		return &result{tag: tag}, true, nil
	case n == "rollback" || n == "abort" || n == "rollback work" || n == "rollback transaction":
		if apply {
			c.tx = 'I'
		}
		return &result{tag: "ROLLBACK"}, true, nil
	case strings.HasPrefix(n, "set session characteristics as transaction") || strings.HasPrefix(n, "set transaction "):
		return &result{tag: "SET"}, true, nil
	case n == "discard all":
		if apply {
			c.discard()
		}
		return &result{tag: "DISCARD ALL"}, true, nil
	case n == "deallocate all" || n == "deallocate prepare all":
		if apply {
			for name := range c.stmts {
				delete(c.stmts, name)
			}
		}
		return &result{tag: "DEALLOCATE ALL"}, true, nil
	}
	if m := deallocRE.FindStringSubmatch(n); m != nil {
		name := unquoteValue(m[1])
		if !strings.HasPrefix(m[1], `"`) {
			// Names are case-insensitive unless quoted; find the original.
			for k := range c.stmts {
				if strings.EqualFold(k, name) {
					name = k
				}
			}
		}
		if _, ok := c.stmts[name]; !ok {
			return nil, true, sqlengine.Errorf(steward.ENotFound, "26000", "prepared statement %q does not exist", name)
		}
		if apply {
			delete(c.stmts, name)
		}
		return &result{tag: "DEALLOCATE"}, true, nil
	}
	if m := setTZRE.FindStringSubmatch(n); m != nil {
		return c.set("timezone", origValue(sql, m[1]), apply)
	}
	if m := setRE.FindStringSubmatch(n); m != nil {
		name := m[1]
		if _, ok := settable[name]; !ok {
			if _, known := c.settings[name]; known {
				return nil, true, sqlengine.Errorf(steward.EPermission, "55P02", "parameter %q cannot be changed", name)
			}
			return nil, false, nil // the sandbox decides, and refuses
		}
		return c.set(name, origValue(sql, m[2]), apply)
	}
	if m := resetRE.FindStringSubmatch(n); m != nil {
		if m[1] == "all" {
			if apply {
				c.settings = defaultSettings(c.p.Username, c.settings["application_name"])
			}
			return &result{tag: "RESET"}, true, nil
		}
		if _, ok := settable[m[1]]; ok {
			if apply {
				c.settings[m[1]] = defaultSettings(c.p.Username, "")[m[1]]
				c.applied(m[1])
			}
			return &result{tag: "RESET"}, true, nil
		}
		return nil, false, nil
	}
	if n == "show transaction isolation level" {
		n = "show transaction_isolation"
	}
	if m := showRE.FindStringSubmatch(n); m != nil {
		name := strings.ReplaceAll(m[1], "time zone", "timezone")
		v, ok := c.settings[name]
		if !ok {
			return nil, false, nil // SHOW TABLES and the like
		}
		return &result{cols: []sqlengine.Column{{Name: m[1], Type: "VARCHAR"}}, rows: [][]any{{v}}, tag: "SHOW"}, true, nil
	}
	if m := selectRE.FindStringSubmatch(n); m != nil {
		return c.sessionSelect(m[1])
	}
	return nil, false, nil
}

// origValue finds the value part of a SET in the original statement, so
// that its case survives normalization.
func origValue(sql, lowered string) string {
	s := strings.TrimSpace(sql)
	for strings.HasSuffix(s, ";") {
		s = strings.TrimSpace(strings.TrimSuffix(s, ";"))
	}
	if len(s) >= len(lowered) && strings.EqualFold(s[len(s)-len(lowered):], lowered) {
		return s[len(s)-len(lowered):]
	}
	return lowered
}

func (c *conn) set(name, value string, apply bool) (*result, bool, error) {
	v := unquoteValue(value)
	if strings.EqualFold(v, "default") {
		v = defaultSettings(c.p.Username, "")[name]
	}
	if name == "timezone" && strings.EqualFold(v, "local") {
		v = "UTC"
	}
	if check := settable[name]; check != nil && !check(v) {
		return nil, true, sqlengine.Errorf(steward.EInvalid, "22023", "invalid value for parameter %q: %q", name, v)
	}
	if name == "client_encoding" {
		v = "UTF8"
	}
	if apply {
		c.settings[name] = v
		c.applied(name)
	}
	return &result{tag: "SET"}, true, nil
}

// applied takes a changed setting into effect and reports it.
func (c *conn) applied(name string) {
	v := c.settings[name]
	if name == "timezone" {
		if loc, err := loadLocation(v); err == nil {
			c.loc = loc
		}
	}
	if r, ok := reported[name]; ok {
		c.statusQueue = append(c.statusQueue, [2]string{r, v})
	}
}

// sessionSelect answers SELECT lists made only of session functions
// (version(), current_user, current_setting('x'), ...).
func (c *conn) sessionSelect(list string) (*result, bool, error) {
	items := splitTop(list)
	if items == nil {
		return nil, false, nil
	}
	res := &result{tag: "SELECT 1"}
	row := make([]any, 0, len(items))
	for _, it := range items {
		expr, alias := strings.TrimSpace(it), ""
		if m := aliasRE.FindStringSubmatch(expr); m != nil && sessionValue(c, m[1]) != nil {
			expr, alias = strings.TrimSpace(m[1]), unquoteValue(m[2])
		}
		v := sessionValue(c, expr)
		if v == nil {
			return nil, false, nil
		}
		if alias == "" {
			alias = v.name
		}
		typ := "VARCHAR"
		if _, isInt := v.val.(int32); isInt {
			typ = "INTEGER"
		}
		res.cols = append(res.cols, sqlengine.Column{Name: alias, Type: typ})
		row = append(row, v.val)
	}
	res.rows = [][]any{row}
	return res, true, nil
}

type named struct {
	name string
	val  any
}

func sessionValue(c *conn, expr string) *named {
	expr = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(expr), "pg_catalog."))
	switch expr {
	case "version()":
		return &named{"version", "PostgreSQL 16.0 (Steward governed SQL on DuckDB)"}
	case "current_schema()", "current_schema":
		return &named{"current_schema", "main"}
	case "current_database()", "current_catalog":
		return &named{"current_database", c.database}
	case "current_user", "session_user", "user", "current_role":
		return &named{expr, c.p.Username}
	case "pg_backend_pid()":
		return &named{"pg_backend_pid", int32(c.sess.pid)}
	}
	if m := settingRE.FindStringSubmatch(expr); m != nil {
		if v, ok := c.settings[strings.ToLower(m[1])]; ok {
			return &named{"current_setting", v}
		}
	}
	return nil
}

// splitTop splits a select list at top-level commas; nil if it holds a
// FROM or anything else that is not a plain list.
func splitTop(s string) []string {
	var out []string
	depth, start := 0, 0
	var q byte
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case q != 0:
			if ch == q {
				q = 0
			}
		case ch == '\'' || ch == '"':
			q = ch
		case ch == '(':
			depth++
		case ch == ')':
			depth--
		case ch == ',' && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		case ch == ';':
			return nil
		}
	}
	return append(out, s[start:])
}
