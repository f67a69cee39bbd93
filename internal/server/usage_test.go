package server_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/catalog"
)

// TestUsageFromQueries: reads through governed SQL count as dataset usage
// (the audit events feed the usage recorder), visible in `steward dataset
// usage` a few seconds later, with the reader among the top users.
func TestUsageFromQueries(t *testing.T) {
	s := start(t)
	alice := newCLI(t, s)
	alice.login("alice")
	q := "SELECT count(*) FROM mortgages.market.mortgages_by_country"
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		// The crawler infers the schema a moment after start.
		if _, _, code := alice.run("", "sql", "-c", q); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the demo table never became queryable")
		}
	}
	alice.must("", "sql", "-c", q)
	var u catalog.DatasetUsage
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		out := alice.must("", "dataset", "usage", "s3://mortgages/market/mortgages_by_country", "-o", "json")
		if err := json.Unmarshal([]byte(out), &u); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if u.Reads >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reads not counted: %+v", u)
		}
	}
	if u.Readers != 1 || len(u.TopUsers) == 0 || u.TopUsers[0].User != "alice" {
		t.Errorf("usage: %+v", u)
	}
}
