package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/antientropy/grove/engine/token"
)

// memRows is a store for recovery tests: rows by key, scanned by token.
type memRows map[string]Row

func (m memRows) scan(_ context.Context, r token.Range, fn func(*Row) error) error {
	for _, row := range m {
		if r.Contains(token.Murmur3{}.Token(row.Key)) {
			if err := fn(&row); err != nil {
				return err
			}
		}
	}
	return nil
}

// byLeaf scans a snapshot of m's rows grouped by their depth-12 leaf, so a
// test that rebuilds hundreds of leaves does not read every row for each.
func (m memRows) byLeaf() ScanFunc {
	full := token.Murmur3{}.Range()
	groups := map[token.Range][]Row{}
	for _, row := range m {
		lr := full.Leaf(full.LeafOf(token.Murmur3{}.Token(row.Key), 12), 12)
		groups[lr] = append(groups[lr], row)
	}
	return func(_ context.Context, r token.Range, fn func(*Row) error) error {
		for i := range groups[r] {
			if err := fn(&groups[r][i]); err != nil {
				return err
			}
		}
		return nil
	}
}

// TestRebuildLeavesAfterACrash models a crash mid-load on a writable tree
// file: the store has committed batches whose tree updates were only partly
// applied when the process died (the file is left dirty, its leaves holding
// whatever reached the mapping). Rebuilding only the leaves the batches
// recorded as touched, with their row deltas, gives a tree equal to a
// rebuild from all the rows, reading only those leaves' rows.
func TestRebuildLeavesAfterACrash(t *testing.T) {
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(1, 1))
	for trial := range 20 {
		path := filepath.Join(t.TempDir(), "t.tree")
		store := memRows{}
		base, err := New(Options{Depth: 12, Budget: newBudget()})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 20_000 {
			r := Row{Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v"), TS: 1}
			store[string(r.Key)] = r
			base.Add(&r)
		}
		base.Hash(ctx)
		if err := base.Save(path); err != nil {
			t.Fatal(err)
		}
		base.Close()

		w, err := OpenWritable(path, newBudget())
		if err != nil {
			t.Fatal(err)
		}
		// Batches since the checkpoint: each commits to the store with
		// its touched leaves and row deltas, then updates the tree — all
		// but the last batch's updates, which the crash cuts short.
		touched := map[int]bool{}
		var delta int64
		applied := 0
		batches := 1 + rnd.IntN(5)
		for b := range batches {
			var updates [][2]*Row
			for range 1 + rnd.IntN(200) {
				k := fmt.Appendf(nil, "k%d", rnd.IntN(30_000))
				old, had := store[string(k)]
				var oldp, newp *Row
				if had {
					oldp = &old
				}
				if had && rnd.IntN(4) == 0 {
					delete(store, string(k))
					delta--
				} else {
					n := Row{Key: k, Value: fmt.Appendf(nil, "v%d", rnd.Int()), TS: 2}
					store[string(k)] = n
					newp = &n
					if !had {
						delta++
					}
				}
				touched[leafOf(w, k)] = true
				updates = append(updates, [2]*Row{oldp, newp})
			}
			if b == batches-1 {
				updates = updates[:rnd.IntN(len(updates)+1)]
			}
			for _, u := range updates {
				if err := w.Update(u[0], u[1]); err != nil {
					t.Fatal(err)
				}
				applied++
			}
		}
		w.Close() // the crash: no checkpoint, the file stays dirty

		r, err := OpenWritable(path, newBudget())
		if err != nil {
			t.Fatal(err)
		}
		if r.FileDirty() != (applied > 0) {
			t.Fatalf("%d updates applied, none checkpointed: FileDirty %v", applied, r.FileDirty())
		}
		leaves := slices.Sorted(func(yield func(int) bool) {
			for l := range touched {
				if !yield(l) {
					return
				}
			}
		})
		read, err := r.RebuildLeaves(ctx, leaves, delta, store.byLeaf())
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Hash(ctx); err != nil {
			t.Fatal(err)
		}
		if err := r.Checkpoint(); err != nil {
			t.Fatal(err)
		}

		want, err := New(Options{Depth: 12, Budget: newBudget()})
		if err != nil {
			t.Fatal(err)
		}
		var inLeaves int64
		for _, row := range store {
			want.Add(&row)
			if touched[leafOf(want, row.Key)] {
				inLeaves++
			}
		}
		want.Hash(ctx)
		gotRoot, _ := r.Root()
		wantRoot, _ := want.Root()
		if gotRoot != wantRoot || r.Rows() != want.Rows() {
			t.Fatalf("trial %d: recovered root %x rows %d; rebuild root %x rows %d", trial, gotRoot[:8], r.Rows(), wantRoot[:8], want.Rows())
		}
		if read != inLeaves || read >= int64(len(store)) {
			t.Fatalf("trial %d: read %d rows; the %d touched leaves hold %d of %d", trial, read, len(touched), inLeaves, len(store))
		}
		r.Close()
		want.Close()
	}
}

func TestRebuildLeavesRefusesBadInput(t *testing.T) {
	tr, err := New(Options{Depth: 4, Budget: newBudget()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if _, err := tr.RebuildLeaves(context.Background(), []int{16}, 0, memRows{}.scan); !errors.Is(err, ErrNodeIndex) {
		t.Fatalf("leaf 16 of depth 4: %v", err)
	}
	// A scan that returns a row from another leaf is the store's bug, and
	// is named rather than summed into the wrong leaf.
	p := token.Murmur3{}
	stray := func(_ context.Context, _ token.Range, fn func(*Row) error) error {
		for i := 0; ; i++ {
			r := Row{Key: fmt.Appendf(nil, "x%d", i)}
			if p.Range().LeafOf(p.Token(r.Key), 4) != 0 {
				return fn(&r)
			}
		}
	}
	if _, err := tr.RebuildLeaves(context.Background(), []int{0}, 0, stray); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("a stray row: %v", err)
	}
}

// TestCheckpointLabel: CheckpointAt records its label in the file, even for
// a tree that has not changed; Checkpoint keeps the last one; a file
// written whole has none; every label survives reopening.
func TestCheckpointLabel(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.tree")
	tr, err := New(Options{Depth: 6, Budget: newBudget()})
	if err != nil {
		t.Fatal(err)
	}
	tr.Hash(ctx)
	if err := tr.Save(path); err != nil {
		t.Fatal(err)
	}
	tr.Close()
	reopen := func() *Tree {
		t.Helper()
		w, err := OpenWritable(path, newBudget())
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	w := reopen()
	if got := w.CheckpointLabel(); got != 0 {
		t.Fatalf("a saved file has label %d", got)
	}
	if err := w.CheckpointAt(7); err != nil { // unchanged: the label alone is written
		t.Fatal(err)
	}
	w.Close()
	w = reopen()
	if got := w.CheckpointLabel(); got != 7 || w.FileDirty() {
		t.Fatalf("label %d dirty %v after CheckpointAt(7) of an unchanged tree", got, w.FileDirty())
	}
	w.Update(nil, &Row{Key: []byte("a"), TS: 1})
	w.Hash(ctx)
	if err := w.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w = reopen()
	if got := w.CheckpointLabel(); got != 7 || w.Rows() != 1 {
		t.Fatalf("after Checkpoint: label %d rows %d, want 7 and 1", got, w.Rows())
	}
	w.Update(nil, &Row{Key: []byte("b"), TS: 1})
	w.Hash(ctx)
	if err := w.CheckpointAt(1 << 62); err != nil {
		t.Fatal(err)
	}
	w.Close()
	v, err := Open(path, newBudget())
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := v.Verify(ctx); err != nil || v.Rows() != 2 {
		t.Fatalf("a relabelled file: %v, rows %d", err, v.Rows())
	}
	w = reopen()
	defer w.Close()
	if got := w.CheckpointLabel(); got != 1<<62 {
		t.Fatalf("label %d, want 2^62", got)
	}
}

// TestHashOfACleanFileLeavesItClean: Hash with nothing to do writes
// nothing, so a checkpointed file is not marked dirty by a reader that
// makes sure it is hashed.
func TestHashOfACleanFileLeavesItClean(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.tree")
	tr, _ := New(Options{Depth: 4, Budget: newBudget()})
	tr.Hash(ctx)
	tr.Save(path)
	tr.Close()
	w, err := OpenWritable(path, newBudget())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Hash(ctx); err != nil {
		t.Fatal(err)
	}
	if w.FileDirty() {
		t.Fatal("Hash of an unchanged tree marked its file dirty")
	}
	if err := w.Rehash(ctx); err != nil || !w.FileDirty() {
		t.Fatalf("Rehash rewrites every inner node, so the file must be dirty: %v, %v", err, w.FileDirty())
	}
	w.Close()
}

// leafOf is the leaf of tr that key falls in: what a storage node records
// as touched when a batch writes key.
func leafOf(tr *Tree, key []byte) int {
	return tr.Range().LeafOf(tr.Partitioner().Token(key), tr.Depth())
}
