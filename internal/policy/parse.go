package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/stewardhq/steward"
)

// Limits on policy files.
const (
	MaxFileSize       = 8 << 20 // bytes
	MaxPoliciesInFile = 100_000
	// MaxNesting bounds the brackets ('[' and '{') open at once, and
	// maxIndent the leading spaces and "- " markers of a line: the YAML
	// parser's time grows much faster than the nesting (100,000 nested
	// '[' took over a minute), while policy files nest a few levels.
	MaxNesting = 64
	maxIndent  = 256
)

// The file format (YAML; JSON is accepted too, being YAML). See FORMAT.md.
type rawFile struct {
	Policies []rawPolicy `yaml:"policies"`
}

type rawPolicy struct {
	ID              string            `yaml:"id"`
	Version         *int64            `yaml:"version"`
	Name            string            `yaml:"name"`
	Description     string            `yaml:"description"`
	Kind            string            `yaml:"kind"`
	Priority        string            `yaml:"priority"`
	Enabled         *bool             `yaml:"enabled"`
	Audit           *bool             `yaml:"audit"`
	DenyAllElse     bool              `yaml:"deny_all_else"`
	Resources       rawResources      `yaml:"resources"`
	Tags            []rawTag          `yaml:"tags"`
	Allow           []rawItem         `yaml:"allow"`
	Deny            []rawItem         `yaml:"deny"`
	AllowExceptions []rawItem         `yaml:"allow_exceptions"`
	DenyExceptions  []rawItem         `yaml:"deny_exceptions"`
	Masks           []rawMask         `yaml:"masks"`
	RowFilters      []rawRow          `yaml:"row_filters"`
	Validity        []rawSchedule     `yaml:"validity"`
	Labels          map[string]string `yaml:"labels"`
}

type rawResources struct {
	Paths     []string `yaml:"paths"`
	Recursive bool     `yaml:"recursive"`
	Excludes  []string `yaml:"excludes"`
	Datasets  []string `yaml:"datasets"`
	Tables    []string `yaml:"tables"`
	Columns   []string `yaml:"columns"`
}

type rawTag struct {
	Name           string            `yaml:"name"`
	Attrs          map[string]string `yaml:"attrs"`
	Classification string            `yaml:"classification"`
}

type rawItem struct {
	Users      []string `yaml:"users"`
	Groups     []string `yaml:"groups"`
	Roles      []string `yaml:"roles"`
	Accesses   []string `yaml:"accesses"`
	Conditions rawCond  `yaml:"conditions"`
}

type rawMask struct {
	Users      []string `yaml:"users"`
	Groups     []string `yaml:"groups"`
	Roles      []string `yaml:"roles"`
	Type       string   `yaml:"type"`
	Expr       string   `yaml:"expr"`
	Conditions rawCond  `yaml:"conditions"`
}

type rawRow struct {
	Users      []string `yaml:"users"`
	Groups     []string `yaml:"groups"`
	Roles      []string `yaml:"roles"`
	Filter     *string  `yaml:"filter"`
	Conditions rawCond  `yaml:"conditions"`
}

type rawCond struct {
	IPRanges []string      `yaml:"ip_ranges"`
	Validity []rawSchedule `yaml:"validity"`
	Expr     string        `yaml:"expr"`
}

type rawSchedule struct {
	Start      string         `yaml:"start"`
	End        string         `yaml:"end"`
	TimeZone   string         `yaml:"time_zone"`
	Recurrence *rawRecurrence `yaml:"recurrence"`
}

type rawRecurrence struct {
	Weekdays []string `yaml:"weekdays"`
	From     string   `yaml:"from"`
	To       string   `yaml:"to"`
}

// checkNesting rejects files nested deeper than MaxNesting brackets or
// indented more than maxIndent columns, before the YAML parser sees them.
// Brackets are counted everywhere, quoted or not, so that no quoting can
// hide them; a quoted string would need dozens of unmatched brackets to be
// refused.
func checkNesting(data []byte) error {
	depth, line, indent, lineStart := 0, 1, 0, true
	for _, c := range data {
		if lineStart {
			if c == ' ' || c == '-' {
				if indent++; indent > maxIndent {
					return fmt.Errorf("line %d: indented or nested more than %d columns", line, maxIndent)
				}
				continue
			}
			lineStart = false
		}
		switch c {
		case '\n':
			line, indent, lineStart = line+1, 0, true
		case '[', '{':
			if depth++; depth > MaxNesting {
				return fmt.Errorf("line %d: brackets nested more than %d deep", line, MaxNesting)
			}
		case ']', '}':
			if depth > 0 {
				depth--
			}
		}
	}
	return nil
}

// ParseFile parses a policy file (YAML or JSON; see FORMAT.md) named name
// and validates every policy as Compile would. Unknown fields, duplicate
// keys, anchors and aliases are rejected. Errors are *steward.Error of kind
// EInvalid (ETooLarge for oversized files) whose message names the file,
// the policy and the field, e.g.
//
//	policies.yaml: policy "pii-deny": allow[0].accesses[1]: unknown access type "raed"
//
// On error no policy is returned.
func ParseFile(name string, data []byte) ([]*Policy, error) {
	if len(data) > MaxFileSize {
		return nil, &steward.Error{Kind: steward.ETooLarge, Op: "policy.ParseFile",
			Message: fmt.Sprintf("%s: file is %d bytes, more than the limit of %d", name, len(data), MaxFileSize)}
	}
	bad := func(format string, args ...any) error {
		return &steward.Error{Kind: steward.EInvalid, Op: "policy.ParseFile", Message: name + ": " + fmt.Sprintf(format, args...)}
	}
	if strings.TrimSpace(string(data)) == "" {
		return nil, bad("empty policy file")
	}
	if err := checkNesting(data); err != nil {
		return nil, bad("%s", err)
	}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, bad("%s", yamlMessage(err))
	}
	if len(f.Docs) != 1 {
		return nil, bad("want exactly one YAML document, found %d", len(f.Docs))
	}
	starts, err := scanAST(f.Docs[0])
	if err != nil {
		return nil, bad("%s", err)
	}
	var raw rawFile
	if err := yaml.NodeToValue(f.Docs[0].Body, &raw, yaml.Strict()); err != nil {
		var ye yaml.Error
		if errors.As(err, &ye) && ye.GetToken() != nil {
			line := ye.GetToken().Position.Line
			if id := policyAt(starts, line); id != "" {
				return nil, bad("%s: line %d: %s", id, line, ye.GetMessage())
			}
			return nil, bad("line %d: %s", line, ye.GetMessage())
		}
		return nil, bad("%s", yamlMessage(err))
	}
	if len(raw.Policies) == 0 {
		return nil, bad("no policies (want a top-level \"policies\" list)")
	}
	if len(raw.Policies) > MaxPoliciesInFile {
		return nil, bad("more than %d policies", MaxPoliciesInFile)
	}
	out := make([]*Policy, 0, len(raw.Policies))
	seen := make(map[string]int, len(raw.Policies))
	for i := range raw.Policies {
		rp := &raw.Policies[i]
		label := fmt.Sprintf("policy #%d", i+1)
		if rp.ID != "" {
			label = fmt.Sprintf("policy %q", rp.ID)
		}
		p, fe := rp.toPolicy()
		if fe == nil {
			_, fe = compilePolicy(p)
		}
		if fe != nil {
			return nil, bad("%s: %s", label, fe.Error())
		}
		if j, dup := seen[p.ID]; dup {
			return nil, bad("%s: id: duplicate, also policy #%d", label, j+1)
		}
		seen[p.ID] = i
		out = append(out, p)
	}
	return out, nil
}

func yamlMessage(err error) string {
	var ye yaml.Error
	if errors.As(err, &ye) {
		if t := ye.GetToken(); t != nil && t.Position != nil {
			return fmt.Sprintf("line %d: %s", t.Position.Line, ye.GetMessage())
		}
		return ye.GetMessage()
	}
	return err.Error()
}

type policyStart struct {
	line int
	id   string
}

// scanAST rejects anchors and aliases (which can expand exponentially) and
// records where each policy starts, to name it in decoding errors.
func scanAST(doc *ast.DocumentNode) ([]policyStart, error) {
	var v astCheck
	ast.Walk(&v, doc)
	if v.err != nil {
		return nil, v.err
	}
	m, ok := doc.Body.(*ast.MappingNode)
	if !ok {
		if mv, ok2 := doc.Body.(*ast.MappingValueNode); ok2 {
			m = &ast.MappingNode{Values: []*ast.MappingValueNode{mv}}
		} else {
			return nil, fmt.Errorf("want a mapping with a \"policies\" list at the top")
		}
	}
	var starts []policyStart
	for _, mv := range m.Values {
		if mv.Key == nil || mv.Key.String() != "policies" {
			continue
		}
		seq, ok := mv.Value.(*ast.SequenceNode)
		if !ok {
			continue
		}
		for i, el := range seq.Values {
			ps := policyStart{id: fmt.Sprintf("policy #%d", i+1)}
			if t := el.GetToken(); t != nil && t.Position != nil {
				ps.line = t.Position.Line
			}
			if pm, ok := el.(*ast.MappingNode); ok {
				for _, kv := range pm.Values {
					if kv.Key != nil && kv.Key.String() == "id" && kv.Value != nil {
						ps.id = fmt.Sprintf("policy %q", strings.Trim(kv.Value.String(), `"'`))
					}
				}
			}
			starts = append(starts, ps)
		}
	}
	return starts, nil
}

func policyAt(starts []policyStart, line int) string {
	id := ""
	for _, s := range starts {
		if s.line <= line {
			id = s.id
		}
	}
	return id
}

type astCheck struct{ err error }

func (v *astCheck) Visit(n ast.Node) ast.Visitor {
	if v.err != nil {
		return nil
	}
	switch n.(type) {
	case *ast.AnchorNode, *ast.AliasNode:
		line := 0
		if t := n.GetToken(); t != nil && t.Position != nil {
			line = t.Position.Line
		}
		v.err = fmt.Errorf("line %d: YAML anchors and aliases are not supported", line)
		return nil
	case *ast.TagNode:
		v.err = fmt.Errorf("YAML tags (!!type) are not supported")
		return nil
	}
	return v
}

// toPolicy converts the file form into the model, naming the field of any
// error.
func (rp *rawPolicy) toPolicy() (*Policy, *fieldError) {
	p := &Policy{
		ID: rp.ID, Version: 1, Name: rp.Name, Description: rp.Description,
		Kind: Kind(rp.Kind), Priority: Priority(rp.Priority),
		Enabled: true, Audit: true, DenyAllElse: rp.DenyAllElse,
		Resources: ResourceSpec{
			Paths: rp.Resources.Paths, Recursive: rp.Resources.Recursive, Excludes: rp.Resources.Excludes,
			Datasets: rp.Resources.Datasets, Tables: rp.Resources.Tables, Columns: rp.Resources.Columns,
		},
		Labels: rp.Labels,
	}
	if p.Kind == "" {
		p.Kind = KindAccess
	}
	if p.Priority == "" {
		p.Priority = PriorityNormal
	}
	if rp.Version != nil {
		p.Version = *rp.Version
	}
	if rp.Enabled != nil {
		p.Enabled = *rp.Enabled
	}
	if rp.Audit != nil {
		p.Audit = *rp.Audit
	}
	for i, t := range rp.Tags {
		tm := TagMatch{Name: t.Name, Attrs: t.Attrs}
		if t.Classification != "" {
			c, ok := ParseClassification(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(t.Classification), ">=")))
			if !ok {
				return nil, ferr(fmt.Sprintf("tags[%d].classification", i), "unknown classification %q (C1..C4)", t.Classification)
			}
			tm.MinClassification = c
		}
		p.Tags = append(p.Tags, tm)
	}
	var fe *fieldError
	if p.Allow, fe = toItems("allow", rp.Allow); fe != nil {
		return nil, fe
	}
	if p.Deny, fe = toItems("deny", rp.Deny); fe != nil {
		return nil, fe
	}
	if p.AllowExceptions, fe = toItems("allow_exceptions", rp.AllowExceptions); fe != nil {
		return nil, fe
	}
	if p.DenyExceptions, fe = toItems("deny_exceptions", rp.DenyExceptions); fe != nil {
		return nil, fe
	}
	for i, m := range rp.Masks {
		f := fmt.Sprintf("masks[%d]", i)
		c, fe := m.Conditions.toConditions(f + ".conditions")
		if fe != nil {
			return nil, fe
		}
		p.Masks = append(p.Masks, MaskItem{Users: m.Users, Groups: m.Groups, Roles: m.Roles, Type: MaskType(m.Type), Expr: m.Expr, Conditions: c})
	}
	for i, r := range rp.RowFilters {
		f := fmt.Sprintf("row_filters[%d]", i)
		if r.Filter == nil {
			return nil, ferr(f+".filter", "missing (use \"\" to exempt from row filtering)")
		}
		c, fe := r.Conditions.toConditions(f + ".conditions")
		if fe != nil {
			return nil, fe
		}
		p.RowFilters = append(p.RowFilters, RowFilterItem{Users: r.Users, Groups: r.Groups, Roles: r.Roles, Filter: *r.Filter, Conditions: c})
	}
	if p.Validity, fe = toSchedules("validity", rp.Validity); fe != nil {
		return nil, fe
	}
	return p, nil
}

func toItems(field string, raw []rawItem) ([]Item, *fieldError) {
	var out []Item
	for i, r := range raw {
		f := fmt.Sprintf("%s[%d]", field, i)
		it := Item{Users: r.Users, Groups: r.Groups, Roles: r.Roles}
		for j, s := range r.Accesses {
			if s == "all" || s == "*" {
				it.Accesses = append(it.Accesses, Accesses()...)
				continue
			}
			a, ok := ParseAccess(s)
			if !ok {
				return nil, ferr(fmt.Sprintf("%s.accesses[%d]", f, j), "unknown access type %q (read, write, list, create, delete, select, admin, discover or all)", s)
			}
			it.Accesses = append(it.Accesses, a)
		}
		c, fe := r.Conditions.toConditions(f + ".conditions")
		if fe != nil {
			return nil, fe
		}
		it.Conditions = c
		out = append(out, it)
	}
	return out, nil
}

func (r *rawCond) toConditions(field string) (Conditions, *fieldError) {
	c := Conditions{Expr: r.Expr}
	for i, s := range r.IPRanges {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			addr, err2 := netip.ParseAddr(s)
			if err2 != nil {
				return c, ferr(fmt.Sprintf("%s.ip_ranges[%d]", field, i), "invalid IP range %q (want CIDR like 10.0.0.0/8)", s)
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		c.IPRanges = append(c.IPRanges, pfx)
	}
	var fe *fieldError
	c.Validity, fe = toSchedules(field+".validity", r.Validity)
	return c, fe
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

func toSchedules(field string, raw []rawSchedule) ([]Schedule, *fieldError) {
	var out []Schedule
	for i, r := range raw {
		f := fmt.Sprintf("%s[%d]", field, i)
		s := Schedule{TimeZone: r.TimeZone}
		loc := time.UTC
		if r.TimeZone != "" {
			l, err := time.LoadLocation(r.TimeZone)
			if err != nil || r.TimeZone == "Local" {
				return nil, ferr(f+".time_zone", "unknown time zone %q (want an IANA name like Europe/Zurich)", r.TimeZone)
			}
			loc = l
		}
		var err error
		if r.Start != "" {
			if s.Start, err = parseTime(r.Start, loc); err != nil {
				return nil, ferr(f+".start", "%v", err)
			}
		}
		if r.End != "" {
			if s.End, err = parseTime(r.End, loc); err != nil {
				return nil, ferr(f+".end", "%v", err)
			}
		}
		if r.Start == "" && r.End == "" && r.Recurrence == nil {
			return nil, ferr(f, "needs start, end or recurrence")
		}
		if rr := r.Recurrence; rr != nil {
			rec := &Recurrence{}
			for j, d := range rr.Weekdays {
				wd, ok := weekdays[strings.ToLower(strings.TrimSpace(d))[:min(3, len(strings.TrimSpace(d)))]]
				if !ok {
					return nil, ferr(fmt.Sprintf("%s.recurrence.weekdays[%d]", f, j), "unknown weekday %q", d)
				}
				rec.Weekdays = append(rec.Weekdays, wd)
			}
			if rec.From, err = parseClock(rr.From, 0); err != nil {
				return nil, ferr(f+".recurrence.from", "%v", err)
			}
			if rec.To, err = parseClock(rr.To, minuteOfDay); err != nil {
				return nil, ferr(f+".recurrence.to", "%v", err)
			}
			s.Recurrence = rec
		}
		if _, err := compileSchedule(&s); err != nil {
			return nil, ferr(f, "%v", err)
		}
		out = append(out, s)
	}
	return out, nil
}

func parseTime(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid time %q (want RFC 3339, or 2006-01-02[T15:04[:05]] in time_zone)", s)
}

func parseClock(s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	if s == "24:00" {
		return minuteOfDay, nil
	}
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("invalid time of day %q (want HH:MM)", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}
