// Package config loads Steward's settings from defaults, an optional YAML
// file, the environment and command-line flags, in that order of rising
// precedence: a flag beats an environment variable, which beats the file,
// which beats the default.
//
// Every setting has one key (as written in YAML, dotted for nested
// sections), one flag (the key with '.' and '_' turned into '-') and one
// environment variable (STEWARD_ and the key upper-cased with '.' turned into
// '_'): oidc.access_token_ttl is --oidc-access-token-ttl and
// STEWARD_OIDC_ACCESS_TOKEN_TTL.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/spf13/pflag"
)

// Config is every setting of `steward serve`.
type Config struct {
	DataDir       string        `yaml:"data_dir" usage:"directory holding all state (metastore, audit trail, objects, keys)"`
	HTTPAddr      string        `yaml:"http_addr" usage:"listen address of the HTTP server (API, portal, OpenID provider)"`
	S3Addr        string        `yaml:"s3_addr" usage:"listen address of the S3 gateway"`
	PGAddr        string        `yaml:"pg_addr" usage:"listen address of the PostgreSQL wire protocol for governed SQL (empty: off)"`
	PGTLSCert     string        `yaml:"pg_tls_cert" usage:"PEM certificate (chain) file for TLS on the PostgreSQL port (with pg_tls_key; empty: no TLS)"`
	PGTLSKey      string        `yaml:"pg_tls_key" usage:"PEM private key file for TLS on the PostgreSQL port (with pg_tls_cert)"`
	PGRequireTLS  bool          `yaml:"pg_require_tls" usage:"refuse PostgreSQL clients on other hosts that do not use TLS"`
	DebugAddr     string        `yaml:"debug_addr" usage:"loopback listen address of the pprof debug listener, unauthenticated (empty: off)"`
	PublicURL     string        `yaml:"public_url" usage:"URL users reach the HTTP server at (default http://HTTP_ADDR)"`
	Metastore     string        `yaml:"metastore" usage:"metastore DSN: empty for SQLite in the data dir, sqlite:PATH, or postgres://..."`
	LogLevel      string        `yaml:"log_level" usage:"log level: debug, info, warn or error"`
	LogFormat     string        `yaml:"log_format" usage:"log format: text or json"`
	ShutdownGrace time.Duration `yaml:"shutdown_grace" usage:"how long SIGTERM waits for in-flight requests"`
	AdminGroup    string        `yaml:"admin_group" usage:"group whose members administer Steward"`
	TrinoNetworks []string      `yaml:"trino_networks" usage:"networks (CIDR) allowed to call the Trino access-control endpoints under /trino/v1"`
	Demo          bool          `yaml:"demo" usage:"seed demo users and data (loopback only)"`
	DemoPassword  string        `yaml:"demo_password" usage:"password of the demo users (generated and printed once if empty)" secret:"true"`
	DemoRows      int64         `yaml:"demo_rows" usage:"rows of the demo bank's transactions table (written once, as Parquet)"`
	OIDC          OIDC          `yaml:"oidc"`
	Audit         Audit         `yaml:"audit"`
	Objects       Objects       `yaml:"objects"`
	// SQLLimits are per-group SQL query limits (YAML only: no flag or
	// environment form). A query runs with the most generous limit among
	// its user's groups, field by field; zero fields and users in no
	// listed group get the defaults (5m, 1,000,000 rows, 1GB).
	SQLLimits map[string]SQLLimit `yaml:"sql_limits" flag:"-"`
	// SQLCacheMaxBytes bounds the local cache of upstream objects that SQL
	// reads in forward mode (least recently used evicted first).
	SQLCacheMaxBytes int64 `yaml:"sql_cache_max_bytes" usage:"size bound of the local cache SQL reads upstream objects through (forward mode)"`
}

// SQLLimit bounds the SQL queries of one group.
type SQLLimit struct {
	Timeout time.Duration `yaml:"timeout"`
	MaxRows int64         `yaml:"max_rows"`
	Memory  string        `yaml:"memory"` // DuckDB memory_limit, e.g. 4GB
}

// OIDC configures identity: the built-in provider and an optional external
// issuer such as Keycloak.
type OIDC struct {
	Builtin           bool          `yaml:"builtin" usage:"run the built-in OpenID provider under /oidc"`
	PasswordGrant     bool          `yaml:"password_grant" usage:"allow the resource-owner password grant on the built-in provider"`
	AccessTokenTTL    time.Duration `yaml:"access_token_ttl" usage:"lifetime of access tokens issued by the built-in provider"`
	RefreshTokenTTL   time.Duration `yaml:"refresh_token_ttl" usage:"lifetime of refresh tokens issued by the built-in provider"`
	KeyRotation       time.Duration `yaml:"key_rotation" usage:"how often the built-in provider rotates its signing key"`
	Issuer            string        `yaml:"issuer" usage:"external OpenID issuer URL to trust (e.g. https://keycloak/realms/bank)"`
	Audiences         []string      `yaml:"audiences" usage:"accepted token audiences of the external issuer"`
	AuthorizedParties []string      `yaml:"authorized_parties" usage:"accepted azp (client IDs) of the external issuer"`
	CLIClientID       string        `yaml:"cli_client_id" usage:"client ID the CLI uses with the external issuer"`
	UsernameClaim     string        `yaml:"username_claim" usage:"claim carrying the username"`
	GroupsClaim       string        `yaml:"groups_claim" usage:"claim carrying the groups"`
	RolesClaim        string        `yaml:"roles_claim" usage:"claim carrying the roles (dotted path)"`
}

// Objects says where object bytes live: the local filesystem store in the
// data dir (the default), or an upstream S3 (Ceph RGW, MinIO, AWS) that the
// gateway forwards to with its own service credentials.
type Objects struct {
	Upstream Upstream `yaml:"upstream"`
}

// Upstream is the S3 service forward mode sends requests to.
type Upstream struct {
	Endpoint     string `yaml:"endpoint" usage:"upstream S3 URL for forward mode (empty: the local object store)"`
	Region       string `yaml:"region" usage:"region to sign for upstream"`
	AccessKey    string `yaml:"access_key" usage:"Steward's access key at the upstream"`
	SecretKey    string `yaml:"secret_key" usage:"Steward's secret key at the upstream" secret:"true"`
	PathStyle    bool   `yaml:"path_style" usage:"address upstream buckets path-style (Ceph RGW, MinIO)"`
	BucketPrefix string `yaml:"bucket_prefix" usage:"prefix of this installation's buckets upstream"`
}

// Audit configures the audit trail.
type Audit struct {
	Dir             string `yaml:"dir" usage:"audit trail directory (default DATA_DIR/audit)"`
	SegmentMaxBytes int64  `yaml:"segment_max_bytes" usage:"size at which an audit segment rolls over"`
}

// Default returns the embedded defaults.
func Default() Config {
	return Config{
		DataDir:       "./steward-data",
		HTTPAddr:      "127.0.0.1:8080",
		S3Addr:        "127.0.0.1:9000",
		LogLevel:      "info",
		LogFormat:     "text",
		ShutdownGrace: 20 * time.Second,
		AdminGroup:    "platform-admins",
		TrinoNetworks: []string{"127.0.0.0/8", "::1/128"},
		OIDC: OIDC{
			Builtin:         true,
			PasswordGrant:   true,
			AccessTokenTTL:  15 * time.Minute,
			RefreshTokenTTL: 12 * time.Hour,
			KeyRotation:     30 * 24 * time.Hour,
			CLIClientID:     "steward-cli",
			UsernameClaim:   "preferred_username",
			GroupsClaim:     "groups",
			RolesClaim:      "realm_access.roles",
		},
		Audit:    Audit{SegmentMaxBytes: 64 << 20},
		DemoRows: 5_000_000,

		SQLCacheMaxBytes: 10 << 30,
	}
}

// SettingError names the setting that is wrong.
type SettingError struct {
	Key    string // YAML key, e.g. "http_addr"
	Source string // "flag --http-addr", "environment STEWARD_HTTP_ADDR", "file steward.yaml"
	Msg    string
}

func (e *SettingError) Error() string {
	if e.Source != "" {
		return fmt.Sprintf("setting %s (%s): %s", e.Key, e.Source, e.Msg)
	}
	return fmt.Sprintf("setting %s: %s", e.Key, e.Msg)
}

// field is one leaf setting found by reflection.
type field struct {
	key    string // dotted YAML key
	usage  string
	secret bool
	v      reflect.Value
}

func (f field) flag() string { return strings.NewReplacer(".", "-", "_", "-").Replace(f.key) }
func (f field) env() string {
	return "STEWARD_" + strings.ToUpper(strings.ReplaceAll(f.key, ".", "_"))
}

func fields(c *Config) []field {
	var out []field
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			if sf.Tag.Get("flag") == "-" {
				continue // YAML only
			}
			key := prefix + strings.Split(sf.Tag.Get("yaml"), ",")[0]
			fv := v.Field(i)
			if fv.Kind() == reflect.Struct && fv.Type() != reflect.TypeOf(time.Duration(0)) {
				walk(key+".", fv)
				continue
			}
			out = append(out, field{key: key, usage: sf.Tag.Get("usage"), secret: sf.Tag.Get("secret") == "true", v: fv})
		}
	}
	walk("", reflect.ValueOf(c).Elem())
	return out
}

// RegisterFlags adds one flag per setting to fs, plus --config. Flags carry
// no defaults of their own: only flags that were set override.
func RegisterFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "YAML settings file (environment STEWARD_CONFIG)")
	d := Default()
	for _, f := range fields(&d) {
		usage := f.usage + " (" + f.env() + ")"
		if f.v.Kind() == reflect.Bool {
			fs.Bool(f.flag(), f.v.Bool(), usage)
			continue
		}
		def := ""
		if !f.secret {
			def = formatValue(f.v)
		}
		fs.String(f.flag(), def, usage)
	}
}

// MaxFileSize bounds the settings file.
const MaxFileSize = 1 << 20

// Load builds the configuration: defaults, then the YAML file named by
// --config or STEWARD_CONFIG, then STEWARD_* environment variables, then
// flags that were set. getenv is os.Getenv in production.
func Load(fs *pflag.FlagSet, getenv func(string) string) (Config, error) {
	c := Default()
	path := getenv("STEWARD_CONFIG")
	if fs != nil {
		if fl := fs.Lookup("config"); fl != nil && fl.Changed {
			path = fl.Value.String()
		}
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return c, &SettingError{Key: "config", Msg: err.Error()}
		}
		if err := ParseYAML(&c, filepath.Base(path), data); err != nil {
			return c, err
		}
	}
	for _, f := range fields(&c) {
		if s := getenv(f.env()); s != "" {
			if err := setValue(f.v, s); err != nil {
				return c, &SettingError{Key: f.key, Source: "environment " + f.env(), Msg: err.Error()}
			}
		}
	}
	if fs != nil {
		for _, f := range fields(&c) {
			fl := fs.Lookup(f.flag())
			if fl == nil || !fl.Changed {
				continue
			}
			if err := setValue(f.v, fl.Value.String()); err != nil {
				return c, &SettingError{Key: f.key, Source: "flag --" + f.flag(), Msg: err.Error()}
			}
		}
	}
	return c, c.Validate()
}

// ParseYAML applies a YAML settings document onto c. Unknown keys and
// values of the wrong type are errors that name the key.
func ParseYAML(c *Config, name string, data []byte) error {
	if len(data) > MaxFileSize {
		return &SettingError{Key: "config", Source: "file " + name, Msg: "file larger than 1 MiB"}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data), yaml.DisallowUnknownField(), yaml.Strict())
	if err := dec.Decode(c); err != nil {
		return &SettingError{Key: yamlErrorKey(err), Source: "file " + name, Msg: yamlErrorMessage(err)}
	}
	return nil
}

func yamlErrorKey(err error) string {
	var ue *yaml.UnknownFieldError
	if errors.As(err, &ue) {
		if m := unknownFieldRe.FindStringSubmatch(ue.Message); m != nil && m[1] != "" {
			return m[1]
		}
	}
	return "config"
}

var unknownFieldRe = regexp.MustCompile(`unknown field "([^"]*)"`)

func yamlErrorMessage(err error) string {
	var ue *yaml.UnknownFieldError
	if errors.As(err, &ue) {
		if m := unknownFieldRe.FindStringSubmatch(ue.Message); m != nil && m[1] == "" {
			return `unknown key ""`
		}
		return "unknown key"
	}
	return yaml.FormatError(err, false, true)
}

func setValue(v reflect.Value, s string) error {
	switch {
	case v.Type() == reflect.TypeOf(time.Duration(0)):
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("not a duration: %q", s)
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("not a boolean: %q", s)
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer: %q", s)
		}
		v.SetInt(n)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		var parts []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		v.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("unsupported setting type %s", v.Type())
	}
	return nil
}

func formatValue(v reflect.Value) string {
	switch {
	case v.Type() == reflect.TypeOf(time.Duration(0)):
		return time.Duration(v.Int()).String()
	case v.Kind() == reflect.Slice:
		return strings.Join(v.Interface().([]string), ",")
	default:
		return fmt.Sprint(v.Interface())
	}
}

// Validate checks every setting and names the first that is wrong. It does
// not touch the network or the disk; CheckDataDir and the listeners do.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return &SettingError{Key: "data_dir", Msg: "must not be empty"}
	}
	addrs := []struct{ key, addr string }{{"http_addr", c.HTTPAddr}, {"s3_addr", c.S3Addr}}
	if c.DebugAddr != "" {
		addrs = append(addrs, struct{ key, addr string }{"debug_addr", c.DebugAddr})
	}
	for _, a := range addrs {
		if _, port, err := net.SplitHostPort(a.addr); err != nil {
			return &SettingError{Key: a.key, Msg: fmt.Sprintf("not a host:port address: %q", a.addr)}
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return &SettingError{Key: a.key, Msg: fmt.Sprintf("bad port in %q", a.addr)}
		}
	}
	if c.DebugAddr != "" {
		// The debug listener has no authentication: loopback is its guard.
		if !IsLoopback(c.DebugAddr) {
			return &SettingError{Key: "debug_addr", Msg: fmt.Sprintf("the debug listener is unauthenticated and listens on loopback only (127.0.0.0/8, ::1, localhost), not %q", c.DebugAddr)}
		}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &SettingError{Key: "public_url", Msg: fmt.Sprintf("not an http(s) URL: %q", c.PublicURL)}
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return &SettingError{Key: "log_level", Msg: fmt.Sprintf("%q is not debug, info, warn or error", c.LogLevel)}
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return &SettingError{Key: "log_format", Msg: fmt.Sprintf("%q is not text or json", c.LogFormat)}
	}
	if c.ShutdownGrace < 0 || c.ShutdownGrace > 10*time.Minute {
		return &SettingError{Key: "shutdown_grace", Msg: "must be between 0 and 10m"}
	}
	if c.Metastore != "" && !strings.HasPrefix(c.Metastore, "sqlite:") &&
		!strings.HasPrefix(c.Metastore, "postgres://") && !strings.HasPrefix(c.Metastore, "postgresql://") {
		return &SettingError{Key: "metastore", Msg: "must be empty, sqlite:PATH or postgres://..."}
	}
	if c.OIDC.AccessTokenTTL < time.Minute || c.OIDC.AccessTokenTTL > 24*time.Hour {
		return &SettingError{Key: "oidc.access_token_ttl", Msg: "must be between 1m and 24h"}
	}
	if c.OIDC.RefreshTokenTTL < c.OIDC.AccessTokenTTL || c.OIDC.RefreshTokenTTL > 90*24*time.Hour {
		return &SettingError{Key: "oidc.refresh_token_ttl", Msg: "must be at least the access token TTL and at most 90 days"}
	}
	if c.OIDC.KeyRotation < time.Hour {
		return &SettingError{Key: "oidc.key_rotation", Msg: "must be at least 1h"}
	}
	if !c.OIDC.Builtin && c.OIDC.Issuer == "" {
		return &SettingError{Key: "oidc.issuer", Msg: "required when the built-in provider is off"}
	}
	if c.OIDC.Issuer != "" {
		u, err := url.Parse(c.OIDC.Issuer)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &SettingError{Key: "oidc.issuer", Msg: fmt.Sprintf("not an http(s) URL: %q", c.OIDC.Issuer)}
		}
		if len(c.OIDC.Audiences) == 0 && len(c.OIDC.AuthorizedParties) == 0 {
			return &SettingError{Key: "oidc.audiences", Msg: "an external issuer needs accepted audiences or authorized parties"}
		}
	}
	for _, n := range c.TrinoNetworks {
		if _, err := netip.ParsePrefix(n); err != nil {
			return &SettingError{Key: "trino_networks", Msg: fmt.Sprintf("not a CIDR network: %q", n)}
		}
	}
	if u := c.Objects.Upstream; u.Endpoint != "" {
		pu, err := url.Parse(u.Endpoint)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return &SettingError{Key: "objects.upstream.endpoint", Msg: fmt.Sprintf("not an http(s) URL: %q", u.Endpoint)}
		}
		if u.AccessKey == "" || u.SecretKey == "" {
			return &SettingError{Key: "objects.upstream.access_key", Msg: "forward mode needs access_key and secret_key"}
		}
	}
	if c.Audit.SegmentMaxBytes < 1<<20 {
		return &SettingError{Key: "audit.segment_max_bytes", Msg: "must be at least 1 MiB"}
	}
	if c.SQLCacheMaxBytes < 16<<20 {
		return &SettingError{Key: "sql_cache_max_bytes", Msg: "must be at least 16 MiB"}
	}
	if c.DemoRows < 1000 || c.DemoRows > 1_000_000_000 {
		return &SettingError{Key: "demo_rows", Msg: "must be between 1000 and 1000000000"}
	}
	if (c.PGTLSCert == "") != (c.PGTLSKey == "") {
		key := "pg_tls_key"
		if c.PGTLSCert == "" {
			key = "pg_tls_cert"
		}
		return &SettingError{Key: key, Msg: "pg_tls_cert and pg_tls_key go together: set both or neither"}
	}
	if c.PGRequireTLS && c.PGTLSCert == "" {
		return &SettingError{Key: "pg_require_tls", Msg: "needs pg_tls_cert and pg_tls_key"}
	}
	if c.Demo {
		for _, a := range []struct{ key, addr string }{{"http_addr", c.HTTPAddr}, {"s3_addr", c.S3Addr}, {"pg_addr", c.PGAddr}} {
			if a.addr != "" && !IsLoopback(a.addr) {
				return &SettingError{Key: a.key, Msg: fmt.Sprintf("demo mode listens on loopback only, not %q", a.addr)}
			}
		}
	}
	return nil
}

// IsLoopback reports whether a listen address binds only loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckDataDir creates the data dir if needed and proves it is writable.
func (c *Config) CheckDataDir() error {
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return &SettingError{Key: "data_dir", Msg: fmt.Sprintf("cannot create %s: %v", c.DataDir, errors.Unwrap(err))}
	}
	f, err := os.CreateTemp(c.DataDir, ".writable-*")
	if err != nil {
		return &SettingError{Key: "data_dir", Msg: fmt.Sprintf("%s is not writable", c.DataDir)}
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// AuditDir is where the audit trail lives.
func (c *Config) AuditDir() string {
	if c.Audit.Dir != "" {
		return c.Audit.Dir
	}
	return filepath.Join(c.DataDir, "audit")
}

// ExternalURL is the URL users reach the HTTP server at.
func (c *Config) ExternalURL() string {
	if c.PublicURL != "" {
		return strings.TrimRight(c.PublicURL, "/")
	}
	host, port, _ := net.SplitHostPort(c.HTTPAddr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Keys lists every setting key with its flag and environment variable, for
// documentation.
func Keys() [][3]string {
	d := Default()
	var out [][3]string
	for _, f := range fields(&d) {
		out = append(out, [3]string{f.key, "--" + f.flag(), f.env()})
	}
	return out
}
