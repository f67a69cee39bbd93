package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/api"
	"github.com/stewardhq/steward/internal/policystore"
)

func TestAccessRequestCycle(t *testing.T) {
	e := newEnv(t)
	readLoans := map[string]any{"access": "read", "resource": "s3://mortgages/loans/2024.parquet"}

	// Only admins set owners.
	owners := map[string]any{"resource": "s3://mortgages/**", "users": []string{"bob"}, "groups": []string{"mortgages"}}
	if st := e.call("bob", "PUT", "/resource-owners", owners, nil); st != 403 {
		t.Fatalf("non-admin sets owners: %d", st)
	}
	e.must("carol", "PUT", "/resource-owners", owners, nil)
	var os []policystore.Owners
	e.must("alice", "GET", "/resource-owners", nil, &os)
	if len(os) != 1 || os[0].Resource != "s3://mortgages/**" {
		t.Fatalf("owners: %+v", os)
	}

	if d := e.decide("alice", readLoans); d.Allowed {
		t.Fatal("allowed before any request")
	}

	// alice asks for read, for 2 hours.
	var r policystore.AccessRequest
	e.must("alice", "POST", "/access-requests", map[string]any{"resource": "s3://mortgages/**", "accesses": []string{"read"}, "duration": "2h", "justification": "Q3 risk model"}, &r)
	if r.Status != "pending" || r.Requester != "alice" || r.DurationSeconds != 7200 || r.Approvers == nil || r.Approvers.Users[0] != "bob" {
		t.Fatalf("request: %+v", r)
	}

	// Listing: alice sees hers; bob sees it as one he can decide; others nothing.
	var l []policystore.AccessRequest
	e.must("bob", "GET", "/access-requests", nil, &l)
	if len(l) != 1 || l[0].ID != r.ID {
		t.Fatalf("bob's list: %+v", l)
	}
	e.must("trino", "GET", "/access-requests", nil, &l)
	if len(l) != 0 {
		t.Fatalf("a stranger sees %d requests", len(l))
	}
	if st := e.call("trino", "GET", "/access-requests/"+r.ID, nil, nil); st != 404 {
		t.Fatalf("stranger reads a request: %d", st)
	}

	// alice cannot approve her own request.
	var p problem
	if st := e.call("alice", "POST", "/access-requests/"+r.ID+"/approve", map[string]any{}, &p); st != 403 || !strings.Contains(p.Detail, "own") {
		t.Fatalf("self-approval: %d %+v", st, p)
	}
	if d := e.decide("alice", readLoans); d.Allowed {
		t.Fatal("self-approval granted access")
	}

	// bob approves.
	var a policystore.AccessRequest
	e.must("bob", "POST", "/access-requests/"+r.ID+"/approve", map[string]any{"comment": "fine for Q3"}, &a)
	if a.Status != "approved" || a.DecidedBy != "bob" || a.Comment != "fine for Q3" || a.GrantEnd.Sub(a.GrantStart) != 2*time.Hour {
		t.Fatalf("approved: %+v", a)
	}
	d := e.decide("alice", readLoans)
	if !d.Allowed || d.PolicyID != "grant:"+r.ID {
		t.Fatalf("alice after approval: %+v", d)
	}
	if d := e.decide("alice", map[string]any{"access": "write", "resource": "s3://mortgages/loans/x"}); d.Allowed {
		t.Fatal("the grant allows more than was requested")
	}
	// The grant ends by itself: decide as of after its end.
	asOf := func(at time.Time) bool {
		var d api.DecisionOutput
		e.must("carol", "POST", "/authorize", map[string]any{"user": "alice", "groups": []string{"analysts"}, "access": "read",
			"resource": "s3://mortgages/loans/2024.parquet", "time": at}, &d)
		return d.Allowed
	}
	if !asOf(a.GrantEnd.Add(-time.Second)) || asOf(a.GrantEnd.Add(time.Second)) {
		t.Fatal("grant validity is not enforced at decision time")
	}

	// bob revokes early; the decision flips back.
	var rv policystore.AccessRequest
	e.must("bob", "POST", "/access-requests/"+r.ID+"/revoke", map[string]any{"comment": "model done"}, &rv)
	if rv.Status != "revoked" {
		t.Fatalf("revoke: %+v", rv)
	}
	if d := e.decide("alice", readLoans); d.Allowed {
		t.Fatalf("allowed after revoke: %+v", d)
	}

	// A short grant (approved for less than requested) ends by itself.
	e.must("alice", "POST", "/access-requests", map[string]any{"resource": "s3://mortgages/loans", "accesses": []string{"read", "list"}, "duration": "1d", "justification": "again"}, &r)
	e.must("bob", "POST", "/access-requests/"+r.ID+"/approve", map[string]any{"duration": "1m"}, &a)
	if a.GrantEnd.Sub(a.GrantStart) != time.Minute {
		t.Fatalf("short grant: %+v", a)
	}
	if !e.decide("alice", readLoans).Allowed || asOf(a.GrantStart.Add(61*time.Second)) {
		t.Fatal("short grant not bounded")
	}

	// Deny with a comment; a denied request cannot be approved.
	e.must("alice", "POST", "/access-requests", map[string]any{"resource": "s3://mortgages/x", "accesses": []string{"write"}, "duration": "1h", "justification": "j"}, &r)
	e.must("bob", "POST", "/access-requests/"+r.ID+"/deny", map[string]any{"comment": "read-only data"}, &a)
	if a.Status != "denied" || a.Comment != "read-only data" {
		t.Fatalf("deny: %+v", a)
	}
	if st := e.call("bob", "POST", "/access-requests/"+r.ID+"/approve", nil, &p); st != 409 {
		t.Fatalf("approve after deny: %d %+v", st, p)
	}

	// Bad requests.
	for _, body := range []map[string]any{
		{"resource": "s3://mortgages/*", "accesses": []string{"read"}, "duration": "1h", "justification": "j"},
		{"resource": "s3://mortgages/a", "accesses": []string{"rad"}, "duration": "1h", "justification": "j"},
		{"resource": "s3://mortgages/a", "accesses": []string{"read"}, "duration": "forever", "justification": "j"},
		{"resource": "s3://mortgages/a", "accesses": []string{"read"}, "duration": "1h", "justification": "   "},
	} {
		if st := e.call("alice", "POST", "/access-requests", body, &p); st != 400 {
			t.Errorf("%v: %d %+v", body, st, p)
		}
	}

	// Every step is audited.
	acts := strings.Join(e.audit.actions("alice"), " ") + " " + strings.Join(e.audit.actions("bob"), " ")
	for _, want := range []string{"access.request/allow", "access.approve/deny", "access.approve/allow", "access.revoke/allow", "access.deny/allow"} {
		if !strings.Contains(acts, want) {
			t.Errorf("audit lacks %s: %s", want, acts)
		}
	}
}
