package policy

import "fmt"

// Step is one policy the engine considered for a request.
type Step struct {
	PolicyID string `json:"policy_id"`
	Version  int64  `json:"version"`
	Name     string `json:"name,omitempty"`
	Kind     Kind   `json:"kind"`
	Source   string `json:"source"`   // "tag" or "resource"
	Priority string `json:"priority"` // "normal" or "override"
	// Outcome: "not applicable", "applies, no item matched", "allow",
	// "deny", "deny (deny_all_else)", "mask <type>", "row filter".
	Outcome string `json:"outcome"`
	Why     string `json:"why"`
	// Decisive is true for the step whose outcome the decision reports.
	Decisive bool `json:"decisive"`
}

// Explanation lists every policy the index picked as a candidate for a
// request (access, then masking, then row-filter policies), in evaluation
// order, with why each did or did not match, and how the result was
// resolved. Policies not listed do not cover the request's resource or
// tags.
type Explanation struct {
	Decision   Decision `json:"-"`
	Allowed    bool     `json:"allowed"`
	PolicyID   string   `json:"policy_id,omitempty"`
	Version    int64    `json:"policy_version,omitempty"`
	Reason     string   `json:"reason"`
	Resolution string   `json:"resolution"`
	Steps      []Step   `json:"steps"`
	// Policies is the size of the policy set; Candidates how many of
	// them the index picked for evaluation.
	Policies   int   `json:"policies"`
	Candidates int   `json:"candidates"`
	SetVersion int64 `json:"set_version"`
}

// Explain decides req like Decide and explains the decision. It allocates
// and is meant for admins and audits, not for the data path.
func (e *Engine) Explain(req *Request) Explanation {
	var ex Explanation
	if e == nil {
		ex.Reason, ex.Resolution = ReasonNoEngine, "no policy set is loaded; everything is denied"
		ex.Decision.Reason = ReasonNoEngine
		return ex
	}
	tr := &tracer{}
	var d Decision
	e.decide(req, &d, tr)
	ex.Decision = d
	ex.Decision.scratch = scratch{}
	ex.Allowed, ex.PolicyID, ex.Version, ex.Reason = d.Allowed, d.PolicyID, d.PolicyVersion, d.Reason
	ex.Resolution = tr.resolution
	ex.Steps = tr.steps
	for i := range ex.Steps {
		if ex.Steps[i].Kind == KindAccess && ex.Steps[i].PolicyID == d.PolicyID && d.PolicyID != "" && isVerdict(ex.Steps[i].Outcome) {
			ex.Steps[i].Decisive = true
		}
	}
	ex.Policies = len(e.pols)
	for _, s := range ex.Steps {
		if s.Kind == KindAccess {
			ex.Candidates++
		}
	}
	ex.SetVersion = e.version
	return ex
}

func isVerdict(o string) bool {
	return o == outcomeNames[outAllow] || o == outcomeNames[outDeny] || o == outcomeNames[outDenyAllElse]
}

func step(cp *cpolicy, out outcome, why string) Step {
	return Step{PolicyID: cp.p.ID, Version: cp.p.Version, Name: cp.p.Name, Kind: KindAccess,
		Source: source(cp), Priority: prio(cp), Outcome: outcomeNames[out], Why: why}
}

func source(cp *cpolicy) string {
	if cp.tag {
		return "tag"
	}
	return "resource"
}

func prio(cp *cpolicy) string {
	if cp.level > 0 {
		return string(PriorityOverride)
	}
	return string(PriorityNormal)
}

func describe(v *verdict) string {
	if v.cp == nil {
		return "none"
	}
	return fmt.Sprintf("%s by %q (%s priority)", outcomeNames[v.out], v.cp.p.ID, prio(v.cp))
}

// resolution says, in words, how the verdicts of tag and resource policies
// were combined.
func resolution(tagV, resV, win *verdict) string {
	rules := "Rules: override-priority policies are evaluated before normal ones and the highest priority that decides wins; at one priority a deny beats an allow; among equals the first policy in evaluation order (override, tag-based, then set order) is reported. "
	s := fmt.Sprintf("%stag policies: %s; resource policies: %s. ", rules, describe(tagV), describe(resV))
	switch {
	case win == nil:
		return s + "No policy decided, so the request is denied by default."
	case win == resV && tagV.cp != nil && !tagV.allow():
		return s + "A tag deny is overturned only by a resource allow of higher priority, which this is."
	case win == resV && tagV.cp != nil:
		return s + "A tag allow is overturned by a resource deny of equal or higher priority, which this is."
	case win == tagV && resV.cp != nil && !tagV.allow():
		return s + "Tag policies are evaluated first; the tag deny stands because no resource allow has higher priority."
	case win == tagV && resV.cp != nil:
		return s + "Tag policies are evaluated first; the tag allow stands because no resource deny has equal or higher priority."
	case win == tagV:
		return s + "Only tag policies decided."
	default:
		return s + "Only resource policies decided."
	}
}
