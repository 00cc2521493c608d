package grovepebble

import (
	"context"
	"errors"
	"testing"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/engine/token"
)

// TestNodeSessionRepairsEveryRange: two Pebble nodes of the same 128
// ranges, each missing rows the other has, disagreeing on some and one
// holding a tombstone, repair through one node session (repair.SyncNode
// against the other's Router): both databases then hold the brute-force
// merge of the two (engine.Supersedes, key by key), every tree equals its
// rebuild, the session took the round trips of its deepest range plus
// one (all its ranges at once), and a second session is in sync in one round trip.
func TestNodeSessionRepairsEveryRange(t *testing.T) {
	ctx := context.Background()
	full := token.Murmur3{}.Range()
	var rs []token.Range
	for i := range 128 {
		rs = append(rs, full.Leaf(i, 7))
	}
	a := openNode(t, t.TempDir(), created(Options{Ranges: rs}))
	b := openNode(t, t.TempDir(), created(Options{Ranges: rs}))
	keys := rangeKeys(rs, "k", 6000, true)
	loadRows(t, a, keys[:5900], 1)
	loadRows(t, b, keys[100:], 1)
	var rowsA, rowsB []engine.Row
	for i, k := range keys {
		r := engine.Row{Key: k, Value: []byte("v" + string(k)), TS: 1}
		if i < 5900 {
			rowsA = append(rowsA, r)
		}
		if i >= 100 {
			rowsB = append(rowsB, r)
		}
	}
	newer := []engine.Row{
		{Key: keys[500], Value: []byte("newer"), TS: 9},
		{Key: keys[3000], Value: []byte("newer too"), TS: 9},
	}
	if _, err := b.Apply(ctx, newer); err != nil {
		t.Fatal(err)
	}
	rowsB = append(rowsB, newer...)
	tomb := engine.Row{Key: keys[4000], TS: 9, Deleted: true}
	if _, err := a.Apply(ctx, []engine.Row{tomb}); err != nil {
		t.Fatal(err)
	}
	rowsA = append(rowsA, tomb)
	for _, n := range []*Node{a, b} {
		if _, err := n.Rebalance(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The oracle: for each key, the version that supersedes every other.
	best := map[string]engine.Row{}
	for _, r := range append(rowsA, rowsB...) {
		if old, ok := best[string(r.Key)]; !ok || engine.Supersedes(&r, &old) {
			best[string(r.Key)] = r
		}
	}
	var want []engine.Row
	for _, r := range best {
		want = append(want, r)
	}

	router, err := NewRouter(b, repair.ResponderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer router.Shutdown()
	// Parallel 128: every differing range's session runs at once (with the
	// default of 64, the 99 here would take two waves of round trips).
	res, err := repair.SyncNode(ctx, a.RepairReplicas(), router, repair.NodeOptions{Options: repair.Options{Repair: true}, Parallel: 128})
	if err != nil {
		t.Fatal(err)
	}
	var onlyHere, onlyThere, different, deepest int
	for _, r := range res.Ranges {
		if !r.Converged {
			t.Fatalf("range %v did not converge: %+v", r.Range, r.Result)
		}
		onlyHere += len(r.OnlyHere)
		onlyThere += len(r.OnlyThere)
		different += len(r.Different)
		deepest = max(deepest, r.RoundTrips)
	}
	if onlyHere != 100 || onlyThere != 100 || different != 3 {
		t.Fatalf("found %d only here, %d only there, %d different; want 100, 100, 3", onlyHere, onlyThere, different)
	}
	t.Logf("%d of 128 ranges differed: %d round trips, %d bytes", res.Differing, res.RoundTrips, res.BytesSent+res.BytesReceived)
	if res.RoundTrips != 1+deepest {
		t.Fatalf("%d round trips, want 1 + the deepest range's %d", res.RoundTrips, deepest)
	}
	wantRows := sortedRows(a.p, want)
	for _, n := range []*Node{a, b} {
		if got := dbRows(t, n); !equalRows(got, wantRows) {
			t.Fatalf("after repair: %s", diffRows(got, wantRows))
		}
		checkTrees(t, n, rs)
	}
	again, err := repair.SyncNode(ctx, a.RepairReplicas(), router, repair.NodeOptions{})
	if err != nil || !again.InSync() || again.RoundTrips != 1 {
		t.Fatalf("after repair: in sync %v, %d round trips, %v", again.InSync(), again.RoundTrips, err)
	}
	if router.Sessions() != 0 {
		t.Errorf("%d sessions left open", router.Sessions())
	}

	// A node of another ring's ranges is refused at the first round trip.
	other := openNode(t, t.TempDir(), created(Options{Ranges: rs[:64]}))
	if _, err := repair.SyncNode(ctx, other.RepairReplicas(), router, repair.NodeOptions{}); !errors.Is(err, repair.ErrIncompatible) {
		t.Fatalf("a node of other ranges: %v, want ErrIncompatible", err)
	}
}
