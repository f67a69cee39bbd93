package policy

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// A pattern is a compiled resource pattern: segments separated by sep ('/'
// for object paths, '.' for catalog names). A segment is "**" (any number
// of segments) or a sequence of tokens: literals, '*', '?' and the {USER}
// macro. Matching allocates nothing.
type pattern struct {
	src  string
	sep  byte
	fast fastKind
	// lit is the pattern's literal text for fastExact, or the literal
	// segments before the final "**" for fastPrefix.
	lit string
	// For fastNone patterns that start with literal segments: pre is
	// those segments each followed by sep, rest the segments after them.
	pre  string
	rest []pseg
	segs []pseg
}

// fastKind says whether a pattern can be matched by comparing strings
// instead of walking its segments.
type fastKind uint8

const (
	fastNone   fastKind = iota
	fastExact           // every segment is a literal: the path must equal lit
	fastPrefix          // literal segments then "**": the path is lit or below it
)

type pseg struct {
	double bool   // "**"
	lit    string // set when the segment is one literal (fast path and trie key)
	user   bool   // the segment is exactly {USER}
	toks   []ptok
}

type ptokKind uint8

const (
	tLit ptokKind = iota
	tStar
	tOne
	tUser
)

type ptok struct {
	k ptokKind
	s string
}

const (
	maxPatternLen    = 1024
	maxDoubleStars   = 4
	macroUser        = "{USER}"
	macroGroups      = "{GROUPS}"
	macroRoles       = "{ROLES}"
	recursiveSegment = "**"
)

// compilePattern parses s. For object paths the "s3://" scheme is required
// and stripped. recursive appends "/**".
func compilePattern(s string, sep byte, recursive bool) (*pattern, error) {
	src := s
	if sep == '/' {
		rest, ok := strings.CutPrefix(s, "s3://")
		if !ok {
			return nil, fmt.Errorf("path %q must start with s3://", s)
		}
		s = rest
	}
	if s == "" {
		return nil, fmt.Errorf("empty pattern %q", src)
	}
	if len(s) > maxPatternLen {
		return nil, fmt.Errorf("pattern longer than %d bytes", maxPatternLen)
	}
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("pattern %q is not valid UTF-8", src)
	}
	p := &pattern{src: src, sep: sep}
	doubles := 0
	parts := strings.Split(s, string(sep))
	if recursive && parts[len(parts)-1] != recursiveSegment {
		parts = append(parts, recursiveSegment)
	}
	for i, part := range parts {
		if part == recursiveSegment {
			doubles++
			if i > 0 && parts[i-1] == recursiveSegment {
				continue // "**/**" is "**"
			}
			p.segs = append(p.segs, pseg{double: true})
			continue
		}
		if i == 0 && part == "" {
			return nil, fmt.Errorf("pattern %q has an empty first segment", src)
		}
		seg, err := compileSegment(part)
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w", src, err)
		}
		p.segs = append(p.segs, seg)
	}
	if doubles > maxDoubleStars {
		return nil, fmt.Errorf("pattern %q has more than %d '**'", src, maxDoubleStars)
	}
	p.fast, p.lit = fastPath(p.segs, sep)
	p.rest = p.segs
	if p.fast == fastNone {
		k := 0
		for k < len(p.segs)-1 && p.segs[k].isLiteral() {
			p.pre += p.segs[k].lit + string(sep)
			k++
		}
		p.rest = p.segs[k:]
	}
	return p, nil
}

// fastPath classifies segs: all literal (fastExact) or literal then a final
// "**" (fastPrefix, with at least one literal), and returns the literal
// text joined by sep. Literal segments never contain sep, so comparing the
// joined text is the same as comparing segment by segment.
func fastPath(segs []pseg, sep byte) (fastKind, string) {
	n := len(segs)
	kind := fastExact
	if n > 0 && segs[n-1].double {
		kind, n = fastPrefix, n-1
	}
	if n == 0 {
		return fastNone, ""
	}
	parts := make([]string, 0, n)
	for i := range segs[:n] {
		if !segs[i].isLiteral() {
			return fastNone, ""
		}
		parts = append(parts, segs[i].lit)
	}
	return kind, strings.Join(parts, string(sep))
}

func compileSegment(part string) (pseg, error) {
	if strings.Contains(part, "**") {
		return pseg{}, fmt.Errorf("'**' must be a whole segment")
	}
	var toks []ptok
	lit := strings.Builder{}
	flush := func() {
		if lit.Len() > 0 {
			toks = append(toks, ptok{k: tLit, s: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(part); i++ {
		switch c := part[i]; c {
		case '*':
			flush()
			if len(toks) == 0 || toks[len(toks)-1].k != tStar {
				toks = append(toks, ptok{k: tStar})
			}
		case '?':
			flush()
			toks = append(toks, ptok{k: tOne})
		case '{':
			end := strings.IndexByte(part[i:], '}')
			if end < 0 {
				return pseg{}, fmt.Errorf("unterminated macro in %q", part)
			}
			m := part[i : i+end+1]
			if m != macroUser {
				return pseg{}, fmt.Errorf("unknown macro %s (resources know only {USER})", m)
			}
			flush()
			toks = append(toks, ptok{k: tUser})
			i += end
		case '}':
			return pseg{}, fmt.Errorf("unmatched '}' in %q", part)
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	seg := pseg{toks: toks}
	switch {
	case len(toks) == 0:
		seg.lit = "" // empty segment (e.g. trailing slash) matches only an empty segment
		seg.toks = []ptok{{k: tLit}}
	case len(toks) == 1 && toks[0].k == tLit:
		seg.lit = toks[0].s
	case len(toks) == 1 && toks[0].k == tUser:
		seg.user = true
	}
	return seg, nil
}

// isLiteral reports whether the segment is one literal string.
func (s *pseg) isLiteral() bool {
	return !s.double && !s.user && len(s.toks) == 1 && s.toks[0].k == tLit
}

// match reports whether path (without scheme) matches, with {USER} = user.
func (p *pattern) match(path, user string) bool {
	switch p.fast {
	case fastExact:
		return path == p.lit
	case fastPrefix:
		return len(path) >= len(p.lit) && path[:len(p.lit)] == p.lit &&
			(len(path) == len(p.lit) || path[len(p.lit)] == p.sep)
	}
	// The rest is not only "**", so a path that ends with the literal
	// segments (without a following sep) cannot match.
	if len(path) < len(p.pre) || path[:len(p.pre)] != p.pre {
		return false
	}
	return matchSegs(p.rest, path[len(p.pre):], false, user, p.sep)
}

// matchSegs matches segs against the remaining path s; done means the path
// has no segments left.
func matchSegs(segs []pseg, s string, done bool, user string, sep byte) bool {
	for len(segs) > 0 {
		sg := &segs[0]
		if sg.double {
			if len(segs) == 1 {
				return true
			}
			// Try to match the rest here, then after each further segment.
			for {
				if matchSegs(segs[1:], s, done, user, sep) {
					return true
				}
				if done {
					return false
				}
				i := strings.IndexByte(s, sep)
				if i < 0 {
					s, done = "", true
				} else {
					s = s[i+1:]
				}
			}
		}
		if done {
			return false
		}
		var seg string
		if i := strings.IndexByte(s, sep); i < 0 {
			seg, s, done = s, "", true
		} else {
			seg, s = s[:i], s[i+1:]
		}
		if !sg.matchSeg(seg, user) {
			return false
		}
		segs = segs[1:]
	}
	return done
}

func (sg *pseg) matchSeg(seg, user string) bool {
	if sg.user {
		return user != "" && seg == user
	}
	if len(sg.toks) == 1 && sg.toks[0].k == tLit {
		return seg == sg.toks[0].s
	}
	return globToks(sg.toks, seg, user)
}

func globToks(toks []ptok, s, user string) bool {
	for len(toks) > 0 {
		t := toks[0]
		switch t.k {
		case tLit:
			if !strings.HasPrefix(s, t.s) {
				return false
			}
			s = s[len(t.s):]
		case tUser:
			if user == "" || !strings.HasPrefix(s, user) {
				return false
			}
			s = s[len(user):]
		case tOne:
			if s == "" {
				return false
			}
			_, n := utf8.DecodeRuneInString(s)
			s = s[n:]
		case tStar:
			if len(toks) == 1 {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if globToks(toks[1:], s[i:], user) {
					return true
				}
			}
			return false
		}
		toks = toks[1:]
	}
	return s == ""
}

// A trie indexes patterns by their leading literal (or {USER}) segments;
// each pattern hangs at the node where its first wildcard segment starts,
// and a lookup walks the request's segments collecting what hangs on the
// way. Only those candidates are then matched in full.
type trie struct {
	children map[string]*trie
	user     *trie
	pols     []int32
}

func (t *trie) insert(p *pattern, pol int32) {
	n := t
	for i := range p.segs {
		sg := &p.segs[i]
		switch {
		case sg.isLiteral():
			if n.children == nil {
				n.children = map[string]*trie{}
			}
			c := n.children[sg.lit]
			if c == nil {
				c = &trie{}
				n.children[sg.lit] = c
			}
			n = c
			continue
		case sg.user:
			if n.user == nil {
				n.user = &trie{}
			}
			n = n.user
			continue
		}
		break
	}
	if len(n.pols) == 0 || n.pols[len(n.pols)-1] != pol {
		n.pols = append(n.pols, pol)
	}
}

// addChild adds pol to the child of t for seg (a whole name, not split
// into segments).
func (t *trie) addChild(seg string, pol int32) {
	if t.children == nil {
		t.children = map[string]*trie{}
	}
	c := t.children[seg]
	if c == nil {
		c = &trie{}
		t.children[seg] = c
	}
	if len(c.pols) == 0 || c.pols[len(c.pols)-1] != pol {
		c.pols = append(c.pols, pol)
	}
}

// collect appends to out the policies hanging on the path's walk.
func (t *trie) collect(s, user string, sep byte, out []int32) []int32 {
	n := t
	done := false
	for n != nil {
		out = append(out, n.pols...)
		if done {
			break
		}
		var seg string
		if i := strings.IndexByte(s, sep); i < 0 {
			seg, s, done = s, "", true
		} else {
			seg, s = s[:i], s[i+1:]
		}
		if n.user != nil && user != "" && seg == user {
			out = n.user.collectFrom(s, done, user, sep, out)
		}
		n = n.children[seg]
	}
	return out
}

func (t *trie) collectFrom(s string, done bool, user string, sep byte, out []int32) []int32 {
	if done {
		return append(out, t.pols...)
	}
	return t.collect(s, user, sep, out)
}
