package policy

import "unsafe"

// Touch passes. At 100,000 policies and 1,000,000 resources almost every
// load of a cold request misses the cache, and the evaluator's loads
// depend on each other (a candidate's hot record, then its compiled
// policy, then its pattern and items, then their names), so the misses are
// paid one after another. Loading one level for every candidate first, in
// a loop whose loads do not depend on each other, lets the processor
// overlap the misses of that level; the evaluation that follows finds the
// data in cache. The passes only read: they never change a decision. They
// return a value only so that the compiler keeps the loads.

// maxTouched bounds how many candidates the passes look at.
const maxTouched = 64

// touchRequest loads the request's strings: its user, resource, groups,
// roles and tag names are the caller's and are often cold.
func touchRequest(req *Request) uint64 {
	var sink uint64
	sink += first(req.User) + first(req.Resource.Path) + first(req.Resource.Name) + first(req.Resource.Column)
	for _, g := range req.Groups {
		sink += first(g)
	}
	for _, r := range req.Roles {
		sink += first(r)
	}
	for i := range req.Tags {
		sink += first(req.Tags[i].Name)
	}
	return sink
}

func first(s string) uint64 {
	if s == "" {
		return 0
	}
	return uint64(s[0])
}

// touchCands loads, level by level, what evaluating the candidates will
// read: the access candidates (only those whose items may match the
// requester, see mayMatch, are followed past their hot records, as the
// evaluation does) and the masking and row-filter candidates (all of
// them), together so that their misses overlap too.
func (e *Engine) touchCands(cands []int32, rb *bloom, masks, rows []int32) uint64 {
	var sink uint64
	var buf [maxTouched]int32
	live := buf[:0]
	for _, ci := range cands[:min(len(cands), maxTouched)] {
		sink += uint64(e.hot[ci].flags)
	}
	for _, ci := range cands[:min(len(cands), maxTouched)] {
		if e.mayMatch(ci, rb) {
			live = append(live, ci)
		}
	}
	for _, l := range [2][]int32{masks, rows} {
		live = append(live, l[:min(len(l), maxTouched-len(live))]...)
	}
	// The compiled policies, and the proofs of their hot records.
	for _, ci := range live {
		cp := &e.slab[ci]
		sink += uint64(len(cp.res.pats)+len(cp.res.cols)+len(cp.allow)+len(cp.deny)+len(cp.validity)) + uint64(uintptr(unsafe.Pointer(cp.p)))
		if h := &e.hot[ci]; h.aux != 0 {
			sink += uint64(e.proofs[h.aux-1].ncols)
		}
	}
	// What they point to: patterns (unless proved by the index), items,
	// the policy.
	for _, ci := range live {
		cp := &e.slab[ci]
		proved := e.hot[ci].proof != proofNone
		if len(cp.res.pats) > 0 && !proved {
			sink += uint64(len(cp.res.pats[0].pre))
		}
		for _, c := range cp.res.cols {
			if !proved {
				sink += uint64(len(c.rest))
			}
		}
		sink += touchItems(cp.deny) + touchItems(cp.allow)
		for i := range cp.masks {
			sink += uint64(len(cp.masks[i].gh))
		}
		for i := range cp.rows {
			sink += uint64(len(cp.rows[i].gh))
		}
		sink += uint64(len(cp.p.ID))
	}
	// Their contents: pattern text and segments, the items' hashes.
	for _, ci := range live {
		cp := &e.slab[ci]
		proved := e.hot[ci].proof != proofNone
		if len(cp.res.pats) > 0 && !proved {
			p := cp.res.pats[0]
			sink += first(p.pre) + first(p.lit)
			if len(p.rest) > 0 {
				sink += uint64(len(p.rest[0].toks))
			}
		}
		for _, c := range cp.res.cols {
			if proved {
				break
			}
			sink += first(c.lit)
			if len(c.rest) > 0 {
				sink += uint64(len(c.rest[0].toks))
			}
		}
		sink += touchHashes(cp.deny) + touchHashes(cp.allow)
		for i := range cp.masks {
			sink += touchPrincipals(&cp.masks[i].principals)
		}
		for i := range cp.rows {
			sink += touchPrincipals(&cp.rows[i].principals)
		}
	}
	return sink
}

// touchItems loads the three cache lines of each item (see citem).
func touchItems(items []citem) uint64 {
	var sink uint64
	for i := range items {
		it := &items[i]
		sink += uint64(it.access) + uint64(len(it.gh)+len(it.groups))
	}
	return sink
}

func touchHashes(items []citem) uint64 {
	var sink uint64
	for i := range items {
		sink += touchPrincipals(&items[i].principals)
	}
	return sink
}

func touchPrincipals(p *principals) uint64 {
	var sink uint64
	if len(p.sigs) > 0 {
		sink += uint64(p.sigs[0])
	}
	if len(p.gh) > 0 {
		sink += p.gh[0]
	}
	if len(p.uh) > 0 {
		sink += p.uh[0]
	}
	if len(p.groups) > 0 {
		sink += uint64(len(p.groups[0]))
	}
	return sink
}
