package policystore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/policy"
	"github.com/stewardhq/steward/internal/policystore"
)

func TestAccessRequestCycle(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := newStore(t, dsn)
		h := policystore.NewHolder(s, nil)
		alice := policystore.Actor{Username: "alice", Groups: []string{"analysts"}}
		bob := policystore.Actor{Username: "bob", Groups: []string{"mortgages"}}
		mallory := policystore.Actor{Username: "mallory"}
		carol := policystore.Actor{Username: "carol", Admin: true}

		for _, o := range []policystore.Owners{
			{Resource: "s3://mortgages/**", Users: []string{"bob"}},
			{Resource: "s3://mortgages/secret/**", Users: []string{"dora"}},
		} {
			if err := s.SetOwners(ctx, o, "carol"); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.SetOwners(ctx, policystore.Owners{Resource: "s3://x/[a]", Users: []string{"bob"}}, "carol"); steward.KindOf(err) != steward.EInvalid {
			t.Fatalf("bad owner pattern: %v", err)
		}
		if o, err := s.OwnersOf(ctx, "s3://mortgages/secret/k"); err != nil || o == nil || o.Users[0] != "dora" {
			t.Fatalf("most specific owner: %+v %v", o, err)
		}

		r, err := s.RequestAccess(ctx, alice, policystore.RequestInput{Resource: "s3://mortgages/loans/**",
			Accesses: []policy.Access{policy.AccessRead}, Duration: 2 * time.Hour, Justification: "quarterly risk report"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != policystore.StatusPending || r.Resource != "s3://mortgages/loans" || r.Approvers == nil || r.Approvers.Users[0] != "bob" {
			t.Fatalf("request: %+v", r)
		}

		read := func(at time.Time) bool {
			t.Helper()
			if _, err := h.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			var d policy.Decision
			h.Decide(&policy.Request{User: "alice", Groups: []string{"analysts"}, Access: policy.AccessRead,
				Resource: policy.Resource{Kind: policy.ResourceObject, Path: "mortgages/loans/2024.parquet"}, Time: at}, &d)
			return d.Allowed
		}
		if read(time.Now()) {
			t.Fatal("allowed before approval")
		}

		// Listing: alice sees hers, bob sees it as approvable, mallory nothing.
		for _, tc := range []struct {
			a    policystore.Actor
			f    policystore.AccessFilter
			want int
		}{
			{alice, policystore.AccessFilter{Mine: true, Approvable: true}, 1},
			{bob, policystore.AccessFilter{Mine: true, Approvable: true}, 1},
			{bob, policystore.AccessFilter{Mine: true}, 0},
			{mallory, policystore.AccessFilter{Mine: true, Approvable: true}, 0},
			{carol, policystore.AccessFilter{Approvable: true}, 1},
		} {
			l, err := s.ListAccessRequests(ctx, tc.a, tc.f)
			if err != nil || len(l) != tc.want {
				t.Errorf("%s %+v: %d requests, want %d (%v)", tc.a.Username, tc.f, len(l), tc.want, err)
			}
		}

		// Nobody approves their own request, not even an admin; strangers cannot.
		if _, err := s.Approve(ctx, r.ID, alice, policystore.DecideInput{}, nil); steward.KindOf(err) != steward.EPermission {
			t.Fatalf("self-approval: %v", err)
		}
		if _, err := s.Approve(ctx, r.ID, mallory, policystore.DecideInput{}, nil); steward.KindOf(err) != steward.EPermission {
			t.Fatalf("stranger approval: %v", err)
		}
		if _, err := s.Approve(ctx, r.ID, bob, policystore.DecideInput{Duration: 3 * time.Hour}, nil); steward.KindOf(err) != steward.EInvalid {
			t.Fatalf("approval longer than requested: %v", err)
		}
		a, err := s.Approve(ctx, r.ID, bob, policystore.DecideInput{Comment: "ok for Q3"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a.Status != policystore.StatusApproved || a.GrantEnd.Sub(a.GrantStart) != 2*time.Hour || a.PolicyID != "grant:"+r.ID {
			t.Fatalf("approved: %+v", a)
		}
		if _, err := s.Deny(ctx, r.ID, bob, policystore.DecideInput{}, nil); steward.KindOf(err) != steward.EConflict {
			t.Fatalf("deny after approve: %v", err)
		}
		if !read(a.GrantStart.Add(time.Minute)) {
			t.Fatal("not allowed after approval")
		}
		// The grant ends by itself.
		if read(a.GrantEnd.Add(time.Second)) {
			t.Fatal("allowed after the grant ended")
		}
		// Apply with prune leaves grants alone.
		apply(t, s, "p.yaml", basic, policystore.ApplyOptions{Prune: true})
		if _, err := s.Get(ctx, a.PolicyID); err != nil {
			t.Fatalf("prune removed a grant: %v", err)
		}
		if _, err := s.Delete(ctx, a.PolicyID, "carol", false, nil); steward.KindOf(err) != steward.EConflict {
			t.Fatalf("deleting a grant as a policy: %v", err)
		}

		// Revoke ends it early.
		if _, err := s.Revoke(ctx, r.ID, mallory, "", nil); steward.KindOf(err) != steward.EPermission {
			t.Fatalf("stranger revoke: %v", err)
		}
		rv, err := s.Revoke(ctx, r.ID, bob, "project over", nil)
		if err != nil || rv.Status != policystore.StatusRevoked {
			t.Fatalf("revoke: %+v %v", rv, err)
		}
		if read(a.GrantStart.Add(time.Minute)) {
			t.Fatal("allowed after revoke")
		}
		got, err := s.AccessRequest(ctx, r.ID)
		if err != nil || got.Status != policystore.StatusRevoked || got.RevokedBy != "bob" || got.RevokeComment != "project over" || got.DecidedBy != "bob" {
			t.Fatalf("stored request: %+v %v", got, err)
		}

		// Deny with a comment.
		r2, err := s.RequestAccess(ctx, alice, policystore.RequestInput{Resource: "s3://mortgages/secret/x",
			Accesses: []policy.Access{policy.AccessRead}, Duration: time.Hour, Justification: "why not"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Approve(ctx, r2.ID, bob, policystore.DecideInput{}, nil); steward.KindOf(err) != steward.EPermission {
			t.Fatalf("owner of a less specific pattern approved: %v", err)
		}
		d, err := s.Deny(ctx, r2.ID, carol, policystore.DecideInput{Comment: "no"}, nil)
		if err != nil || d.Status != policystore.StatusDenied || d.Comment != "no" {
			t.Fatalf("deny: %+v %v", d, err)
		}
	})
}

func TestAccessRequestInvalid(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, "sqlite:"+t.TempDir()+"/s.db")
	alice := policystore.Actor{Username: "alice"}
	ok := policystore.RequestInput{Resource: "s3://b/p", Accesses: []policy.Access{policy.AccessRead}, Duration: time.Hour, Justification: "j"}
	cases := []struct {
		name string
		mut  func(*policystore.RequestInput)
		want string
	}{
		{"wildcard", func(in *policystore.RequestInput) { in.Resource = "s3://b/*/x" }, "wildcards"},
		{"no scheme", func(in *policystore.RequestInput) { in.Resource = "b/p" }, "unknown kind"},
		{"column", func(in *policystore.RequestInput) { in.Resource = "table:a.b#c" }, "whole table"},
		{"no access", func(in *policystore.RequestInput) { in.Accesses = nil }, "accesses"},
		{"admin", func(in *policystore.RequestInput) { in.Accesses = []policy.Access{policy.AccessAdmin} }, "ownership"},
		{"too long", func(in *policystore.RequestInput) { in.Duration = 365 * 24 * time.Hour }, "duration"},
		{"too short", func(in *policystore.RequestInput) { in.Duration = time.Second }, "duration"},
		{"no justification", func(in *policystore.RequestInput) { in.Justification = "  " }, "justification"},
		{"huge justification", func(in *policystore.RequestInput) { in.Justification = strings.Repeat("x", 5000) }, "justification"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := ok
			tc.mut(&in)
			_, err := s.RequestAccess(ctx, alice, in, nil)
			if steward.KindOf(err) != steward.EInvalid || !strings.Contains(steward.MessageOf(err), tc.want) {
				t.Fatalf("error = %v, want invalid with %q", err, tc.want)
			}
		})
	}
	if l, _ := s.ListAccessRequests(ctx, alice, policystore.AccessFilter{Mine: true}); len(l) != 0 {
		t.Fatalf("invalid requests stored: %d", len(l))
	}
}

func FuzzParseResource(f *testing.F) {
	for _, s := range []string{"s3://b/k", "s3://b", "dataset:a.b", "table:a.b.c#col", "table:a..b", "s3:///x", "", "table:#", "dataset:\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := policystore.ParseResource(s)
		if err != nil {
			if steward.KindOf(err) != steward.EInvalid {
				t.Fatalf("error kind %s", steward.KindOf(err))
			}
			return
		}
		// A parsed resource renders back to what was parsed.
		if r.String() != s {
			t.Fatalf("ParseResource(%q).String() = %q", s, r.String())
		}
	})
}
