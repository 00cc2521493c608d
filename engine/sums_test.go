package engine

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/antientropy/grove/layout"
)

// TestSumsMatchFold checks every subtree sum against the leaves of a tree
// folded to that level, which is the definition Sums claims, for a
// contiguous and a gathering layout.
func TestSumsMatchFold(t *testing.T) {
	ctx := context.Background()
	rows := randomRows(rand.New(rand.NewPCG(7, 8)), 3000)
	for _, l := range []layout.Layout{layout.BFS{}, mirrorLayout{}} {
		tr, err := New(Options{Depth: 9, Layout: l, Budget: newBudget()})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		for i := range rows {
			if err := tr.Add(&rows[i]); err != nil {
				t.Fatal(err)
			}
		}
		for level := 0; level <= tr.Depth(); level++ {
			f, err := tr.Fold(ctx, level)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]Digest, 1<<level)
			if err := tr.Sums(ctx, level, 0, got); err != nil {
				t.Fatal(err)
			}
			for i := range got {
				want, err := f.Node(level, i)
				if err != nil {
					t.Fatal(err)
				}
				if got[i] != want {
					t.Fatalf("%s: sum of node (%d, %d) = %x, folded leaf %x", l.Name(), level, i, got[i], want)
				}
			}
			f.Close()
		}
		var one [1]Digest
		if err := tr.Sums(ctx, 3, 7, one[:]); err != nil {
			t.Fatal(err)
		}
		if err := tr.Sums(ctx, 3, 7, make([]Digest, 2)); !errors.Is(err, ErrNodeIndex) {
			t.Fatalf("past the level's end: %v, want ErrNodeIndex", err)
		}
		if err := tr.Sums(ctx, 10, 0, one[:]); !errors.Is(err, ErrNodeIndex) {
			t.Fatalf("below the leaves: %v, want ErrNodeIndex", err)
		}
	}
}
