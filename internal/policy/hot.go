package policy

import "strings"

// hpol is the part of a compiled policy that the evaluator reads for every
// candidate: its priority, whether it audits, and the signatures of the
// principals its allow and deny items name. Engines keep them in one array
// in evaluation order, 64 bytes each, so that rejecting a candidate whose
// items cannot match the requester touches one cache line instead of the
// policy's scattered compiled form.
type hpol struct {
	level uint8
	flags uint8
	nsig  uint8 // number of sigs held inline; sigOverflow: see cpolicy.sigs
	_     uint8
	plen  uint16 // for hIndexedStar: the length of the pattern's literal prefix
	sigs  [inlineSigs]sig
}

const (
	inlineSigs  = 29
	sigOverflow = 0xff

	hAnyone = 1 << iota
	hAudit
	// hIndexed: the policy is a resource policy with one pattern of
	// literal segments then "**", no excludes, no columns and no
	// validity. The index lists it only for requests whose path starts
	// with those segments, so being a candidate proves that it applies.
	hIndexed
	// hIndexedStar: likewise, but the pattern is literal segments then
	// one "*" segment: the index proves the literal segments, so the path
	// matches when nothing follows the plen bytes of them but one
	// segment.
	hIndexedStar
)

func newHpol(cp *cpolicy) hpol {
	h := hpol{level: uint8(cp.level)}
	if cp.anyone {
		h.flags |= hAnyone
	}
	if cp.audit {
		h.flags |= hAudit
	}
	if r := &cp.res; !cp.tag && r.kind != 0 && len(r.pats) == 1 && r.pats[0].fast == fastPrefix &&
		len(r.excludes) == 0 && r.cols == nil && len(cp.validity) == 0 {
		h.flags |= hIndexed
	}
	if r := &cp.res; !cp.tag && r.kind != 0 && len(r.pats) == 1 && len(r.excludes) == 0 && r.cols == nil && len(cp.validity) == 0 {
		if p := r.pats[0]; p.fast == fastNone && p.pre != "" && len(p.pre) <= 0xffff && len(p.rest) == 1 &&
			!p.rest[0].double && len(p.rest[0].toks) == 1 && p.rest[0].toks[0].k == tStar {
			h.flags |= hIndexedStar
			h.plen = uint16(len(p.pre))
		}
	}
	if len(cp.sigs) > inlineSigs {
		h.nsig = sigOverflow
	} else {
		h.nsig = uint8(copy(h.sigs[:], cp.sigs))
	}
	return h
}

// mayMatch reports whether an item of policy ci may match one of the
// requester's principals (whose filter is rb).
func (e *Engine) mayMatch(ci int32, rb *bloom) bool {
	h := &e.hot[ci]
	if h.flags&hAnyone != 0 {
		return true
	}
	if h.nsig == sigOverflow {
		return rb.mayMatch(false, e.slab[ci].sigs)
	}
	for _, g := range h.sigs[:h.nsig] {
		if rb.has(g) {
			return true
		}
	}
	return false
}

// indexedMatch reports whether the index has proved that policy h covers
// req's resource (proved), and if so whether it does (ok).
func (h *hpol) indexedMatch(req *Request) (ok, proved bool) {
	switch {
	case h.flags&hIndexed != 0:
		return true, true
	case h.flags&hIndexedStar != 0:
		s, sep := req.Resource.Name, byte('.')
		if req.Resource.Kind == ResourceObject {
			s, sep = req.Resource.Path, '/'
		}
		// Collected from the node of the literal segments, so s is at
		// least those segments; it matches if one segment follows.
		return len(s) >= int(h.plen) && strings.IndexByte(s[h.plen:], sep) < 0, true
	}
	return false, false
}
