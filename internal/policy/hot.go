package policy

import (
	"strings"
	"unsafe"
)

// hpol is the part of a compiled policy that the evaluator reads for every
// candidate: its priority, whether it audits, what the index proves about
// its resource, and the signatures of the principals its allow and deny
// items name. Engines keep them in one array in evaluation order, 64 bytes
// each, so that rejecting a candidate whose items cannot match the
// requester touches one cache line instead of the policy's scattered
// compiled form.
type hpol struct {
	level uint8
	flags uint8
	proof proofKind
	nsig  uint8  // number of sigs held inline; sigOverflow: see cpolicy.sigs
	plen  uint16 // for proofStar, proofSuffix, proofExact: see there
	_     uint16
	aux   uint32 // 1 + index of the policy's rproof in Engine.proofs; 0 for none
	sigs  [inlineSigs]sig
}

const (
	inlineSigs  = 26
	sigOverflow = 0xff
)

const (
	hAnyone = 1 << iota
	hAudit
)

// proofKind says what being a candidate proves about a policy. Every kind
// but proofNone applies to policies with no validity schedule; the
// resource kinds to resource policies with one pattern and no excludes.
type proofKind uint8

const (
	proofNone proofKind = iota
	// proofPrefix: the pattern is literal segments then "**". The index
	// lists the policy only for requests whose path starts with those
	// segments, so being a candidate proves that it applies.
	proofPrefix
	// proofStar: literal segments then one "*" segment: the index proves
	// the literal segments, so the path matches when nothing follows the
	// plen bytes of them (with their separators) but one segment.
	proofStar
	// proofSuffix: likewise with one segment "*suffix": the segment after
	// the plen bytes must also end with the rproof's suffix.
	proofSuffix
	// proofExact: only literal segments, plen bytes in all: the path
	// matches when it is exactly as long.
	proofExact
	// proofTags: a tag policy without resources whose tag matches have no
	// attributes: it is listed only under a tag the request carries or a
	// classification at most the request's, so it applies (when the
	// request's classification is valid).
	proofTags
)

// rproof holds what a hot record's proof needs beyond the record: a
// suffix, and the table policy's column patterns when each is one that can
// be checked by comparing strings. Their text lives in Engine.ptext.
type rproof struct {
	sufOff  uint32
	sufLen  uint8
	ncols   uint8 // 0: the policy has no columns
	colStar bool  // a column pattern is "*": table-level requests match
	_       uint8
	cols    [maxProofCols]colm
}

const maxProofCols = 7

type colmKind uint8

const (
	colExact colmKind = iota
	colAny
	colPrefix
	colSuffix
)

type colm struct {
	off  uint32
	n    uint8
	kind colmKind
}

// proofText collects the text of rproofs, once per distinct string.
type proofText struct {
	buf []byte
	at  map[string]uint32
}

func (pt *proofText) add(s string) (uint32, bool) {
	if len(s) > 0xff {
		return 0, false
	}
	if off, ok := pt.at[s]; ok {
		return off, true
	}
	if pt.at == nil {
		pt.at = map[string]uint32{}
	}
	off := uint32(len(pt.buf))
	pt.buf = append(pt.buf, s...)
	pt.at[s] = off
	return off, true
}

// newHpol builds the hot record of cp; a proof that needs an rproof
// appends it to proofs.
func newHpol(cp *cpolicy, proofs *[]rproof, pt *proofText) hpol {
	h := hpol{level: uint8(cp.level)}
	if cp.anyone {
		h.flags |= hAnyone
	}
	if cp.audit {
		h.flags |= hAudit
	}
	if len(cp.sigs) > inlineSigs {
		h.nsig = sigOverflow
	} else {
		h.nsig = uint8(copy(h.sigs[:], cp.sigs))
	}
	if len(cp.validity) > 0 {
		return h
	}
	r := &cp.res
	if cp.tag {
		if r.kind == 0 && !slicesAny(cp.tags, func(t ctagMatch) bool { return len(t.attrs) > 0 }) {
			h.proof = proofTags
		}
		return h
	}
	if r.kind == 0 || len(r.pats) != 1 || len(r.excludes) != 0 {
		return h
	}
	var pr rproof
	switch p := r.pats[0]; {
	case p.fast == fastPrefix:
		h.proof = proofPrefix
	case p.fast == fastExact && len(p.lit) <= 0xffff:
		h.proof, h.plen = proofExact, uint16(len(p.lit))
	case p.fast == fastNone && p.pre != "" && len(p.pre) <= 0xffff && len(p.rest) == 1 && !p.rest[0].double:
		switch toks := p.rest[0].toks; {
		case len(toks) == 1 && toks[0].k == tStar:
			h.proof, h.plen = proofStar, uint16(len(p.pre))
		case len(toks) == 2 && toks[0].k == tStar && toks[1].k == tLit:
			off, ok := pt.add(toks[1].s)
			if !ok {
				return h
			}
			h.proof, h.plen = proofSuffix, uint16(len(p.pre))
			pr.sufOff, pr.sufLen = off, uint8(len(toks[1].s))
		}
	}
	if h.proof == proofNone {
		return h
	}
	if r.cols != nil {
		if len(r.cols) > maxProofCols {
			h.proof = proofNone
			return h
		}
		pr.colStar = r.colStar
		for _, c := range r.cols {
			m, ok := colmOf(c, pt)
			if !ok {
				h.proof = proofNone
				return h
			}
			pr.cols[pr.ncols] = m
			pr.ncols++
		}
	}
	if h.proof == proofSuffix || pr.ncols > 0 {
		*proofs = append(*proofs, pr)
		h.aux = uint32(len(*proofs))
	}
	return h
}

func slicesAny[T any](l []T, f func(T) bool) bool {
	for _, x := range l {
		if f(x) {
			return true
		}
	}
	return false
}

// colmOf returns the string comparison a column pattern amounts to, if
// it amounts to one.
func colmOf(c *pattern, pt *proofText) (colm, bool) {
	if len(c.segs) != 1 || c.segs[0].double || c.segs[0].user {
		return colm{}, false
	}
	var m colm
	var s string
	switch toks := c.segs[0].toks; {
	case len(toks) == 1 && toks[0].k == tLit:
		m.kind, s = colExact, toks[0].s
	case len(toks) == 1 && toks[0].k == tStar:
		m.kind = colAny
	case len(toks) == 2 && toks[0].k == tLit && toks[1].k == tStar:
		m.kind, s = colPrefix, toks[0].s
	case len(toks) == 2 && toks[0].k == tStar && toks[1].k == tLit:
		m.kind, s = colSuffix, toks[1].s
	default:
		return colm{}, false
	}
	off, ok := pt.add(s)
	if !ok {
		return colm{}, false
	}
	m.off, m.n = off, uint8(len(s))
	return m, true
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

// text returns n bytes of the proof text at off.
func (e *Engine) text(off uint32, n uint8) string {
	if n == 0 {
		return ""
	}
	// ptext is never written after Compile.
	return unsafe.String(&e.ptext[off], int(n))
}

// indexedMatch reports whether the index has proved whether policy h
// covers req's resource and tags (proved), and if so whether it does
// (ok).
func (e *Engine) indexedMatch(h *hpol, req *Request) (ok, proved bool) {
	s, sep := resourceKey(&req.Resource)
	// Collected from the node of the pattern's literal segments, so s
	// starts with those segments.
	switch h.proof {
	case proofNone:
		return false, false
	case proofTags:
		if req.Classification > C4 {
			return false, false
		}
		return true, true
	case proofPrefix:
		ok = true
	case proofExact:
		ok = len(s) == int(h.plen)
	case proofStar:
		ok = len(s) >= int(h.plen) && strings.IndexByte(s[h.plen:], sep) < 0
	case proofSuffix:
		pr := &e.proofs[h.aux-1]
		ok = len(s) >= int(h.plen) && strings.IndexByte(s[h.plen:], sep) < 0 &&
			strings.HasSuffix(s[h.plen:], e.text(pr.sufOff, pr.sufLen))
	}
	if ok && h.aux != 0 {
		if pr := &e.proofs[h.aux-1]; pr.ncols > 0 {
			ok = e.colsMatch(pr, req.Resource.Column)
		}
	}
	return ok, true
}

// colsMatch is (*cres).match's column check for a policy with an rproof.
func (e *Engine) colsMatch(pr *rproof, col string) bool {
	if col == "" {
		return pr.colStar
	}
	for _, m := range pr.cols[:pr.ncols] {
		t := e.text(m.off, m.n)
		switch m.kind {
		case colExact:
			if col == t {
				return true
			}
		case colAny:
			return true
		case colPrefix:
			if strings.HasPrefix(col, t) {
				return true
			}
		case colSuffix:
			if strings.HasSuffix(col, t) {
				return true
			}
		}
	}
	return false
}
