// Package policy is Steward's authorization engine: the policy model, the
// declarative policy file format (see FORMAT.md), a compiled in-memory index
// and the evaluator that every data path (S3 gateway, SQL, REST, Trino over
// OPA) asks before it touches data.
//
// The semantics follow Apache Ranger:
//
//   - A policy applies to a request when its resources (object paths,
//     datasets, tables and columns) or its tags (the effective tags and
//     classification of the resource) match, it is enabled and, if it has a
//     validity schedule, the request time falls inside it.
//   - Within a policy, deny items (less deny exceptions) are evaluated first,
//     then allow items (less allow exceptions); a policy with DenyAllElse
//     denies every access its allow items do not grant.
//   - Across policies, override-priority policies are evaluated before normal
//     ones; at one priority a deny beats an allow; the first determining
//     policy in evaluation order is reported.
//   - Tag-based policies are evaluated before resource policies: a tag deny is
//     overturned only by a resource allow of higher priority; a tag allow is
//     overturned by a resource deny of equal or higher priority.
//   - No match means deny.
//
// Masking (per column) and row-filter (per table) policies say how permitted
// data is shown; they are returned in the Decision for the SQL component to
// apply.
//
// The model types in this file are the stable contract: persistence, REST,
// CLI, Ranger import and access requests build Policies and hand them to
// Compile; data paths build Requests and call (*Engine).Decide.
package policy

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Kind is what a policy decides.
type Kind string

const (
	// KindAccess policies allow or deny accesses. The zero Kind is access.
	KindAccess Kind = "access"
	// KindMasking policies mask column values for select.
	KindMasking Kind = "masking"
	// KindRowFilter policies restrict the rows of a table for select.
	KindRowFilter Kind = "rowfilter"
)

// Priority orders policies: override policies are evaluated before normal
// ones and, where they determine the result, win.
type Priority string

const (
	PriorityNormal   Priority = "normal" // the zero Priority is normal
	PriorityOverride Priority = "override"
)

func (p Priority) level() int {
	if p == PriorityOverride {
		return 1
	}
	return 0
}

// Access is one kind of access, in one vocabulary across S3 and SQL.
type Access uint8

// The access types. AccessNone is the zero value and never granted.
const (
	AccessNone     Access = iota
	AccessRead            // read object bytes
	AccessWrite           // write or overwrite objects, insert/update rows
	AccessList            // list a bucket or prefix
	AccessCreate          // create buckets, datasets, tables
	AccessDelete          // delete objects, drop tables
	AccessSelect          // SQL select on a table or column
	AccessAdmin           // administer the resource (its policies, tags, owners)
	AccessDiscover        // see that the resource exists (catalog visibility)
	numAccess
)

var accessNames = [numAccess]string{"", "read", "write", "list", "create", "delete", "select", "admin", "discover"}

// Accesses returns every access type, in order.
func Accesses() []Access {
	out := make([]Access, 0, numAccess-1)
	for a := AccessRead; a < numAccess; a++ {
		out = append(out, a)
	}
	return out
}

// String returns the access's name ("read", "select", ...).
func (a Access) String() string {
	if a < numAccess {
		return accessNames[a]
	}
	return fmt.Sprintf("Access(%d)", uint8(a))
}

// ParseAccess returns the access named s (case-insensitive).
func ParseAccess(s string) (Access, bool) {
	for a := AccessRead; a < numAccess; a++ {
		if strings.EqualFold(s, accessNames[a]) {
			return a, true
		}
	}
	return AccessNone, false
}

// MarshalText implements encoding.TextMarshaler.
func (a Access) MarshalText() ([]byte, error) {
	if a == AccessNone || a >= numAccess {
		return nil, fmt.Errorf("invalid access %d", uint8(a))
	}
	return []byte(accessNames[a]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *Access) UnmarshalText(b []byte) error {
	v, ok := ParseAccess(string(b))
	if !ok {
		return fmt.Errorf("unknown access type %q", b)
	}
	*a = v
	return nil
}

// Classification is a resource's sensitivity, from C1 (open) to C4 (most
// restricted). The zero value means unclassified and matches no
// classification condition.
type Classification uint8

const (
	Unclassified Classification = iota
	C1                          // open
	C2                          // internal
	C3                          // confidential
	C4                          // most restricted
)

// String returns "C1".."C4", or "" for Unclassified.
func (c Classification) String() string {
	if c >= C1 && c <= C4 {
		return "C" + string(rune('0'+c))
	}
	return ""
}

// ParseClassification parses "C1".."C4" (case-insensitive).
func ParseClassification(s string) (Classification, bool) {
	if len(s) == 2 && (s[0] == 'C' || s[0] == 'c') && s[1] >= '1' && s[1] <= '4' {
		return Classification(s[1] - '0'), true
	}
	return Unclassified, false
}

// Tag is one effective tag of a resource, with optional attributes
// (e.g. PII{type: email}).
type Tag struct {
	Name  string            `json:"name"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

// TagMatch selects resources by their effective tags. Exactly one of Name or
// MinClassification is set. With Name, every entry of Attrs must equal the
// tag's attribute of that name ("*" matches any present value).
// MinClassification matches resources classified at that level or above.
type TagMatch struct {
	Name              string            `json:"name,omitempty"`
	Attrs             map[string]string `json:"attrs,omitempty"`
	MinClassification Classification    `json:"min_classification,omitempty"`
}

// ResourceSpec says which resources a policy covers. A policy covers object
// paths (Paths), or datasets (Datasets), or catalog tables (Tables, with
// optional Columns); exactly one of the three is set, unless the policy is
// tag-based, in which case all may be empty (the tags alone select).
//
// Object paths are "s3://bucket/key/prefix" patterns. In a pattern "*"
// matches within one path segment, "?" one character, "**" any number of
// segments (including none); "{USER}" is the requesting user's name. With
// Recursive, each path also covers everything below it ("s3://b/p" covers
// "b/p" and "b/p/..."). A resource that matches any Excludes pattern is not
// covered.
//
// Dataset and table names are hierarchical names separated by "."
// ("ns.schema.table") with the same wildcards per component. Columns are
// column names with wildcards; empty Columns means every column and the
// table itself. A policy with specific Columns covers only column-level
// requests for those columns.
type ResourceSpec struct {
	Paths     []string `json:"paths,omitempty"`
	Recursive bool     `json:"recursive,omitempty"`
	Excludes  []string `json:"excludes,omitempty"`
	Datasets  []string `json:"datasets,omitempty"`
	Tables    []string `json:"tables,omitempty"`
	Columns   []string `json:"columns,omitempty"`
}

// Public is the group every principal belongs to. In Users, "{USER}" stands
// for whoever asks (useful with "{USER}" in resources).
const Public = "public"

// Conditions further restrict when an item applies. Every set condition must
// hold.
type Conditions struct {
	// IPRanges: the client address must fall in one of them.
	IPRanges []netip.Prefix `json:"ip_ranges,omitempty"`
	// Validity: the request time must fall in one of the schedules.
	Validity []Schedule `json:"validity,omitempty"`
	// Expr is a CEL expression that must evaluate to true. It sees user
	// (string), groups, roles (list of string), access, resource (string),
	// column (string), tags (map of tag name to map of attributes),
	// classification (int, 0..4), time (timestamp) and ip (string). It is
	// sandboxed: no I/O, bounded cost.
	Expr string `json:"expr,omitempty"`
}

// IsZero reports whether no condition is set.
func (c *Conditions) IsZero() bool {
	return len(c.IPRanges) == 0 && len(c.Validity) == 0 && c.Expr == ""
}

// Item grants (or denies, or excepts) accesses to principals. An item
// matches a request when the user is listed, or one of the user's groups or
// roles is, and the access is listed, and its conditions hold. An empty
// Accesses list is invalid; use every access name to mean all.
type Item struct {
	Users      []string   `json:"users,omitempty"`
	Groups     []string   `json:"groups,omitempty"`
	Roles      []string   `json:"roles,omitempty"`
	Accesses   []Access   `json:"accesses"`
	Conditions Conditions `json:"conditions,omitzero"`
}

// MaskType is how a masked column is shown.
type MaskType string

const (
	MaskRedact       MaskType = "mask"           // letters to x/X, digits to 0
	MaskShowLast4    MaskType = "show_last_4"    // all but the last 4 characters masked
	MaskShowFirst4   MaskType = "show_first_4"   // all but the first 4 characters masked
	MaskHash         MaskType = "hash"           // SHA-256 hex of the value
	MaskNull         MaskType = "null"           // NULL
	MaskDateShowYear MaskType = "date_show_year" // the date truncated to its year
	MaskCustom       MaskType = "custom"         // Expr, with {col} standing for the column
	MaskNone         MaskType = "none"           // shown unmasked (an exemption)
)

// MaskItem says how a column is shown to the principals it lists. Within a
// masking policy the first matching item wins.
type MaskItem struct {
	Users      []string   `json:"users,omitempty"`
	Groups     []string   `json:"groups,omitempty"`
	Roles      []string   `json:"roles,omitempty"`
	Type       MaskType   `json:"type"`
	Expr       string     `json:"expr,omitempty"` // for MaskCustom: a SQL expression using {col}
	Conditions Conditions `json:"conditions,omitzero"`
}

// RowFilterItem restricts the rows the principals it lists see. Filter is a
// SQL predicate; {USER} becomes the user's name and {GROUPS} / {ROLES} the
// user's groups / roles, all rendered as quoted SQL string literals
// ({GROUPS} as a parenthesised list: ('a', 'b')). An empty Filter means all
// rows (an exemption). Within a row-filter policy the first matching item
// wins.
type RowFilterItem struct {
	Users      []string   `json:"users,omitempty"`
	Groups     []string   `json:"groups,omitempty"`
	Roles      []string   `json:"roles,omitempty"`
	Filter     string     `json:"filter"`
	Conditions Conditions `json:"conditions,omitzero"`
}

// Schedule is a validity window: from Start (inclusive) to End (exclusive),
// either may be zero for an open end, optionally recurring on some weekdays
// between two times of day. Times of day and weekdays are taken in TimeZone
// (an IANA name; empty means UTC).
type Schedule struct {
	Start      time.Time   `json:"start,omitzero"`
	End        time.Time   `json:"end,omitzero"`
	TimeZone   string      `json:"time_zone,omitempty"`
	Recurrence *Recurrence `json:"recurrence,omitempty"`
}

// Recurrence is a repeating window inside a Schedule: on the listed weekdays
// (all if empty), from From to To (minutes after midnight; To > From, To at
// most 24*60).
type Recurrence struct {
	Weekdays []time.Weekday `json:"weekdays,omitempty"`
	From     int            `json:"from_minute"`
	To       int            `json:"to_minute"`
}

// Policy is one authorization policy. ID is unique within a policy set;
// Version increases whenever the policy changes and is reported in
// decisions and audit records.
type Policy struct {
	ID          string       `json:"id"`
	Version     int64        `json:"version"`
	Name        string       `json:"name,omitempty"`
	Description string       `json:"description,omitempty"`
	Kind        Kind         `json:"kind"`
	Priority    Priority     `json:"priority"`
	Enabled     bool         `json:"enabled"`
	Audit       bool         `json:"audit"`
	DenyAllElse bool         `json:"deny_all_else,omitempty"`
	Resources   ResourceSpec `json:"resources,omitzero"`
	// Tags makes this a tag-based policy: it covers resources whose
	// effective tags match any entry (and its Resources, if also set).
	Tags []TagMatch `json:"tags,omitempty"`

	// Access policies.
	Allow           []Item `json:"allow,omitempty"`
	Deny            []Item `json:"deny,omitempty"`
	AllowExceptions []Item `json:"allow_exceptions,omitempty"`
	DenyExceptions  []Item `json:"deny_exceptions,omitempty"`

	// Masking policies.
	Masks []MaskItem `json:"masks,omitempty"`
	// Row-filter policies.
	RowFilters []RowFilterItem `json:"row_filters,omitempty"`

	// Validity: the policy applies only inside one of these schedules
	// (always, if empty). A time-bound grant is a policy or item with a
	// Validity; it ends by itself.
	Validity []Schedule        `json:"validity,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// IsTagBased reports whether p selects resources by tag.
func (p *Policy) IsTagBased() bool { return len(p.Tags) > 0 }

// ResourceKind is the kind of resource a request is about.
type ResourceKind uint8

const (
	ResourceObject  ResourceKind = iota + 1 // an object path: bucket/key
	ResourceDataset                         // a catalog dataset: hierarchical name
	ResourceTable                           // a catalog table or one of its columns
)

func (k ResourceKind) String() string {
	switch k {
	case ResourceObject:
		return "object"
	case ResourceDataset:
		return "dataset"
	case ResourceTable:
		return "table"
	}
	return "unknown"
}

// Resource is what a request is about. For objects Path is "bucket/key"
// (no scheme; "bucket" alone for the bucket). For datasets and tables Name
// is the hierarchical name ("ns.schema.table") and, for a column-level
// request, Column the column.
type Resource struct {
	Kind   ResourceKind
	Path   string
	Name   string
	Column string
}

// String renders the resource for logs and audit: "s3://bucket/key",
// "table:ns.schema.t", "table:ns.schema.t#col", "dataset:x.y".
func (r Resource) String() string {
	switch r.Kind {
	case ResourceObject:
		return "s3://" + r.Path
	case ResourceDataset:
		return "dataset:" + r.Name
	case ResourceTable:
		if r.Column != "" {
			return "table:" + r.Name + "#" + r.Column
		}
		return "table:" + r.Name
	}
	return "unknown:" + r.Path + r.Name
}

// Request is one question to the engine: may User (with Groups and Roles) do
// Access on Resource now? Tags and Classification are the effective tags of
// the resource, which the caller gets from the catalog (they include what
// lineage propagated). Time zero means "now" is not considered: policies
// with validity schedules then do not apply.
type Request struct {
	User           string
	Groups         []string
	Roles          []string
	Access         Access
	Resource       Resource
	Tags           []Tag
	Classification Classification
	Time           time.Time
	ClientIP       netip.Addr
}

// Mask is the masking that applies to one column.
type Mask struct {
	Column        string
	Type          MaskType
	Expr          string // for MaskCustom, with {col} for the column
	PolicyID      string
	PolicyVersion int64
}

// SQL renders the mask as a SQL expression over the quoted column
// expression col, in the dialect common to DuckDB and Trino.
func (m Mask) SQL(col string) string {
	switch m.Type {
	case MaskRedact:
		return "regexp_replace(regexp_replace(regexp_replace(CAST(" + col + " AS VARCHAR), '[A-Z]', 'X', 'g'), '[a-z]', 'x', 'g'), '[0-9]', '0', 'g')"
	case MaskShowLast4:
		return "CASE WHEN length(CAST(" + col + " AS VARCHAR)) <= 4 THEN CAST(" + col + " AS VARCHAR) ELSE repeat('x', length(CAST(" + col + " AS VARCHAR)) - 4) || substr(CAST(" + col + " AS VARCHAR), length(CAST(" + col + " AS VARCHAR)) - 3) END"
	case MaskShowFirst4:
		return "CASE WHEN length(CAST(" + col + " AS VARCHAR)) <= 4 THEN CAST(" + col + " AS VARCHAR) ELSE substr(CAST(" + col + " AS VARCHAR), 1, 4) || repeat('x', length(CAST(" + col + " AS VARCHAR)) - 4) END"
	case MaskHash:
		return "sha256(CAST(" + col + " AS VARCHAR))"
	case MaskNull:
		return "NULL"
	case MaskDateShowYear:
		return "date_trunc('year', " + col + ")"
	case MaskCustom:
		return strings.ReplaceAll(m.Expr, "{col}", col)
	}
	return col
}

// Decision is the engine's answer. Callers provide it (and may reuse it
// across calls, which keeps deciding free of allocation).
type Decision struct {
	Allowed       bool
	PolicyID      string // the deciding policy; empty when denied by default
	PolicyVersion int64
	Reason        string
	// Audit is true when any policy that applied asks for auditing (or the
	// default-deny case: denials are always audited).
	Audit bool
	// Masks and RowFilters are set for allowed select requests on tables:
	// Masks holds at most one Mask, for Request.Resource.Column; RowFilters
	// the expanded predicates that apply to the table (AND them).
	Masks      []Mask
	RowFilters []string

	scratch scratch
}

// Reset clears d for reuse, keeping its buffers.
func (d *Decision) Reset() {
	s := d.scratch
	*d = Decision{Masks: d.Masks[:0], RowFilters: d.RowFilters[:0], scratch: s}
}
