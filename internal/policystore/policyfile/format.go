// Package policyfile writes policies in Steward's policy file format, the
// inverse of policy.ParseFile: what Format writes, ParseFile reads back as
// the same policies (versions aside). It is its own package so that its
// round-trip fuzz test links only the policy engine.
package policyfile

import (
	"fmt"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/stewardhq/steward/internal/policy"
)

// The policy file format (see policy.ParseFile), for writing. Every field
// that policy.ParseFile defaults (kind, priority, enabled, audit) is
// written explicitly, so that a file exported and applied again is the
// same policy set.
type fileOut struct {
	Policies []policyOut `yaml:"policies"`
}

type policyOut struct {
	ID              string            `yaml:"id"`
	Name            string            `yaml:"name,omitempty"`
	Description     string            `yaml:"description,omitempty"`
	Kind            string            `yaml:"kind"`
	Priority        string            `yaml:"priority"`
	Enabled         bool              `yaml:"enabled"`
	Audit           bool              `yaml:"audit"`
	DenyAllElse     bool              `yaml:"deny_all_else,omitempty"`
	Resources       *resourcesOut     `yaml:"resources,omitempty"`
	Tags            []tagOut          `yaml:"tags,omitempty"`
	Allow           []itemOut         `yaml:"allow,omitempty"`
	Deny            []itemOut         `yaml:"deny,omitempty"`
	AllowExceptions []itemOut         `yaml:"allow_exceptions,omitempty"`
	DenyExceptions  []itemOut         `yaml:"deny_exceptions,omitempty"`
	Masks           []maskOut         `yaml:"masks,omitempty"`
	RowFilters      []rowOut          `yaml:"row_filters,omitempty"`
	Validity        []scheduleOut     `yaml:"validity,omitempty"`
	Labels          map[string]string `yaml:"labels,omitempty"`
}

type resourcesOut struct {
	Paths     []string `yaml:"paths,omitempty"`
	Recursive bool     `yaml:"recursive,omitempty"`
	Excludes  []string `yaml:"excludes,omitempty"`
	Datasets  []string `yaml:"datasets,omitempty"`
	Tables    []string `yaml:"tables,omitempty"`
	Columns   []string `yaml:"columns,omitempty"`
}

type tagOut struct {
	Name           string            `yaml:"name,omitempty"`
	Attrs          map[string]string `yaml:"attrs,omitempty"`
	Classification string            `yaml:"classification,omitempty"`
}

type itemOut struct {
	Users      []string `yaml:"users,omitempty"`
	Groups     []string `yaml:"groups,omitempty"`
	Roles      []string `yaml:"roles,omitempty"`
	Accesses   []string `yaml:"accesses"`
	Conditions *condOut `yaml:"conditions,omitempty"`
}

type maskOut struct {
	Users      []string `yaml:"users,omitempty"`
	Groups     []string `yaml:"groups,omitempty"`
	Roles      []string `yaml:"roles,omitempty"`
	Type       string   `yaml:"type"`
	Expr       string   `yaml:"expr,omitempty"`
	Conditions *condOut `yaml:"conditions,omitempty"`
}

type rowOut struct {
	Users      []string `yaml:"users,omitempty"`
	Groups     []string `yaml:"groups,omitempty"`
	Roles      []string `yaml:"roles,omitempty"`
	Filter     string   `yaml:"filter"`
	Conditions *condOut `yaml:"conditions,omitempty"`
}

type condOut struct {
	IPRanges []string      `yaml:"ip_ranges,omitempty"`
	Validity []scheduleOut `yaml:"validity,omitempty"`
	Expr     string        `yaml:"expr,omitempty"`
}

type scheduleOut struct {
	Start      string         `yaml:"start,omitempty"`
	End        string         `yaml:"end,omitempty"`
	TimeZone   string         `yaml:"time_zone,omitempty"`
	Recurrence *recurrenceOut `yaml:"recurrence,omitempty"`
}

type recurrenceOut struct {
	Weekdays []string `yaml:"weekdays,omitempty"`
	From     string   `yaml:"from"`
	To       string   `yaml:"to"`
}

// Format writes policies in the policy file format (YAML), which
// policy.ParseFile reads back to the same policies (versions aside: the
// store assigns them).
func Format(policies []*policy.Policy) ([]byte, error) {
	f := fileOut{Policies: make([]policyOut, 0, len(policies))}
	for _, p := range policies {
		f.Policies = append(f.Policies, toOut(p))
	}
	return yaml.MarshalWithOptions(f, yaml.IndentSequence(true), yaml.UseLiteralStyleIfMultiline(true))
}

func toOut(p *policy.Policy) policyOut {
	o := policyOut{
		ID: p.ID, Name: p.Name, Description: p.Description,
		Kind: string(p.Kind), Priority: string(p.Priority), Enabled: p.Enabled, Audit: p.Audit,
		DenyAllElse: p.DenyAllElse, Labels: p.Labels,
	}
	if o.Kind == "" {
		o.Kind = string(policy.KindAccess)
	}
	if o.Priority == "" {
		o.Priority = string(policy.PriorityNormal)
	}
	r := p.Resources
	if len(r.Paths)+len(r.Excludes)+len(r.Datasets)+len(r.Tables)+len(r.Columns) > 0 || r.Recursive {
		o.Resources = &resourcesOut{Paths: r.Paths, Recursive: r.Recursive, Excludes: r.Excludes, Datasets: r.Datasets, Tables: r.Tables, Columns: r.Columns}
	}
	for _, t := range p.Tags {
		to := tagOut{Name: t.Name, Attrs: t.Attrs}
		if t.MinClassification != policy.Unclassified {
			to.Classification = t.MinClassification.String()
		}
		o.Tags = append(o.Tags, to)
	}
	o.Allow, o.Deny = itemsOut(p.Allow), itemsOut(p.Deny)
	o.AllowExceptions, o.DenyExceptions = itemsOut(p.AllowExceptions), itemsOut(p.DenyExceptions)
	for _, m := range p.Masks {
		o.Masks = append(o.Masks, maskOut{Users: m.Users, Groups: m.Groups, Roles: m.Roles, Type: string(m.Type), Expr: m.Expr, Conditions: condsOut(&m.Conditions)})
	}
	for _, rf := range p.RowFilters {
		o.RowFilters = append(o.RowFilters, rowOut{Users: rf.Users, Groups: rf.Groups, Roles: rf.Roles, Filter: rf.Filter, Conditions: condsOut(&rf.Conditions)})
	}
	o.Validity = schedulesOut(p.Validity)
	return o
}

func itemsOut(items []policy.Item) []itemOut {
	var out []itemOut
	for _, it := range items {
		io := itemOut{Users: it.Users, Groups: it.Groups, Roles: it.Roles, Accesses: []string{}, Conditions: condsOut(&it.Conditions)}
		for _, a := range it.Accesses {
			io.Accesses = append(io.Accesses, a.String())
		}
		out = append(out, io)
	}
	return out
}

func condsOut(c *policy.Conditions) *condOut {
	if c.IsZero() {
		return nil
	}
	o := &condOut{Expr: c.Expr, Validity: schedulesOut(c.Validity)}
	for _, p := range c.IPRanges {
		o.IPRanges = append(o.IPRanges, p.String())
	}
	return o
}

var weekdayNames = [...]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

func schedulesOut(ss []policy.Schedule) []scheduleOut {
	var out []scheduleOut
	for _, s := range ss {
		so := scheduleOut{TimeZone: s.TimeZone}
		if !s.Start.IsZero() {
			so.Start = s.Start.Format(time.RFC3339Nano)
		}
		if !s.End.IsZero() {
			so.End = s.End.Format(time.RFC3339Nano)
		}
		if r := s.Recurrence; r != nil {
			ro := &recurrenceOut{From: clock(r.From), To: clock(r.To)}
			for _, d := range r.Weekdays {
				if d >= 0 && int(d) < len(weekdayNames) {
					ro.Weekdays = append(ro.Weekdays, weekdayNames[d])
				}
			}
			so.Recurrence = ro
		}
		out = append(out, so)
	}
	return out
}

func clock(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }
