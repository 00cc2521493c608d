package grovepebble

import (
	"context"
	"errors"
	"testing"

	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/engine/token"
)

// TestRouterRepairsEveryRange: two nodes of the same eight ranges, each
// missing rows the other has and disagreeing on some; one session per
// range through B's Router repairs them, after which both databases hold
// the same rows and every tree equals its rebuild.
func TestRouterRepairsEveryRange(t *testing.T) {
	ctx := context.Background()
	rs := testRanges()
	a := openNode(t, t.TempDir(), created(Options{Ranges: rs}))
	b := openNode(t, t.TempDir(), created(Options{Ranges: rs}))
	keys := rangeKeys(rs, "k", 2000, true)
	loadRows(t, a, keys[:1900], 1)
	loadRows(t, b, keys[100:], 1)
	if err := b.Put(ctx, keys[500], []byte("newer"), 9); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{a, b} {
		if _, err := n.Rebalance(ctx); err != nil {
			t.Fatal(err)
		}
	}
	router, err := NewRouter(b, repair.ResponderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer router.Shutdown()
	var onlyHere, onlyThere, different int
	for _, rep := range a.Replicas() {
		res, err := repair.Sync(ctx, rep, router, repair.Options{Repair: true})
		if err != nil {
			t.Fatalf("range %v: %v", rep.Range(), err)
		}
		if !res.InSync && !res.Converged {
			t.Fatalf("range %v: did not converge: %+v", rep.Range(), res)
		}
		onlyHere += len(res.OnlyHere)
		onlyThere += len(res.OnlyThere)
		different += len(res.Different)
	}
	if onlyHere != 100 || onlyThere != 100 || different != 1 {
		t.Fatalf("found %d only here, %d only there, %d different; want 100, 100, 1", onlyHere, onlyThere, different)
	}
	if ra, rb := dbRows(t, a), dbRows(t, b); !equalRows(ra, rb) {
		t.Fatalf("after repair: %s", diffRows(ra, rb))
	}
	checkTrees(t, a, rs)
	checkTrees(t, b, rs)
	for _, rep := range a.Replicas() {
		res, err := repair.Sync(ctx, rep, router, repair.Options{})
		if err != nil || !res.InSync {
			t.Fatalf("range %v after repair: %+v, %v", rep.Range(), res, err)
		}
	}
	if router.Sessions() != 0 {
		t.Errorf("%d sessions left open", router.Sessions())
	}

	// A range the node does not hold is refused at Hello.
	other := openNode(t, t.TempDir(), created(Options{Ranges: []token.Range{{Lo: 1, Hi: 1 << 40}}}))
	_, err = repair.Sync(ctx, other.Replicas()[0], router, repair.Options{})
	if !errors.Is(err, repair.ErrIncompatible) {
		t.Fatalf("a session for a foreign range: %v, want ErrIncompatible", err)
	}
}
