package engine

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/antientropy/grove/engine/token"
)

// replica returns a copy of rows with a few of each kind of divergence, and
// the keys that differ, brute force: what was dropped, what was added, and
// what was changed.
func replica(rnd *rand.Rand, rows []Row, n int) (out []Row, onlyA, onlyB, changed map[string]bool) {
	onlyA, onlyB, changed = map[string]bool{}, map[string]bool{}, map[string]bool{}
	touched := map[int]bool{}
	pick := func() int {
		for {
			i := rnd.IntN(len(rows))
			if !touched[i] {
				touched[i] = true
				return i
			}
		}
	}
	out = append([]Row(nil), rows...)
	drop := map[int]bool{}
	for range n {
		i := pick()
		switch rnd.IntN(5) {
		case 0: // a missed write
			drop[i] = true
			onlyA[string(rows[i].Key)] = true
		case 1: // a corrupted value
			v := append([]byte(nil), rows[i].Value...)
			v = append(v, 'x')
			out[i].Value = v
			changed[string(rows[i].Key)] = true
		case 2: // a different timestamp
			out[i].TS++
			changed[string(rows[i].Key)] = true
		case 3: // a lost or extra delete
			out[i].Deleted = !out[i].Deleted
			changed[string(rows[i].Key)] = true
		case 4: // a row only B has
			k := append([]byte("extra:"), rows[i].Key...)
			out = append(out, Row{Key: k, Value: []byte("v"), TS: 1})
			onlyB[string(k)] = true
		}
	}
	kept := out[:0]
	for i, r := range out {
		if !drop[i] {
			kept = append(kept, r)
		}
	}
	return kept, onlyA, onlyB, changed
}

// leavesOf returns the sorted leaves, at depth, of the tokens of keys.
func leavesOf(rng token.Range, depth int, keys ...map[string]bool) []int {
	set := map[int]bool{}
	for _, m := range keys {
		for k := range m {
			set[rng.LeafOf(token.Murmur3{}.Token([]byte(k)), depth)] = true
		}
	}
	out := make([]int, 0, len(set))
	for l := range set {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

// rangesToLeaves expands merged ranges back into leaf indices.
func rangesToLeaves(rng token.Range, depth int, ranges []token.Range) []int {
	var out []int
	bounds := leafBounds(rng, depth)
	for _, r := range ranges {
		for i, b := range bounds {
			if b.Lo >= r.Lo && b.Hi <= r.Hi {
				out = append(out, i)
			}
		}
	}
	return out
}

// TestDiffBruteForce diffs random replicas, at equal and unequal depths,
// against the leaves of the keys a row-by-row comparison says differ, then
// checks CompareKeys inside the differing ranges finds exactly those keys.
func TestDiffBruteForce(t *testing.T) {
	rnd := rand.New(rand.NewPCG(11, 12))
	ctx := context.Background()
	for _, rng := range testRanges[:2] {
		base := randomRows(rnd, 4000)
		base = slices.DeleteFunc(base, func(r Row) bool { return !rng.Contains(token.Murmur3{}.Token(r.Key)) })
		for _, depths := range [][2]int{{0, 0}, {3, 3}, {8, 8}, {13, 13}, {10, 6}, {6, 10}, {0, 7}, {12, 11}} {
			for _, n := range []int{0, 1, 5, 60} {
				b, onlyA, onlyB, changed := replica(rnd, base, n)
				b = slices.DeleteFunc(b, func(r Row) bool { return !rng.Contains(token.Murmur3{}.Token(r.Key)) })
				for k := range onlyB { // extra rows the range does not cover were never stored
					if !rng.Contains(token.Murmur3{}.Token([]byte(k))) {
						delete(onlyB, k)
					}
				}
				ta := build(t, newBudget(), base, rng, depths[0], 2)
				tb := build(t, newBudget(), b, rng, depths[1], 3)
				res, err := Diff(ctx, ta, tb)
				if err != nil {
					t.Fatal(err)
				}
				d := min(depths[0], depths[1])
				want := leavesOf(rng, d, onlyA, onlyB, changed)
				got := rangesToLeaves(rng, d, res.Ranges)
				if res.Depth != d || res.DifferingLeaves != len(want) || !slices.Equal(got, want) {
					t.Fatalf("%s depths %v, %d changes: depth %d, %d leaves %v; want %d leaves %v",
						rng, depths, n, res.Depth, res.DifferingLeaves, got, len(want), want)
				}
				if res.Identical() != (len(onlyA)+len(onlyB)+len(changed) == 0) {
					t.Fatalf("Identical() = %v with %d changes", res.Identical(), n)
				}
				for i := 1; i < len(res.Ranges); i++ {
					if res.Ranges[i].Lo <= res.Ranges[i-1].Hi {
						t.Fatalf("ranges %v and %v are not disjoint, ordered and merged", res.Ranges[i-1], res.Ranges[i])
					}
				}
				keys, err := CompareKeys(ctx, token.Murmur3{}, res.Ranges, &sliceSource{rows: base}, &sliceSource{rows: b})
				if err != nil {
					t.Fatal(err)
				}
				checkKeys(t, "only in A", keys.OnlyHere, onlyA)
				checkKeys(t, "only in B", keys.OnlyThere, onlyB)
				checkKeys(t, "different", keys.Different, changed)
			}
		}
	}
}

func checkKeys(t *testing.T, what string, got []Key, want map[string]bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d keys, want %d", what, len(got), len(want))
	}
	for i, k := range got {
		if !want[string(k.Key)] {
			t.Fatalf("%s: %q is not a differing key", what, k.Key)
		}
		if k.Token != (token.Murmur3{}).Token(k.Key) {
			t.Fatalf("%s: %q with token %d", what, k.Key, k.Token)
		}
		if i > 0 && (got[i-1].Token > k.Token || got[i-1].Token == k.Token && bytes.Compare(got[i-1].Key, k.Key) >= 0) {
			t.Fatalf("%s: keys not in token order at %d", what, i)
		}
	}
}

// TestDiffCost: identical trees cost one comparison, and one differing leaf
// costs two comparisons per level (the path and its siblings).
func TestDiffCost(t *testing.T) {
	rnd := rand.New(rand.NewPCG(13, 14))
	rows := randomRows(rnd, 2000)
	full := token.Murmur3{}.Range()
	a := build(t, newBudget(), rows, full, 16, 2)
	b := build(t, newBudget(), rows, full, 16, 2)
	res, err := Diff(context.Background(), a, b)
	if err != nil {
		t.Fatal(err)
	}
	if res.NodesCompared != 1 || !res.Identical() {
		t.Fatalf("identical trees: %d comparisons, identical %v", res.NodesCompared, res.Identical())
	}
	if err := b.Add(&Row{Key: []byte("one more"), TS: 1}); err != nil {
		t.Fatal(err)
	}
	if err := b.Hash(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err = Diff(context.Background(), a, b)
	if err != nil {
		t.Fatal(err)
	}
	if res.NodesCompared != 1+2*16 || res.DifferingLeaves != 1 || len(res.Ranges) != 1 {
		t.Fatalf("one differing leaf: %d comparisons (want %d), %d leaves", res.NodesCompared, 1+2*16, res.DifferingLeaves)
	}
	if !res.Ranges[0].Contains(token.Murmur3{}.Token([]byte("one more"))) {
		t.Fatalf("range %s misses the added key", res.Ranges[0])
	}
	// Self-diff read-locks once and finds nothing.
	if res, err := Diff(context.Background(), a, a); err != nil || !res.Identical() {
		t.Fatalf("self diff: %v %v", res, err)
	}
}

// TestDiffMergesAdjacent: differing neighbours become one range.
func TestDiffMergesAdjacent(t *testing.T) {
	full := token.Murmur3{}.Range()
	budget := newBudget()
	a, _ := New(Options{Depth: 3, Budget: budget})
	b, _ := New(Options{Depth: 3, Budget: budget})
	defer a.Close()
	defer b.Close()
	// Put a row in leaves 2, 3 and 6 of b only, by choosing keys by token.
	want := map[int]bool{2: true, 3: true, 6: true}
	for i := 0; len(want) > 0; i++ {
		k := []byte{byte(i), byte(i >> 8), byte(i >> 16)}
		leaf := full.LeafOf(token.Murmur3{}.Token(k), 3)
		if want[leaf] {
			delete(want, leaf)
			if err := b.Add(&Row{Key: k}); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx := context.Background()
	a.Hash(ctx)
	b.Hash(ctx)
	res, err := Diff(ctx, a, b)
	if err != nil {
		t.Fatal(err)
	}
	wantRanges := []token.Range{
		{Lo: full.Leaf(2, 3).Lo, Hi: full.Leaf(3, 3).Hi},
		full.Leaf(6, 3),
	}
	if res.DifferingLeaves != 3 || !slices.Equal(res.Ranges, wantRanges) {
		t.Fatalf("got %d leaves %v, want 3 leaves %v", res.DifferingLeaves, res.Ranges, wantRanges)
	}
}

func TestDiffIncompatible(t *testing.T) {
	budget := newBudget()
	ctx := context.Background()
	mk := func(o Options) *Tree {
		o.Budget = budget
		tr, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		tr.Hash(ctx)
		t.Cleanup(func() { tr.Close() })
		return tr
	}
	base := mk(Options{Depth: 4})
	other := map[string]*Tree{
		"partitioner":        mk(Options{Depth: 4, Partitioner: token.ByteOrdered{}}),
		"range":              mk(Options{Depth: 4, Range: token.Range{Lo: 0, Hi: 100}}),
		"range, other depth": mk(Options{Depth: 2, Range: token.Range{Lo: 0, Hi: 100}}),
	}
	v := mk(Options{Depth: 4})
	v.version = FormatVersion + 1
	other["format version"] = v
	for name, o := range other {
		if _, err := Diff(ctx, base, o); !errors.Is(err, ErrIncompatible) {
			t.Errorf("%s: %v, want ErrIncompatible", name, err)
		}
	}
	dirty := mk(Options{Depth: 4})
	dirty.Add(&Row{Key: []byte("x")})
	if _, err := Diff(ctx, base, dirty); !errors.Is(err, ErrNotHashed) {
		t.Errorf("unhashed: %v", err)
	}
}

// TestFoldEqualsBuild: folding a deep tree gives, node for node, the tree a
// build at the shallower depth gives.
func TestFoldEqualsBuild(t *testing.T) {
	rnd := rand.New(rand.NewPCG(15, 16))
	rows := randomRows(rnd, 5000)
	rng := testRanges[1]
	rows = slices.DeleteFunc(rows, func(r Row) bool { return !rng.Contains(token.Murmur3{}.Token(r.Key)) })
	budget := newBudget()
	deep := build(t, budget, rows, rng, 12, 2)
	for _, d := range []int{12, 11, 7, 1, 0} {
		f, err := deep.Fold(context.Background(), d)
		if err != nil {
			t.Fatal(err)
		}
		want := build(t, budget, rows, rng, d, 1)
		for l := 0; l <= d; l++ {
			for i := range 1 << l {
				x, _ := f.Node(l, i)
				y, _ := want.Node(l, i)
				if x != y {
					t.Fatalf("fold 12→%d: node (%d,%d) differs from a build at depth %d", d, l, i, d)
				}
			}
		}
		if f.Rows() != want.Rows() {
			t.Fatalf("fold rows %d, build %d", f.Rows(), want.Rows())
		}
		f.Close()
	}
	if _, err := deep.Fold(context.Background(), 13); !errors.Is(err, ErrDepth) {
		t.Fatalf("fold deeper: %v", err)
	}
}
