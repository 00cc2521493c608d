package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/ring"

	grovepebble "github.com/antientropy/grove/adapters/pebble"
)

// testRing is four nodes of two tokens each, two replicas per range.
const testRing = `{"partitioner": "murmur3", "replication_factor": 2, "nodes": [
	{"id": "n1", "address": "http://127.0.0.1:1", "tokens": ["-6000000000000000000", "3000000000000000000"]},
	{"id": "n2", "address": "http://127.0.0.1:2", "tokens": ["-3000000000000000000", "6000000000000000000"]},
	{"id": "n3", "address": "http://127.0.0.1:3", "tokens": ["0", "8000000000000000000"]},
	{"id": "n4", "address": "http://127.0.0.1:4", "tokens": ["-8000000000000000000", "1500000000000000000"]}]}`

// n1Ranges are n1's ranges in testRing, worked out by hand. Sorted ring:
// -8e18 n4, -6e18 n1, -3e18 n2, 0 n3, 1.5e18 n4, 3e18 n1, 6e18 n2, 8e18
// n3. A range (prev, t] is held by t's owner and the next distinct owner
// clockwise, so n1 holds its own (-8e18, -6e18] and (1.5e18, 3e18] (with
// n2, next clockwise), and n4's (0, 1.5e18] and the range that wraps,
// (8e18, -8e18], which is two: (bottom, -8e18] and (8e18, top].
func n1Ranges() []token.Range {
	return []token.Range{
		{Lo: token.Murmur3{}.Range().Lo, Hi: -8000000000000000000},
		{Lo: -8000000000000000000, Hi: -6000000000000000000},
		{Lo: 0, Hi: 1500000000000000000},
		{Lo: 1500000000000000000, Hi: 3000000000000000000},
		{Lo: 8000000000000000000, Hi: token.Murmur3{}.Range().Hi},
	}
}

func inAnyRange(rs []token.Range, key string) (token.Range, bool) {
	tok := token.Murmur3{}.Token([]byte(key))
	for _, r := range rs {
		if r.Contains(tok) {
			return r, true
		}
	}
	return token.Range{}, false
}

// ringKeys returns n JSON Lines rows with keys in (in) or out of n1's
// ranges.
func ringKeys(prefix string, n int, in bool) (lines, keys []string) {
	for i := 0; len(keys) < n; i++ {
		k := fmt.Sprintf("%s-%d", prefix, i)
		if _, ok := inAnyRange(n1Ranges(), k); ok == in {
			keys = append(keys, k)
			lines = append(lines, fmt.Sprintf(`{"key": %q, "value": "v%d", "ts": 1}`, k, i))
		}
	}
	return lines, keys
}

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestCommandRing(t *testing.T) {
	dir := t.TempDir()
	ringPath := filepath.Join(dir, "ring.json")
	if err := os.WriteFile(ringPath, []byte(testRing), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "db")
	lines, _ := ringKeys("k", 3000, true)
	rowsPath := writeRows(t, dir, "rows.jsonl", lines)
	node := []string{"--ring", ringPath, "--node", "n1"}

	if code, out, errs := runCmd(t, append([]string{"load", "--db", db, "--rows", rowsPath}, node...)...); code != exitOK {
		t.Fatalf("load: exit %d, %q %q", code, out, errs)
	}

	// inspect --json against an oracle: counts by n1Ranges.
	code, out, errs := runCmd(t, append([]string{"inspect", "--db", db, "--json"}, node...)...)
	if code != exitOK {
		t.Fatalf("inspect: exit %d, %q", code, errs)
	}
	var rep struct {
		Ranges            int   `json:"ranges"`
		Rows              int64 `json:"rows"`
		RowsScannedAtOpen int64 `json:"rows_scanned_at_open"`
		BudgetBytes       int64 `json:"budget_bytes"`
		TreeBytes         int64 `json:"tree_bytes"`
		RangesDetail      []struct {
			Lo, Hi string
			Depth  int
			Rows   int64
			Peers  []string
		} `json:"ranges_detail"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, out)
	}
	want := n1Ranges()
	counts := map[token.Range]int64{}
	for _, l := range lines {
		var r struct{ Key string }
		json.Unmarshal([]byte(l), &r)
		rg, _ := inAnyRange(want, r.Key)
		counts[rg]++
	}
	if rep.Ranges != len(want) || rep.Rows != int64(len(lines)) || rep.RowsScannedAtOpen != 0 || rep.BudgetBytes != 1<<30 || rep.TreeBytes <= 0 || len(rep.RangesDetail) != len(want) {
		t.Fatalf("inspect: %+v; want %d ranges, %d rows, 0 read at open, a 1 GiB budget, some tree bytes", rep, len(want), len(lines))
	}
	wantPeers := [][]string{{"n4"}, {"n2"}, {"n4"}, {"n2"}, {"n4"}}
	for i, d := range rep.RangesDetail {
		r := want[i]
		if d.Lo != strconv.FormatInt(r.Lo, 10) || d.Hi != strconv.FormatInt(r.Hi, 10) || d.Rows != counts[r] || d.Depth < 1 || !slices.Equal(d.Peers, wantPeers[i]) {
			t.Errorf("range %d: %+v; want (%d, %d], %d rows, a depth of at least 1, peers %v", i, d, r.Lo, r.Hi, counts[r], wantPeers[i])
		}
	}
	code, out, _ = runCmd(t, append([]string{"inspect", "--db", db}, node...)...)
	if code != exitOK || !strings.HasPrefix(out, fmt.Sprintf("node n1: 5 ranges, %d rows; open read 0 rows (5 trees reused", len(lines))) || strings.Count(out, "depth") != 5 {
		t.Errorf("inspect text: exit %d, %q", code, out)
	}

	code, out, errs = runCmd(t, append([]string{"verify", "--db", db}, node...)...)
	if code != exitOK || out != fmt.Sprintf("verified 5 ranges: every tree equals a rebuild from its %d rows\n", len(lines)) {
		t.Fatalf("verify: exit %d, %q %q", code, out, errs)
	}

	// dump through the ring prints what dump of the one range does.
	_, all, _ := runCmd(t, "dump", "--db", db)
	code, viaRing, errs := runCmd(t, append([]string{"dump", "--db", db}, node...)...)
	if code != exitOK || viaRing != all || strings.Count(all, "\n") != len(lines) {
		t.Errorf("dump --ring: exit %d (%q), %d lines; dump: %d lines; want %d, equal", code, errs, strings.Count(viaRing, "\n"), strings.Count(all, "\n"), len(lines))
	}

	// A file with a foreign row on line 3: exit 2 naming it, nothing written.
	foreign, fkeys := ringKeys("f", 1, false)
	more, _ := ringKeys("m", 4, true)
	bad := writeRows(t, dir, "bad.jsonl", append(append(more[:2:2], foreign...), more[2:]...))
	code, _, errs = runCmd(t, append([]string{"load", "--db", db, "--rows", bad}, node...)...)
	if code != exitError || !strings.Contains(errs, "line 3") || !strings.Contains(errs, fkeys[0]) || !strings.Contains(errs, "nothing written") {
		t.Errorf("load of a foreign row: exit %d, %q; want 2 naming line 3 and %q", code, errs, fkeys[0])
	}
	if _, after, _ := runCmd(t, "dump", "--db", db); after != all {
		t.Errorf("a refused load changed the database")
	}
	fresh := filepath.Join(dir, "fresh")
	if code, _, _ := runCmd(t, append([]string{"load", "--db", fresh, "--rows", bad}, node...)...); code != exitError {
		t.Errorf("load of a foreign row into a new database: exit %d", code)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Errorf("a refused load created %s (%v)", fresh, err)
	}

	// A row planted past the write path: the kept tree no longer matches.
	_, pkeys := ringKeys("planted", 1, true)
	plantRow(t, db, pkeys[0])
	rg, _ := inAnyRange(want, pkeys[0])
	code, _, errs = runCmd(t, append([]string{"verify", "--db", db}, node...)...)
	if wantMsg := "grove-pebble: verify: range " + rg.String() + ": tree does not match the data"; code != exitError || !strings.HasPrefix(errs, wantMsg) {
		t.Errorf("verify after a planted row: exit %d, %q; want 2 and %q", code, errs, wantMsg)
	}
}

// TestCommandRingJoin: a fifth node joins testRing with a token inside
// n1's range (-8e18, -6e18]. n1 keeps both halves, which inspect rebuilds
// from their rows alone, and gives n5 its place as second replica of the
// range that wraps, whose rows it keeps — unowned — until cleanup.
func TestCommandRingJoin(t *testing.T) {
	dir := t.TempDir()
	ring4 := filepath.Join(dir, "ring4.json")
	ring5 := filepath.Join(dir, "ring5.json")
	joined := testRing[:strings.LastIndex(testRing, "]}")] + `,
	{"id": "n5", "address": "http://127.0.0.1:5", "tokens": ["-7000000000000000000"]}]}`
	for path, text := range map[string]string{ring4: testRing, ring5: joined} {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db := filepath.Join(dir, "db")
	lines, keys := ringKeys("k", 3000, true)
	if code, _, errs := runCmd(t, "load", "--db", db, "--rows", writeRows(t, dir, "rows.jsonl", lines), "--ring", ring4, "--node", "n1"); code != exitOK {
		t.Fatalf("load: %s", errs)
	}
	// Worked out by hand from the two rings: n1's ranges after the join.
	bottom, top := token.Murmur3{}.Range().Lo, token.Murmur3{}.Range().Hi
	split := []token.Range{{Lo: -8000000000000000000, Hi: -7000000000000000000}, {Lo: -7000000000000000000, Hi: -6000000000000000000}}
	kept := []token.Range{{Lo: 0, Hi: 1500000000000000000}, {Lo: 1500000000000000000, Hi: 3000000000000000000}}
	given := []token.Range{{Lo: bottom, Hi: -8000000000000000000}, {Lo: 8000000000000000000, Hi: top}}
	var inSplit, inGiven int64
	for _, k := range keys {
		if _, ok := inAnyRange(split, k); ok {
			inSplit++
		}
		if _, ok := inAnyRange(given, k); ok {
			inGiven++
		}
	}

	node5 := []string{"--db", db, "--ring", ring5, "--node", "n1"}
	code, out, errs := runCmd(t, append([]string{"inspect", "--json"}, node5...)...)
	if code != exitOK {
		t.Fatalf("inspect after the join: exit %d, %s", code, errs)
	}
	var rep struct {
		Ranges            int   `json:"ranges"`
		Rows              int64 `json:"rows"`
		RowsScannedAtOpen int64 `json:"rows_scanned_at_open"`
		RangesDetail      []struct {
			Lo, Hi string
			Peers  []string
		} `json:"ranges_detail"`
		Unowned []struct {
			Lo, Hi string
			Bytes  uint64
		} `json:"unowned"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, out)
	}
	want := append(slices.Clone(split), kept...)
	if rep.Ranges != len(want) || rep.RowsScannedAtOpen != inSplit || rep.Rows != int64(len(keys))-inGiven {
		t.Fatalf("inspect after the join: %+v; want %d ranges, %d rows read (the split range's), %d rows", rep, len(want), inSplit, int64(len(keys))-inGiven)
	}
	for i, d := range rep.RangesDetail {
		if d.Lo != strconv.FormatInt(want[i].Lo, 10) || d.Hi != strconv.FormatInt(want[i].Hi, 10) {
			t.Fatalf("range %d: (%s, %s], want %v", i, d.Lo, d.Hi, want[i])
		}
	}
	if len(rep.Unowned) != 2 || rep.Unowned[0].Lo != strconv.FormatInt(given[0].Lo, 10) || rep.Unowned[1].Hi != strconv.FormatInt(given[1].Hi, 10) || rep.Unowned[0].Bytes+rep.Unowned[1].Bytes == 0 {
		t.Fatalf("unowned after the join: %+v, want %v with their bytes", rep.Unowned, given)
	}
	t.Logf("n5 joined: n1 read %d of its %d rows at open; %d rows left unowned", rep.RowsScannedAtOpen, len(keys), inGiven)
	if code, out, errs := runCmd(t, append([]string{"verify"}, node5...)...); code != exitOK {
		t.Fatalf("verify after the join: exit %d, %q %q", code, out, errs)
	}

	code, out, errs = runCmd(t, append([]string{"cleanup"}, node5...)...)
	if code != exitOK || !strings.Contains(out, "deleted the rows of 2 spans") {
		t.Fatalf("cleanup: exit %d, %q %q", code, out, errs)
	}
	_, dumped, _ := runCmd(t, "dump", "--db", db)
	if got := int64(strings.Count(dumped, "\n")); got != int64(len(keys))-inGiven {
		t.Fatalf("after cleanup: %d rows stored, want %d", got, int64(len(keys))-inGiven)
	}
	code, out, _ = runCmd(t, append([]string{"cleanup"}, node5...)...)
	if code != exitOK || !strings.Contains(out, "nothing to clean up") {
		t.Fatalf("second cleanup: exit %d, %q", code, out)
	}
	code, out, _ = runCmd(t, append([]string{"inspect", "--json"}, node5...)...)
	if code != exitOK || !strings.Contains(out, `"rows_scanned_at_open": 0`) || !strings.Contains(out, `"unowned": []`) {
		t.Fatalf("inspect after cleanup: exit %d, %s", code, out)
	}
}

// plantRow writes a row straight into the Pebble database, in grove's
// layout, bypassing the node: its tree does not learn of it.
func plantRow(t *testing.T, db, key string) {
	t.Helper()
	p, err := pebble.Open(db, &pebble.Options{Logger: quiet{}, Merger: grovepebble.Merger})
	if err != nil {
		t.Fatal(err)
	}
	tok := token.Murmur3{}.Token([]byte(key))
	k := binary.BigEndian.AppendUint64([]byte{0x01}, uint64(tok)^(1<<63))
	k = append(k, key...)
	// Layout 3 (doc.go of grovepebble): flags with bit 2, the timestamp,
	// the value, the CRC-32C of the key and all that: a sound row, as a
	// restored backup or a tool would leave one.
	body := append(binary.BigEndian.AppendUint64([]byte{0x04}, 7), "planted"...)
	sum := crc32.Checksum(slices.Concat(k, body), crc32.MakeTable(crc32.Castagnoli))
	v := binary.BigEndian.AppendUint32(body, sum)
	if err := p.Set(k, v, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCommandRingErrors(t *testing.T) {
	dir := t.TempDir()
	ringPath := filepath.Join(dir, "ring.json")
	if err := os.WriteFile(ringPath, []byte(testRing), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "db")
	lines, _ := ringKeys("k", 10, true)
	rows := writeRows(t, dir, "rows.jsonl", lines)
	if code, _, errs := runCmd(t, "load", "--db", db, "--rows", rows, "--ring", ringPath, "--node", "n1"); code != exitOK {
		t.Fatal(errs)
	}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"inspect without --ring", []string{"inspect", "--db", db}, "grove-pebble: inspect: --ring and --node are required\n"},
		{"verify without --node", []string{"verify", "--db", db, "--ring", ringPath}, "grove-pebble: verify: --ring and --node go together\n"},
		{"load with --node alone", []string{"load", "--db", db, "--rows", rows, "--node", "n1"}, "grove-pebble: load: --ring and --node go together\n"},
		{"an unknown node", []string{"inspect", "--db", db, "--ring", ringPath, "--node", "n9"}, "grove-pebble: inspect: " + ringPath + ": ring: no such node: \"n9\""},
		{"a missing ring", []string{"dump", "--db", db, "--ring", filepath.Join(dir, "nope.json"), "--node", "n1"}, "grove-pebble: dump: ring: open "},
		{"another node's id", []string{"verify", "--db", db, "--ring", ringPath, "--node", "n3"}, "grove-pebble: verify: grovepebble: open " + db + ": grovepebble: database incompatible with the options: the database at " + db + " is ring node \"n1\"'s, opened as node \"n3\""},
		{"no checkpoints", []string{"serve", "--db", db, "--listen", "127.0.0.1:0", "--ring", ringPath, "--node", "n1", "--checkpoint-rows", "0"}, "grove-pebble: serve: --checkpoint-rows 0: want at least 1\n"},
		{"a zero checkpoint interval", []string{"sync", "--db", db, "--ring", ringPath, "--node", "n1", "--checkpoint-interval", "0s"}, "grove-pebble: sync: --checkpoint-interval 0s: want a positive duration\n"},
		{"cleanup without --ring", []string{"cleanup", "--db", db}, "grove-pebble: cleanup: --ring and --node are required\n"},
		{"sync with a peer not in the ring", []string{"sync", "--db", db, "--ring", ringPath, "--node", "n1", "--peer", "http://127.0.0.1:1"}, "grove-pebble: sync: --peer \"http://127.0.0.1:1\": with --ring, want the ID of another node of the ring\n"},
		{"sync with itself", []string{"sync", "--db", db, "--ring", ringPath, "--node", "n1", "--peer", "n1"}, "grove-pebble: sync: --peer \"n1\": with --ring"},
		{"inspect of a missing database", []string{"inspect", "--db", filepath.Join(dir, "missing"), "--ring", ringPath, "--node", "n1"}, "grove-pebble: inspect: grovepebble: open "},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := runCmd(t, c.args...)
			if code != exitError || !strings.HasPrefix(errs, c.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, errs, c.want)
			}
		})
	}
}

// TestCommandScanRate: --scan-rate slows the commands that scan to at
// least the time their bytes take at that rate (lower bounds only), and
// refuses what is not a rate.
func TestCommandScanRate(t *testing.T) {
	dir := t.TempDir()
	ringPath := filepath.Join(dir, "ring.json")
	if err := os.WriteFile(ringPath, []byte(testRing), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "db")
	_, keys := ringKeys("k", 200, true)
	value := strings.Repeat("x", 1000)
	var lines []string
	var stored int64 // the stored layout: 9 + key, 9 + value
	for _, k := range keys {
		lines = append(lines, fmt.Sprintf(`{"key": %q, "value": %q, "ts": 1}`, k, value))
		stored += int64(9 + len(k) + 9 + len(value))
	}
	rows := writeRows(t, dir, "rows.jsonl", lines)
	node := []string{"--ring", ringPath, "--node", "n1"}
	if code, _, errs := runCmd(t, append([]string{"load", "--db", db, "--rows", rows}, node...)...); code != exitOK {
		t.Fatal(errs)
	}
	const mbps = 0.5
	pass := time.Duration(float64(stored) / (mbps * 1e6) * float64(time.Second))
	for _, c := range []struct {
		name   string
		args   []string
		passes int // full passes over the rows the command makes
	}{
		{"verify", append([]string{"verify", "--db", db}, node...), 1},
		{"dump", []string{"dump", "--db", db}, 2}, // validation scan, then the dump's
		{"dump --ring", append([]string{"dump", "--db", db}, node...), 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			code, _, errs := runCmd(t, append(c.args, "--scan-rate", fmt.Sprint(mbps))...)
			took := time.Since(start)
			if want := time.Duration(c.passes) * pass / 2; code != exitOK || took < want {
				t.Errorf("exit %d (%q) after %v; want 0 after at least %v", code, errs, took, want)
			}
		})
	}
	for _, bad := range []string{"-1", "NaN", "+Inf"} {
		code, _, errs := runCmd(t, "dump", "--db", db, "--scan-rate", bad)
		if code != exitError || !strings.HasPrefix(errs, "grove-pebble: dump: --scan-rate ") {
			t.Errorf("--scan-rate %s: exit %d, %q", bad, code, errs)
		}
	}
}

// TestCommandRingServeSync: serve a node of many ranges, and sync another
// node's ranges with it, one node session over every shared range, at the
// address the ring gives the peer.
func TestCommandRingServeSync(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ringText := strings.Replace(testRing, "http://127.0.0.1:2", "http://"+addr, 1)
	ringPath := filepath.Join(dir, "ring.json")
	if err := os.WriteFile(ringPath, []byte(ringText), 0o644); err != nil {
		t.Fatal(err)
	}
	rg, err := ring.Load(ringPath)
	if err != nil {
		t.Fatal(err)
	}
	// Rows of n1's and n2's ranges; the shared ones are where they differ.
	reps1, _ := rg.RangesOf("n1")
	reps2, _ := rg.RangesOf("n2")
	in := func(reps []ring.Replica, k string) bool {
		tok := token.Murmur3{}.Token([]byte(k))
		for _, r := range reps {
			if r.Range.Contains(tok) {
				return true
			}
		}
		return false
	}
	var a, b []string
	var onlyA, onlyB int
	for i := 0; i < 4000; i++ {
		k := fmt.Sprintf("k-%d", i)
		line := fmt.Sprintf(`{"key": %q, "value": "v", "ts": 1}`, k)
		in1, in2 := in(reps1, k), in(reps2, k)
		switch {
		case in1 && in2 && i%50 == 0:
			a = append(a, line) // n2 missed it
			onlyA++
		case in1 && in2 && i%50 == 1:
			b = append(b, line) // n1 missed it
			onlyB++
		default:
			if in1 {
				a = append(a, line)
			}
			if in2 {
				b = append(b, line)
			}
		}
	}
	dbA, dbB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, l := range []struct {
		db, node, name string
		lines          []string
	}{{dbA, "n1", "a.jsonl", a}, {dbB, "n2", "b.jsonl", b}} {
		if code, _, errs := runCmd(t, "load", "--db", l.db, "--rows", writeRows(t, dir, l.name, l.lines), "--ring", ringPath, "--node", l.node); code != exitOK {
			t.Fatal(errs)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	var serveErr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"serve", "--db", dbB, "--listen", addr, "--ring", ringPath, "--node", "n2"}, pw, &serveErr)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), fmt.Sprintf("serving %d rows in %d ranges on http://%s", len(b), len(reps2), addr)) {
		cancel()
		t.Fatalf("serve said %q (%s)", lines.Text(), serveErr.String())
	}
	go io.Copy(io.Discard, pr)

	shared := 0
	for _, r := range reps1 {
		if slices.Contains(r.Peers, "n2") {
			shared++
		}
	}
	code, out, errs := runCmd(t, "sync", "--db", dbA, "--ring", ringPath, "--node", "n1", "--peer", "n2", "--repair")
	if code != exitDifferent || !strings.HasPrefix(out, fmt.Sprintf("with n2: %d shared ranges, ", shared)) ||
		strings.Count(out, "only here:") != onlyA || strings.Count(out, "only there:") != onlyB {
		t.Errorf("sync --repair: exit %d, %q %q; want 1, one node session over %d ranges, %d only here, %d only there", code, out, errs, shared, onlyA, onlyB)
	}
	code, out, errs = runCmd(t, "sync", "--db", dbA, "--ring", ringPath, "--node", "n1", "--peer", "n2", "--json")
	var sessions []struct {
		Peer       string
		Ranges     int
		Identical  bool
		RoundTrips int `json:"round_trips"`
		Sessions   []struct{ Lo, Hi string }
	}
	if code != exitOK || json.Unmarshal([]byte(out), &sessions) != nil || len(sessions) != 1 ||
		sessions[0].Peer != "n2" || sessions[0].Ranges != shared || !sessions[0].Identical || sessions[0].RoundTrips != 1 || len(sessions[0].Sessions) != 0 {
		t.Errorf("sync after the repair: exit %d, %q %q; want 0 and one node session over %d ranges, identical in 1 round trip", code, out, errs, shared)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("serve: exit %d, %q", code, serveErr.String())
	}
	// Both sides verify, and the rows they share are the same.
	for _, v := range []struct{ db, node string }{{dbA, "n1"}, {dbB, "n2"}} {
		if code, _, errs := runCmd(t, "verify", "--db", v.db, "--ring", ringPath, "--node", v.node); code != exitOK {
			t.Errorf("verify %s: %q", v.node, errs)
		}
	}
}
