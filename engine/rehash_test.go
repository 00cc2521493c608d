package engine

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/antientropy/grove/engine/token"
)

// TestRehashRecomputesEverything: after an inner node is damaged in memory,
// Hash (nothing changed, so nothing to do) leaves the damage, and Rehash
// recomputes every inner node, back to a fresh build's root; a frozen
// snapshot refuses it.
func TestRehashRecomputesEverything(t *testing.T) {
	ctx := context.Background()
	rows := randomRows(rand.New(rand.NewPCG(3, 4)), 2000)
	for _, depth := range []int{0, 1, 5, 12} {
		tr := build(t, newBudget(), rows, token.Murmur3{}.Range(), depth, 2)
		want, err := tr.Root()
		if err != nil {
			t.Fatal(err)
		}
		if depth == 0 {
			if err := tr.Rehash(ctx); err != nil {
				t.Fatal(err)
			}
			if got, _ := tr.Root(); got != want {
				t.Fatal("depth 0: Rehash changed the root")
			}
			continue
		}
		tr.node(0, 0)[0] ^= 0xff // the root, as a stray write would
		tr.node(depth-1, 0)[5] ^= 0x01
		if err := tr.Hash(ctx); err != nil {
			t.Fatal(err)
		}
		if got, _ := tr.Root(); got == want {
			t.Fatalf("depth %d: Hash of a clean tree recomputed the root", depth)
		}
		if err := tr.Rehash(ctx); err != nil {
			t.Fatal(err)
		}
		if got, _ := tr.Root(); got != want {
			t.Fatalf("depth %d: after Rehash root %x, want %x", depth, got[:8], want[:8])
		}
		snap, err := tr.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := snap.Root(); err != nil || got != want {
			t.Fatalf("snapshot after Rehash: root %x, %v; want %x", got[:8], err, want[:8])
		}
		snap.Close()
	}
}
