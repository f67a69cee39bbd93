package policy

// bloom is a 256-bit Bloom filter of a request's principal names (its user,
// groups and roles), two bits per name. Policies and items keep the
// two-bit signature of each name they list; a name whose two bits are not
// both in the request's filter is certainly not one of the request's
// principals. This lets the evaluator skip most candidates, and most items,
// without comparing strings.
type bloom [4]uint64

// sig is the two bit positions (0..255) of a name.
type sig uint16

func sigOf(s string) sig {
	// FNV-1a, 64 bit.
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return sig(h&0xff | (h>>8&0xff)<<8)
}

func (b *bloom) add(s string) {
	g := sigOf(s)
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

func (b *bloom) request(req *Request) {
	if req.User != "" {
		b.add(req.User)
	}
	for _, g := range req.Groups {
		b.add(g)
	}
	for _, r := range req.Roles {
		b.add(r)
	}
}
