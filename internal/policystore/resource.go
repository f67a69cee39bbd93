package policystore

import (
	"path"
	"strings"
	"unicode/utf8"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/policy"
)

// MaxResourceLen bounds a resource string.
const MaxResourceLen = 2048

// ParseResource parses a resource as the decision and access-request APIs
// take it: "s3://bucket/key" (an object, or "s3://bucket" for the bucket),
// "dataset:ns.name", "table:ns.schema.table" or "table:ns.schema.table#col".
// Errors are EInvalid.
func ParseResource(s string) (policy.Resource, error) {
	bad := func(why string) (policy.Resource, error) {
		return policy.Resource{}, steward.Errorf(steward.EInvalid, "resource %q: %s (want s3://bucket/key, dataset:NAME or table:NAME[#column])", clip(s), why)
	}
	if s == "" {
		return bad("empty")
	}
	if len(s) > MaxResourceLen {
		return bad("too long")
	}
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return bad("contains control characters or invalid UTF-8")
	}
	switch {
	case strings.HasPrefix(s, "s3://"):
		p := strings.TrimPrefix(s, "s3://")
		bucket, _, _ := strings.Cut(p, "/")
		if bucket == "" {
			return bad("no bucket")
		}
		return policy.Resource{Kind: policy.ResourceObject, Path: p}, nil
	case strings.HasPrefix(s, "dataset:"):
		n := strings.TrimPrefix(s, "dataset:")
		if !validName(n) {
			return bad("bad dataset name")
		}
		return policy.Resource{Kind: policy.ResourceDataset, Name: n}, nil
	case strings.HasPrefix(s, "table:"):
		n, col, hasCol := strings.Cut(strings.TrimPrefix(s, "table:"), "#")
		if !validName(n) {
			return bad("bad table name")
		}
		if hasCol && (col == "" || strings.ContainsAny(col, "#")) {
			return bad("bad column name")
		}
		return policy.Resource{Kind: policy.ResourceTable, Name: n, Column: col}, nil
	}
	return bad("unknown kind")
}

// validName: non-empty components separated by '.'.
func validName(n string) bool {
	if n == "" {
		return false
	}
	for _, c := range strings.Split(n, ".") {
		if c == "" {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// ownerPattern is a compiled resource_owners key: a kind and segments of
// the policy pattern language ("*" and "?" within a segment, "**" any
// number of segments).
type ownerPattern struct {
	src  string
	kind policy.ResourceKind
	sep  string
	segs []string
}

// parseOwnerPattern parses "s3://bucket/prefix/**", "dataset:ns.*" or
// "table:ns.schema.*". Patterns are checked with the policy compiler, so
// they are exactly what a policy could name.
func parseOwnerPattern(s string) (*ownerPattern, error) {
	bad := func(why string) (*ownerPattern, error) {
		return nil, steward.Errorf(steward.EInvalid, "owner resource %q: %s (want s3://bucket/prefix/**, dataset:PATTERN or table:PATTERN)", clip(s), why)
	}
	if s == "" || len(s) > MaxResourceLen || !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return bad("empty, too long or has control characters")
	}
	op := &ownerPattern{src: s}
	spec := policy.ResourceSpec{}
	var body string
	switch {
	case strings.HasPrefix(s, "s3://"):
		op.kind, op.sep, body = policy.ResourceObject, "/", strings.TrimPrefix(s, "s3://")
		spec.Paths = []string{s}
	case strings.HasPrefix(s, "dataset:"):
		op.kind, op.sep, body = policy.ResourceDataset, ".", strings.TrimPrefix(s, "dataset:")
		spec.Datasets = []string{body}
	case strings.HasPrefix(s, "table:"):
		op.kind, op.sep, body = policy.ResourceTable, ".", strings.TrimPrefix(s, "table:")
		spec.Tables = []string{body}
	default:
		return bad("unknown kind")
	}
	if body == "" || strings.ContainsAny(body, "{}[]\\") {
		return bad("empty, or uses a macro, brackets or backslashes")
	}
	p := &policy.Policy{ID: "owner-check", Kind: policy.KindAccess, Priority: policy.PriorityNormal, Enabled: true, Resources: spec,
		Allow: []policy.Item{{Groups: []string{policy.Public}, Accesses: []policy.Access{policy.AccessAdmin}}}}
	if _, err := policy.Compile([]*policy.Policy{p}, policy.Options{}); err != nil {
		return bad(strings.TrimPrefix(steward.MessageOf(err), `policy "owner-check": `))
	}
	op.segs = strings.Split(body, op.sep)
	for _, seg := range op.segs {
		if seg != "**" {
			if _, err := path.Match(seg, ""); err != nil {
				return bad("bad wildcard")
			}
		}
	}
	return op, nil
}

// match reports whether the pattern covers the concrete name (object path
// "bucket/key" or catalog name).
func (op *ownerPattern) match(kind policy.ResourceKind, name string) bool {
	if kind != op.kind {
		return false
	}
	return matchSegs(op.segs, strings.Split(name, op.sep))
}

func matchSegs(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			for i := 0; i <= len(name); i++ {
				if matchSegs(rest, name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

// specificity orders matching patterns: more literal characters before the
// first wildcard, then more segments, is more specific.
func (op *ownerPattern) specificity() (int, int) {
	lit := 0
	for _, seg := range op.segs {
		i := strings.IndexAny(seg, "*?[")
		if i >= 0 {
			lit += i
			break
		}
		lit += len(seg) + 1
	}
	return lit, len(op.segs)
}

// requestTarget is what an access request asks for: a concrete object
// prefix, dataset or table (no wildcards), and the grant's resource spec.
type requestTarget struct {
	kind policy.ResourceKind
	name string // bucket/prefix or catalog name, for owner matching
	spec policy.ResourceSpec
	norm string // normalized resource string
}

// parseRequestTarget parses the resource of an access request:
// "s3://bucket[/prefix][/**]" (granted recursively), "dataset:NAME" or
// "table:NAME".
func parseRequestTarget(s string) (*requestTarget, error) {
	bad := func(why string) (*requestTarget, error) {
		return nil, steward.Errorf(steward.EInvalid, "resource %q: %s (want s3://bucket/prefix, dataset:NAME or table:NAME, without wildcards)", clip(s), why)
	}
	trimmed := s
	if strings.HasPrefix(s, "s3://") {
		trimmed = strings.TrimSuffix(strings.TrimSuffix(s, "/**"), "/")
	}
	r, err := ParseResource(trimmed)
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(trimmed, "*?[]{}") {
		return bad("wildcards and macros are not allowed")
	}
	t := &requestTarget{kind: r.Kind}
	switch r.Kind {
	case policy.ResourceObject:
		t.name, t.norm = r.Path, "s3://"+r.Path
		t.spec = policy.ResourceSpec{Paths: []string{t.norm}, Recursive: true}
		if strings.Contains(r.Path, "//") {
			return bad("empty path segment")
		}
	case policy.ResourceDataset:
		t.name, t.norm = r.Name, "dataset:"+r.Name
		t.spec = policy.ResourceSpec{Datasets: []string{r.Name}}
	case policy.ResourceTable:
		if r.Column != "" {
			return bad("request a whole table, not a column")
		}
		t.name, t.norm = r.Name, "table:"+r.Name
		t.spec = policy.ResourceSpec{Tables: []string{r.Name}}
	}
	return t, nil
}
