package ranger

import (
	"sort"
	"strings"

	"github.com/stewardhq/steward/internal/policy"
)

// maxProduct bounds the patterns one policy's resource values expand to.
const maxProduct = policy.MaxPatterns

// resources fills p.Resources (or p.Tags). It returns false after an error.
func (c *conv) resources(p *policy.Policy) bool {
	res := c.rp.Resources
	if len(res) == 0 {
		c.fail("resources", "no resources")
		return false
	}
	allowed := map[family][]string{
		famHDFS:   {"path"},
		famBucket: {"bucket", "path"},
		famOzone:  {"volume", "bucket", "key"},
		famHive:   {"database", "table", "column"},
		famTrino:  {"catalog", "schema", "table", "column"},
		famTag:    {"tag"},
	}[c.fam]
	var extra []string
	for k, r := range res {
		if r == nil {
			c.fail("resources."+k, "null resource")
			return false
		}
		known := false
		for _, a := range allowed {
			if a == k {
				known = true
			}
		}
		if !known {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		c.fail("resources", "resource %s of a %s service has no Steward counterpart (Steward maps %s)", strings.Join(extra, ", "), c.fam, strings.Join(allowed, ", "))
		return false
	}
	for k, r := range res {
		if len(r.Values) == 0 {
			c.fail("resources."+k, "no values")
			return false
		}
		for _, v := range r.Values {
			if strings.TrimSpace(v) == "" {
				c.fail("resources."+k, "empty value")
				return false
			}
		}
	}
	switch c.fam {
	case famTag:
		return c.tagResources(p, res["tag"])
	case famHDFS:
		return c.pathResources(p, res)
	case famBucket, famOzone:
		return c.bucketResources(p, res)
	default:
		return c.tableResources(p, res)
	}
}

func (c *conv) tagResources(p *policy.Policy, r *rangerResource) bool {
	if r.IsExcludes {
		c.fail("resources.tag.isExcludes", "excluding tags is not supported")
		return false
	}
	for _, v := range r.Values {
		if strings.ContainsAny(v, "*?") {
			c.fail("resources.tag", "tag wildcard %q is not supported", v)
			return false
		}
		p.Tags = append(p.Tags, policy.TagMatch{Name: v})
	}
	return true
}

// hdfsPath converts one Ranger path to an s3:// pattern. Ranger's '*'
// matches across '/'; a trailing "*" segment becomes "**" (any depth) and a
// trailing "x*" segment gets "/**" appended, which matches the same paths.
// A '*' in a middle segment matches one segment in Steward, fewer than in
// Ranger: reported.
func (c *conv) objectPath(field, bucket, path string) (string, bool) {
	path = strings.Trim(path, "/")
	var segs []string
	if bucket != "" {
		segs = append(segs, bucket)
	}
	if path != "" {
		segs = append(segs, strings.Split(path, "/")...)
	}
	if len(segs) == 0 {
		return "s3://*", true
	}
	warned := false
	n := len(segs)
	for i := 0; i < n; i++ {
		s := segs[i]
		if s == "" || strings.Contains(s, "**") {
			return "", false
		}
		if !strings.Contains(s, "*") {
			continue
		}
		switch {
		case i == n-1 && s == "*" && i == 0: // "/*": every bucket and below
			segs = append(segs, "**")
		case i == n-1 && s == "*":
			segs[i] = "**"
		case i == n-1:
			segs = append(segs, "**")
		case i == 0 && bucket != "":
			// a bucket name has no '/', so '*' matches the same in both
		case !warned:
			warned = true
			c.warn(field, "'*' in the middle of %q matches one path segment in Steward but any number in Ranger", path)
		}
	}
	return "s3://" + strings.Join(segs, "/"), true
}

func (c *conv) pathResources(p *policy.Policy, res map[string]*rangerResource) bool {
	r := res["path"]
	var pats []string
	for _, v := range r.Values {
		if !strings.HasPrefix(v, "/") && v != "*" {
			c.warn("resources.path", "path %q is relative; taken from the root", v)
		}
		if strings.Trim(v, "/") == "" && c.opts.PathBucket == "" && !r.IsRecursive {
			c.warn("resources.path", "the root directory maps to every bucket (bucket-level requests only)")
		}
		bucket := c.opts.PathBucket
		pat, ok := c.objectPath("resources.path", bucket, v)
		if !ok {
			c.fail("resources.path", "path %q cannot be mapped", v)
			return false
		}
		pats = append(pats, pat)
	}
	return c.setPaths(p, pats, r.IsRecursive, r.IsExcludes, "resources.path")
}

func (c *conv) setPaths(p *policy.Policy, pats []string, recursive, excludes bool, field string) bool {
	if len(pats) > maxProduct {
		c.fail(field, "expands to more than %d paths", maxProduct)
		return false
	}
	if !excludes {
		p.Resources.Paths = pats
		p.Resources.Recursive = recursive
		return true
	}
	// Everything but these paths.
	p.Resources.Paths = []string{"s3://*"}
	p.Resources.Recursive = true
	for _, x := range pats {
		if recursive && !strings.HasSuffix(x, "/**") {
			x += "/**"
		}
		p.Resources.Excludes = append(p.Resources.Excludes, x)
	}
	return true
}

func (c *conv) bucketResources(p *policy.Policy, res map[string]*rangerResource) bool {
	pathKey := "path"
	if c.fam == famOzone {
		pathKey = "key"
		vol := res["volume"]
		if vol == nil {
			c.fail("resources.volume", "an Ozone policy needs a volume")
			return false
		}
		if vol.IsExcludes {
			c.fail("resources.volume.isExcludes", "excluding volumes is not supported")
			return false
		}
		ok := false
		for _, v := range vol.Values {
			if v == c.opts.OzoneS3Volume || v == "*" {
				ok = true
			} else {
				c.warn("resources.volume", "volume %q is outside the S3 volume %q; ignored", v, c.opts.OzoneS3Volume)
			}
		}
		if !ok {
			c.fail("resources.volume", "no volume is the S3 volume %q", c.opts.OzoneS3Volume)
			return false
		}
	}
	b := res["bucket"]
	if b == nil {
		c.fail("resources.bucket", "a volume-only policy has no Steward counterpart (Steward policies name buckets)")
		return false
	}
	if b.IsExcludes {
		c.fail("resources.bucket.isExcludes", "excluding buckets is not supported")
		return false
	}
	if b.IsRecursive {
		c.warn("resources.bucket.isRecursive", "ignored on buckets")
	}
	for _, v := range b.Values {
		if strings.Contains(v, "/") {
			c.fail("resources.bucket", "bucket %q contains '/'", v)
			return false
		}
	}
	pr := res[pathKey]
	var pats []string
	recursive, excludes := false, false
	if pr == nil {
		pats = append(pats, prefixAll("s3://", b.Values)...)
	} else {
		recursive, excludes = pr.IsRecursive, pr.IsExcludes
		if excludes {
			c.fail("resources."+pathKey+".isExcludes", "excluding paths within buckets is not supported")
			return false
		}
		if len(b.Values)*len(pr.Values) > maxProduct {
			c.fail("resources", "expands to more than %d paths", maxProduct)
			return false
		}
		for _, bv := range b.Values {
			for _, v := range pr.Values {
				pat, ok := c.objectPath("resources."+pathKey, bv, v)
				if !ok {
					c.fail("resources."+pathKey, "path %q cannot be mapped", v)
					return false
				}
				pats = append(pats, pat)
			}
		}
	}
	return c.setPaths(p, pats, recursive, excludes, "resources")
}

func prefixAll(prefix string, vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = prefix + v
	}
	return out
}

// tableResources maps hive database/table/column and trino
// catalog/schema/table/column onto "catalog.schema.table" names. Trailing
// levels that are exactly "*" (with every column) collapse into "**", which
// in Ranger matches requests that stop above them (a policy on db.*.* also
// decides "use db").
func (c *conv) tableResources(p *policy.Policy, res map[string]*rangerResource) bool {
	var levels []string
	if c.fam == famHive {
		levels = []string{"", "database", "table"}
	} else {
		levels = []string{"catalog", "schema", "table"}
	}
	type lvl struct {
		key    string
		values []string
		excl   bool
	}
	var ls []lvl
	for i, k := range levels {
		if k == "" {
			ls = append(ls, lvl{key: "catalog", values: []string{c.opts.HiveCatalog}})
			continue
		}
		r := res[k]
		if r == nil {
			// A level is missing: lower levels must be missing too.
			for _, lower := range append(levels[i+1:], "column") {
				if res[lower] != nil {
					c.fail("resources."+k, "missing, while %s is set", lower)
					return false
				}
			}
			break
		}
		if r.IsRecursive {
			c.warn("resources."+k+".isRecursive", "ignored: names are not recursive")
		}
		for _, v := range r.Values {
			if strings.ContainsAny(v, "./") {
				c.fail("resources."+k, "name %q contains '.' or '/'", v)
				return false
			}
		}
		ls = append(ls, lvl{key: k, values: r.Values, excl: r.IsExcludes})
	}
	col := res["column"]
	if col != nil {
		if col.IsExcludes {
			c.fail("resources.column.isExcludes", "excluding columns is not supported (Steward lists the columns a policy covers)")
			return false
		}
		if !(len(col.Values) == 1 && col.Values[0] == "*") {
			for _, v := range col.Values {
				if strings.ContainsAny(v, "./") {
					c.fail("resources.column", "column %q contains '.' or '/'", v)
					return false
				}
			}
			p.Resources.Columns = append([]string(nil), col.Values...)
		}
	}
	// Collapse trailing "*" levels when every column is covered.
	collapsed := false
	if len(p.Resources.Columns) == 0 {
		for len(ls) > 1 {
			last := ls[len(ls)-1]
			if last.excl || len(last.values) != 1 || last.values[0] != "*" {
				break
			}
			ls = ls[:len(ls)-1]
			collapsed = true
		}
	}
	if len(p.Resources.Columns) > 0 && len(ls) < 3 {
		c.fail("resources.column", "columns need a table")
		return false
	}
	// Included values form the patterns; excluded levels become "*" there
	// and exclusion patterns of their own.
	n := 1
	for _, l := range ls {
		if !l.excl {
			n *= len(l.values)
			if n > maxProduct {
				c.fail("resources", "expands to more than %d names", maxProduct)
				return false
			}
		}
	}
	var pats []string
	var build func(i int, prefix []string)
	build = func(i int, prefix []string) {
		if i == len(ls) {
			s := strings.Join(prefix, ".")
			if collapsed {
				s += ".**"
			}
			pats = append(pats, s)
			return
		}
		if ls[i].excl {
			build(i+1, append(prefix, "*"))
			return
		}
		for _, v := range ls[i].values {
			build(i+1, append(append([]string(nil), prefix...), v))
		}
	}
	build(0, nil)
	if len(ls) == 1 && collapsed && ls[0].values[0] == "*" && !ls[0].excl {
		pats = []string{"**"}
	}
	p.Resources.Tables = pats
	for i, l := range ls {
		if !l.excl {
			continue
		}
		if len(l.values) > maxProduct {
			c.fail("resources."+l.key, "more than %d excluded names", maxProduct)
			return false
		}
		for _, v := range l.values {
			segs := make([]string, len(ls))
			for j := range segs {
				segs[j] = "*"
				if !ls[j].excl && len(ls[j].values) == 1 {
					segs[j] = ls[j].values[0]
				}
			}
			segs[i] = v
			x := strings.Join(segs, ".")
			if collapsed {
				x += ".**"
			}
			p.Resources.Excludes = append(p.Resources.Excludes, x)
		}
	}
	return true
}
