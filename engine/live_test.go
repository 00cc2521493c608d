package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/antientropy/grove/engine/token"
)

// rebuild is the oracle for live trees: a tree built from scratch from the
// rows a plain map holds.
func rebuild(t *testing.T, rows map[string]Row, depth int) [][][32]byte {
	t.Helper()
	list := make([]Row, 0, len(rows))
	for _, r := range rows {
		list = append(list, r)
	}
	return oracleLevels(list, token.Murmur3{}.Range(), depth)
}

// liveWorker applies random changes to its own keys (so that each key's
// history is sequential, as a storage node's per-key writes are) and keeps
// the map of what its keys now hold.
type liveWorker struct {
	rnd  *rand.Rand
	id   int
	rows map[string]Row
	next int
}

func (w *liveWorker) step(t *testing.T, tr *Tree) {
	keys := make([]string, 0, len(w.rows))
	for k := range w.rows {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var err error
	switch op := w.rnd.IntN(10); {
	case op < 4 || len(keys) == 0: // insert a new key
		r := Row{Key: fmt.Appendf(nil, "w%d-k%d", w.id, w.next), Value: fmt.Appendf(nil, "v%d", w.rnd.Int()), TS: int64(w.rnd.IntN(1000))}
		w.next++
		err = tr.Update(nil, &r)
		w.rows[string(r.Key)] = r
	case op < 7: // replace a value
		old := w.rows[keys[w.rnd.IntN(len(keys))]]
		r := Row{Key: old.Key, Value: fmt.Appendf(nil, "v%d", w.rnd.Int()), TS: old.TS + 1}
		err = tr.Update(&old, &r)
		w.rows[string(r.Key)] = r
	case op < 9: // write a tombstone
		old := w.rows[keys[w.rnd.IntN(len(keys))]]
		err = tr.Update(&old, &Row{Key: old.Key, TS: old.TS + 1, Deleted: true})
		w.rows[string(old.Key)] = Row{Key: old.Key, TS: old.TS + 1, Deleted: true}
	default: // purge a row
		old := w.rows[keys[w.rnd.IntN(len(keys))]]
		err = tr.Update(&old, nil)
		delete(w.rows, string(old.Key))
	}
	if err != nil {
		t.Error(err)
	}
}

// TestLiveMatchesRebuild: long random sequences of inserts, replaces,
// tombstones and purges, applied from several goroutines with rehashes in
// between, leave exactly the tree a rebuild from the final rows gives —
// every node — at depths 0..16; and each rehash touched only dirty paths
// when no build intervened.
func TestLiveMatchesRebuild(t *testing.T) {
	ctx := context.Background()
	for _, depth := range []int{0, 1, 3, 8, 12, 16} {
		tr, err := New(Options{Depth: depth, Budget: newBudget()})
		if err != nil {
			t.Fatal(err)
		}
		// Start from a built tree, as a node would after its first scan.
		base := randomRows(rand.New(rand.NewPCG(uint64(depth), 7)), 500)
		if _, err := tr.AddFrom(ctx, &sliceSource{rows: base}); err != nil {
			t.Fatal(err)
		}
		workers := make([]*liveWorker, 4)
		for i := range workers {
			workers[i] = &liveWorker{rnd: rand.New(rand.NewPCG(uint64(depth), uint64(i))), id: i, rows: map[string]Row{}}
		}
		for round := range 6 {
			var wg sync.WaitGroup
			for _, w := range workers {
				wg.Go(func() {
					for range 300 {
						w.step(t, tr)
					}
				})
			}
			wg.Wait()
			if round == 0 && !tr.needsFullHash.Load() {
				t.Fatal("the first rehash after a build must be a full one")
			}
			if round > 0 && tr.needsFullHash.Load() {
				t.Fatal("updates alone marked the tree for a full rehash")
			}
			if err := tr.Hash(ctx); err != nil {
				t.Fatal(err)
			}
			all := map[string]Row{}
			for _, r := range base {
				all[string(r.Key)] = r
			}
			for _, w := range workers {
				for k, r := range w.rows {
					all[k] = r
				}
			}
			want := rebuild(t, all, depth)
			for l := 0; l <= depth; l++ {
				for i := range 1 << l {
					if got, _ := tr.Node(l, i); got != want[l][i] {
						t.Fatalf("depth %d round %d: node (%d,%d) differs from a rebuild", depth, round, l, i)
					}
				}
			}
			if tr.Rows() != int64(len(all)) {
				t.Fatalf("depth %d round %d: %d rows, rebuild has %d", depth, round, tr.Rows(), len(all))
			}
		}
		tr.Close()
	}
}

// TestSnapshot: a snapshot keeps the state it was taken in, hashed, while
// the live tree goes on changing, and it refuses writes.
func TestSnapshot(t *testing.T) {
	ctx := context.Background()
	budget := newBudget()
	rows := randomRows(rand.New(rand.NewPCG(61, 62)), 3000)
	tr, err := New(Options{Depth: 10, Budget: budget})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for i := range rows[:2000] {
		tr.Update(nil, &rows[i])
	}
	tr.Hash(ctx)
	for i := range rows[2000:2500] {
		tr.Update(nil, &rows[2000+i]) // unhashed when the snapshot is taken
	}
	snap, err := tr.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range rows[2500:] {
			tr.Update(nil, &rows[2500+i])
		}
	})
	wg.Wait()
	want := oracleLevels(rows[:2500], token.Murmur3{}.Range(), 10)
	if got, err := snap.Root(); err != nil || got != want[0][0] {
		t.Fatalf("snapshot root: %v; differs from the rows at snapshot time", err)
	}
	if err := snap.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	// A snapshot has no method that writes: TestViewsHaveNoWriters.
	tr.Hash(ctx)
	if res, err := Diff(ctx, tr, snap); err != nil || res.DifferingLeaves == 0 {
		t.Fatalf("live tree vs snapshot: %v %v", res, err)
	}
}

func TestUpdateErrors(t *testing.T) {
	tr, err := New(Options{Depth: 4, Budget: newBudget()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Update(&Row{Key: []byte("a")}, &Row{Key: []byte("b")}); !errors.Is(err, ErrBadUpdate) {
		t.Fatalf("different keys: %v", err)
	}
	half, _ := New(Options{Depth: 4, Range: token.Range{Lo: 0, Hi: 10}, Budget: newBudget()})
	defer half.Close()
	if err := half.Update(nil, &Row{Key: []byte("x")}); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("out of range: %v", err)
	}
	var row Row = Row{Key: []byte("k"), Value: make([]byte, 64)}
	if a := testing.AllocsPerRun(1000, func() { tr.Update(&row, &row) }); a != 0 {
		t.Fatalf("Replace: %v allocations", a)
	}
}

// TestLiveFileInPlace: updates to a writable file tree apply in place; after
// Hash and Sync the file verifies and equals a rebuild.
func TestLiveFileInPlace(t *testing.T) {
	ctx := context.Background()
	budget := newBudget()
	rows := randomRows(rand.New(rand.NewPCG(71, 72)), 1000)
	path := filepath.Join(t.TempDir(), "live.tree")
	if err := build(t, budget, rows, token.Murmur3{}.Range(), 9, 1).Save(path); err != nil {
		t.Fatal(err)
	}
	w, err := OpenWritable(path, budget)
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]Row{}
	for _, r := range rows {
		all[string(r.Key)] = r
	}
	for i := range 200 {
		old := rows[i]
		switch i % 3 {
		case 0:
			w.Update(&old, nil)
			delete(all, string(old.Key))
		case 1:
			w.Update(&old, &Row{Key: old.Key, TS: old.TS + 1, Deleted: true})
			all[string(old.Key)] = Row{Key: old.Key, TS: old.TS + 1, Deleted: true}
		case 2:
			n := Row{Key: old.Key, Value: []byte("new"), TS: old.TS}
			w.Update(&old, &n)
			all[string(old.Key)] = n
		}
	}
	if err := w.Hash(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r, err := Open(path, budget)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	want := rebuild(t, all, 9)
	if got, _ := r.Root(); got != want[0][0] || r.Rows() != int64(len(all)) {
		t.Fatalf("file after in-place updates: rows %d (want %d), root equal %v", r.Rows(), len(all), got == want[0][0])
	}
}

// TestHashWhileUpdating: Hash and Snapshot may run while writers update,
// one at a time and in batches (UpdateDigests);
// whatever interleaving happens, the final tree equals a rebuild, and every
// root read in between is of a fully hashed tree (it verifies).
func TestHashWhileUpdating(t *testing.T) {
	ctx := context.Background()
	tr, err := New(Options{Depth: 12, Budget: newBudget()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	tr.Hash(ctx)
	workers := make([]*liveWorker, 3)
	for i := range workers {
		workers[i] = &liveWorker{rnd: rand.New(rand.NewPCG(9, uint64(i))), id: i, rows: map[string]Row{}}
	}
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			for range 2000 {
				w.step(t, tr)
			}
		})
	}
	// And one writer of batches, as a store's maintenance rounds hand them.
	batched := map[string]Row{}
	wg.Go(func() {
		for b := range 40 {
			changes := make([]DigestChange, 50)
			digests := make([]Digest, 50)
			for i := range changes {
				r := Row{Key: fmt.Appendf(nil, "batch-%d-%d", b, i), Value: []byte("v"), TS: 1}
				batched[string(r.Key)] = r
				digests[i] = RowDigest(&r)
				changes[i] = DigestChange{Token: token.Murmur3{}.Token(r.Key), Key: r.Key, New: &digests[i]}
			}
			slices.SortFunc(changes, func(a, b DigestChange) int { return cmp.Compare(a.Token, b.Token) })
			if err := tr.UpdateDigests(changes); err != nil {
				t.Error(err)
				return
			}
		}
	})
	stop := make(chan struct{})
	var hasher sync.WaitGroup
	hasher.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := tr.Hash(ctx); err != nil {
				t.Error(err)
				return
			}
			s, err := tr.Snapshot(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			if err := s.Verify(ctx); err != nil {
				t.Errorf("snapshot taken mid-updates: %v", err)
			}
			s.Close()
		}
	})
	wg.Wait()
	close(stop)
	hasher.Wait()
	if err := tr.Hash(ctx); err != nil {
		t.Fatal(err)
	}
	all := maps.Clone(batched)
	for _, w := range workers {
		for k, r := range w.rows {
			all[k] = r
		}
	}
	want := rebuild(t, all, 12)
	if got, _ := tr.Root(); got != want[0][0] {
		t.Fatal("tree hashed while updating differs from a rebuild")
	}
	if err := tr.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestUpdateDigestsMatchesRebuild: batches of inserts, replaces,
// tombstones and purges applied with UpdateDigests — in token order, as a
// store's rounds hand them, and in no order — leave exactly the tree a
// rebuild from the final rows gives, every node, with its row count.
func TestUpdateDigestsMatchesRebuild(t *testing.T) {
	ctx := context.Background()
	p := token.Murmur3{}
	for _, depth := range []int{0, 3, 8, 14} {
		for _, sorted := range []bool{true, false} {
			rnd := rand.New(rand.NewPCG(uint64(depth), 11))
			tr, err := New(Options{Depth: depth, Budget: newBudget()})
			if err != nil {
				t.Fatal(err)
			}
			base := randomRows(rnd, 400)
			if _, err := tr.AddFrom(ctx, &sliceSource{rows: base}); err != nil {
				t.Fatal(err)
			}
			all := map[string]Row{}
			for _, r := range base {
				all[string(r.Key)] = r
			}
			next := 0
			for batch := range 5 {
				var changes []DigestChange
				touched := map[string]bool{}
				for range 300 {
					var keys []string
					for k := range all {
						if !touched[k] {
							keys = append(keys, k)
						}
					}
					slices.Sort(keys)
					d := func(r Row) *Digest { x := RowDigest(&r); return &x }
					var c DigestChange
					switch op := rnd.IntN(10); {
					case op < 4 || len(keys) == 0:
						r := Row{Key: fmt.Appendf(nil, "new-%d", next), Value: fmt.Appendf(nil, "v%d", rnd.Int()), TS: 1}
						next++
						c = DigestChange{Key: r.Key, New: d(r)}
						all[string(r.Key)] = r
					case op < 7:
						old := all[keys[rnd.IntN(len(keys))]]
						r := Row{Key: old.Key, Value: fmt.Appendf(nil, "v%d", rnd.Int()), TS: old.TS + 1}
						c = DigestChange{Key: r.Key, Old: d(old), New: d(r)}
						all[string(r.Key)] = r
					case op < 9:
						old := all[keys[rnd.IntN(len(keys))]]
						r := Row{Key: old.Key, TS: old.TS + 1, Deleted: true}
						c = DigestChange{Key: r.Key, Old: d(old), New: d(r)}
						all[string(r.Key)] = r
					default:
						old := all[keys[rnd.IntN(len(keys))]]
						c = DigestChange{Key: old.Key, Old: d(old)}
						delete(all, string(old.Key))
					}
					touched[string(c.Key)] = true
					c.Token = p.Token(c.Key)
					changes = append(changes, c)
				}
				if sorted {
					slices.SortFunc(changes, func(a, b DigestChange) int { return cmp.Compare(a.Token, b.Token) })
				}
				if err := tr.UpdateDigests(changes); err != nil {
					t.Fatal(err)
				}
				if err := tr.Hash(ctx); err != nil {
					t.Fatal(err)
				}
				want := rebuild(t, all, depth)
				for l := 0; l <= depth; l++ {
					for i := range 1 << l {
						if got, _ := tr.Node(l, i); got != want[l][i] {
							t.Fatalf("depth %d sorted %v batch %d: node (%d,%d) differs from a rebuild", depth, sorted, batch, l, i)
						}
					}
				}
				if tr.Rows() != int64(len(all)) {
					t.Fatalf("depth %d sorted %v batch %d: %d rows, rebuild has %d", depth, sorted, batch, tr.Rows(), len(all))
				}
			}
			tr.Close()
		}
	}
}

// TestUpdateDigestsOutOfRange: a batch with one token outside the tree's
// range fails naming it, and changes nothing.
func TestUpdateDigestsOutOfRange(t *testing.T) {
	ctx := context.Background()
	half, err := New(Options{Depth: 4, Range: token.Range{Lo: 0, Hi: token.Token(1) << 62}, Budget: newBudget()})
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	if err := half.Hash(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := half.Root()
	if err != nil {
		t.Fatal(err)
	}
	d := RowDigest(&Row{Key: []byte("k")})
	changes := []DigestChange{{Token: 5, Key: []byte("in"), New: &d}, {Token: -5, Key: []byte("out"), New: &d}}
	if err := half.UpdateDigests(changes); !errors.Is(err, ErrOutOfRange) || !strings.Contains(err.Error(), `"out"`) {
		t.Fatalf("a batch with a token outside the range: %v, want ErrOutOfRange naming the key", err)
	}
	if err := half.Hash(ctx); err != nil {
		t.Fatal(err)
	}
	if after, _ := half.Root(); after != before || half.Rows() != 0 {
		t.Fatalf("the refused batch changed the tree: root %x -> %x, %d rows", before[:4], after[:4], half.Rows())
	}
}
