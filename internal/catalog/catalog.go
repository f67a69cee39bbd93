// Package catalog is Steward's data catalog: datasets with their location,
// format, schema, owners, tags, classification and statistics; sensitive
// column detection; a full-text search index that respects the `discover`
// decision of the policy engine; and the change tracking that lets the S3
// gateway mark datasets changed for the crawler.
//
// Naming follows OpenLineage: a dataset on S3 has namespace "s3://BUCKET"
// and name the key prefix that holds its files ("sales/mortgages"). A
// dataset's files are the objects directly under its prefix, or under
// Hive-style partition directories below it (year=2024/month=01/...): an
// object at BUCKET/a/b/c.parquet belongs to (s3://BUCKET, a/b); an object at
// BUCKET/a/b/year=2024/month=01/c.parquet belongs to (s3://BUCKET, a/b) too
// (see DatasetOf). Objects at the top of a bucket belong to the dataset
// named "" ... which is not tracked: datasets need a prefix.
//
// In REST URLs a dataset is named by its ID: the unpadded base64url
// encoding of "NAMESPACE|NAME" (see ID and ParseID); the CLI accepts
// "NAMESPACE/NAME" (e.g. s3://bank/sales/mortgages) and encodes it.
//
// Policies see a dataset as policy.Resource{Kind: ResourceDataset, Name:
// PolicyName}: the namespace's authority (the bucket for s3://) followed by
// the name's path segments, joined with "." (s3://bank, sales/mortgages ->
// "bank.sales.mortgages"), so that dataset patterns such as "bank.sales.*"
// work as the policy language intends.
//
// Discovery (who may see that a dataset exists, in lists and search):
// owners and stewards always may; for C4 datasets everyone else needs an
// explicit `discover` allow from the policy engine; for C1 to C3 (and
// unclassified) datasets everyone may unless a policy explicitly denies
// `discover`. Administrators see everything. The rule is applied to the
// dataset's effective tags and classification: its own plus what it
// inherits through lineage (see Inheritance), so a table made from C4 data
// is as hidden as its source.
package catalog

import (
	"encoding/base64"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/policy"
)

// Format is a dataset's file format.
type Format string

const (
	FormatUnknown Format = ""
	FormatParquet Format = "parquet"
	FormatCSV     Format = "csv"
	FormatJSON    Format = "json"
)

// FormatOf guesses a file's format from its key's extension (compressed
// variants such as .csv.gz count as their inner format).
func FormatOf(key string) Format {
	k := strings.ToLower(key)
	for _, z := range []string{".gz", ".zst", ".bz2"} {
		k = strings.TrimSuffix(k, z)
	}
	switch path.Ext(k) {
	case ".parquet", ".pq":
		return FormatParquet
	case ".csv", ".tsv":
		return FormatCSV
	case ".json", ".jsonl", ".ndjson":
		return FormatJSON
	}
	return FormatUnknown
}

// Tag is a tag on a dataset or a column, with optional attributes.
type Tag struct {
	Name  string            `json:"name"`
	Attrs map[string]string `json:"attrs,omitempty"`
	// Source says where the tag came from: "" (a person), "rule:<id>"
	// (a detection rule) or "suggestion" (an accepted suggestion).
	Source string `json:"source,omitempty"`
}

// ColumnStats are statistics of one column from the latest crawl.
type ColumnStats struct {
	Nulls    int64  `json:"nulls" required:"false"`
	Distinct int64  `json:"distinct_estimate" required:"false"`
	Min      string `json:"min,omitempty"`
	Max      string `json:"max,omitempty"`
}

// Column is one column of a dataset's schema. Nested types (structs, lists,
// maps) have Fields for their children.
type Column struct {
	Name        string       `json:"name"`
	Type        string       `json:"type" required:"false"`
	Nullable    bool         `json:"nullable,omitempty"`
	Description string       `json:"description,omitempty"`
	Fields      []Column     `json:"fields,omitempty"`
	Tags        []Tag        `json:"tags,omitempty"`
	Stats       *ColumnStats `json:"stats,omitempty"`
}

// Problem is a readable error found while crawling a dataset.
type CrawlProblem struct {
	Time    time.Time `json:"time" required:"false"`
	File    string    `json:"file,omitempty"`
	Message string    `json:"message"`
}

// Suggestion is a tag a detector proposes for a column; owners accept or
// reject it.
type Suggestion struct {
	ID         string  `json:"id" required:"false"`
	Column     string  `json:"column" required:"false"`
	Tag        Tag     `json:"tag" required:"false"`
	Confidence float64 `json:"confidence" required:"false"`
	Reason     string  `json:"reason" required:"false"`
	Status     string  `json:"status" required:"false"` // pending, accepted, rejected
}

// Suggestion statuses.
const (
	SuggestionPending  = "pending"
	SuggestionAccepted = "accepted"
	SuggestionRejected = "rejected"
)

// Dataset is one catalog entry.
type Dataset struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	ID        string `json:"id" required:"false"`
	// Location: where the files are (for S3 namespaces).
	Bucket string `json:"bucket,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	Format Format `json:"format,omitempty"`
	// Partitions are the partition keys of a Hive-style layout
	// (["year", "month"] for year=2024/month=01/).
	Partitions     []string       `json:"partitions,omitempty"`
	Schema         []Column       `json:"schema,omitempty"`
	Description    string         `json:"description,omitempty"` // Markdown
	Owners         []string       `json:"owners,omitempty"`      // "alice" (a user) or "group:risk"
	Stewards       []string       `json:"stewards,omitempty"`    // same form as Owners
	Tags           []Tag          `json:"tags,omitempty"`
	Classification string         `json:"classification,omitempty"` // C1..C4, "" unclassified
	Created        time.Time      `json:"created" required:"false"`
	Changed        time.Time      `json:"changed" required:"false"` // last change of the data (a write through the gateway, or a crawl that saw new files)
	Updated        time.Time      `json:"updated" required:"false"` // last change of the metadata
	Crawled        time.Time      `json:"crawled,omitzero"`         // last successful crawl
	Size           int64          `json:"size" required:"false"`
	FileCount      int64          `json:"file_count" required:"false"`
	RowCount       int64          `json:"row_count" required:"false"`
	Problems       []CrawlProblem `json:"problems,omitempty"`
	Suggestions    []Suggestion   `json:"suggestions,omitempty"`
	// Version increases with every stored change of this dataset.
	Version int64 `json:"version" required:"false"`

	// The view: what the dataset inherits through lineage (from the data
	// it was made from) and its effective classification, the highest of
	// its own and the inherited. Filled by Service.Get and Edit, never
	// stored (what a client sends here is ignored).
	InheritedTags           []DatasetInheritedTag `json:"inherited_tags,omitempty" doc:"Tags inherited through lineage, with where they come from (read-only)."`
	EffectiveClassification string                `json:"effective_classification,omitempty" doc:"The highest of the dataset's own classification and the inherited ones; what access decisions use (read-only)."`
}

// Limits on metadata, so that one dataset cannot exhaust memory.
const (
	MaxNameLen        = 1024
	MaxDescriptionLen = 64 << 10
	MaxColumns        = 4096
	MaxTags           = 256
	MaxOwners         = 256
	MaxProblems       = 20
)

// ID returns the URL-safe ID of (namespace, name).
func ID(namespace, name string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(namespace + "|" + name))
}

// ParseID decodes an ID. Errors are EInvalid.
func ParseID(id string) (namespace, name string, err error) {
	b, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || !utf8.Valid(b) {
		return "", "", steward.Errorf(steward.EInvalid, "dataset id %q is not valid base64url", clip(id))
	}
	ns, n, ok := strings.Cut(string(b), "|")
	if !ok {
		return "", "", steward.Errorf(steward.EInvalid, "dataset id %q does not encode NAMESPACE|NAME", clip(id))
	}
	return ns, n, nil
}

// ParseRef parses what the CLI takes: "NAMESPACE/NAME" where NAMESPACE is
// "scheme://authority" (s3://bank/sales/mortgages), or an ID.
func ParseRef(ref string) (namespace, name string, err error) {
	if scheme, rest, ok := strings.Cut(ref, "://"); ok {
		auth, n, _ := strings.Cut(rest, "/")
		return scheme + "://" + auth, n, nil
	}
	return ParseID(ref)
}

// Ref renders (namespace, name) as "NAMESPACE/NAME".
func Ref(namespace, name string) string { return namespace + "/" + name }

// PolicyName is the hierarchical name policies match the dataset by.
func PolicyName(namespace, name string) string {
	auth := namespace
	if _, rest, ok := strings.Cut(namespace, "://"); ok {
		auth = rest
	}
	parts := []string{strings.Trim(auth, "/")}
	for _, s := range strings.Split(name, "/") {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ".")
}

// DatasetOf returns the dataset an object belongs to: namespace
// "s3://bucket" and the key's directory with any trailing partition
// directories (k=v segments) removed. ok is false for objects at the top
// of a bucket (no dataset) and for hidden files (a segment starting with
// "_" or "."), such as _SUCCESS markers, which belong to no dataset.
func DatasetOf(bucket, key string) (namespace, name string, ok bool) {
	segs := strings.Split(key, "/")
	for _, s := range segs {
		if strings.HasPrefix(s, "_") || strings.HasPrefix(s, ".") {
			return "", "", false
		}
	}
	dirs := segs[:len(segs)-1]
	for len(dirs) > 0 && isPartition(dirs[len(dirs)-1]) {
		dirs = dirs[:len(dirs)-1]
	}
	for _, d := range dirs {
		if d == "" {
			return "", "", false
		}
	}
	if len(dirs) == 0 {
		return "", "", false
	}
	return "s3://" + bucket, strings.Join(dirs, "/"), true
}

// PartitionKeys returns the partition keys of a key relative to its
// dataset's prefix ("year=2024/month=01/x.parquet" -> [year month]).
func PartitionKeys(rel string) []string {
	segs := strings.Split(rel, "/")
	var keys []string
	for _, s := range segs[:len(segs)-1] {
		if k, _, ok := strings.Cut(s, "="); ok && isPartition(s) {
			keys = append(keys, k)
		}
	}
	return keys
}

func isPartition(seg string) bool {
	k, v, ok := strings.Cut(seg, "=")
	return ok && k != "" && v != ""
}

// BucketOf returns the bucket of an s3:// namespace.
func BucketOf(namespace string) (string, bool) {
	b, ok := strings.CutPrefix(namespace, "s3://")
	return b, ok && b != "" && !strings.Contains(b, "/")
}

// ParseClassification parses "C1".."C4" or "" (unclassified).
func ParseClassification(s string) (policy.Classification, error) {
	if s == "" {
		return policy.Unclassified, nil
	}
	c, ok := policy.ParseClassification(s)
	if !ok {
		return 0, steward.Errorf(steward.EInvalid, "classification %q: want C1, C2, C3 or C4", clip(s))
	}
	return c, nil
}

// Level returns the dataset's classification level (0 for unclassified).
func (d *Dataset) Level() policy.Classification {
	c, _ := policy.ParseClassification(d.Classification)
	return c
}

// PolicyTags returns the dataset's tags and its columns' tags as the
// policy engine sees them.
func (d *Dataset) PolicyTags() []policy.Tag {
	var out []policy.Tag
	seen := map[string]bool{}
	add := func(ts []Tag) {
		for _, t := range ts {
			k := t.Name + fmt.Sprint(t.Attrs)
			if !seen[k] {
				seen[k] = true
				out = append(out, policy.Tag{Name: t.Name, Attrs: t.Attrs})
			}
		}
	}
	add(d.Tags)
	walkColumns(d.Schema, func(_ string, c *Column) { add(c.Tags) })
	return out
}

// Column returns the column at a dotted path ("address.city"), or nil.
func (d *Dataset) Column(p string) *Column {
	var found *Column
	walkColumns(d.Schema, func(q string, c *Column) {
		if found == nil && q == p {
			found = c
		}
	})
	return found
}

// walkColumns calls fn for every column and nested field with its dotted
// path.
func walkColumns(cols []Column, fn func(path string, c *Column)) {
	var walk func(prefix string, cs []Column)
	walk = func(prefix string, cs []Column) {
		for i := range cs {
			p := prefix + cs[i].Name
			fn(p, &cs[i])
			walk(p+".", cs[i].Fields)
		}
	}
	walk("", cols)
}

// Validate checks d's metadata before it is stored. Errors are EInvalid.
func (d *Dataset) Validate() error {
	bad := func(f string, a ...any) error { return steward.Errorf(steward.EInvalid, f, a...) }
	if d.Namespace == "" || len(d.Namespace) > MaxNameLen || !utf8.ValidString(d.Namespace) || strings.ContainsAny(d.Namespace, "|") {
		return bad("namespace: want a non-empty scheme://authority without '|'")
	}
	if !strings.Contains(d.Namespace, "://") {
		return bad("namespace %q: want scheme://authority (e.g. s3://bucket)", clip(d.Namespace))
	}
	if d.Name == "" || len(d.Name) > MaxNameLen || !utf8.ValidString(d.Name) || strings.HasPrefix(d.Name, "/") || strings.HasSuffix(d.Name, "/") {
		return bad("name: want a non-empty path without leading or trailing '/'")
	}
	if strings.ContainsFunc(d.Namespace+d.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return bad("namespace and name must not contain control characters")
	}
	if len(d.Description) > MaxDescriptionLen {
		return bad("description: at most %d bytes", MaxDescriptionLen)
	}
	if _, err := ParseClassification(d.Classification); err != nil {
		return err
	}
	switch d.Format {
	case FormatUnknown, FormatParquet, FormatCSV, FormatJSON:
	default:
		return bad("format %q: want parquet, csv or json", clip(string(d.Format)))
	}
	if len(d.Owners) > MaxOwners || len(d.Stewards) > MaxOwners {
		return bad("at most %d owners and stewards", MaxOwners)
	}
	for _, o := range append(append([]string{}, d.Owners...), d.Stewards...) {
		n := strings.TrimPrefix(o, "group:")
		if n == "" || len(n) > 256 || strings.ContainsAny(n, " \t\r\n,") {
			return bad("owner %q: want a user name or group:NAME", clip(o))
		}
	}
	if err := validTags(d.Tags); err != nil {
		return err
	}
	n := 0
	var err error
	walkColumns(d.Schema, func(p string, c *Column) {
		n++
		if err == nil && c.Name == "" {
			err = bad("schema: a column has no name")
		}
		if err == nil {
			if e := validTags(c.Tags); e != nil {
				err = bad("column %q: %s", clip(p), steward.MessageOf(e))
			}
		}
	})
	if err != nil {
		return err
	}
	if n > MaxColumns {
		return bad("schema: at most %d columns", MaxColumns)
	}
	return nil
}

func validTags(ts []Tag) error {
	if len(ts) > MaxTags {
		return steward.Errorf(steward.EInvalid, "at most %d tags", MaxTags)
	}
	for _, t := range ts {
		if t.Name == "" || len(t.Name) > 128 || strings.ContainsFunc(t.Name, func(r rune) bool { return r <= ' ' || r == ',' || r == '=' }) {
			return steward.Errorf(steward.EInvalid, "tag %q: want a name without spaces, ',' or '='", clip(t.Name))
		}
		if len(t.Attrs) > 32 {
			return steward.Errorf(steward.EInvalid, "tag %q: at most 32 attributes", clip(t.Name))
		}
	}
	return nil
}

// normalize fills derived fields and sorts sets so stored documents are
// canonical.
func (d *Dataset) normalize() {
	d.ID = ID(d.Namespace, d.Name)
	d.InheritedTags, d.EffectiveClassification = nil, ""
	if b, ok := BucketOf(d.Namespace); ok {
		d.Bucket, d.Prefix = b, d.Name+"/"
	}
	d.Owners = dedupe(d.Owners)
	d.Stewards = dedupe(d.Stewards)
	d.Tags = dedupeTags(d.Tags)
	walkColumns(d.Schema, func(_ string, c *Column) { c.Tags = dedupeTags(c.Tags) })
	if len(d.Problems) > MaxProblems {
		d.Problems = d.Problems[len(d.Problems)-MaxProblems:]
	}
}

func dedupe(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := append([]string(nil), s...)
	sort.Strings(out)
	j := 0
	for i := range out {
		if i == 0 || out[i] != out[i-1] {
			out[j] = out[i]
			j++
		}
	}
	return out[:j]
}

func dedupeTags(ts []Tag) []Tag {
	if len(ts) == 0 {
		return nil
	}
	seen := map[string]int{}
	var out []Tag
	for _, t := range ts {
		if i, ok := seen[t.Name]; ok {
			out[i] = t // the later one wins
			continue
		}
		seen[t.Name] = len(out)
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// HasTag reports whether ts has a tag named name.
func HasTag(ts []Tag, name string) bool {
	for _, t := range ts {
		if t.Name == name {
			return true
		}
	}
	return false
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
