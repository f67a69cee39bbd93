package policy

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPrincipalMatchAgreesWithNaive compares the hashed merge matching
// with plain string membership on random name sets, short and long.
func TestPrincipalMatchAgreesWithNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	names := func(n, max int) []string {
		var out []string
		for range n {
			out = append(out, fmt.Sprintf("n%d", r.IntN(max)))
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	for i := range 2000 {
		itemN := 1 + r.IntN(5)
		if i%10 == 0 {
			itemN = 50 + r.IntN(200)
		}
		groups, users := names(itemN, 300), names(itemN/3+r.IntN(4), 300)
		pr, fe := compilePrincipals("x", users, groups, nil)
		if fe != nil {
			t.Fatal(fe)
		}
		req := &Request{User: fmt.Sprintf("n%d", r.IntN(300)), Groups: names(r.IntN(20), 300)}
		var rp reqPrincipals
		rp.init(req, nil)
		want := slices.Contains(users, req.User)
		for _, g := range req.Groups {
			want = want || slices.Contains(groups, g)
		}
		if got := pr.match(req, &rp); got != want {
			t.Fatalf("case %d: match %v, want %v (users %v groups %v, request %q %v)", i, got, want, users, groups, req.User, req.Groups)
		}
	}
}

// TestIntersectsCollisions forces equal hashes for different names: only
// equal names match.
func TestIntersectsCollisions(t *testing.T) {
	hs := []uint64{1, 5, 5, 5, 9}
	names := []string{"a", "b", "c", "d", "e"}
	cases := []struct {
		req  []hname
		want bool
	}{
		{[]hname{{5, "x"}, {5, "y"}}, false},
		{[]hname{{5, "x"}, {5, "d"}}, true},
		{[]hname{{2, "b"}, {9, "x"}}, false},
		{[]hname{{9, "e"}}, true},
		{nil, false},
	}
	for i, c := range cases {
		if got := intersects(hs, names, c.req); got != c.want {
			t.Errorf("case %d: %v, want %v", i, got, c.want)
		}
	}
	if !hasName(hs, names, 5, "c") || hasName(hs, names, 5, "z") || hasName(hs, names, 4, "b") {
		t.Error("hasName")
	}
}
