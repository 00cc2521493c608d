package main

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	grovepebble "github.com/antientropy/grove/adapters/pebble"
	"github.com/antientropy/grove/engine/token"
)

// TestScrubCommand: a row deleted from a node's database around grove —
// its trees still count it, and verify says so — and a row rotted under
// its checksum are found by scrub, which names the lost row's range and
// leaf, moves the rotted row aside naming its key, corrects the tree and
// exits 1; verify then
// passes, a second scrub finds nothing and exits 0, and inspect shows
// when each range was scrubbed.
func TestScrubCommand(t *testing.T) {
	db, node, keys := loadedNode(t, 2000)

	// One row lost underneath the trees.
	lost := []byte(keys[7])
	tok := token.Murmur3{}.Token(lost)
	loseRow(t, db, lost)
	rotted := []byte(keys[1500])
	rotRow(t, db, rotted)
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
	if len(rep.Mismatches) != 2 || rep.RowsCorrected != -2 || rep.Rows != int64(len(keys))-2 {
		t.Fatalf("scrub found %+v; want the lost and the rotted rows' leaves, the count down by 2, %d rows read", rep, len(keys)-2)
	}
	if q := rep.Quarantined; len(q) != 1 || q[0].KeyHex != hex.EncodeToString(rotted) || q[0].Token != strconv.FormatInt(int64(token.Murmur3{}.Token(rotted)), 10) || !strings.Contains(q[0].Reason, "checksum") {
		t.Fatalf("quarantined %+v, want the rotted key %x", q, rotted)
	}
	if rep.Mismatches[1].Leaf < rep.Mismatches[0].Leaf && rep.Mismatches[1].Lo == rep.Mismatches[0].Lo {
		t.Fatalf("mismatches out of order: %+v", rep.Mismatches)
	}
	m := rep.Mismatches[0]
	for _, mm := range rep.Mismatches {
		if lo, _ := strconv.ParseInt(mm.LeafLo, 10, 64); lo < int64(tok) {
			if hi, _ := strconv.ParseInt(mm.LeafHi, 10, 64); int64(tok) <= hi {
				m = mm
			}
		}
	}
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

// rotRow flips a bit of the last byte of key's stored value straight
// through Pebble, as a disk would: the row's checksum no longer matches.
func rotRow(t *testing.T, db string, key []byte) {
	t.Helper()
	p, err := pebble.Open(db, &pebble.Options{Logger: quiet{}, Merger: grovepebble.Merger})
	if err != nil {
		t.Fatal(err)
	}
	tok := token.Murmur3{}.Token(key)
	k := append(binary.BigEndian.AppendUint64([]byte{0x01}, uint64(tok)^(1<<63)), key...)
	v, closer, err := p.Get(k)
	if err != nil {
		t.Fatal(err)
	}
	v = append([]byte(nil), v...)
	closer.Close()
	v[len(v)-1] ^= 0x01
	if err := errors.Join(p.Set(k, v, pebble.Sync), p.Close()); err != nil {
		t.Fatal(err)
	}
}

// loseRow deletes key's row from the node's database straight through
// Pebble, as a lost file or a buggy tool would.
func loseRow(t *testing.T, db string, key []byte) {
	t.Helper()
	ck := binary.BigEndian.AppendUint64([]byte{0x01}, uint64(token.Murmur3{}.Token(key))^(1<<63))
	ck = append(ck, key...)
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
}

// TestServeScrubs: serve scrubs in the background: every range's
// grove_range_scrub_age_seconds turns finite, and the tree of a lost row's
// range is corrected (verify passes once serve stops). Bad --scrub-rate
// values are refused.
func TestServeScrubs(t *testing.T) {
	db, node, keys := loadedNode(t, 1000)
	loseRow(t, db, []byte(keys[3]))
	for _, bad := range []string{"-1", "x", "0.0", "inf"} {
		if code, _, errs := runCmd(t, append([]string{"serve", "--scrub-rate", bad}, node...)...); code != exitError || !strings.Contains(errs, "--scrub-rate") {
			t.Fatalf("serve --scrub-rate %s: exit %d, %q", bad, code, errs)
		}
	}
	addr, srv := startServe(t, append([]string{"serve", "--scrub-rate", "50"}, node...)...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var ages []string
		for _, l := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(l, "grove_range_scrub_age_seconds{") {
				ages = append(ages, l)
			}
		}
		if len(ages) == 0 {
			t.Fatalf("no grove_range_scrub_age_seconds in /metrics")
		}
		if !strings.Contains(strings.Join(ages, "\n"), "+Inf") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s some range was never scrubbed: %v", ages)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, errs := srv.stop(); code != exitOK {
		t.Fatalf("serve: exit %d: %s", code, errs)
	}
	if code, _, errs := runCmd(t, append([]string{"verify"}, node...)...); code != exitOK {
		t.Fatalf("verify after serve's scrub: exit %d: %s", code, errs)
	}
}

// loadedNode loads rows rows of node n1 of the test ring into a new
// database, and returns it, the flags that name the node, and the keys.
func loadedNode(t *testing.T, rows int) (db string, node, keys []string) {
	t.Helper()
	dir := t.TempDir()
	ringPath := filepath.Join(dir, "ring.json")
	if err := os.WriteFile(ringPath, []byte(testRing), 0o644); err != nil {
		t.Fatal(err)
	}
	db = filepath.Join(dir, "db")
	lines, keys := ringKeys("k", rows, true)
	node = []string{"--db", db, "--ring", ringPath, "--node", "n1"}
	if code, _, errs := runCmd(t, append([]string{"load", "--rows", writeRows(t, dir, "rows.jsonl", lines)}, node...)...); code != exitOK {
		t.Fatal(errs)
	}
	return db, node, keys
}

// TestScrubRunningNode: scrub without --db asks the running node, at its
// address in the ring, for one pass: the report names the lost row's
// leaf and the command exits 1; asked again, the node finds nothing.
func TestScrubRunningNode(t *testing.T) {
	db, node, keys := loadedNode(t, 1000)
	lost := []byte(keys[5])
	loseRow(t, db, lost)
	ringPath := node[3]
	addr, srv := startServe(t, append([]string{"serve", "--scrub-rate", "off"}, node...)...)
	ring2 := filepath.Join(filepath.Dir(ringPath), "ring2.json")
	if err := os.WriteFile(ring2, []byte(strings.Replace(testRing, "http://127.0.0.1:1", "http://"+addr, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	asked := []string{"scrub", "--ring", ring2, "--node", "n1", "--rate", "20"}
	code, out, errs := runCmd(t, asked...)
	if code != exitDifferent {
		t.Fatalf("scrub of the running node: exit %d: %s %s", code, out, errs)
	}
	var rep scrubReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	tok := token.Murmur3{}.Token(lost)
	if len(rep.Mismatches) != 1 || rep.RowsCorrected != -1 {
		t.Fatalf("the running node's scrub: %+v; want the lost row's leaf and the count down by 1", rep)
	}
	m := rep.Mismatches[0]
	var lo, hi int64
	if err := errors.Join(json.Unmarshal([]byte(m.LeafLo), &lo), json.Unmarshal([]byte(m.LeafHi), &hi)); err != nil {
		t.Fatal(err)
	}
	if !(token.Range{Lo: lo, Hi: hi}).Contains(tok) {
		t.Fatalf("mismatch %+v does not hold the lost key's token %d", m, tok)
	}
	if code, out, _ := runCmd(t, asked...); code != exitOK {
		t.Fatalf("a second pass: exit %d: %s", code, out)
	}
	if code, errs := srv.stop(); code != exitOK {
		t.Fatalf("serve: exit %d: %s", code, errs)
	}
	if code, _, errs := runCmd(t, append([]string{"verify"}, node...)...); code != exitOK {
		t.Fatalf("verify after the running node's scrub: exit %d: %s", code, errs)
	}
}
