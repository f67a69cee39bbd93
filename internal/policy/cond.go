package policy

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"
)

const (
	maxExprLen  = 4096
	celCostCap  = 100_000 // runtime cost units per evaluation
	minuteOfDay = 24 * 60
)

// csched is a compiled Schedule.
type csched struct {
	start, end time.Time
	loc        *time.Location
	rec        bool
	days       uint8 // bit per time.Weekday; 0 = every day
	from, to   int   // minutes after midnight
}

func compileSchedule(s *Schedule) (csched, error) {
	c := csched{start: s.Start, end: s.End, loc: time.UTC}
	if s.TimeZone != "" {
		loc, err := time.LoadLocation(s.TimeZone)
		if err != nil || s.TimeZone == "Local" {
			return c, fmt.Errorf("time_zone: unknown time zone %q", s.TimeZone)
		}
		c.loc = loc
	}
	if !s.Start.IsZero() && !s.End.IsZero() && !s.End.After(s.Start) {
		return c, fmt.Errorf("end %s is not after start %s", s.End.Format(time.RFC3339), s.Start.Format(time.RFC3339))
	}
	if r := s.Recurrence; r != nil {
		c.rec = true
		if r.From < 0 || r.To > minuteOfDay || r.To <= r.From {
			return c, fmt.Errorf("recurrence: to (%d) must be after from (%d), within one day", r.To, r.From)
		}
		c.from, c.to = r.From, r.To
		for _, d := range r.Weekdays {
			if d < time.Sunday || d > time.Saturday {
				return c, fmt.Errorf("recurrence: invalid weekday %d", d)
			}
			c.days |= 1 << d
		}
	}
	return c, nil
}

func (s *csched) active(t time.Time) bool {
	if t.IsZero() {
		return false
	}
	if !s.start.IsZero() && t.Before(s.start) {
		return false
	}
	if !s.end.IsZero() && !t.Before(s.end) {
		return false
	}
	if s.rec {
		lt := t.In(s.loc)
		if s.days != 0 && s.days&(1<<lt.Weekday()) == 0 {
			return false
		}
		h, m, _ := lt.Clock()
		if mins := h*60 + m; mins < s.from || mins >= s.to {
			return false
		}
	}
	return true
}

func activeAny(ss []csched, t time.Time) bool {
	if len(ss) == 0 {
		return true
	}
	for i := range ss {
		if ss[i].active(t) {
			return true
		}
	}
	return false
}

// ccond is compiled Conditions.
type ccond struct {
	ips      []netip.Prefix
	validity []csched
	prog     cel.Program
	expr     string
}

func (c *ccond) empty() bool {
	return c == nil || len(c.ips) == 0 && len(c.validity) == 0 && c.prog == nil
}

// ref returns c for an item to keep, or nil when c is empty, so that items
// without conditions (nearly all) carry one nil pointer instead of the
// compiled conditions.
func (c ccond) ref() *ccond {
	if c.empty() {
		return nil
	}
	return &c
}

// holds evaluates the conditions. onError is the result when the CEL
// expression fails at run time (cost exceeded, missing key): callers pass
// the restrictive outcome for the item's role (false for grants, true for
// denials), so an error never widens access.
func (c *ccond) holds(req *Request, onError bool) bool {
	if len(c.ips) > 0 {
		if !req.ClientIP.IsValid() {
			return false
		}
		ip := req.ClientIP.Unmap()
		ok := false
		for _, p := range c.ips {
			if p.Contains(ip) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(c.validity) > 0 && !activeAny(c.validity, req.Time) {
		return false
	}
	if c.prog != nil {
		out, _, err := c.prog.Eval(&celActivation{req: req})
		if err != nil {
			return onError
		}
		b, ok := out.Value().(bool)
		if !ok {
			return onError
		}
		return b
	}
	return true
}

func compileConditions(c *Conditions) (ccond, error) {
	cc := ccond{expr: c.Expr}
	for i, p := range c.IPRanges {
		if !p.IsValid() {
			return cc, fmt.Errorf("ip_ranges[%d]: invalid prefix", i)
		}
		cc.ips = append(cc.ips, p.Masked())
	}
	for i := range c.Validity {
		s, err := compileSchedule(&c.Validity[i])
		if err != nil {
			return cc, fmt.Errorf("validity[%d]: %w", i, err)
		}
		cc.validity = append(cc.validity, s)
	}
	if c.Expr != "" {
		prog, err := compileCEL(c.Expr)
		if err != nil {
			return cc, fmt.Errorf("expr: %w", err)
		}
		cc.prog = prog
	}
	return cc, nil
}

var (
	celOnce sync.Once
	celEnv  *cel.Env
	celErr  error
)

func celEnvironment() (*cel.Env, error) {
	celOnce.Do(func() {
		celEnv, celErr = cel.NewEnv(
			cel.Variable("user", cel.StringType),
			cel.Variable("groups", cel.ListType(cel.StringType)),
			cel.Variable("roles", cel.ListType(cel.StringType)),
			cel.Variable("access", cel.StringType),
			cel.Variable("resource", cel.StringType),
			cel.Variable("column", cel.StringType),
			cel.Variable("tags", cel.MapType(cel.StringType, cel.MapType(cel.StringType, cel.StringType))),
			cel.Variable("classification", cel.IntType),
			cel.Variable("time", cel.TimestampType),
			cel.Variable("ip", cel.StringType),
		)
	})
	return celEnv, celErr
}

func compileCEL(expr string) (cel.Program, error) {
	if len(expr) > maxExprLen {
		return nil, fmt.Errorf("expression longer than %d bytes", maxExprLen)
	}
	env, err := celEnvironment()
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		return nil, fmt.Errorf("invalid CEL expression: %s", iss.Err())
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("CEL expression must be bool, not %s", ast.OutputType())
	}
	prog, err := env.Program(ast, cel.CostLimit(celCostCap))
	if err != nil {
		return nil, fmt.Errorf("invalid CEL expression: %w", err)
	}
	return prog, nil
}

// celActivation exposes a Request to CEL without building a map up front.
type celActivation struct{ req *Request }

var _ interpreter.Activation = (*celActivation)(nil)

func (a *celActivation) ResolveName(name string) (any, bool) {
	r := a.req
	switch name {
	case "user":
		return r.User, true
	case "groups":
		return nonNil(r.Groups), true
	case "roles":
		return nonNil(r.Roles), true
	case "access":
		return r.Access.String(), true
	case "resource":
		return r.Resource.String(), true
	case "column":
		return r.Resource.Column, true
	case "tags":
		m := make(map[string]map[string]string, len(r.Tags))
		for _, t := range r.Tags {
			attrs := t.Attrs
			if attrs == nil {
				attrs = map[string]string{}
			}
			m[t.Name] = attrs
		}
		return m, true
	case "classification":
		return int64(r.Classification), true
	case "time":
		return types.Timestamp{Time: r.Time}, true
	case "ip":
		if r.ClientIP.IsValid() {
			return r.ClientIP.String(), true
		}
		return "", true
	}
	return nil, false
}

func (a *celActivation) Parent() interpreter.Activation { return nil }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
