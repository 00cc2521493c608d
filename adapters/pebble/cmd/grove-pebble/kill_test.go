package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// envInt reads a positive integer from the environment, or def.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// TestLoadKilled kills `grove-pebble load --ring --node` (kill -9) at random
// moments and checks, after each, that the next open rereads at most a
// quarter of the file's rows (inspect's rows_scanned_at_open) and that the
// trees then equal a full rebuild (verify exits 0). CI runs 4 trials of
// 100 000 rows; GROVE_KILL_TRIALS=20 GROVE_KILL_ROWS=1000000 is the run
// whose figures the README gives.
func TestLoadKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes")
	}
	trials, rows := envInt("GROVE_KILL_TRIALS", 4), envInt("GROVE_KILL_ROWS", 100_000)
	bin := buildCommand(t)
	dir := t.TempDir()
	ringPath := filepath.Join(dir, "ring.json")
	os.WriteFile(ringPath, []byte(testRing), 0o644)
	lines, _ := ringKeys("kill", rows, true)
	rowsPath := writeRows(t, dir, "rows.jsonl", lines)
	// Batches of 1% and a checkpoint every 5% of the rows: what a crash
	// leaves to reread is bounded by the rows since the last checkpoint.
	load := []string{"load", "--rows", rowsPath, "--ring", ringPath, "--node", "n1",
		"--batch-rows", strconv.Itoa(max(1, rows/100)), "--checkpoint-rows", strconv.Itoa(max(1, rows/20))}

	// One load run to the end sets the span the kills fall in.
	start := time.Now()
	if out, err := exec.Command(bin, append(load, "--db", filepath.Join(dir, "whole"))...).CombinedOutput(); err != nil {
		t.Fatalf("load: %v: %s", err, out)
	}
	span := time.Since(start)
	os.RemoveAll(filepath.Join(dir, "whole"))

	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	var fractions []float64
	killed := 0
	for trial := range trials {
		db := filepath.Join(dir, fmt.Sprintf("db%d", trial))
		cmd := exec.Command(bin, append(load, "--db", db)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Within the first 90% of a whole load's time, so that most kills
		// land mid-load even when this run goes faster than that one.
		time.Sleep(time.Duration(rnd.Int64N(int64(span) * 9 / 10)))
		cmd.Process.Kill()
		err := cmd.Wait()
		if err == nil {
			t.Logf("trial %d: the load finished before its kill", trial)
			continue
		}
		killed++
		code, out, errOut := runBin(t, bin, "inspect", "--db", db, "--ring", ringPath, "--node", "n1", "--json")
		if code != 0 {
			if _, statErr := os.Stat(db); statErr != nil {
				continue // killed before the database existed
			}
			if strings.Contains(errOut, "holds an empty Pebble database, not yet a node") {
				// Killed after Pebble made the directory and before the
				// node's format record: nothing was loaded, and the
				// refusal says to run load again.
				continue
			}
			t.Fatalf("trial %d: inspect after kill -9: exit %d: %s", trial, code, errOut)
		}
		var in struct {
			Rows    int64 `json:"rows"`
			Scanned int64 `json:"rows_scanned_at_open"`
		}
		if err := json.Unmarshal([]byte(out), &in); err != nil {
			t.Fatal(err)
		}
		f := float64(in.Scanned) / float64(rows)
		fractions = append(fractions, f) // of loads killed midway only
		t.Logf("trial %d: killed (%v) with %d of %d rows stored; the open reread %d rows, %.1f%% of the file",
			trial, err, in.Rows, rows, in.Scanned, 100*f)
		if in.Scanned*4 > int64(rows) {
			t.Errorf("trial %d: the open after kill -9 reread %d of %d rows, more than a quarter", trial, in.Scanned, rows)
		}
		if code, out, errOut := runBin(t, bin, "verify", "--db", db, "--ring", ringPath, "--node", "n1"); code != 0 {
			t.Fatalf("trial %d: verify after kill -9: exit %d: %s%s", trial, code, out, errOut)
		}
	}
	if killed == 0 {
		t.Fatal("no load was killed before it finished")
	}
	slices.Sort(fractions)
	if len(fractions) > 0 {
		t.Logf("%d trials, %d killed mid-load; reread at open: median %.1f%%, most %.1f%% of %d rows (load of all rows took %v)",
			trials, killed, 100*fractions[len(fractions)/2], 100*fractions[len(fractions)-1], rows, span.Round(time.Millisecond))
	}
}
