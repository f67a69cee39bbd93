package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
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
	// Every row of the table has the header's cells (the wall ratios come
	// three ways, the CPU ratio one).
	var cells int
	for _, l := range strings.Split(out.String(), "\n") {
		if !strings.HasPrefix(l, "|") {
			continue
		}
		if n := strings.Count(l, "|"); cells == 0 {
			cells = n
		} else if n != cells {
			t.Errorf("%d cells in %q, the header has %d", n-1, l, cells-1)
		}
	}
	if !strings.Contains(out.String(), "| same, total | same, per round |") {
		t.Errorf("no total and per-round ratio columns in\n%s", out.String())
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-rows", "10"}, {"-reps", "0"}, {"-nope"}, {"-queries", "scan,nope"}, {"-queries", "join", "-only", "masked"}, {"-rest", "xml"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errs bytes.Buffer
			if err := run(context.Background(), args, &out, &errs); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestSelectQueries(t *testing.T) {
	for _, tc := range []struct {
		queries, only string
		want          []string
	}{
		{"", "", shortNames()},
		{"export", "", []string{"export"}},
		{"join-masked, scan", "", []string{"scan", "join-masked"}},
		{"", "masked", []string{"aggregate-masked", "join-masked", "join+email-masked"}},
		{"join,join+email", "", []string{"join", "join+email"}},
	} {
		t.Run(tc.queries+"/"+tc.only, func(t *testing.T) {
			qs, err := selectQueries(options{queries: tc.queries, only: tc.only})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, q := range qs {
				got = append(got, q.short)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestOneQuery runs only the export, as another bench does.
func TestOneQuery(t *testing.T) {
	var out, errs bytes.Buffer
	if err := run(context.Background(), []string{"-rows", "5000", "-reps", "1", "-queries", "export", "-dir", t.TempDir()}, &out, &errs); err != nil {
		t.Fatalf("%v\n%s", err, errs.String())
	}
	for _, q := range queries() {
		if got := strings.Contains(out.String(), "| "+q.name+" |"); got != (q.short == "export") {
			t.Errorf("line for %s: %v in\n%s", q.name, got, out.String())
		}
	}
}

// TestRESTFormats reads the REST endpoint's CSV and Arrow results too: the
// row counts must equal raw DuckDB's (run fails otherwise).
func TestRESTFormats(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"csv", "arrow"} {
		t.Run(f, func(t *testing.T) {
			var out, errs bytes.Buffer
			args := []string{"-rows", "5000", "-reps", "1", "-pg=false", "-rest", f, "-queries", "filter,export,join+email-masked", "-dir", dir}
			if err := run(context.Background(), args, &out, &errs); err != nil {
				t.Fatalf("%v\n%s", err, errs.String())
			}
			if !strings.Contains(out.String(), "Steward REST wall") || !strings.Contains(out.String(), "REST results as "+f) {
				t.Errorf("no REST column in\n%s", out.String())
			}
		})
	}
}

// TestNotInProcess times only raw DuckDB and the client paths; the in-process
// service still checks a masked query's values in the warm-up.
func TestNotInProcess(t *testing.T) {
	var out, errs bytes.Buffer
	if err := run(context.Background(), []string{"-rows", "5000", "-reps", "1", "-inprocess=false", "-queries", "aggregate-masked", "-dir", t.TempDir()}, &out, &errs); err != nil {
		t.Fatalf("%v\n%s", err, errs.String())
	}
	hdr := strings.SplitN(out.String(), "\n", 4)[2]
	if strings.Contains(hdr, "| Steward wall") || !strings.Contains(hdr, "Steward pgwire wall") || !strings.Contains(hdr, "Steward REST wall") {
		t.Errorf("header %q", hdr)
	}
}

func TestPairedRatios(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var ds []time.Duration
		for _, x := range v {
			ds = append(ds, time.Duration(x)*time.Millisecond)
		}
		return ds
	}
	got := pairedRatios(ms(100, 200, 300), ms(100, 100, 600))
	if len(got) != 3 || got[0] != 0.5 || got[1] != 1 || got[2] != 2 {
		t.Fatalf("pairedRatios = %v", got)
	}
}
