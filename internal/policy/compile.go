package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Limits on one policy, so that a policy set cannot make the engine slow or
// large by accident.
const (
	MaxIDLen            = 128
	MaxItemsPerList     = 1000
	MaxPrincipalsInItem = 10_000
	MaxPatterns         = 1000
	maxFilterLen        = 4096
)

// cpolicy is a compiled policy. Fields the evaluator reads for every
// candidate come first, to share cache lines.
type cpolicy struct {
	enabled, audit, denyAllElse bool // copies of p's, so the hot path does not read p
	tag                         bool
	anyone                      bool
	order                       int32
	level                       int

	allow, deny, allowEx, denyEx []citem
	p                            *Policy // read for the deciding policy only

	res      cres
	tags     []ctagMatch
	validity []csched

	// signatures of every principal named in allow and deny items; a
	// request none of whose principals matches cannot match an item, so
	// the policy is skipped (unless anyone, which deny_all_else implies).
	sigs []sig

	masks []cmask
	rows  []crow
}

type cres struct {
	kind     ResourceKind // 0 when the policy has no resources (tag-only)
	pats     []*pattern
	excludes []*pattern
	cols     []*pattern // nil: every column and the table itself
	colStar  bool       // cols include "*": table-level requests match too
}

type ctagMatch struct {
	name     string
	attrs    map[string]string
	minClass Classification
}

// principals and the items that embed them are laid out in the order
// the evaluator reads them, and conditions are behind a pointer that is nil
// for items without conditions, so that evaluating an item touches as few
// cache lines as possible.
type principals struct {
	anyone bool  // group "public" or user "{USER}"
	sigs   []sig // of every name below
	// uh, gh, rh are the hashes of users, groups, roles, in order.
	uh, gh, rh []uint64
	users      []string // sorted by nameHash (see hashSorted)
	groups     []string
	roles      []string
}

type citem struct {
	access uint16 // bit per Access
	principals
	cond *ccond // nil: no conditions
}

type cmask struct {
	principals
	typ  MaskType
	expr string
	cond *ccond
}

type crow struct {
	principals
	filter   string
	hasMacro bool
	cond     *ccond
}

// fieldError is a validation error at a field path inside one policy.
type fieldError struct {
	field string
	msg   string
}

func (e *fieldError) Error() string {
	if e.field == "" {
		return e.msg
	}
	return e.field + ": " + e.msg
}

func ferr(field, format string, args ...any) *fieldError {
	return &fieldError{field: field, msg: fmt.Sprintf(format, args...)}
}

// compilePolicy validates p and compiles it. Errors are *fieldError naming
// the field.
func compilePolicy(p *Policy) (*cpolicy, *fieldError) {
	if p.ID == "" {
		return nil, ferr("id", "missing")
	}
	if len(p.ID) > MaxIDLen {
		return nil, ferr("id", "longer than %d bytes", MaxIDLen)
	}
	for _, r := range p.ID {
		if !(r == '-' || r == '_' || r == '.' || r == ':' || r == '/' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return nil, ferr("id", "%q may contain only letters, digits and - _ . : /", p.ID)
		}
	}
	if p.Version < 0 {
		return nil, ferr("version", "must not be negative")
	}
	cp := &cpolicy{p: p, level: p.Priority.level(), tag: len(p.Tags) > 0,
		enabled: p.Enabled, audit: p.Audit, denyAllElse: p.DenyAllElse}
	switch p.Priority {
	case "", PriorityNormal, PriorityOverride:
	default:
		return nil, ferr("priority", "unknown priority %q (normal or override)", p.Priority)
	}
	kind := p.Kind
	switch kind {
	case "", KindAccess, KindMasking, KindRowFilter:
	default:
		return nil, ferr("kind", "unknown kind %q (access, masking or rowfilter)", p.Kind)
	}
	if kind == "" {
		kind = KindAccess
	}

	// Resources.
	r := &p.Resources
	n := 0
	for _, set := range []bool{len(r.Paths) > 0, len(r.Datasets) > 0, len(r.Tables) > 0} {
		if set {
			n++
		}
	}
	if n > 1 {
		return nil, ferr("resources", "set only one of paths, datasets or tables")
	}
	if n == 0 && len(p.Tags) == 0 {
		return nil, ferr("resources", "a policy needs resources (paths, datasets or tables) or tags")
	}
	if len(r.Columns) > 0 && len(r.Tables) == 0 {
		return nil, ferr("resources.columns", "columns need tables")
	}
	if len(r.Excludes) > 0 && n == 0 {
		return nil, ferr("resources.excludes", "excludes need paths, datasets or tables")
	}
	var (
		field string
		list  []string
		sep   byte = '.'
	)
	switch {
	case len(r.Paths) > 0:
		cp.res.kind, field, list, sep = ResourceObject, "paths", r.Paths, '/'
	case len(r.Datasets) > 0:
		cp.res.kind, field, list = ResourceDataset, "datasets", r.Datasets
	case len(r.Tables) > 0:
		cp.res.kind, field, list = ResourceTable, "tables", r.Tables
	}
	if r.Recursive && cp.res.kind != ResourceObject {
		return nil, ferr("resources.recursive", "applies only to paths")
	}
	if len(list) > MaxPatterns || len(r.Excludes) > MaxPatterns || len(r.Columns) > MaxPatterns {
		return nil, ferr("resources", "more than %d patterns", MaxPatterns)
	}
	for i, s := range list {
		pt, err := compilePattern(s, sep, r.Recursive)
		if err != nil {
			return nil, ferr(fmt.Sprintf("resources.%s[%d]", field, i), "%v", err)
		}
		cp.res.pats = append(cp.res.pats, pt)
	}
	for i, s := range r.Excludes {
		pt, err := compilePattern(s, sep, false)
		if err != nil {
			return nil, ferr(fmt.Sprintf("resources.excludes[%d]", i), "%v", err)
		}
		cp.res.excludes = append(cp.res.excludes, pt)
	}
	for i, s := range r.Columns {
		if strings.ContainsAny(s, "./") {
			return nil, ferr(fmt.Sprintf("resources.columns[%d]", i), "column %q must be one name", s)
		}
		pt, err := compilePattern(s, '.', false)
		if err != nil {
			return nil, ferr(fmt.Sprintf("resources.columns[%d]", i), "%v", err)
		}
		if s == "*" {
			cp.res.colStar = true
		}
		cp.res.cols = append(cp.res.cols, pt)
	}

	// Tags.
	for i, t := range p.Tags {
		f := fmt.Sprintf("tags[%d]", i)
		switch {
		case t.Name != "" && t.MinClassification != Unclassified:
			return nil, ferr(f, "set either name or classification, not both")
		case t.Name == "" && t.MinClassification == Unclassified:
			return nil, ferr(f, "needs a tag name or a classification")
		case t.MinClassification > C4:
			return nil, ferr(f+".classification", "must be C1..C4")
		case t.Name == "" && len(t.Attrs) > 0:
			return nil, ferr(f+".attrs", "attributes need a tag name")
		}
		cp.tags = append(cp.tags, ctagMatch{name: t.Name, attrs: t.Attrs, minClass: t.MinClassification})
	}

	for i := range p.Validity {
		s, err := compileSchedule(&p.Validity[i])
		if err != nil {
			return nil, ferr(fmt.Sprintf("validity[%d]", i), "%v", err)
		}
		cp.validity = append(cp.validity, s)
	}

	// Items, by kind.
	hasAccess := len(p.Allow)+len(p.Deny)+len(p.AllowExceptions)+len(p.DenyExceptions) > 0
	switch kind {
	case KindAccess:
		if len(p.Masks) > 0 {
			return nil, ferr("masks", "only masking policies have masks")
		}
		if len(p.RowFilters) > 0 {
			return nil, ferr("row_filters", "only rowfilter policies have row filters")
		}
		if !hasAccess && !p.DenyAllElse {
			return nil, ferr("allow", "an access policy needs allow or deny items")
		}
		var fe *fieldError
		if cp.allow, fe = compileItems("allow", p.Allow); fe != nil {
			return nil, fe
		}
		if cp.deny, fe = compileItems("deny", p.Deny); fe != nil {
			return nil, fe
		}
		if cp.allowEx, fe = compileItems("allow_exceptions", p.AllowExceptions); fe != nil {
			return nil, fe
		}
		if cp.denyEx, fe = compileItems("deny_exceptions", p.DenyExceptions); fe != nil {
			return nil, fe
		}
		if fe := contradictions(cp); fe != nil {
			return nil, fe
		}
		for _, l := range [][]citem{cp.allow, cp.deny} {
			for i := range l {
				cp.anyone = cp.anyone || l[i].anyone
				cp.sigs = append(cp.sigs, l[i].sigs...)
			}
		}
		slices.Sort(cp.sigs)
		cp.sigs = slices.Compact(cp.sigs)
		cp.anyone = cp.anyone || p.DenyAllElse
	case KindMasking, KindRowFilter:
		if hasAccess || p.DenyAllElse {
			return nil, ferr("allow", "%s policies have no allow, deny or exception items and no deny_all_else", kind)
		}
		if cp.res.kind != ResourceTable && cp.res.kind != 0 {
			return nil, ferr("resources", "%s policies apply to tables", kind)
		}
		if kind == KindMasking {
			if len(p.RowFilters) > 0 {
				return nil, ferr("row_filters", "only rowfilter policies have row filters")
			}
			if len(p.Masks) == 0 {
				return nil, ferr("masks", "a masking policy needs mask items")
			}
			if len(p.Masks) > MaxItemsPerList {
				return nil, ferr("masks", "more than %d items", MaxItemsPerList)
			}
			for i := range p.Masks {
				m := &p.Masks[i]
				f := fmt.Sprintf("masks[%d]", i)
				pr, fe := compilePrincipals(f, m.Users, m.Groups, m.Roles)
				if fe != nil {
					return nil, fe
				}
				switch m.Type {
				case MaskRedact, MaskShowLast4, MaskShowFirst4, MaskHash, MaskNull, MaskDateShowYear, MaskNone:
					if m.Expr != "" {
						return nil, ferr(f+".expr", "only custom masks have an expression")
					}
				case MaskCustom:
					if m.Expr == "" || !strings.Contains(m.Expr, "{col}") {
						return nil, ferr(f+".expr", "a custom mask needs an expression using {col}")
					}
					if len(m.Expr) > maxFilterLen || strings.ContainsAny(m.Expr, ";") {
						return nil, ferr(f+".expr", "must be one SQL expression of at most %d bytes, without ';'", maxFilterLen)
					}
				case "":
					return nil, ferr(f+".type", "missing")
				default:
					return nil, ferr(f+".type", "unknown mask type %q", m.Type)
				}
				cc, err := compileConditions(&m.Conditions)
				if err != nil {
					return nil, ferr(f+".conditions", "%v", err)
				}
				cp.masks = append(cp.masks, cmask{principals: pr, typ: m.Type, expr: m.Expr, cond: cc.ref()})
			}
		} else {
			if len(p.Masks) > 0 {
				return nil, ferr("masks", "only masking policies have masks")
			}
			if len(p.RowFilters) == 0 {
				return nil, ferr("row_filters", "a rowfilter policy needs row filter items")
			}
			if len(p.RowFilters) > MaxItemsPerList {
				return nil, ferr("row_filters", "more than %d items", MaxItemsPerList)
			}
			if len(r.Columns) > 0 {
				return nil, ferr("resources.columns", "row filters apply to whole tables")
			}
			for i := range p.RowFilters {
				rf := &p.RowFilters[i]
				f := fmt.Sprintf("row_filters[%d]", i)
				pr, fe := compilePrincipals(f, rf.Users, rf.Groups, rf.Roles)
				if fe != nil {
					return nil, fe
				}
				hasMacro, err := checkFilter(rf.Filter)
				if err != nil {
					return nil, ferr(f+".filter", "%v", err)
				}
				cc, err := compileConditions(&rf.Conditions)
				if err != nil {
					return nil, ferr(f+".conditions", "%v", err)
				}
				cp.rows = append(cp.rows, crow{principals: pr, filter: rf.Filter, hasMacro: hasMacro, cond: cc.ref()})
			}
		}
	}
	return cp, nil
}

// checkFilter validates a row-filter predicate: bounded, one expression,
// only known macros.
func checkFilter(f string) (hasMacro bool, err error) {
	if len(f) > maxFilterLen {
		return false, fmt.Errorf("longer than %d bytes", maxFilterLen)
	}
	if strings.Contains(f, ";") {
		return false, fmt.Errorf("must be one predicate, without ';'")
	}
	for i := 0; i < len(f); i++ {
		if f[i] != '{' {
			continue
		}
		end := strings.IndexByte(f[i:], '}')
		if end < 0 {
			return false, fmt.Errorf("unterminated macro at byte %d", i)
		}
		switch m := f[i : i+end+1]; m {
		case macroUser, macroGroups, macroRoles:
			hasMacro = true
		default:
			return false, fmt.Errorf("unknown macro %s (known: {USER}, {GROUPS}, {ROLES})", m)
		}
		i += end
	}
	return hasMacro, nil
}

func compileItems(field string, items []Item) ([]citem, *fieldError) {
	if len(items) > MaxItemsPerList {
		return nil, ferr(field, "more than %d items", MaxItemsPerList)
	}
	out := make([]citem, 0, len(items))
	for i := range items {
		it := &items[i]
		f := fmt.Sprintf("%s[%d]", field, i)
		pr, fe := compilePrincipals(f, it.Users, it.Groups, it.Roles)
		if fe != nil {
			return nil, fe
		}
		if len(it.Accesses) == 0 {
			return nil, ferr(f+".accesses", "missing")
		}
		var bits uint16
		for j, a := range it.Accesses {
			if a == AccessNone || a >= numAccess {
				return nil, ferr(fmt.Sprintf("%s.accesses[%d]", f, j), "unknown access type %d", uint8(a))
			}
			bits |= 1 << a
		}
		cc, err := compileConditions(&it.Conditions)
		if err != nil {
			return nil, ferr(f+".conditions", "%v", err)
		}
		out = append(out, citem{principals: pr, access: bits, cond: cc.ref()})
	}
	return out, nil
}

func compilePrincipals(field string, users, groups, roles []string) (principals, *fieldError) {
	var pr principals
	if len(users)+len(groups)+len(roles) == 0 {
		return pr, ferr(field, "names no users, groups or roles")
	}
	if len(users)+len(groups)+len(roles) > MaxPrincipalsInItem {
		return pr, ferr(field, "more than %d principals", MaxPrincipalsInItem)
	}
	check := func(kind string, names []string) ([]string, *fieldError) {
		out := make([]string, 0, len(names))
		for i, n := range names {
			if strings.TrimSpace(n) == "" || len(n) > 256 {
				return nil, ferr(fmt.Sprintf("%s.%s[%d]", field, kind, i), "invalid name %q", n)
			}
			if strings.ContainsAny(n, "{}") && !(kind == "users" && n == macroUser) {
				return nil, ferr(fmt.Sprintf("%s.%s[%d]", field, kind, i), "unknown macro in %q (users know only {USER})", n)
			}
			out = append(out, n)
		}
		slices.Sort(out)
		return slices.Compact(out), nil
	}
	var fe *fieldError
	if pr.users, fe = check("users", users); fe != nil {
		return pr, fe
	}
	if pr.groups, fe = check("groups", groups); fe != nil {
		return pr, fe
	}
	if pr.roles, fe = check("roles", roles); fe != nil {
		return pr, fe
	}
	if slices.Contains(pr.groups, Public) || slices.Contains(pr.users, macroUser) {
		pr.anyone = true
	}
	for _, l := range [][]string{pr.users, pr.groups, pr.roles} {
		for _, n := range l {
			pr.sigs = append(pr.sigs, sigOf(n))
		}
	}
	slices.Sort(pr.sigs)
	pr.sigs = slices.Compact(pr.sigs)
	pr.uh, pr.gh, pr.rh = hashSorted(pr.users), hashSorted(pr.groups), hashSorted(pr.roles)
	return pr, nil
}

// contradictions rejects policies whose items contradict each other
// unconditionally, which always means a mistake:
//   - a principal named in an unconditional allow item and in an
//     unconditional deny item for the same access, with no deny exception
//     item naming that principal (the allow could never take effect);
//   - a principal named in an unconditional allow item and in an
//     unconditional allow exception for the same access (likewise).
//
// Overlaps through groups ("alice" allowed, her group denied) are not
// contradictions: they are what exceptions and deny-over-allow are for.
func contradictions(cp *cpolicy) *fieldError {
	check := func(other []citem, otherField string, exceptions []citem) *fieldError {
		for i := range cp.allow {
			a := &cp.allow[i]
			if !a.cond.empty() {
				continue
			}
			for j := range other {
				o := &other[j]
				if !o.cond.empty() || a.access&o.access == 0 {
					continue
				}
				for _, k := range []struct {
					kind string
					a, o []string
				}{{"user", a.users, o.users}, {"group", a.groups, o.groups}, {"role", a.roles, o.roles}} {
					for _, n := range k.a {
						if !slices.Contains(k.o, n) || excepted(exceptions, k.kind, n) {
							continue
						}
						acc := a.access & o.access
						return ferr(fmt.Sprintf("allow[%d]", i), "contradicts %s[%d]: %s %q is both allowed and %s %s unconditionally",
							otherField, j, k.kind, n, map[string]string{"deny": "denied", "allow_exceptions": "excepted from"}[otherField], accessList(acc))
					}
				}
			}
		}
		return nil
	}
	if fe := check(cp.deny, "deny", cp.denyEx); fe != nil {
		return fe
	}
	return check(cp.allowEx, "allow_exceptions", nil)
}

func excepted(items []citem, kind, name string) bool {
	for i := range items {
		var l []string
		switch kind {
		case "user":
			l = items[i].users
		case "group":
			l = items[i].groups
		default:
			l = items[i].roles
		}
		if slices.Contains(l, name) {
			return true
		}
	}
	return false
}

func accessList(bits uint16) string {
	var parts []string
	for a := AccessRead; a < numAccess; a++ {
		if bits&(1<<a) != 0 {
			parts = append(parts, a.String())
		}
	}
	return "for " + strings.Join(parts, ", ")
}
