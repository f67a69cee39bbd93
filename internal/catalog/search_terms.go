package catalog

import (
	"math"
	"slices"
	"strings"
	"unicode"
)

// Typo and prefix expansion of query terms over the vocabulary.

// maxPrefixTerms bounds the vocabulary terms one query term expands to by
// prefix (the most frequent win); maxPrefixScan bounds the terms looked
// at to find them.
const (
	maxPrefixTerms      = 16
	maxPrefixTermsExact = 4
	maxPrefixScan       = 4096
)

// deletions returns the strings made by deleting one rune of t, for terms
// of at least 4 runes without digits (numbers are matched exactly or by
// prefix: a typo in an identifier is another identifier).
func deletions(t string) []string {
	r := []rune(t)
	if len(r) < 4 || strings.ContainsFunc(t, unicode.IsDigit) {
		return nil
	}
	out := make([]string, 0, len(r))
	for i := range r {
		out = append(out, string(r[:i])+string(r[i+1:]))
	}
	return out
}

// expansion is a vocabulary term a query term matches, with its weight
// in the query: quality (1 exact, 0.8 prefix, 0.6/0.4 one/two edits)
// times the term's inverse document frequency.
type expansion struct {
	term uint32
	f    float64
}

// expand finds the indexed terms a query term matches: itself, terms
// within edit distance 1 (query terms of 4+ runes) or 2 (8+ runes), and
// terms the query term or one of its corrections is a prefix of (query
// terms of 3 runes or more). Terms no live document has are skipped.
func (ix *Index) expand(qt string) []expansion {
	type match struct {
		term uint32
		q    float64
	}
	var ms []match
	seen := map[uint32]bool{}
	addm := func(t uint32, q float64) {
		if !seen[t] && len(ix.terms[t].post) > 0 {
			seen[t] = true
			ms = append(ms, match{t, q})
		}
	}
	if id, ok := ix.termIDs[qt]; ok {
		addm(id, 1)
	}
	n := len([]rune(qt))
	if n >= 4 && !strings.ContainsFunc(qt, unicode.IsDigit) {
		maxd := 1
		if n >= 8 {
			maxd = 2
		}
		// Candidates: terms equal to a deletion of qt, terms with a
		// deletion equal to qt or to a deletion of qt.
		cands := map[uint32]bool{}
		addTerm := func(s string) {
			if id, ok := ix.termIDs[s]; ok {
				cands[id] = true
			}
		}
		for _, t := range ix.deletes[qt] {
			cands[t] = true
		}
		for _, del := range deletions(qt) {
			addTerm(del)
			for _, t := range ix.deletes[del] {
				cands[t] = true
			}
			if maxd > 1 {
				for _, del2 := range deletions(del) {
					addTerm(del2)
					for _, t := range ix.deletes[del2] {
						cands[t] = true
					}
				}
			}
		}
		ids := make([]uint32, 0, len(cands))
		for t := range cands {
			ids = append(ids, t)
		}
		slices.Sort(ids) // deterministic
		for _, t := range ids {
			if d := editDistance(qt, ix.terms[t].text, maxd); d >= 1 && d <= maxd {
				addm(t, 0.8-0.2*float64(d))
			}
		}
	}
	if n >= 3 {
		// Prefix matches of the query term and of its typo corrections
		// ("mortage" -> "mortgage" -> "mortgages"): the most frequent.
		bases := append([]match{{q: 1}}, ms...)
		var pre []match
		for i, b := range bases {
			text := qt
			if i > 0 {
				text = ix.terms[b.term].text
			}
			lo, _ := slices.BinarySearchFunc(ix.sorted, text, func(id uint32, s string) int { return strings.Compare(ix.terms[id].text, s) })
			for j := lo; j < len(ix.sorted) && j < lo+maxPrefixScan; j++ {
				t := ix.sorted[j]
				tt := ix.terms[t].text
				if !strings.HasPrefix(tt, text) {
					break
				}
				if len(tt) > len(text) && len(ix.terms[t].post) > 0 {
					pre = append(pre, match{t, 0.8 * b.q})
				}
			}
		}
		slices.SortStableFunc(pre, func(a, b match) int {
			if a.q != b.q {
				if a.q > b.q {
					return -1
				}
				return 1
			}
			return len(ix.terms[b.term].post) - len(ix.terms[a.term].post)
		})
		// With an exact match, a few longer forms are enough
		// ("mortgage" -> "mortgages").
		limit := maxPrefixTerms
		if len(ms) > 0 && ms[0].q == 1 {
			limit = maxPrefixTermsExact
		}
		k := 0
		for _, m := range pre {
			if k >= limit {
				break
			}
			if !seen[m.term] {
				addm(m.term, m.q)
				k++
			}
		}
	}
	ndocs := float64(ix.live) + 1
	out := make([]expansion, len(ms))
	for i, m := range ms {
		idf := math.Log(1 + ndocs/float64(len(ix.terms[m.term].post)))
		out[i] = expansion{m.term, m.q * idf}
	}
	return out
}

// editDistance is the optimal-string-alignment distance of a and b, or
// max+1 if it exceeds max.
func editDistance(a, b string, max int) int {
	ra, rb := []rune(a), []rune(b)
	if d := len(ra) - len(rb); d > max || -d > max {
		return max + 1
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		best := cur[0]
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
			best = min(best, cur[j])
		}
		if best > max {
			return max + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
