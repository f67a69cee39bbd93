package pgtest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestFindBin(t *testing.T) {
	root := t.TempDir()
	old := installRoot
	installRoot = root
	t.Cleanup(func() { installRoot = old })

	if _, err := findBin(); err == nil || !strings.Contains(err.Error(), "make test") {
		t.Fatalf("no PostgreSQL installed: err = %v, want advice to run make test", err)
	}
	install := func(version string, files ...string) string {
		bin := filepath.Join(root, version, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(bin, f), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		return bin
	}
	install("9.6", "initdb", "postgres")
	want := install("15", "initdb", "postgres")
	install("17", "psql") // client only: not a server
	got, err := findBin()
	if err != nil || got != want {
		t.Fatalf("findBin() = %q, %v; want %q (newest with a server)", got, err, want)
	}
}

func TestQuoteIdent(t *testing.T) {
	if got := quoteIdent(`a"b`); got != `"a""b"` {
		t.Fatalf("quoteIdent = %s", got)
	}
}

func TestRemoveStale(t *testing.T) {
	base := t.TempDir()
	mk := func(name, pid string) string {
		d := filepath.Join(base, name)
		if err := os.MkdirAll(filepath.Join(d, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		if pid != "" {
			if err := os.WriteFile(filepath.Join(d, "data", "postmaster.pid"), []byte(pid+"\n/data\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	dead := mk(dirPrefix+"dead", "2147483646") // above pid_max: no such process
	live := mk(dirPrefix+"live", strconv.Itoa(os.Getpid()))
	starting := mk(dirPrefix+"starting", "")
	other := mk("someone-else", "2147483646")
	removeStale(base)
	for d, keep := range map[string]bool{dead: false, live: true, starting: true, other: true} {
		_, err := os.Stat(d)
		if exists := err == nil; exists != keep {
			t.Errorf("%s: exists = %v, want %v", filepath.Base(d), exists, keep)
		}
	}
}
