package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestBench: bench --quick --json on a tiny database prints the figures,
// each a sane positive number, as {"figures": {...}} alone on stdout, and
// leaves nothing behind in --dir.
func TestBench(t *testing.T) {
	defer func(n int) { benchRows = n }(benchRows)
	benchRows = 2000
	dir := t.TempDir()
	var stdout, stderr strings.Builder
	code := run(context.Background(), []string{"bench", "--quick", "--json", "--dir", dir}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	var rep map[string]map[string]float64
	if err := json.Unmarshal([]byte(stdout.String()), &rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout.String())
	}
	figs, ok := rep["figures"]
	if !ok || len(rep) != 1 {
		t.Fatalf("stdout %s: want {\"figures\": {...}} alone", stdout.String())
	}
	for _, name := range []string{"scan_vs_floor", "scan_vs_floor_1core", "scan_vs_floor_2core", "scan_rows_per_s", "floor_iter_rows_per_s", "floor_hash_rows_per_s"} {
		v, ok := figs[name]
		if !ok || !(v > 0) {
			t.Errorf("figure %s = %v (present %v), want positive", name, v, ok)
		}
	}
	// A ratio beyond 10 would be a scan ten times faster than bare
	// iteration or bare hashing: one that skipped work.
	if v := figs["scan_vs_floor"]; v > 10 {
		t.Errorf("scan_vs_floor = %v: not a credible ratio", v)
	}
	if figs["scan_rows"] != 2000 {
		t.Errorf("scan_rows = %v, want 2000", figs["scan_rows"])
	}
	if left, err := os.ReadDir(dir); err != nil || len(left) != 0 {
		t.Errorf("--dir holds %d entries after the run (%v), want none", len(left), err)
	}
	if !strings.Contains(stderr.String(), "scan:") {
		t.Errorf("stderr %q: want progress lines", stderr.String())
	}
}

// TestBenchFlags: bench refuses what it cannot use, before measuring.
func TestBenchFlags(t *testing.T) {
	file := t.TempDir() + "/file"
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing dir", []string{"bench", "--dir", t.TempDir() + "/absent"}, "--dir"},
		{"dir is a file", []string{"bench", "--dir", file}, "not a directory"},
		{"argument", []string{"bench", "extra"}, "unexpected argument"},
		{"unknown flag", []string{"bench", "--rows", "5"}, "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != exitError || !strings.Contains(stderr.String(), tc.want) || stdout.Len() != 0 {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, stdout.String(), stderr.String(), exitError, tc.want)
			}
		})
	}
}
