package policy

import (
	"hash/maphash"
	"math/bits"
	"strings"
	"unsafe"
)

// The compiled index is frozen into flat arrays after it is built: at
// 100,000 policies the decision time is dominated by cache misses, and a
// tree of Go maps whose keys point into each policy's own strings costs
// several misses per path segment. The frozen forms keep nodes, candidate
// lists and key text each in one contiguous block.

// interner copies strings into large shared blocks, once per distinct
// value, so that the text the evaluator compares lives close together.
type interner struct {
	m     map[string]string
	block []byte
}

const internBlock = 64 << 10

func (in *interner) intern(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := in.m[s]; ok {
		return v
	}
	if in.m == nil {
		in.m = map[string]string{}
	}
	var v string
	if len(s) > internBlock/4 {
		v = strings.Clone(s)
	} else {
		if cap(in.block)-len(in.block) < len(s) {
			in.block = make([]byte, 0, internBlock)
		}
		off := len(in.block)
		in.block = append(in.block, s...)
		// The block is append-only: bytes once written never change.
		v = unsafe.String(&in.block[off], len(s))
	}
	in.m[v] = v
	return v
}

// ftrie is a frozen trie: its nodes live in one open-addressing table,
// so that finding a child touches one table entry rather than a map and
// then a node. A node's place in the table is given by a key chained from
// the root through the segments above it (see childKey), not by its parent's
// place, so the places of all the nodes on a request's path can be computed
// from the path alone and loaded at once (see touch) before the walk
// compares them one by one. Nodes hold no pointers and carry short
// segments inline, so that comparing one touches no other memory.
type ftrie struct {
	tab  []fnode // len is a power of two; entries with used set are nodes
	root uint32  // index of the root in tab; noNode for an empty trie
	pols []int32 // candidate lists of all nodes
	text []byte  // segments longer than inlineSeg
	seed maphash.Seed
}

const (
	noNode    = ^uint32(0)
	inlineSeg = 20
	rootKey   = uint64(0x2545f4914f6cdd1d)
)

type fnode struct {
	hash         uint32 // high bits of the key
	parent       uint32
	polOff, polN uint32
	user         uint32 // index of the {USER} child, noNode for none
	used, isUser bool   // isUser: the {USER} child of parent, not found by text
	slen         uint16 // length of the segment
	off          uint32 // where a segment longer than inlineSeg starts in text
	seg          [inlineSeg]byte
}

// childKey chains a parent's key and a segment into the child's key.
func childKey(seed maphash.Seed, parent uint64, seg string) uint64 {
	return maphash.String(seed, seg) ^ bits.RotateLeft64(parent*0x9e3779b97f4a7c15, 29)
}

// userKey is the key of the {USER} child of the node with key parent.
func userKey(seed maphash.Seed, parent uint64) uint64 {
	return childKey(seed, parent, "\x00"+macroUser)
}

// segIs reports whether the node's segment is seg.
func (f *ftrie) segIs(n *fnode, seg string) bool {
	if int(n.slen) != len(seg) {
		return false
	}
	if len(seg) <= inlineSeg {
		return string(n.seg[:len(seg)]) == seg
	}
	return string(f.text[n.off:n.off+uint32(len(seg))]) == seg
}

// freeze builds the frozen form of t; seed is shared by the tries of one
// engine, so that a request's path keys are computed once for all of them.
func freeze(t *trie, seed maphash.Seed) ftrie {
	f := ftrie{seed: seed, root: noNode}
	if t.children == nil && t.user == nil && len(t.pols) == 0 {
		return f
	}
	type edge struct {
		t         *trie
		parent    uint32
		parentKey uint64
		seg       string
		user      bool
	}
	// Count the nodes to size the table.
	count := 0
	var walk func(*trie)
	walk = func(n *trie) {
		count++
		for _, c := range n.children {
			walk(c)
		}
		if n.user != nil {
			walk(n.user)
		}
	}
	walk(t)
	size := 8
	for size < 2*count {
		size *= 2
	}
	f.tab = make([]fnode, size)
	mask := uint64(size - 1)
	place := func(e edge, h uint64) uint32 {
		i := h & mask
		for f.tab[i].used {
			i = (i + 1) & mask
		}
		n := fnode{hash: uint32(h >> 32), used: true, isUser: e.user, parent: e.parent,
			polOff: uint32(len(f.pols)), polN: uint32(len(e.t.pols)), user: noNode, slen: uint16(len(e.seg))}
		if len(e.seg) <= inlineSeg {
			copy(n.seg[:], e.seg)
		} else {
			n.off = uint32(len(f.text))
			f.text = append(f.text, e.seg...)
		}
		f.tab[i] = n
		f.pols = append(f.pols, e.t.pols...)
		return uint32(i)
	}
	queue := []edge{{t: t, parent: noNode}}
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		var h uint64
		switch {
		case e.parent == noNode:
			h = rootKey
		case e.user:
			h = userKey(seed, e.parentKey)
		default:
			h = childKey(seed, e.parentKey, e.seg)
		}
		id := place(e, h)
		if e.parent == noNode {
			f.root = id
		}
		if e.user {
			f.tab[e.parent].user = id
		}
		for seg, c := range e.t.children {
			queue = append(queue, edge{t: c, parent: id, parentKey: h, seg: seg})
		}
		if e.t.user != nil {
			queue = append(queue, edge{t: e.t.user, parent: id, parentKey: h, seg: macroUser, user: true})
		}
	}
	return f
}

// child returns the child of node parent for seg, whose key is key, or
// noNode.
func (f *ftrie) child(parent uint32, key uint64, seg string) uint32 {
	mask := uint64(len(f.tab) - 1)
	for i := key & mask; ; i = (i + 1) & mask {
		n := &f.tab[i]
		if !n.used {
			return noNode
		}
		if n.hash == uint32(key>>32) && n.parent == parent && !n.isUser && f.segIs(n, seg) {
			return uint32(i)
		}
	}
}

// maxKeys is how many leading segments of a request's path get their keys
// computed, and their nodes touched, ahead of the walk.
const maxKeys = 16

// pathKeys are the keys of the nodes a path's leading segments lead to:
// keys[k] is the key of the node after k+1 segments.
type pathKeys struct {
	n    int
	keys [maxKeys]uint64
}

func (pk *pathKeys) init(seed maphash.Seed, s string, sep byte) {
	pk.n = 0
	key := rootKey
	for pk.n < maxKeys {
		i := strings.IndexByte(s, sep)
		seg := s
		if i >= 0 {
			seg = s[:i]
		}
		key = childKey(seed, key, seg)
		pk.keys[pk.n] = key
		pk.n++
		if i < 0 {
			return
		}
		s = s[i+1:]
	}
}

// touch loads the table entries where the nodes of the path (pk) would
// be, without following one from another, so that their cache misses
// overlap; it returns a value only so that the loads are kept.
func (f *ftrie) touch(pk *pathKeys) uint32 {
	if f.root == noNode {
		return 0
	}
	mask := uint64(len(f.tab) - 1)
	var sink uint32
	for _, k := range pk.keys[:pk.n] {
		sink += f.tab[k&mask].hash
	}
	return sink
}

// collect appends to out the policies hanging on the path's walk, like
// (*trie).collect.
func (f *ftrie) collect(s, user string, sep byte, out []int32) []int32 {
	var pk pathKeys
	pk.init(f.seed, s, sep)
	return f.collectKeys(s, user, sep, &pk, out)
}

// collectKeys is collect with the path's keys computed by pk.init.
func (f *ftrie) collectKeys(s, user string, sep byte, pk *pathKeys, out []int32) []int32 {
	if f.root == noNode {
		return out
	}
	return f.collectFrom(f.root, rootKey, 0, pk, s, false, user, sep, out)
}

// collectFrom walks from node id (with key key) at depth segments along
// the path; pk holds the keys of the path's leading segments when the walk
// has followed literal segments only, and is nil below a {USER} node.
func (f *ftrie) collectFrom(id uint32, key uint64, depth int, pk *pathKeys, s string, done bool, user string, sep byte, out []int32) []int32 {
	for {
		n := &f.tab[id]
		out = append(out, f.pols[n.polOff:n.polOff+n.polN]...)
		if done {
			return out
		}
		var seg string
		if i := strings.IndexByte(s, sep); i < 0 {
			seg, s, done = s, "", true
		} else {
			seg, s = s[:i], s[i+1:]
		}
		if n.user != noNode && user != "" && seg == user {
			u := &f.tab[n.user]
			if done {
				out = append(out, f.pols[u.polOff:u.polOff+u.polN]...)
			} else {
				out = f.collectFrom(n.user, userKey(f.seed, key), depth+1, nil, s, done, user, sep, out)
			}
		}
		if pk != nil && depth < pk.n {
			key = pk.keys[depth]
		} else {
			key = childKey(f.seed, key, seg)
		}
		depth++
		if id = f.child(id, key, seg); id == noNode {
			return out
		}
	}
}

// collectChild appends the policies of the root's child seg (a one-level
// trie such as the tag index), without splitting seg.
func (f *ftrie) collectChild(seg string, out []int32) []int32 {
	if f.root == noNode {
		return out
	}
	if id := f.child(f.root, childKey(f.seed, rootKey, seg), seg); id != noNode {
		n := &f.tab[id]
		out = append(out, f.pols[n.polOff:n.polOff+n.polN]...)
	}
	return out
}

// touchChild loads the table entry where the root's child seg would be
// (see touch).
func (f *ftrie) touchChild(seg string) uint32 {
	if f.root == noNode {
		return 0
	}
	return f.tab[childKey(f.seed, rootKey, seg)&uint64(len(f.tab)-1)].hash
}

// internPrincipals moves every item of every policy, in evaluation order,
// into shared arrays: the items of one kind, their name lists, their
// signatures, with the names interned. A candidate's items, and the names
// they list, are then next to each other rather than spread over the heap.
func (e *Engine) internPrincipals(in *interner) {
	nItems, nNames, nSigs := 0, 0, 0 // nNames also counts hashes
	count := func(p *principals) {
		nNames += len(p.users) + len(p.groups) + len(p.roles)
		nSigs += len(p.sigs)
	}
	for _, cp := range e.pols {
		for _, l := range [][]citem{cp.deny, cp.denyEx, cp.allow, cp.allowEx} {
			nItems += len(l)
			for i := range l {
				count(&l[i].principals)
			}
		}
		for i := range cp.masks {
			count(&cp.masks[i].principals)
		}
		for i := range cp.rows {
			count(&cp.rows[i].principals)
		}
		nSigs += len(cp.sigs)
	}
	items := make([]citem, 0, nItems)
	names := make([]string, 0, nNames)
	sigs := make([]sig, 0, nSigs)
	hashes := make([]uint64, 0, nNames)
	hashList := func(l []uint64) []uint64 {
		if len(l) == 0 {
			return nil
		}
		start := len(hashes)
		hashes = append(hashes, l...)
		return hashes[start:len(hashes):len(hashes)]
	}
	list := func(l []string) []string {
		if len(l) == 0 {
			return nil
		}
		start := len(names)
		for _, n := range l {
			names = append(names, in.intern(n))
		}
		return names[start:len(names):len(names)]
	}
	sigList := func(l []sig) []sig {
		if len(l) == 0 {
			return nil
		}
		start := len(sigs)
		sigs = append(sigs, l...)
		return sigs[start:len(sigs):len(sigs)]
	}
	move := func(p *principals) {
		p.users, p.groups, p.roles = list(p.users), list(p.groups), list(p.roles)
		p.uh, p.gh, p.rh = hashList(p.uh), hashList(p.gh), hashList(p.rh)
		p.sigs = sigList(p.sigs)
	}
	itemList := func(l []citem) []citem {
		if len(l) == 0 {
			return l
		}
		start := len(items)
		items = append(items, l...)
		out := items[start:len(items):len(items)]
		for i := range out {
			move(&out[i].principals)
		}
		return out
	}
	for _, cp := range e.pols {
		cp.sigs = sigList(cp.sigs)
		cp.deny, cp.denyEx = itemList(cp.deny), itemList(cp.denyEx)
		cp.allow, cp.allowEx = itemList(cp.allow), itemList(cp.allowEx)
		for i := range cp.masks {
			move(&cp.masks[i].principals)
		}
		for i := range cp.rows {
			move(&cp.rows[i].principals)
		}
	}
}
