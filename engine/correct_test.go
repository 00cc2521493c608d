package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine/token"
)

// buildFrom is a tree of depth built from scratch from rows: the oracle.
func buildFrom(t *testing.T, rows map[string]Row, depth int) *Tree {
	t.Helper()
	tr, err := New(Options{Partitioner: token.Murmur3{}, Range: token.Murmur3{}.Range(), Depth: depth, Budget: arena.NewBudget(1 << 26)})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := tr.Add(&r); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Hash(context.Background()); err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestCorrectLeaves: a live tree that says one thing while its rows say
// another — values rotted at the same timestamp, rows lost, older versions
// restored, rows that appeared — is checked as a scrub checks it: leaves
// frozen at the moment the rows are read, summed per leaf from those rows,
// the differences handed back after the tree took more updates. The tree
// then equals a rebuild from the rows as they now are, row count included.
func TestCorrectLeaves(t *testing.T) {
	ctx := context.Background()
	const depth = 8
	rnd := rand.New(rand.NewPCG(7, 1))
	written := map[string]Row{}
	for i := range 3000 {
		r := Row{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", rnd.Int()), TS: 10}
		written[string(r.Key)] = r
	}
	live := buildFrom(t, written, depth)
	defer live.Close()

	// What the disk holds now, unknown to the tree.
	disk := map[string]Row{}
	for k, r := range written {
		disk[k] = r
	}
	var damaged []string
	for i := 0; i < 40; i++ {
		k := fmt.Sprintf("k%d", rnd.IntN(3000))
		r := disk[k]
		switch i % 4 {
		case 0: // a flipped bit, same timestamp
			v := append([]byte(nil), r.Value...)
			v[0] ^= 1
			r.Value = v
			disk[k] = r
		case 1: // lost, with a neighbour: more rows lost than appear
			delete(disk, k)
			delete(disk, fmt.Sprintf("k%d", (rnd.IntN(3000))))
		case 2: // an older version restored
			r.TS, r.Value = 5, []byte("old")
			disk[k] = r
		case 3: // a row written around the write path
			k = fmt.Sprintf("stray%d", i)
			disk[k] = Row{Key: []byte(k), Value: []byte("x"), TS: 1}
		}
		damaged = append(damaged, k)
	}

	// The scrub's snapshot: the leaves now, the rows now.
	view, err := live.LeafView(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]Digest, 1<<depth)
	var wantRows int64
	for _, r := range disk {
		d := RowDigest(&r)
		want[live.rng.LeafOf(token.Murmur3{}.Token(r.Key), depth)].Add(&d)
		wantRows++
	}
	held := make([]Digest, 1<<depth)
	if err := view.Sums(ctx, depth, 0, held); err != nil {
		t.Fatal(err)
	}
	var fixes []LeafCorrection
	for i := range want {
		if want[i] != held[i] {
			fixes = append(fixes, CorrectionFor(i, &held[i], &want[i]))
		}
	}
	if len(fixes) == 0 {
		t.Fatal("no leaf differs from the damaged rows")
	}
	rowDelta := wantRows - view.Rows()
	view.Close()

	// Writes after the snapshot reach the tree and the disk alike, before
	// the corrections come back.
	for i := range 200 {
		k := fmt.Sprintf("k%d", rnd.IntN(3000))
		if i%3 == 0 {
			k = fmt.Sprintf("new%d", i)
		}
		newer := Row{Key: []byte(k), Value: fmt.Appendf(nil, "w%d", i), TS: 20}
		var old *Row
		if r, ok := disk[k]; ok {
			old = &r
		}
		if err := live.Update(old, &newer); err != nil {
			t.Fatal(err)
		}
		disk[k] = newer
	}
	if err := live.CorrectLeaves(fixes, rowDelta); err != nil {
		t.Fatal(err)
	}
	if err := live.Hash(ctx); err != nil {
		t.Fatal(err)
	}
	ref := buildFrom(t, disk, depth)
	defer ref.Close()
	got, _ := live.Root()
	wantRoot, _ := ref.Root()
	if got != wantRoot || live.Rows() != ref.Rows() {
		t.Fatalf("corrected tree: root %x, %d rows; a rebuild from the rows: %x, %d rows (damaged keys %v)",
			got[:8], live.Rows(), wantRoot[:8], ref.Rows(), damaged)
	}
}

// TestCorrectLeavesRefusesBadLeaf: a leaf outside the tree fails with
// ErrNodeIndex, and nothing is changed.
func TestCorrectLeavesRefusesBadLeaf(t *testing.T) {
	for _, leaf := range []int{-1, 1 << 4} {
		tr := buildFrom(t, map[string]Row{"a": {Key: []byte("a"), TS: 1}}, 4)
		before, _ := tr.Root()
		err := tr.CorrectLeaves([]LeafCorrection{{Leaf: 0, Delta: Digest{1}}, {Leaf: leaf, Delta: Digest{1}}}, 1)
		if !errors.Is(err, ErrNodeIndex) {
			t.Fatalf("leaf %d: %v, want ErrNodeIndex", leaf, err)
		}
		if tr.Rows() != 1 || tr.dirty.Load() {
			t.Fatalf("leaf %d: a refused correction changed the tree", leaf)
		}
		if after, _ := tr.Root(); after != before {
			t.Fatalf("leaf %d: root changed", leaf)
		}
		tr.Close()
	}
}
