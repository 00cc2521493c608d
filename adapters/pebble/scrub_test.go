package grovepebble

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/engine/token"
)

// damage changes the rows of a node's database as bit rot, a restored
// backup or a buggy tool would, straight through Pebble, around the write
// path: a stored value rotted (a bit flipped under its checksum), two rows
// lost, an older version restored and a row that appears (both with
// sound checksums, as a backup holds them). It returns the keys it
// touched, the rotted one first.
func damage(t *testing.T, n *Node, keys [][]byte, stray []byte) [][]byte {
	t.Helper()
	ckOf := func(k []byte) []byte { return appendRowKey(nil, token.Murmur3{}.Token(k), k) }
	set := func(r engine.Row) {
		t.Helper()
		ck := ckOf(r.Key)
		if err := n.db.Set(ck, appendStored(nil, ck, &r, 0, n.forest != nil), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	del := func(k []byte) {
		t.Helper()
		if err := n.db.Delete(ckOf(k), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	v, closer, err := n.db.Get(ckOf(keys[0]))
	if err != nil {
		t.Fatal(err)
	}
	rotted := slices.Clone(v)
	closer.Close()
	rotted[len(rotted)-1] ^= 0x01
	if err := n.db.Set(ckOf(keys[0]), rotted, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	del(keys[1])
	del(keys[2])
	set(engine.Row{Key: keys[3], Value: []byte("an older version"), TS: 5})
	set(engine.Row{Key: stray, Value: []byte("never written through the node"), TS: 7})
	return [][]byte{keys[0], keys[1], keys[2], keys[3], stray}
}

// checkQuarantined checks that a scrub moved exactly key aside, and that
// the row is kept under the quarantine prefix and gone from the rows.
func checkQuarantined(t *testing.T, n *Node, rep ScrubReport, key []byte) {
	t.Helper()
	if len(rep.Quarantined) != 1 || !bytes.Equal(rep.Quarantined[0].Key, key) || rep.Quarantined[0].Token != (token.Murmur3{}).Token(key) ||
		!strings.Contains(rep.Quarantined[0].Reason, "checksum") {
		t.Fatalf("quarantined %+v, want the rotted key %q, for its checksum", rep.Quarantined, key)
	}
	ck := appendRowKey(nil, token.Murmur3{}.Token(key), key)
	if _, closer, err := n.db.Get(ck); !errors.Is(err, pebble.ErrNotFound) {
		if err == nil {
			closer.Close()
		}
		t.Fatalf("the rotted row is still among the rows: %v", err)
	}
	v, closer, err := n.db.Get(append(slices.Clone(quarantinePrefix), ck...))
	if err != nil {
		t.Fatalf("the rotted row is not kept aside: %v", err)
	}
	defer closer.Close()
	var r engine.Row
	if _, err := decodeRow(n.p, ck, v, &r, true); !errors.Is(err, ErrChecksum) {
		t.Fatalf("the row kept aside decodes: %v; want it as it was found", err)
	}
}

// leafKey names a leaf of a node's range.
type leafKey struct {
	r    token.Range
	leaf int
}

// wantMismatches are the leaves of the damaged keys, found independently
// of the scrub: each key's token, in its range, at the range tree's depth.
func wantMismatches(t *testing.T, n *Node, damaged [][]byte) []leafKey {
	t.Helper()
	var out []leafKey
	for _, k := range damaged {
		tok := token.Murmur3{}.Token(k)
		for _, rep := range n.Replicas() {
			if rep.Range().Contains(tok) {
				out = append(out, leafKey{rep.Range(), rep.Range().LeafOf(tok, rep.Depth())})
			}
		}
	}
	slices.SortFunc(out, func(a, b leafKey) int {
		if a.r.Lo != b.r.Lo {
			return compareTokens(a.r.Lo, b.r.Lo)
		}
		return a.leaf - b.leaf
	})
	return slices.Compact(out)
}

func compareTokens(a, b token.Token) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestScrubFindsDamage: rows changed underneath a node's trees — which
// then still vouch for what was written — are found by a scrub, leaf by
// leaf: exactly the leaves of the damaged keys, each set to what the rows
// say, the row counts corrected, every tree then equal to a rebuild from
// the rows; a second pass finds nothing, and the corrections survive a
// reopen that reads no row.
func TestScrubFindsDamage(t *testing.T) {
	ctx := context.Background()
	rs := testRanges()
	dir := t.TempDir()
	opts := Options{Ranges: rs}
	n := openNode(t, dir, created(opts))
	keys := rangeKeys(rs, "k", 3000, true)
	loadRows(t, n, keys, 10)
	n.Rows() // settled
	damaged := damage(t, n, keys, rangeKeys(rs, "stray", 1, true)[0])

	rep, err := n.Scrub(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []leafKey
	for _, m := range rep.Mismatches {
		got = append(got, leafKey{m.Range, m.Leaf})
		if m.Span != m.Range.Leaf(m.Leaf, n.mustReplica(t, m.Range).Depth()) {
			t.Errorf("mismatch %+v: span is not the leaf's tokens", m)
		}
	}
	if want := wantMismatches(t, n, damaged); !slices.Equal(got, want) {
		t.Fatalf("the scrub found leaves %v, the damaged keys are in %v", got, want)
	}
	// Read: all but the two lost and the rotted, and the stray; the count
	// loses those three and gains the stray.
	if rep.Ranges != len(rs) || rep.Skipped != 0 || rep.Rows != int64(len(keys))-2 || rep.RowsCorrected != -2 {
		t.Fatalf("report %+v: want %d ranges, %d rows read, the count corrected by -2", rep, len(rs), len(keys)-2)
	}
	checkQuarantined(t, n, rep, damaged[0])
	checkTrees(t, n, rs)
	if st := n.ScrubStats(); st.Ranges != int64(len(rs)) || st.Rows != rep.Rows || st.Bytes != rep.Bytes || st.Mismatches != int64(len(rep.Mismatches)) || st.Quarantined != 1 {
		t.Fatalf("ScrubStats %+v after one pass reporting %+v", st, rep)
	}

	again, err := n.Scrub(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Mismatches) != 0 || again.RowsCorrected != 0 {
		t.Fatalf("a second pass found %+v", again)
	}

	n = reopen(t, n, dir, opts)
	if s := n.OpenStats(); s.Reused != len(rs) || s.RowsScanned != 0 {
		t.Fatalf("reopened after a scrub: %+v, want every tree reused as checkpointed", s)
	}
	checkTrees(t, n, rs)
}

// mustReplica is the replica of range r.
func (n *Node) mustReplica(t *testing.T, r token.Range) *RangeReplica {
	t.Helper()
	for _, rep := range n.Replicas() {
		if rep.Range() == r {
			return rep
		}
	}
	t.Fatalf("no replica of %v", r)
	return nil
}

// TestScrubWhileWriting: writers go on through a scrub of a damaged node
// — inserts, replacements, tombstones, the damaged keys among them — and
// afterwards every tree equals a rebuild from the rows, with the damage's
// leaves corrected and the writes in.
func TestScrubWhileWriting(t *testing.T) {
	ctx := context.Background()
	rs := testRanges()
	n := openNode(t, t.TempDir(), created(Options{Ranges: rs, ScanRate: 2 << 20}))
	keys := rangeKeys(rs, "k", 4000, true)
	loadRows(t, n, keys, 10)
	n.Rows()
	damage(t, n, keys, rangeKeys(rs, "stray", 1, true)[0])

	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 2)
	for w := range 2 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(w), 9))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var batch []engine.Row
				for range 20 {
					k := keys[rnd.IntN(len(keys))]
					if rnd.IntN(4) == 0 {
						k = fmt.Appendf(nil, "new-%d-%d-%d", w, i, rnd.Int())
						if !inRanges(rs, token.Murmur3{}.Token(k)) {
							continue
						}
					}
					batch = append(batch, engine.Row{Key: k, Value: fmt.Appendf(nil, "w%d", i), TS: int64(11 + i), Deleted: rnd.IntN(6) == 0})
				}
				if _, err := n.Apply(ctx, batch); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	rep, err := n.Scrub(ctx, 0)
	close(stop)
	wg.Wait()
	close(errs)
	if err != nil {
		t.Fatal(err)
	}
	for err := range errs {
		t.Fatal(err)
	}
	if len(rep.Mismatches) == 0 {
		t.Fatal("the scrub found none of the damage")
	}
	checkTrees(t, n, rs)
}

// TestScrubOneRange: a node of one range is scrubbed the same way.
func TestScrubOneRange(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, t.TempDir(), created(Options{Depth: 10}))
	var keys [][]byte
	for i := range 2000 {
		keys = append(keys, fmt.Appendf(nil, "k-%d", i))
	}
	for i := 0; i < len(keys); i += 500 {
		var batch []engine.Row
		for _, k := range keys[i:min(i+500, len(keys))] {
			batch = append(batch, engine.Row{Key: k, Value: []byte("v" + string(k)), TS: 10})
		}
		if _, err := n.Apply(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	n.Rows()
	damaged := damage(t, n, keys, []byte("stray"))
	rep, err := n.Scrub(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkQuarantined(t, n, rep, damaged[0])
	want := map[int]bool{}
	for _, k := range damaged {
		want[n.rng.LeafOf(token.Murmur3{}.Token(k), 10)] = true
	}
	got := map[int]bool{}
	for _, m := range rep.Mismatches {
		got[m.Leaf] = true
	}
	if len(got) != len(want) || rep.RowsCorrected != -2 {
		t.Fatalf("found leaves %v, want %v; rows corrected %d, want -2", got, want, rep.RowsCorrected)
	}
	for l := range want {
		if !got[l] {
			t.Fatalf("found leaves %v, want %v", got, want)
		}
	}
	// The tree against a rebuild from what Pebble holds.
	ref, err := engine.New(engine.Options{Partitioner: token.Murmur3{}, Range: n.rng, Depth: 10, Budget: arena.NewBudget(64 << 20)})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	for _, s := range dbRows(t, n) {
		if err := ref.Add(&s.Row); err != nil {
			t.Fatal(err)
		}
	}
	if err := ref.Hash(ctx); err != nil {
		t.Fatal(err)
	}
	wantRoot, _ := ref.Root()
	gotRoot, err := n.Root(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if gotRoot != wantRoot || n.Rows() != ref.Rows() {
		t.Fatalf("scrubbed tree: root %x, %d rows; a rebuild: %x, %d rows", gotRoot[:8], n.Rows(), wantRoot[:8], ref.Rows())
	}
}

// TestScrubResumes: a pass cut short records the ranges it checked; after
// a reopen the next pass takes the others first, and every range ends up
// recorded.
func TestScrubResumes(t *testing.T) {
	rs := testRanges()
	dir := t.TempDir()
	// About 15 KB of rows a range, read at 200 KB/s: a range takes
	// tens of milliseconds.
	opts := Options{Ranges: rs, ScanRate: 200 << 10}
	n := openNode(t, dir, created(opts))
	loadRows(t, n, rangeKeys(rs, "k", 3000, true), 10)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, err := n.Scrub(ctx, 0)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a pass cut short: %v, want the deadline", err)
	}
	done := map[token.Range]bool{}
	for _, r := range rs {
		if _, ok := n.LastScrubbed(r); ok {
			done[r] = true
		}
	}
	if len(done) == 0 || len(done) == len(rs) {
		t.Fatalf("%d of %d ranges recorded after a pass cut short; the test needs some", len(done), len(rs))
	}
	n = reopen(t, n, dir, Options{Ranges: rs})
	order := n.scrubRanges()
	for i, r := range order {
		if done[r] != (i >= len(rs)-len(done)) {
			t.Fatalf("after a reopen the pass would take %v; the ranges not yet scrubbed (%d) must come first", order, len(rs)-len(done))
		}
	}
	before := time.Now()
	if _, err := n.Scrub(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		at, ok := n.LastScrubbed(r)
		if !ok || at.Before(before) {
			t.Fatalf("range %v: last scrubbed %v (%v), want after %v", r, at, ok, before)
		}
	}
}

// TestBackgroundScrub: a node scrubbing in the background finds the damage
// on its own, range after range, and every tree ends up equal to a rebuild
// from its rows; a second StartScrub, and a rate of 0, are refused.
func TestBackgroundScrub(t *testing.T) {
	rs := testRanges()
	n := openNode(t, t.TempDir(), created(Options{Ranges: rs}))
	keys := rangeKeys(rs, "k", 3000, true)
	loadRows(t, n, keys, 10)
	n.Rows()
	damage(t, n, keys, rangeKeys(rs, "stray", 1, true)[0])
	if err := n.StartScrub(0); !errors.Is(err, ErrOptions) {
		t.Fatalf("StartScrub(0): %v, want ErrOptions", err)
	}
	if _, err := n.Scrub(context.Background(), -1); !errors.Is(err, ErrOptions) {
		t.Fatalf("Scrub at -1 bytes/s: %v, want ErrOptions", err)
	}
	start := time.Now()
	if err := n.StartScrub(50 << 20); err != nil {
		t.Fatal(err)
	}
	if err := n.StartScrub(50 << 20); !errors.Is(err, ErrOptions) {
		t.Fatalf("a second StartScrub: %v, want ErrOptions", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		all := true
		for _, r := range rs {
			if at, ok := n.LastScrubbed(r); !ok || at.Before(start) {
				all = false
			}
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background scrub did not reach every range in 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	checkTrees(t, n, rs)
}

// TestCloseStopsScrub: Close does not wait for a slow background scrub to
// finish its range.
func TestCloseStopsScrub(t *testing.T) {
	rs := testRanges()
	n := openNode(t, t.TempDir(), created(Options{Ranges: rs}))
	loadRows(t, n, rangeKeys(rs, "k", 3000, true), 10)
	// At 1 KiB/s a range of ~15 KB takes many seconds.
	if err := n.StartScrub(1 << 10); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- n.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited on the background scrub")
	}
}

// TestScrubThenRepair: one of three replicas is damaged underneath its
// tree — a stored value rotted at the same timestamp to greater bytes,
// which Cassandra's tie rule would let win and spread, another overwritten
// at the same timestamp without its checksum, two rows lost, an older
// version restored. Before a scrub a session with a healthy replica
// finds the two identical; after it — the rotted and the overwritten rows
// fail their checksums and are moved aside — sessions with both healthy replicas bring every
// damaged row back from them, push nothing to them — their rows are
// unchanged — and leave the three replicas holding the same rows.
func TestScrubThenRepair(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts := Options{Depth: 12}
	nodes := []*Node{openNode(t, t.TempDir(), created(opts)), openNode(t, t.TempDir(), created(opts)), openNode(t, t.TempDir(), created(opts))}
	healthy, damaged := nodes[:2], nodes[2]
	var base []engine.Row
	for i := range 3000 {
		base = append(base, engine.Row{Key: fmt.Appendf(nil, "user:%05d", i), Value: fmt.Appendf(nil, "profile %d", i), TS: 1_700_000_000 + int64(i)})
	}
	for _, n := range nodes {
		if _, err := n.Apply(ctx, base); err != nil {
			t.Fatal(err)
		}
		n.Rows()
	}
	set := func(r engine.Row) {
		t.Helper()
		ck := appendRowKey(nil, token.Murmur3{}.Token(r.Key), r.Key)
		if err := damaged.db.Set(ck, appendStored(nil, ck, &r, 0, false), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	rot := appendRowKey(nil, token.Murmur3{}.Token(base[10].Key), base[10].Key)
	v, closer, err := damaged.db.Get(rot)
	if err != nil {
		t.Fatal(err)
	}
	rotted := slices.Clone(v)
	closer.Close()
	rotted[len(rotted)-1] ^= 0x01 // "profile 10" becomes "profile 11": greater
	if err := damaged.db.Set(rot, rotted, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	for _, r := range []engine.Row{base[20], base[21]} {
		if err := damaged.db.Delete(appendRowKey(nil, token.Murmur3{}.Token(r.Key), r.Key), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	older := base[30]
	older.TS, older.Value = older.TS-1000, []byte("an older profile")
	set(older)
	// Overwritten around the node at the same timestamp with greater
	// bytes and no checksum, as a tool writing the old layout would.
	over := base[40]
	over.Value = []byte("zzz")
	overCK := appendRowKey(nil, token.Murmur3{}.Token(over.Key), over.Key)
	if err := damaged.db.Set(overCK, appendValue(nil, &over), pebble.Sync); err != nil {
		t.Fatal(err)
	}

	before := make([][]storedRow, len(healthy))
	for i, h := range healthy {
		before[i] = dbRows(t, h)
	}
	sync := func(peer *Node, repairing bool) *repair.Result {
		t.Helper()
		client, stop := serve(t, peer)
		defer stop()
		res, err := repair.Sync(ctx, damaged, client, repair.Options{Repair: repairing})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := sync(healthy[0], false); !res.InSync {
		t.Fatalf("before the scrub the damaged tree still vouches for its rows: want identical, got %+v", res)
	}
	rep, err := damaged.Scrub(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Mismatches) == 0 || rep.RowsCorrected != -4 {
		t.Fatalf("scrub: %+v; want the damaged leaves and the count down by 4", rep)
	}
	var moved []string
	for _, q := range rep.Quarantined {
		moved = append(moved, string(q.Key))
	}
	slices.Sort(moved)
	if want := []string{string(base[10].Key), string(base[40].Key)}; !slices.Equal(moved, want) {
		t.Fatalf("quarantined %q, want the rotted and the overwritten rows %q", moved, want)
	}
	if live, want := liveRoot(t, damaged), rebuiltRoot(t, damaged); live != want {
		t.Fatalf("after the scrub the damaged tree's root %x is not its rows' %x", live[:8], want[:8])
	}
	for _, h := range healthy {
		res := sync(h, true)
		if res.Pushed != 0 || res.PeerApplied != 0 {
			t.Fatalf("repair with a healthy replica pushed %d rows to it (%d applied): the damage spread", res.Pushed, res.PeerApplied)
		}
	}
	for i, h := range healthy {
		if after := dbRows(t, h); !equalRows(before[i], after) {
			t.Fatalf("healthy replica %d changed: %s", i, diffRows(before[i], after))
		}
	}
	if got, want := dbRows(t, damaged), before[0]; !equalRows(got, want) {
		t.Fatalf("the damaged replica after repair: %s", diffRows(got, want))
	}
	if res := sync(healthy[1], false); !res.InSync {
		t.Fatalf("after repair: %+v, want identical", res)
	}
}

// TestScrubRecoversDamagedTable: bytes flipped inside a table of a running
// node. Reads of it fail, naming the table, and the node goes on. The
// scrub drops the rows of the table's span, sets the tree to the rows
// that remain, and a repair with a healthy replica brings every row back,
// without changing the healthy replica.
func TestScrubRecoversDamagedTable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	rows, table := corruptionRows(t, dir)
	healthy := openNode(t, t.TempDir(), created(Options{Depth: 4}))
	if _, err := healthy.Apply(ctx, rows); err != nil {
		t.Fatal(err)
	}
	before := dbRows(t, healthy)
	// No block cache, so that reads go to the file, and no compaction,
	// which would rewrite it before the damage is read.
	cache := pebble.NewCache(0)
	defer cache.Unref()
	n := openNode(t, dir, Options{Depth: 4, Pebble: &pebble.Options{Cache: cache, DisableAutomaticCompactions: true, Logger: &recLogger{}}})
	flip(t, table, 0.25, 0.5)
	if err := n.Scan(ctx, n.Shape().Range, func(*engine.Row) error { return nil }); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), table) {
		t.Fatalf("Scan of the damaged table: %v, want ErrCorrupt naming %s", err, table)
	}
	// Pebble's report is kept, so that a scrub takes the table's ranges
	// first.
	if d := n.damagedTableSpans(); len(d) == 0 || d[0].File != table {
		t.Fatalf("damaged tables known %+v, want %s", d, table)
	}

	rep, err := n.Scrub(ctx, 0)
	if err != nil {
		t.Fatalf("Scrub: %v", err)
	}
	t.Logf("scrub dropped %v, count corrected by %d", rep.Excised, rep.RowsCorrected)
	if len(rep.Excised) == 0 || rep.Excised[0].File != table || !slices.Equal(rep.Excised[0].Ranges, []token.Range{n.Shape().Range}) {
		t.Fatalf("scrub dropped %+v, want the rows of %s", rep.Excised, table)
	}
	if d := n.damagedTableSpans(); len(d) != 0 {
		t.Fatalf("damaged tables still known after the scrub dropped them: %+v", d)
	}
	if rep.RowsCorrected >= 0 || n.Rows() != int64(len(rows))+rep.RowsCorrected {
		t.Fatalf("scrub corrected the count by %d to %d, of %d rows", rep.RowsCorrected, n.Rows(), len(rows))
	}
	for _, r := range rows {
		tok := token.Murmur3{}.Token(r.Key)
		_, found, err := n.Get(ctx, r.Key)
		if err != nil {
			t.Fatalf("Get(%q) after the scrub: %v", r.Key, err)
		}
		if in := crosses(token.Range{Lo: tok - 1, Hi: tok}, rep.Excised); found == in {
			t.Fatalf("row %q (token %d): stored %v, in the dropped spans %v", r.Key, tok, found, in)
		}
	}
	if live, want := liveRoot(t, n), rebuiltRoot(t, n); live != want {
		t.Fatalf("after the scrub the tree's root %x is not its rows' %x", live[:8], want[:8])
	}

	client, stop := serve(t, healthy)
	defer stop()
	res, err := repair.Sync(ctx, n, client, repair.Options{Repair: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Pushed != 0 || res.PeerApplied != 0 || res.Applied == 0 {
		t.Fatalf("repair: pushed %d (%d applied), applied %d; want the dropped rows fetched and nothing sent", res.Pushed, res.PeerApplied, res.Applied)
	}
	if after := dbRows(t, healthy); !equalRows(before, after) {
		t.Fatalf("the healthy replica changed: %s", diffRows(before, after))
	}
	if got := dbRows(t, n); !equalRows(got, before) {
		t.Fatalf("the damaged replica after repair: %s", diffRows(got, before))
	}
	if live, want := liveRoot(t, n), liveRoot(t, healthy); live != want {
		t.Fatalf("roots differ after repair: %x, %x", live[:8], want[:8])
	}
	again, err := n.Scrub(ctx, 0)
	if err != nil || len(again.Excised) != 0 || len(again.Mismatches) != 0 {
		t.Fatalf("a second scrub: %+v, %v; want nothing found", again, err)
	}
	if err := n.Put(ctx, []byte("after"), []byte("v"), 2); err != nil {
		t.Fatalf("a write after the recovery: %v", err)
	}
}
