package policy

import (
	"cmp"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/stewardhq/steward"
)

// Options configure Compile.
type Options struct {
	// Version of the policy set (e.g. the metastore's policy revision),
	// reported by (*Engine).Version and used by Atomic to refuse stale sets.
	Version int64
}

// index picks candidate policies for a request: by resource (one trie per
// resource kind, keyed by literal leading segments) and by tag (a one-level
// trie keyed by tag name, frozen like the others so that a request's tags
// are looked up with their cache misses overlapped, and a list per
// classification level).
type index struct {
	objects, datasets, tables    trie // while building; frozen into f*
	fobjects, fdatasets, ftables ftrie
	tags                         trie // while building: a child per tag name
	ftags                        ftrie
	class                        [C4 + 1][]int32
}

// freeze converts the built index into its flat form (see flat.go).
func (ix *index) freeze(seed maphash.Seed) {
	ix.fobjects, ix.objects = freeze(&ix.objects, seed), trie{}
	ix.fdatasets, ix.datasets = freeze(&ix.datasets, seed), trie{}
	ix.ftables, ix.tables = freeze(&ix.tables, seed), trie{}
	ix.ftags, ix.tags = freeze(&ix.tags, seed), trie{}
}

// ftrie returns the frozen trie for resources of kind k, or nil.
func (ix *index) ftrie(k ResourceKind) *ftrie {
	switch k {
	case ResourceObject:
		return &ix.fobjects
	case ResourceDataset:
		return &ix.fdatasets
	case ResourceTable:
		return &ix.ftables
	}
	return nil
}

// resourceKey returns the string the tries index for r, and its separator.
func resourceKey(r *Resource) (string, byte) {
	if r.Kind == ResourceObject {
		return r.Path, '/'
	}
	return r.Name, '.'
}

func (ix *index) add(cp *cpolicy) {
	if cp.tag {
		for _, t := range cp.tags {
			if t.minClass != Unclassified {
				ix.class[t.minClass] = append(ix.class[t.minClass], cp.order)
			} else {
				ix.tags.addChild(t.name, cp.order)
			}
		}
		return
	}
	var t *trie
	switch cp.res.kind {
	case ResourceObject:
		t = &ix.objects
	case ResourceDataset:
		t = &ix.datasets
	case ResourceTable:
		t = &ix.tables
	default:
		return
	}
	for _, p := range cp.res.pats {
		t.insert(p, cp.order)
	}
}

// collect appends the candidates for req to out; pk holds the keys of the
// request's path (see pathKeys), or is nil to compute them.
func (ix *index) collect(req *Request, pk *pathKeys, out []int32) []int32 {
	r := &req.Resource
	if f := ix.ftrie(r.Kind); f != nil {
		s, sep := resourceKey(r)
		if pk == nil {
			out = f.collect(s, req.User, sep, out)
		} else {
			out = f.collectKeys(s, req.User, sep, pk, out)
		}
	}
	for i := range req.Tags {
		out = ix.ftags.collectChild(req.Tags[i].Name, out)
	}
	for c := C1; c <= req.Classification && c <= C4; c++ {
		out = append(out, ix.class[c]...)
	}
	return out
}

// Engine is an immutable compiled policy set. It is safe for concurrent use.
type Engine struct {
	version int64
	pols    []*cpolicy // in evaluation order, pointing into slab
	slab    []cpolicy
	hot     []hpol // pols' hot fields, in the same order
	byID    map[string]*cpolicy
	access  index
	masking index
	rows    index
	seed    maphash.Seed // of the index keys of all tries
	proofs  []rproof     // see hpol.aux
	ptext   []byte       // the text of proofs
}

// Compile validates policies and builds an Engine. Evaluation order is:
// override before normal priority, tag-based before resource policies, then
// the order of the policies slice (callers loading from storage should pass
// a stable order, e.g. by ID). Policies must not be modified afterwards.
// Errors are *steward.Error of kind EInvalid naming the policy and field;
// on error nothing is built.
func Compile(policies []*Policy, opts Options) (*Engine, error) {
	e := &Engine{version: opts.Version, byID: make(map[string]*cpolicy, len(policies))}
	for i, p := range policies {
		if p == nil {
			return nil, steward.Errorf(steward.EInvalid, "policy #%d: missing", i+1)
		}
		cp, fe := compilePolicy(p)
		if fe != nil {
			return nil, invalid("", p.ID, fe)
		}
		if _, dup := e.byID[p.ID]; dup {
			return nil, invalid("", p.ID, ferr("id", "duplicate policy id"))
		}
		cp.order = int32(i)
		e.byID[p.ID] = cp
		e.pols = append(e.pols, cp)
	}
	slices.SortStableFunc(e.pols, func(a, b *cpolicy) int {
		if c := cmp.Compare(b.level, a.level); c != 0 {
			return c
		}
		if a.tag != b.tag {
			if a.tag {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.order, b.order)
	})
	// Keep the compiled policies in one array in evaluation order.
	slab := make([]cpolicy, len(e.pols))
	for i, cp := range e.pols {
		slab[i] = *cp
		e.pols[i] = &slab[i]
		e.byID[cp.p.ID] = &slab[i]
	}
	e.slab = slab
	e.hot = make([]hpol, len(e.pols))
	var pt proofText
	for i, cp := range e.pols {
		cp.order = int32(i)
		e.hot[i] = newHpol(cp, &e.proofs, &pt)
		if !cp.p.Enabled {
			continue // disabled policies are never candidates
		}
		switch cp.p.Kind {
		case KindMasking:
			e.masking.add(cp)
		case KindRowFilter:
			e.rows.add(cp)
		default:
			e.access.add(cp)
		}
	}
	e.ptext = pt.buf
	var in interner
	e.seed = maphash.MakeSeed()
	e.access.freeze(e.seed)
	e.masking.freeze(e.seed)
	e.rows.freeze(e.seed)
	e.internPrincipals(&in)
	return e, nil
}

// invalid builds the EInvalid error for a policy: `file: policy "id": field: msg`.
func invalid(file, id string, fe *fieldError) *steward.Error {
	var b strings.Builder
	if file != "" {
		b.WriteString(file)
		b.WriteString(": ")
	}
	if id != "" {
		fmt.Fprintf(&b, "policy %q: ", id)
	}
	b.WriteString(fe.Error())
	return &steward.Error{Kind: steward.EInvalid, Op: "policy.Compile", Message: b.String()}
}

// Version returns the version of the policy set given to Compile.
func (e *Engine) Version() int64 { return e.version }

// Len returns the number of policies.
func (e *Engine) Len() int { return len(e.pols) }

// Policy returns the policy with the given ID.
func (e *Engine) Policy(id string) (*Policy, bool) {
	cp, ok := e.byID[id]
	if !ok {
		return nil, false
	}
	return cp.p, true
}

// Reasons reported in Decision.Reason. They are constants so that deciding
// allocates nothing.
const (
	ReasonDefaultDeny      = "no policy allows: denied by default"
	ReasonAllow            = "allowed by an allow item of a resource policy"
	ReasonDeny             = "denied by a deny item of a resource policy"
	ReasonDenyAllElse      = "denied by deny_all_else of a resource policy"
	ReasonTagAllow         = "allowed by an allow item of a tag policy"
	ReasonTagDeny          = "denied by a deny item of a tag policy"
	ReasonTagDenyAllElse   = "denied by deny_all_else of a tag policy"
	ReasonAllowOverTagDeny = "allowed by a resource policy of higher priority than the tag policy that denies"
	ReasonDenyOverTagAllow = "denied by a resource policy of equal or higher priority than the tag policy that allows"
	ReasonNoEngine         = "no policies loaded: denied by default"
)

type outcome uint8

const (
	outNotApplicable outcome = iota // resource, tags, validity or enabled do not match
	outNoItem                       // applies, but no item decides
	outAllow
	outDeny
	outDenyAllElse
)

var outcomeNames = [...]string{"not applicable", "applies, no item matched", "allow", "deny", "deny (deny_all_else)"}

// verdict is the result of one source (tag or resource policies).
type verdict struct {
	cp  *cpolicy
	out outcome
}

func (v *verdict) allow() bool { return v.out == outAllow }

// offer records a policy's outcome: the first priority level that decides
// wins; within it, a deny beats an allow; among equals, the first policy in
// evaluation order is kept.
func (v *verdict) offer(cp *cpolicy, out outcome) {
	if v.cp == nil {
		v.cp, v.out = cp, out
		return
	}
	if cp.level == v.cp.level && v.out == outAllow && out != outAllow {
		v.cp, v.out = cp, out
	}
}

// Decide decides req into d, which the caller provides and may reuse; with
// a reused Decision deciding allocates nothing unless a CEL condition is
// evaluated (row filters with macros are expanded into a 4 KiB block the
// Decision keeps, allocated when the previous one is full; the strings
// stay valid after d is reused). A nil Engine denies everything.
func (e *Engine) Decide(req *Request, d *Decision) {
	d.Reset()
	if e == nil {
		d.Reason, d.Audit = ReasonNoEngine, true
		return
	}
	e.decide(req, d, nil)
}

// tracer collects an explanation; nil on the hot path.
type tracer struct {
	steps      []Step
	resolution string
}

func (e *Engine) decide(req *Request, d *Decision, tr *tracer) {
	// Touch the index nodes on the request's path in every trie this
	// decision may walk (see touch.go).
	d.scratch.sink += touchRequest(req)
	var pk pathKeys
	selectTable := req.Access == AccessSelect && req.Resource.Kind == ResourceTable
	if f := e.access.ftrie(req.Resource.Kind); f != nil {
		s, sep := resourceKey(&req.Resource)
		pk.init(e.seed, s, sep)
		sink := f.touch(&pk)
		if selectTable {
			sink += e.masking.ftables.touch(&pk) + e.rows.ftables.touch(&pk)
		}
		d.scratch.sink += uint64(sink)
	}
	for i := range req.Tags {
		d.scratch.sink += uint64(e.access.ftags.touchChild(req.Tags[i].Name))
		if selectTable {
			d.scratch.sink += uint64(e.masking.ftags.touchChild(req.Tags[i].Name))
		}
	}
	cands := sortedSet(e.access.collect(req, &pk, d.scratch.cands[:0]))
	d.scratch.cands = cands

	var tagV, resV verdict
	var rb reqPrincipals
	d.scratch.names = rb.init(req, d.scratch.names)
	// The masking and row-filter candidates are collected now, so that
	// their data is loaded with the access candidates'; they are used
	// only if the request is allowed.
	var mcands, rcands []int32
	if selectTable {
		if req.Resource.Column != "" {
			mcands = sortedSet(e.masking.collect(req, &pk, d.scratch.mcands[:0]))
			d.scratch.mcands = mcands
		}
		rcands = sortedSet(e.rows.collect(req, &pk, d.scratch.rcands[:0]))
		d.scratch.rcands = rcands
	}
	if tr == nil {
		d.scratch.sink += e.touchCands(cands, &rb.bloom, mcands, rcands)
	}
	bit := uint16(1) << req.Access
	if req.Access == AccessNone || req.Access >= numAccess {
		bit = 0
	}
	for _, ci := range cands {
		h := &e.hot[ci]
		if tr == nil && tagV.cp != nil && resV.cp != nil && int(h.level) < tagV.cp.level && int(h.level) < resV.cp.level {
			break // both sources are determined at a higher priority
		}
		if tr == nil && !e.mayMatch(ci, &rb.bloom) {
			// No item can match any of the requester's principals.
			if h.flags&hAudit != 0 && !d.Audit {
				if cp := &e.slab[ci]; cp.enabled {
					if ok, _ := e.appliesTo(cp, req, h, false, false); ok {
						d.Audit = true
					}
				}
			}
			continue
		}
		cp := &e.slab[ci]
		out, why := e.evalAccess(cp, req, bit, &rb, h, tr != nil)
		if out != outNotApplicable && cp.audit {
			d.Audit = true
		}
		if out >= outAllow {
			if cp.tag {
				tagV.offer(cp, out)
			} else {
				resV.offer(cp, out)
			}
		}
		if tr != nil {
			tr.steps = append(tr.steps, step(cp, out, why))
		}
	}

	// Combine tag and resource verdicts (Ranger's precedence).
	var win *verdict
	switch {
	case tagV.cp != nil && !tagV.allow():
		win = &tagV
		d.Reason = ReasonTagDeny
		if tagV.out == outDenyAllElse {
			d.Reason = ReasonTagDenyAllElse
		}
		if resV.cp != nil && resV.allow() && resV.cp.level > tagV.cp.level {
			win, d.Reason = &resV, ReasonAllowOverTagDeny
		}
	case tagV.cp != nil:
		win, d.Reason = &tagV, ReasonTagAllow
		if resV.cp != nil && !resV.allow() && resV.cp.level >= tagV.cp.level {
			win, d.Reason = &resV, ReasonDenyOverTagAllow
		}
	case resV.cp != nil:
		win = &resV
		switch resV.out {
		case outAllow:
			d.Reason = ReasonAllow
		case outDeny:
			d.Reason = ReasonDeny
		default:
			d.Reason = ReasonDenyAllElse
		}
	default:
		d.Reason, d.Audit = ReasonDefaultDeny, true
	}
	if win != nil {
		d.Allowed = win.allow()
		d.PolicyID, d.PolicyVersion = win.cp.p.ID, win.cp.p.Version
	}
	if tr != nil {
		tr.resolution = resolution(&tagV, &resV, win)
	}
	if d.Allowed && selectTable {
		e.applyMasks(req, mcands, &rb, d, tr)
		e.applyRowFilters(req, rcands, &rb, d, tr)
	}
}

// evalAccess evaluates one access policy. why is filled only when explain.
//
// h is the policy's hot record (see proofKind).
func (e *Engine) evalAccess(cp *cpolicy, req *Request, bit uint16, rb *reqPrincipals, h *hpol, explain bool) (outcome, string) {
	if !cp.enabled {
		return outNotApplicable, ifx(explain, "disabled")
	}
	if ok, why := e.appliesTo(cp, req, h, false, explain); !ok {
		return outNotApplicable, why
	}
	di, dei, ai, aei := -1, -1, -1, -1
	out := outNoItem
	if di = matchItems(cp.deny, req, rb, bit, true); di >= 0 {
		if dei = matchItems(cp.denyEx, req, rb, bit, false); dei < 0 {
			out = outDeny
		}
	}
	if out == outNoItem {
		if ai = matchItems(cp.allow, req, rb, bit, false); ai >= 0 {
			if aei = matchItems(cp.allowEx, req, rb, bit, true); aei < 0 {
				out = outAllow
			}
		}
		if out == outNoItem && cp.denyAllElse {
			out = outDenyAllElse
		}
	}
	if !explain {
		return out, ""
	}
	var why []string
	if di >= 0 {
		if dei >= 0 {
			why = append(why, fmt.Sprintf("deny[%d] matches but deny_exceptions[%d] excepts it", di, dei))
		} else {
			why = append(why, fmt.Sprintf("deny[%d] matches", di))
		}
	}
	if ai >= 0 {
		if aei >= 0 {
			why = append(why, fmt.Sprintf("allow[%d] matches but allow_exceptions[%d] excepts it", ai, aei))
		} else {
			why = append(why, fmt.Sprintf("allow[%d] matches", ai))
		}
	}
	if out == outDenyAllElse {
		why = append(why, "no allow item grants it, so deny_all_else denies")
	}
	if len(why) == 0 {
		why = append(why, "no item matches the principal, access and conditions")
	}
	return out, strings.Join(why, "; ")
}

func ifx(explain bool, s string) string {
	if explain {
		return s
	}
	return ""
}

// appliesTo is applies(req, ignoreColumn, explain) for a candidate the
// index picked, using what the index has proved (see proofKind).
func (e *Engine) appliesTo(cp *cpolicy, req *Request, h *hpol, ignoreColumn, explain bool) (bool, string) {
	if ignoreColumn && cp.res.cols != nil {
		return cp.applies(req, ignoreColumn, explain) // a proof includes the columns
	}
	if ok, proved := e.indexedMatch(h, req); proved {
		if !ok {
			return false, ifx(explain, "resource does not match")
		}
		return true, ""
	}
	return cp.applies(req, ignoreColumn, explain)
}

// applies reports whether the policy covers the request's resource, tags
// and time.
func (cp *cpolicy) applies(req *Request, ignoreColumn, explain bool) (bool, string) {
	if !cp.res.match(req, ignoreColumn) {
		return false, ifx(explain, "resource does not match")
	}
	if cp.tag && !cp.matchTags(req) {
		return false, ifx(explain, "no effective tag matches")
	}
	if len(cp.validity) > 0 && !activeAny(cp.validity, req.Time) {
		return false, ifx(explain, "outside its validity schedule")
	}
	return true, ""
}

func (r *cres) match(req *Request, ignoreColumn bool) bool {
	if r.kind == 0 {
		return true // tag-only policy
	}
	res := &req.Resource
	if r.kind != res.Kind {
		return false
	}
	s := res.Name
	if r.kind == ResourceObject {
		s = res.Path
	}
	ok := false
	for _, p := range r.pats {
		if p.match(s, req.User) {
			ok = true
			break
		}
	}
	if !ok {
		return false
	}
	for _, p := range r.excludes {
		if p.match(s, req.User) {
			return false
		}
	}
	if r.kind == ResourceTable && !ignoreColumn && r.cols != nil {
		if res.Column == "" {
			return r.colStar
		}
		for _, p := range r.cols {
			if p.match(res.Column, req.User) {
				return true
			}
		}
		return false
	}
	return true
}

func (cp *cpolicy) matchTags(req *Request) bool {
	for i := range cp.tags {
		tm := &cp.tags[i]
		if tm.minClass != Unclassified {
			if req.Classification >= tm.minClass && req.Classification <= C4 {
				return true
			}
			continue
		}
		for j := range req.Tags {
			t := &req.Tags[j]
			if t.Name == tm.name && attrsMatch(tm.attrs, t.Attrs) {
				return true
			}
		}
	}
	return false
}

func attrsMatch(want, have map[string]string) bool {
	for k, v := range want {
		hv, ok := have[k]
		if !ok || (v != "*" && hv != v) {
			return false
		}
	}
	return true
}

// matchItems returns the index of the first item granting bit to the
// requester whose conditions hold, or -1.
func matchItems(items []citem, req *Request, rb *reqPrincipals, bit uint16, onError bool) int {
	for i := range items {
		it := &items[i]
		if it.access&bit == 0 || !rb.mayMatch(it.anyone, it.sigs) || !it.principals.match(req, rb) {
			continue
		}
		if !it.cond.empty() && !it.cond.holds(req, onError) {
			continue
		}
		return i
	}
	return -1
}

func (p *principals) match(req *Request, rp *reqPrincipals) bool {
	if p.anyone {
		return true
	}
	if len(p.users) > 0 && req.User != "" && hasName(p.uh, p.users, rp.user, req.User) {
		return true
	}
	return intersects(p.gh, p.groups, rp.groups) || intersects(p.rh, p.roles, rp.roles)
}

// applyMasks sets the mask of the requested column: the first masking
// policy in evaluation order (override first, tag-based first, then order)
// that covers the column and has an item matching the requester decides;
// within it the first matching item.
//
// cands are the masking candidates, sorted (see sortedSet).
func (e *Engine) applyMasks(req *Request, cands []int32, rb *reqPrincipals, d *Decision, tr *tracer) {
	if req.Resource.Column == "" {
		return
	}
	for _, ci := range cands {
		cp := &e.slab[ci]
		ok, why := e.appliesTo(cp, req, &e.hot[ci], false, tr != nil)
		mi := -1
		if ok {
			for i := range cp.masks {
				m := &cp.masks[i]
				if m.principals.match(req, rb) && (m.cond.empty() || m.cond.holds(req, true)) {
					mi = i
					break
				}
			}
			if mi < 0 {
				why = ifx(tr != nil, "no mask item matches the principal and conditions")
			}
		}
		if tr != nil {
			s := Step{PolicyID: cp.p.ID, Version: cp.p.Version, Name: cp.p.Name, Kind: KindMasking, Source: source(cp), Priority: prio(cp), Outcome: "not applicable", Why: why}
			if mi >= 0 {
				s.Outcome, s.Why, s.Decisive = "mask "+string(cp.masks[mi].typ), fmt.Sprintf("masks[%d] matches; first matching masking policy wins", mi), true
			}
			tr.steps = append(tr.steps, s)
		}
		if mi >= 0 {
			m := &cp.masks[mi]
			if m.typ != MaskNone {
				d.Masks = append(d.Masks, Mask{Column: req.Resource.Column, Type: m.typ, Expr: m.expr, PolicyID: cp.p.ID, PolicyVersion: cp.p.Version})
			}
			if cp.audit {
				d.Audit = true
			}
			return
		}
	}
}

// applyRowFilters sets the row filter of the table: the first row-filter
// policy in evaluation order whose item matches the requester decides.
//
// cands are the row-filter candidates, sorted (see sortedSet).
func (e *Engine) applyRowFilters(req *Request, cands []int32, rb *reqPrincipals, d *Decision, tr *tracer) {
	for _, ci := range cands {
		cp := &e.slab[ci]
		ok, why := e.appliesTo(cp, req, &e.hot[ci], true, tr != nil)
		ri := -1
		if ok {
			for i := range cp.rows {
				r := &cp.rows[i]
				if r.principals.match(req, rb) && (r.cond.empty() || r.cond.holds(req, true)) {
					ri = i
					break
				}
			}
			if ri < 0 {
				why = ifx(tr != nil, "no row filter item matches the principal and conditions")
			}
		}
		if tr != nil {
			s := Step{PolicyID: cp.p.ID, Version: cp.p.Version, Name: cp.p.Name, Kind: KindRowFilter, Source: source(cp), Priority: prio(cp), Outcome: "not applicable", Why: why}
			if ri >= 0 {
				s.Outcome, s.Why, s.Decisive = "row filter", fmt.Sprintf("row_filters[%d] matches; first matching row-filter policy wins", ri), true
			}
			tr.steps = append(tr.steps, s)
		}
		if ri >= 0 {
			r := &cp.rows[ri]
			switch {
			case r.filter == "":
			case r.hasMacro:
				d.RowFilters = append(d.RowFilters, expandFilter(r.filter, req, &d.scratch))
			default:
				d.RowFilters = append(d.RowFilters, r.filter)
			}
			if cp.audit {
				d.Audit = true
			}
			return
		}
	}
}

// expandFilter replaces {USER}, {GROUPS} and {ROLES} with quoted SQL
// literals. The result is carved from sc's text block (see scratch.text):
// on a cold cache, allocating a string costs several microseconds.
func expandFilter(f string, req *Request, sc *scratch) string {
	n := expand(nil, f, req)
	if n == 0 {
		return ""
	}
	if cap(sc.text)-len(sc.text) < n {
		sc.text = make([]byte, 0, max(textBlock, n))
	}
	start := len(sc.text)
	expand(&sc.text, f, req)
	// The bytes are never written again: the block is only appended to.
	return unsafe.String(&sc.text[start], n)
}

// expand appends f with its macros replaced to *b, or only measures it
// when b is nil, and returns the length.
func expand(b *[]byte, f string, req *Request) int {
	n := 0
	for {
		i := strings.IndexByte(f, '{')
		if i < 0 {
			return n + write(b, f)
		}
		n += write(b, f[:i])
		f = f[i:]
		switch {
		case strings.HasPrefix(f, macroUser):
			n += writeSQLString(b, req.User)
			f = f[len(macroUser):]
		case strings.HasPrefix(f, macroGroups):
			n += writeSQLList(b, req.Groups)
			f = f[len(macroGroups):]
		case strings.HasPrefix(f, macroRoles):
			n += writeSQLList(b, req.Roles)
			f = f[len(macroRoles):]
		default: // validated at compile time; keep the byte
			n += write(b, "{")
			f = f[1:]
		}
	}
}

func write(b *[]byte, s string) int {
	if b != nil {
		*b = append(*b, s...)
	}
	return len(s)
}

// writeSQLString writes s as a SQL string literal, doubling its quotes.
func writeSQLString(b *[]byte, s string) int {
	n := write(b, "'")
	for {
		i := strings.IndexByte(s, '\'')
		if i < 0 {
			break
		}
		n += write(b, s[:i+1]) + write(b, "'")
		s = s[i+1:]
	}
	return n + write(b, s) + write(b, "'")
}

// writeSQLList renders ('a', 'b'); an empty list renders (NULL) so that
// "x IN {GROUPS}" is valid SQL and matches nothing.
func writeSQLList(b *[]byte, l []string) int {
	if len(l) == 0 {
		return write(b, "(NULL)")
	}
	n := write(b, "(")
	for i, s := range l {
		if i > 0 {
			n += write(b, ", ")
		}
		n += writeSQLString(b, s)
	}
	return n + write(b, ")")
}

// sortedSet sorts l and drops duplicates: candidates in evaluation order.
func sortedSet(l []int32) []int32 {
	slices.Sort(l)
	return slices.Compact(l)
}

// Atomic holds the current Engine for a process and swaps in newer ones, so
// that replicas refresh by version without locking the decision path.
// The zero value holds nil (which denies everything).
type Atomic struct{ p atomic.Pointer[Engine] }

// Load returns the current engine (nil before the first Store).
func (a *Atomic) Load() *Engine { return a.p.Load() }

// Store installs e if it is newer than the current engine (higher
// Version), and reports whether it did.
func (a *Atomic) Store(e *Engine) bool {
	if e == nil {
		return false
	}
	for {
		cur := a.p.Load()
		if cur != nil && cur.version >= e.version {
			return false
		}
		if a.p.CompareAndSwap(cur, e) {
			return true
		}
	}
}
