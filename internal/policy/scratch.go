package policy

// scratch holds per-decision buffers that a reused Decision keeps.
type scratch struct {
	cands, mcands, rcands []int32 // access, masking and row-filter candidates
	names                 []hname // the request's hashed groups and roles
	sink                  uint64  // results of touch passes (see touch.go), so that they are not optimized away
	// text is where expanded row filters are written. It is only ever
	// appended to, never rewound, so the strings handed out stay valid
	// after the Decision is reused; a full block is replaced by a new one
	// and kept alive by the strings that point into it.
	text []byte
}

// textBlock is the size of a scratch.text block.
const textBlock = 4096
