package ranger

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/policy"
)

// conv converts one Ranger policy, collecting issues.
type conv struct {
	opts   *Options
	res    *Result
	index  int
	where  string // Ranger id, or "#n"
	rp     *rangerPolicy
	fam    family
	failed bool
}

func (c *conv) issue(sev Severity, field, format string, args ...any) {
	is := Issue{PolicyID: c.where, Field: field, Message: fmt.Sprintf(format, args...), Severity: sev}
	if c.rp != nil {
		is.Name, is.Service = c.rp.Name, c.rp.Service
	}
	c.res.Report = append(c.res.Report, is)
}

func (c *conv) fail(field, format string, args ...any) {
	c.failed = true
	c.issue(SeverityError, field, format, args...)
}

func (c *conv) warn(field, format string, args ...any) {
	c.issue(SeverityWarning, field, format, args...)
}

// convert returns the Steward policy, or nil if the policy is skipped (an
// error issue says why).
func (c *conv) convert() *policy.Policy {
	rp := c.rp
	p := &policy.Policy{
		Version:     max(rp.Version, 0),
		Name:        rp.Name,
		Description: rp.Description,
		Enabled:     rp.IsEnabled == nil || *rp.IsEnabled,
		Audit:       rp.IsAuditEnabled == nil || *rp.IsAuditEnabled,
		DenyAllElse: rp.IsDenyAllElse,
		Labels:      map[string]string{"source": "ranger"},
	}
	if p.Version == 0 {
		p.Version = 1
	}
	if rp.Service != "" {
		p.Labels["ranger.service"] = rp.Service
	}
	if rp.ID != "" {
		p.Labels["ranger.id"] = rp.ID.String()
	}
	if rp.GUID != "" {
		p.Labels["ranger.guid"] = rp.GUID
	}
	if rp.ZoneName != "" {
		p.Labels["ranger.zone"] = rp.ZoneName
	}
	if len(rp.PolicyLabels) > 0 {
		p.Labels["ranger.labels"] = strings.Join(rp.PolicyLabels, ",")
	}

	switch rp.PolicyType {
	case 0:
		p.Kind = policy.KindAccess
	case 1:
		p.Kind = policy.KindMasking
	case 2:
		p.Kind = policy.KindRowFilter
	default:
		c.fail("policyType", "policy type %d is not access (0), masking (1) or row filter (2)", rp.PolicyType)
		return nil
	}
	switch rp.PolicyPriority {
	case 0:
		p.Priority = policy.PriorityNormal
	case 1:
		p.Priority = policy.PriorityOverride
	default:
		c.fail("policyPriority", "priority %d is not normal (0) or override (1)", rp.PolicyPriority)
		return nil
	}
	if len(rp.AdditionalResources) > 0 {
		c.fail("additionalResources", "policies with additional resource sets are not supported; split them into one policy per resource set")
		return nil
	}
	if len(rp.Conditions) > 0 {
		c.fail("conditions", "policy-level conditions (%s) are not supported", condTypes(rp.Conditions))
		return nil
	}
	if p.Kind != policy.KindAccess && rp.IsDenyAllElse {
		c.warn("isDenyAllElse", "ignored: deny-all-else applies only to access policies")
		p.DenyAllElse = false
	}

	// Family.
	fam, ok := serviceFamily(rp.ServiceType)
	if !ok {
		fam, ok = inferFamily(rp.Resources)
		if !ok {
			c.fail("serviceType", "unknown service type %q and resources %s name no supported service", rp.ServiceType, resourceKeys(rp.Resources))
			return nil
		}
		if rp.ServiceType != "" {
			c.warn("serviceType", "unknown service type %q; treated as %s from its resources", rp.ServiceType, fam)
		}
	}
	c.fam = fam

	// Resources.
	if !c.resources(p) {
		return nil
	}
	if p.Kind != policy.KindAccess && len(p.Resources.Paths) > 0 {
		c.fail("policyType", "masking and row-filter policies apply to tables, not paths")
		return nil
	}

	// Validity.
	for i, s := range rp.ValiditySchedules {
		sch, ok := c.schedule(fmt.Sprintf("validitySchedules[%d]", i), s)
		if !ok {
			return nil
		}
		p.Validity = append(p.Validity, sch)
	}

	// Items.
	switch p.Kind {
	case policy.KindAccess:
		if len(rp.DataMaskPolicyItems) > 0 || len(rp.RowFilterPolicyItems) > 0 {
			c.warn("dataMaskPolicyItems", "ignored: an access policy's mask and row-filter items have no effect in Ranger either")
		}
		p.Allow = c.items("policyItems", rp.PolicyItems, roleAllow)
		p.Deny = c.items("denyPolicyItems", rp.DenyPolicyItems, roleDeny)
		p.AllowExceptions = c.items("allowExceptions", rp.AllowExceptions, roleAllowEx)
		p.DenyExceptions = c.items("denyExceptions", rp.DenyExceptions, roleDenyEx)
		if c.failed {
			return nil
		}
		if len(p.Allow)+len(p.Deny) == 0 && !p.DenyAllElse {
			if len(p.AllowExceptions)+len(p.DenyExceptions) > 0 {
				c.fail("policyItems", "no allow or deny items remain (exceptions alone decide nothing)")
			} else {
				c.fail("policyItems", "no allow or deny items remain")
			}
			return nil
		}
	case policy.KindMasking:
		c.otherItems("policyItems")
		p.Masks = c.masks(rp.DataMaskPolicyItems)
		if c.failed {
			return nil
		}
		if len(p.Masks) == 0 {
			c.fail("dataMaskPolicyItems", "no mask items remain")
			return nil
		}
	case policy.KindRowFilter:
		c.otherItems("policyItems")
		if len(p.Resources.Columns) > 0 {
			c.warn("resources.column", "ignored: row filters apply to whole tables")
			p.Resources.Columns = nil
		}
		p.RowFilters = c.rows(rp.RowFilterPolicyItems)
		if c.failed {
			return nil
		}
		if len(p.RowFilters) == 0 {
			c.fail("rowFilterPolicyItems", "no row filter items remain")
			return nil
		}
	}
	if c.failed {
		return nil
	}
	p.ID = c.policyID()
	return p
}

func (c *conv) otherItems(field string) {
	rp := c.rp
	if len(rp.PolicyItems)+len(rp.DenyPolicyItems)+len(rp.AllowExceptions)+len(rp.DenyExceptions) > 0 {
		c.warn(field, "ignored: allow, deny and exception items have no effect in a masking or row-filter policy")
	}
}

// policyID builds "<prefix>-<service>-<id>" from allowed characters.
func (c *conv) policyID() string {
	id := c.rp.ID.String()
	if id == "" {
		id = c.rp.GUID
	}
	if id == "" {
		id = "n" + strconv.Itoa(c.index+1)
	}
	parts := []string{c.opts.IDPrefix}
	if c.rp.Service != "" {
		parts = append(parts, c.rp.Service)
	}
	parts = append(parts, id)
	s := sanitizeID(strings.Join(parts, "-"))
	if len(s) > policy.MaxIDLen {
		s = s[:policy.MaxIDLen]
	}
	return s
}

func sanitizeID(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || r == ':' || r == '/' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, s)
}

func resourceKeys(res map[string]*rangerResource) string {
	keys := make([]string, 0, len(res))
	for k := range res {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return "[" + strings.Join(keys, ", ") + "]"
}

func condTypes(cs []rangerCondition) string {
	var ts []string
	for _, c := range cs {
		ts = append(ts, c.Type)
	}
	return strings.Join(ts, ", ")
}

// Ranger's validity time format.
const rangerTimeLayout = "2006/01/02 15:04:05"

func (c *conv) schedule(field string, s rangerSchedule) (policy.Schedule, bool) {
	var out policy.Schedule
	if len(s.Recurrences) > 0 {
		c.fail(field+".recurrences", "recurring validity schedules are not supported")
		return out, false
	}
	tz := s.TimeZone
	if tz == "" {
		tz = c.opts.TimeZone
	}
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "Local" {
		c.fail(field+".timeZone", "unknown time zone %q", tz)
		return out, false
	}
	out.TimeZone = tz
	if tz == "UTC" {
		out.TimeZone = ""
	}
	parse := func(f, v string) (time.Time, bool) {
		if strings.TrimSpace(v) == "" {
			return time.Time{}, true
		}
		t, err := time.ParseInLocation(rangerTimeLayout, strings.TrimSpace(v), loc)
		if err != nil {
			c.fail(field+"."+f, "%q is not a time of the form yyyy/MM/dd HH:mm:ss", v)
			return t, false
		}
		return t.UTC(), true
	}
	var ok bool
	if out.Start, ok = parse("startTime", s.StartTime); !ok {
		return out, false
	}
	if out.End, ok = parse("endTime", s.EndTime); !ok {
		return out, false
	}
	if !out.End.IsZero() {
		// Ranger's end time is inclusive to the second; Steward's is exclusive.
		out.End = out.End.Add(time.Second)
	}
	if !out.Start.IsZero() && !out.End.IsZero() && !out.End.After(out.Start) {
		c.fail(field, "end time %s is before start time %s", s.EndTime, s.StartTime)
		return out, false
	}
	return out, true
}

// itemRole is the role of an item list, which decides how an unmappable
// piece is approximated: always towards less access.
type itemRole int

const (
	roleAllow   itemRole = iota // drop what cannot be mapped
	roleDeny                    // keep unconditionally
	roleAllowEx                 // keep unconditionally
	roleDenyEx                  // drop
	roleMask                    // keep unconditionally (unless it exempts)
	roleRow                     // keep unconditionally (unless it exempts)
)

func (r itemRole) widens() bool { return r == roleAllow || r == roleDenyEx }

// principals maps users, groups and roles. {OWNER} and other macros cannot
// be mapped.
func (c *conv) principals(field string, it *rangerItem) (users, groups, roles []string, dropped []string) {
	for _, u := range it.Users {
		switch {
		case u == "{USER}":
			users = append(users, u)
		case strings.Contains(u, "{") || strings.TrimSpace(u) == "":
			dropped = append(dropped, "user "+strconv.Quote(u))
		default:
			users = append(users, u)
		}
	}
	for _, g := range it.Groups {
		if strings.ContainsAny(g, "{}") || strings.TrimSpace(g) == "" {
			dropped = append(dropped, "group "+strconv.Quote(g))
			continue
		}
		groups = append(groups, g)
	}
	for _, r := range it.Roles {
		if strings.ContainsAny(r, "{}") || strings.TrimSpace(r) == "" {
			dropped = append(dropped, "role "+strconv.Quote(r))
			continue
		}
		roles = append(roles, r)
	}
	return users, groups, roles, dropped
}

// conditions maps item conditions. ok is false when some condition cannot
// be mapped (the caller then approximates by role).
func (c *conv) conditions(field string, cs []rangerCondition) (policy.Conditions, []string) {
	var out policy.Conditions
	var bad []string
	for i, cond := range cs {
		t := strings.ToLower(cond.Type)
		if strings.Contains(t, "ip") && strings.Contains(t, "range") {
			for _, v := range cond.Values {
				pfx, ok := ipRange(v)
				if !ok {
					bad = append(bad, fmt.Sprintf("conditions[%d] ip range %q", i, v))
					continue
				}
				out.IPRanges = append(out.IPRanges, pfx)
			}
			if len(cond.Values) == 0 {
				bad = append(bad, fmt.Sprintf("conditions[%d] empty ip range", i))
			}
			continue
		}
		bad = append(bad, fmt.Sprintf("conditions[%d] of type %q", i, cond.Type))
	}
	return out, bad
}

// ipRange maps Ranger's IP matcher values: an address, a CIDR prefix, or
// an IPv4 address with trailing "*" octets ("10.1.*").
func ipRange(v string) (netip.Prefix, bool) {
	v = strings.TrimSpace(v)
	if p, err := netip.ParsePrefix(v); err == nil {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(v); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	if v == "*" {
		return netip.MustParsePrefix("0.0.0.0/0"), true
	}
	parts := strings.Split(strings.TrimSuffix(v, "."), ".")
	if len(parts) > 4 || len(parts) == 0 {
		return netip.Prefix{}, false
	}
	var oct [4]byte
	n := 0
	for i, p := range parts {
		if p == "*" {
			for _, q := range parts[i:] {
				if q != "*" {
					return netip.Prefix{}, false
				}
			}
			break
		}
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 || x > 255 {
			return netip.Prefix{}, false
		}
		oct[i] = byte(x)
		n++
	}
	if n == len(parts) && n < 4 { // "10.1" without a star is not a range
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(netip.AddrFrom4(oct), n*8), true
}

// accesses maps an item's access types.
func (c *conv) accesses(field string, as []rangerAccess) ([]policy.Access, []string) {
	var out []policy.Access
	var notes []string
	for i, a := range as {
		if a.IsAllowed != nil && !*a.IsAllowed {
			continue // not granted in Ranger either
		}
		t := strings.ToLower(strings.TrimSpace(a.Type))
		fam := c.fam
		if fam == famTag {
			svc, rest, ok := strings.Cut(t, ":")
			f, known := serviceFamily(svc)
			if !ok || !known || f == famTag {
				notes = append(notes, fmt.Sprintf("accesses[%d] %q: a tag access type must be <service type>:<access>; dropped", i, a.Type))
				continue
			}
			fam, t = f, rest
		}
		m, ok := accessTables[fam][t]
		if !ok {
			notes = append(notes, fmt.Sprintf("accesses[%d] %q: unknown %s access type; dropped", i, a.Type, fam))
			continue
		}
		if m.Approx != "" {
			notes = append(notes, fmt.Sprintf("accesses[%d] %q: %s", i, a.Type, m.Approx))
		}
		for _, x := range m.To {
			if !slices.Contains(out, x) {
				out = append(out, x)
			}
		}
	}
	slices.Sort(out)
	return out, notes
}

func (c *conv) items(field string, in []rangerItem, role itemRole) []policy.Item {
	var out []policy.Item
	for i := range in {
		it := &in[i]
		f := fmt.Sprintf("%s[%d]", field, i)
		users, groups, roles, dropped := c.principals(f, it)
		for _, d := range dropped {
			c.warn(f, "%s has no Steward counterpart; dropped from the item", d)
		}
		if len(users)+len(groups)+len(roles) == 0 {
			if len(dropped) > 0 || len(it.Accesses) > 0 {
				c.warn(f, "names no mappable users, groups or roles; item dropped%s", widenNote(role))
			}
			continue
		}
		accs, notes := c.accesses(f, it.Accesses)
		for _, n := range notes {
			c.warn(f, "%s%s", n, ifs(role.widens() || len(notes) == 0, "", " (this deny or exception covers less)"))
		}
		if it.DelegateAdmin && role == roleAllow && !slices.Contains(accs, policy.AccessAdmin) {
			accs = append(accs, policy.AccessAdmin)
			slices.Sort(accs)
			c.warn(f, "delegateAdmin mapped to the admin access")
		}
		if len(accs) == 0 {
			c.warn(f, "grants no mappable access; item dropped%s", widenNote(role))
			continue
		}
		conds, bad := c.conditions(f, it.Conditions)
		if len(bad) > 0 {
			if role.widens() {
				c.warn(f, "%s cannot be mapped; item dropped (grants less)", strings.Join(bad, ", "))
				continue
			}
			c.warn(f, "%s cannot be mapped; the item applies without it (denies more)", strings.Join(bad, ", "))
		}
		out = append(out, policy.Item{Users: users, Groups: groups, Roles: roles, Accesses: accs, Conditions: conds})
	}
	return out
}

func widenNote(role itemRole) string {
	if role.widens() {
		return ""
	}
	return " (this deny or exception no longer applies: access may be wider than in Ranger)"
}

func ifs(b bool, a, x string) string {
	if b {
		return a
	}
	return x
}

var maskTypes = map[string]policy.MaskType{
	"MASK":                 policy.MaskRedact,
	"MASK_SHOW_LAST_4":     policy.MaskShowLast4,
	"MASK_SHOW_FIRST_4":    policy.MaskShowFirst4,
	"MASK_HASH":            policy.MaskHash,
	"MASK_NULL":            policy.MaskNull,
	"MASK_DATE_SHOW_YEAR":  policy.MaskDateShowYear,
	"CUSTOM":               policy.MaskCustom,
	"MASK_NONE":            policy.MaskNone,
	"MASK_SHOW_LAST_4_ALL": policy.MaskShowLast4,
}

func (c *conv) masks(in []rangerMaskItem) []policy.MaskItem {
	var out []policy.MaskItem
	for i := range in {
		it := &in[i]
		f := fmt.Sprintf("dataMaskPolicyItems[%d]", i)
		users, groups, roles, dropped := c.principals(f, &it.rangerItem)
		for _, d := range dropped {
			c.warn(f, "%s has no Steward counterpart; dropped from the item", d)
		}
		if len(users)+len(groups)+len(roles) == 0 {
			c.warn(f, "names no mappable users, groups or roles; item dropped")
			continue
		}
		if it.DataMaskInfo == nil || it.DataMaskInfo.DataMaskType == "" {
			c.warn(f+".dataMaskInfo", "missing mask type; masked to NULL")
			out = append(out, policy.MaskItem{Users: users, Groups: groups, Roles: roles, Type: policy.MaskNull})
			continue
		}
		info := it.DataMaskInfo
		name := strings.ToUpper(strings.TrimSpace(info.DataMaskType))
		if _, rest, ok := strings.Cut(name, ":"); ok { // tag services: "hive:MASK"
			name = rest
		}
		mt, ok := maskTypes[name]
		m := policy.MaskItem{Users: users, Groups: groups, Roles: roles, Type: mt}
		if !ok {
			c.warn(f+".dataMaskInfo.dataMaskType", "unknown mask type %q; masked to NULL", info.DataMaskType)
			m.Type = policy.MaskNull
		}
		if m.Type == policy.MaskCustom {
			expr := strings.TrimSpace(info.ValueExpr)
			switch {
			case expr == "":
				c.warn(f+".dataMaskInfo.valueExpr", "custom mask without an expression; masked to NULL")
				m.Type = policy.MaskNull
			case strings.Contains(expr, ";") || len(expr) > 4096:
				c.warn(f+".dataMaskInfo.valueExpr", "custom mask expression is not one expression of at most 4096 bytes; masked to NULL")
				m.Type = policy.MaskNull
			case !strings.Contains(expr, "{col}"):
				// Ranger allows a constant custom mask ('***'); Steward wants
				// {col}, so wrap the constant in a CASE that mentions it.
				m.Expr = "CASE WHEN {col} IS NULL THEN NULL ELSE " + expr + " END"
				c.warn(f+".dataMaskInfo.valueExpr", "custom mask %q does not use {col}; rewritten as %q", expr, m.Expr)
			default:
				m.Expr = expr
			}
		}
		if strings.TrimSpace(info.ConditionExpr) != "" {
			c.warn(f+".dataMaskInfo.conditionExpr", "mask condition %q cannot be mapped; the mask applies unconditionally", info.ConditionExpr)
		}
		conds, bad := c.conditions(f, it.Conditions)
		if len(bad) > 0 {
			if m.Type == policy.MaskNone {
				c.warn(f, "%s cannot be mapped; exemption dropped (masks more)", strings.Join(bad, ", "))
				continue
			}
			c.warn(f, "%s cannot be mapped; the mask applies without it (masks more)", strings.Join(bad, ", "))
		}
		m.Conditions = conds
		if len(it.Accesses) > 0 {
			for _, a := range it.Accesses {
				if t := strings.ToLower(a.Type); !strings.HasSuffix(t, "select") {
					c.warn(f, "access %q ignored: masks apply to select", a.Type)
				}
			}
		}
		out = append(out, m)
	}
	return out
}

// rowFilter maps a Ranger filter expression. Ranger's ${{USER}} macro
// becomes {USER}; other macros cannot be mapped.
func rowFilter(expr string) (string, string) {
	f := strings.TrimSpace(expr)
	f = strings.ReplaceAll(f, "${{USER}}", "{USER}")
	f = strings.ReplaceAll(f, "${{USER.name}}", "{USER}")
	if strings.Contains(f, ";") {
		return "", "contains ';'"
	}
	if len(f) > 4096 {
		return "", "longer than 4096 bytes"
	}
	for i := 0; i < len(f); i++ {
		if f[i] != '{' {
			continue
		}
		end := strings.IndexByte(f[i:], '}')
		if end < 0 {
			return "", "has an unterminated '{'"
		}
		switch m := f[i : i+end+1]; m {
		case "{USER}", "{GROUPS}", "{ROLES}":
		default:
			return "", "uses macro " + strconv.Quote(m) + ", which Steward does not know"
		}
		i += end
	}
	if strings.Contains(f, "${{") {
		return "", "uses a Ranger macro Steward does not know"
	}
	return f, ""
}

func (c *conv) rows(in []rangerRowItem) []policy.RowFilterItem {
	var out []policy.RowFilterItem
	for i := range in {
		it := &in[i]
		f := fmt.Sprintf("rowFilterPolicyItems[%d]", i)
		users, groups, roles, dropped := c.principals(f, &it.rangerItem)
		for _, d := range dropped {
			c.warn(f, "%s has no Steward counterpart; dropped from the item", d)
		}
		if len(users)+len(groups)+len(roles) == 0 {
			c.warn(f, "names no mappable users, groups or roles; item dropped")
			continue
		}
		expr := ""
		if it.RowFilterInfo != nil {
			expr = it.RowFilterInfo.FilterExpr
		}
		filter, why := rowFilter(expr)
		if why != "" {
			c.warn(f+".rowFilterInfo.filterExpr", "filter %s; replaced by 1 = 0 (no rows)", why)
			filter = "1 = 0"
		}
		conds, bad := c.conditions(f, it.Conditions)
		if len(bad) > 0 {
			if filter == "" {
				c.warn(f, "%s cannot be mapped; exemption dropped (filters more)", strings.Join(bad, ", "))
				continue
			}
			c.warn(f, "%s cannot be mapped; the filter applies without it (filters more)", strings.Join(bad, ", "))
		}
		out = append(out, policy.RowFilterItem{Users: users, Groups: groups, Roles: roles, Filter: filter, Conditions: conds})
	}
	return out
}
