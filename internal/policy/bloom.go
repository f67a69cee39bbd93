package policy

import (
	"cmp"
	"slices"
)

// bloom is a 256-bit Bloom filter of a request's principal names (its user,
// groups and roles), two bits per name. Policies and items keep the
// two-bit signature of each name they list; a name whose two bits are not
// both in the request's filter is certainly not one of the request's
// principals. This lets the evaluator skip most candidates, and most items,
// without comparing strings.
type bloom [4]uint64

// sig is the two bit positions (0..255) of a name.
type sig uint16

func sigOf(s string) sig { return sigOfHash(nameHash(s)) }

func sigOfHash(h uint64) sig { return sig(h&0xff | (h>>8&0xff)<<8) }

// nameHash is FNV-1a, 64 bit.
func nameHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func (b *bloom) add(s string) { b.addHash(nameHash(s)) }

func (b *bloom) addHash(h uint64) {
	g := sigOfHash(h)
	b[g&0xff>>6] |= 1 << (g & 63)
	b[g>>14] |= 1 << (g >> 8 & 63)
}

func (b *bloom) has(g sig) bool {
	return b[g&0xff>>6]&(1<<(g&63)) != 0 && b[g>>14]&(1<<(g>>8&63)) != 0
}

// mayMatch reports whether any of sigs may be one of the request's
// principals. anyone short-cuts to true.
func (b *bloom) mayMatch(anyone bool, sigs []sig) bool {
	if anyone {
		return true
	}
	for _, g := range sigs {
		if b.has(g) {
			return true
		}
	}
	return false
}

// hname is one of a request's principal names with its hash.
type hname struct {
	h uint64
	s string
}

// reqPrincipals is a request's principals prepared for matching: the Bloom
// filter of all names, and the hashed user, groups and roles, the groups
// and roles sorted by hash. Items keep their names sorted by the same hash,
// so that matching is a merge of two integer lists with a string
// comparison only where the hashes agree.
type reqPrincipals struct {
	bloom
	user          uint64
	groups, roles []hname
}

// init prepares rp for req, using buf for the name lists, and returns buf
// for reuse.
func (rp *reqPrincipals) init(req *Request, buf []hname) []hname {
	if req.User != "" {
		rp.user = nameHash(req.User)
		rp.addHash(rp.user)
	}
	buf = buf[:0]
	for _, g := range req.Groups {
		h := nameHash(g)
		rp.addHash(h)
		buf = append(buf, hname{h, g})
	}
	ng := len(buf)
	for _, r := range req.Roles {
		h := nameHash(r)
		rp.addHash(h)
		buf = append(buf, hname{h, r})
	}
	rp.groups, rp.roles = buf[:ng:ng], buf[ng:]
	sortHnames(rp.groups)
	sortHnames(rp.roles)
	return buf
}

func sortHnames(l []hname) {
	for i := 1; i < len(l); i++ { // insertion sort: lists are short
		for j := i; j > 0 && l[j].h < l[j-1].h; j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
}

// hashSorted reorders names by hash and returns the hashes, in order.
func hashSorted(names []string) []uint64 {
	if len(names) == 0 {
		return nil
	}
	l := make([]hname, len(names))
	for i, n := range names {
		l[i] = hname{nameHash(n), n}
	}
	slices.SortFunc(l, func(a, b hname) int { return cmp.Or(cmp.Compare(a.h, b.h), cmp.Compare(a.s, b.s)) })
	hs := make([]uint64, len(l))
	for i := range l {
		names[i], hs[i] = l[i].s, l[i].h
	}
	return hs
}

// intersects reports whether a name of an item (hs, its hashes, sorted,
// and names in the same order) is one of the request's (req, sorted by
// hash).
func intersects(hs []uint64, names []string, req []hname) bool {
	if len(hs) == 0 || len(req) == 0 {
		return false
	}
	if len(hs) > 8*len(req)+8 { // long item list: search it per name
		for _, r := range req {
			i, _ := slices.BinarySearch(hs, r.h)
			for ; i < len(hs) && hs[i] == r.h; i++ {
				if names[i] == r.s {
					return true
				}
			}
		}
		return false
	}
	i, j := 0, 0
	for i < len(hs) && j < len(req) {
		switch h := hs[i]; {
		case h < req[j].h:
			i++
		case h > req[j].h:
			j++
		default: // equal hashes: compare every pair with this hash
			for i2 := i; i2 < len(hs) && hs[i2] == h; i2++ {
				for j2 := j; j2 < len(req) && req[j2].h == h; j2++ {
					if names[i2] == req[j2].s {
						return true
					}
				}
			}
			for i < len(hs) && hs[i] == h {
				i++
			}
			for j < len(req) && req[j].h == h {
				j++
			}
		}
	}
	return false
}

// hasName reports whether the user (hash h) is among names (hashes hs).
func hasName(hs []uint64, names []string, h uint64, s string) bool {
	i := 0
	if len(hs) > 8 {
		i, _ = slices.BinarySearch(hs, h)
	}
	for ; i < len(hs) && hs[i] <= h; i++ {
		if hs[i] == h && names[i] == s {
			return true
		}
	}
	return false
}
