package policy

// scratch holds per-decision buffers that a reused Decision keeps.
type scratch struct {
	cands []int32
	names []hname // the request's hashed groups and roles
}
