package main

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	grovepebble "github.com/antientropy/grove/adapters/pebble"
	"github.com/antientropy/grove/engine/token"
)

// TestScrubCommand: a row deleted from a node's database around grove —
// its trees still count it, and verify says so — is found by scrub, which
// names its range and leaf, corrects the tree and exits 1; verify then
// passes, a second scrub finds nothing and exits 0, and inspect shows
// when each range was scrubbed.
func TestScrubCommand(t *testing.T) {
	dir := t.TempDir()
	ringPath := filepath.Join(dir, "ring.json")
	if err := os.WriteFile(ringPath, []byte(testRing), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "db")
	lines, keys := ringKeys("k", 2000, true)
	node := []string{"--db", db, "--ring", ringPath, "--node", "n1"}
	if code, _, errs := runCmd(t, append([]string{"load", "--rows", writeRows(t, dir, "rows.jsonl", lines)}, node...)...); code != exitOK {
		t.Fatal(errs)
	}

	// One row lost underneath the trees.
	lost := []byte(keys[7])
	tok := token.Murmur3{}.Token(lost)
	ck := binary.BigEndian.AppendUint64([]byte{0x01}, uint64(tok)^(1<<63))
	ck = append(ck, lost...)
	pdb, err := pebble.Open(db, &pebble.Options{Logger: quiet{}, Merger: grovepebble.Merger})
	if err != nil {
		t.Fatal(err)
	}
	if _, closer, err := pdb.Get(ck); err != nil {
		t.Fatalf("the row to lose is not stored under %x: %v", ck, err)
	} else {
		closer.Close()
	}
	if err := pdb.Delete(ck, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := pdb.Close(); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runCmd(t, append([]string{"verify"}, node...)...); code != exitError {
		t.Fatalf("verify of the damaged node: exit %d, want %d", code, exitError)
	}

	before := time.Now().Add(-time.Second)
	code, out, errs := runCmd(t, append([]string{"scrub", "--rate", "50"}, node...)...)
	if code != exitDifferent {
		t.Fatalf("scrub: exit %d, want %d: %s %s", code, exitDifferent, out, errs)
	}
	var rep scrubReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Mismatches) != 1 || rep.RowsCorrected != -1 || rep.Rows != int64(len(keys))-1 {
		t.Fatalf("scrub found %+v; want the one lost row's leaf, the count down by 1, %d rows read", rep, len(keys)-1)
	}
	m := rep.Mismatches[0]
	var r token.Range
	var leafLo, leafHi int64
	for _, p := range []struct {
		s string
		v *int64
	}{{m.Lo, &r.Lo}, {m.Hi, &r.Hi}, {m.LeafLo, &leafLo}, {m.LeafHi, &leafHi}} {
		if err := json.Unmarshal([]byte(p.s), p.v); err != nil {
			t.Fatal(err)
		}
	}
	if !r.Contains(tok) || !(token.Range{Lo: leafLo, Hi: leafHi}).Contains(tok) {
		t.Fatalf("mismatch %+v does not hold the lost key's token %d", m, tok)
	}
	if code, _, errs := runCmd(t, append([]string{"verify"}, node...)...); code != exitOK {
		t.Fatalf("verify after scrub: exit %d: %s", code, errs)
	}
	if code, out, _ := runCmd(t, append([]string{"scrub"}, node...)...); code != exitOK {
		t.Fatalf("a second scrub: exit %d: %s", code, out)
	}
	code, out, errs = runCmd(t, append([]string{"inspect", "--json"}, node...)...)
	if code != exitOK {
		t.Fatal(errs)
	}
	var in inspectReport
	if err := json.Unmarshal([]byte(out), &in); err != nil {
		t.Fatal(err)
	}
	for _, d := range in.RangesDetail {
		if d.LastScrub == nil || d.LastScrub.Before(before) {
			t.Fatalf("range (%s, %s]: last scrub %v, want after %v", d.Lo, d.Hi, d.LastScrub, before)
		}
	}
	if code, _, _ := runCmd(t, append([]string{"scrub", "--rate", "-1"}, node...)...); code != exitError {
		t.Fatalf("scrub --rate -1: exit %d, want %d", code, exitError)
	}
}
