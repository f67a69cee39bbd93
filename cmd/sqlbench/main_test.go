package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestSmallRun runs the whole bench on a small table: every query on
// every path must succeed and return the same number of rows as raw
// DuckDB (run fails otherwise).
func TestSmallRun(t *testing.T) {
	var out, errs bytes.Buffer
	if err := run(context.Background(), []string{"-rows", "5000", "-reps", "1", "-dir", t.TempDir()}, &out, &errs); err != nil {
		t.Fatalf("%v\n%s", err, errs.String())
	}
	for _, q := range queries() {
		if !strings.Contains(out.String(), "| "+q.name+" |") {
			t.Errorf("no line for %s in\n%s", q.name, out.String())
		}
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-rows", "10"}, {"-reps", "0"}, {"-nope"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errs bytes.Buffer
			if err := run(context.Background(), args, &out, &errs); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
