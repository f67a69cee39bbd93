package policy

// scratch holds per-decision buffers that a reused Decision keeps.
type scratch struct {
	cands, mcands, rcands []int32 // access, masking and row-filter candidates
	names                 []hname // the request's hashed groups and roles
	sink                  uint64  // results of touch passes (see touch.go), so that they are not optimized away
}
