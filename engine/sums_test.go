package engine

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
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

// TestLeafSnapshot checks a leaf snapshot keeps the leaves of its moment —
// every subtree sum equal to the tree's then, unmoved by later writes — and
// refuses to pose as hashed or to be written, for a contiguous and a
// gathering layout.
func TestLeafView(t *testing.T) {
	ctx := context.Background()
	rows := randomRows(rand.New(rand.NewPCG(17, 18)), 2000)
	for _, l := range []layout.Layout{layout.BFS{}, mirrorLayout{}} {
		tr, err := New(Options{Depth: 10, Layout: l, Budget: newBudget()})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		for i := range rows {
			tr.Add(&rows[i])
		}
		if err := tr.Hash(ctx); err != nil {
			t.Fatal(err)
		}
		want := make([][]Digest, tr.Depth()+1)
		for level := range want {
			want[level] = make([]Digest, 1<<level)
			if err := tr.Sums(ctx, level, 0, want[level]); err != nil {
				t.Fatal(err)
			}
		}
		used := tr.budget.Used()
		s, err := tr.LeafView(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		// The view holds the leaves alone, not a whole tree's nodes.
		if got, want := tr.budget.Used()-used, pageRound((1<<tr.Depth())*NodeSize, int64(tr.budget.PageSize())); got != want {
			t.Fatalf("%s: a leaf view of depth %d charged %d bytes, want %d", l.Name(), tr.Depth(), got, want)
		}
		if err := tr.Update(&rows[0], nil); err != nil { // a write after the snapshot
			t.Fatal(err)
		}
		for level := range want {
			got := make([]Digest, 1<<level)
			if err := s.Sums(ctx, level, 0, got); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want[level]) {
				t.Fatalf("%s: level %d sums moved or were not copied", l.Name(), level)
			}
		}
		if s.Rows() != int64(len(rows)) {
			t.Fatalf("rows %d, want %d", s.Rows(), len(rows))
		}
	}
}

// TestDigestAddSub checks Digest.Add is the leaf arithmetic — a leaf of two
// rows is the first digest plus the second — and Sub undoes it.
func TestDigestAddSub(t *testing.T) {
	rows := []Row{{Key: []byte("a"), Value: []byte("1"), TS: 1}, {Key: []byte("a"), Value: []byte("2"), TS: 2}}
	tr, err := New(Options{Depth: 0, Budget: newBudget()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for i := range rows {
		tr.Add(&rows[i])
	}
	leaf, _ := tr.Node(0, 0)
	d0, d1 := RowDigest(&rows[0]), RowDigest(&rows[1])
	sum := d0
	sum.Add(&d1)
	if sum != leaf {
		t.Fatalf("d0+d1 = %x, leaf %x", sum[:8], leaf[:8])
	}
	sum.Sub(&d1)
	if sum != d0 {
		t.Fatal("Sub does not undo Add")
	}
}

// TestLiveBytesIsWhatATreeCharges: a tree that has taken an update charges
// its budget exactly LiveBytes, at every depth where page rounding matters.
func TestLiveBytesIsWhatATreeCharges(t *testing.T) {
	for _, l := range []layout.Layout{layout.BFS{}, layout.Blocked{}} {
		for _, depth := range []int{0, 3, 6, 7, 12, 15, 16, 18} {
			b := newBudget()
			tr, err := New(Options{Depth: depth, Layout: l, Budget: b})
			if err != nil {
				t.Fatal(err)
			}
			if err := tr.Update(nil, &Row{Key: []byte("k"), TS: 1}); err != nil {
				t.Fatal(err)
			}
			if got, want := b.Used(), LiveBytes(l, depth, int64(b.PageSize())); got != want {
				t.Errorf("%s depth %d: charged %d, LiveBytes %d", l.Name(), depth, got, want)
			}
			tr.Close()
		}
	}
}
