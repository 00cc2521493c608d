package engine

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/layout"
)

func newBudget() *arena.Budget { return arena.NewBudget(1 << 30) }

// build makes a hashed tree of rows, adding them from `goroutines`
// goroutines.
func build(t testing.TB, b *arena.Budget, rows []Row, rng token.Range, depth, goroutines int) *Tree {
	t.Helper()
	tr, err := New(Options{Range: rng, Depth: depth, Budget: b})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := g; i < len(rows); i += goroutines {
				if err := tr.Add(&rows[i]); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := tr.Hash(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

var testRanges = []token.Range{
	token.Murmur3{}.Range(),
	{Lo: -1 << 62, Hi: 1 << 62},
	{Lo: 0, Hi: 1 << 40},
}

// TestTreeMatchesOracle checks every node of trees built from random rows
// against the definitions computed independently with crypto/sha256.
func TestTreeMatchesOracle(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, rng := range testRanges {
		rows := randomRows(rnd, 3000)
		// Keep only rows the range covers, as a node owning it would.
		kept := rows[:0]
		for _, r := range rows {
			if rng.Contains(token.Murmur3{}.Token(r.Key)) {
				kept = append(kept, r)
			}
		}
		for _, depth := range []int{0, 1, 2, 5, 9, 12} {
			tr := build(t, newBudget(), kept, rng, depth, 4)
			want := oracleLevels(kept, rng, depth)
			for l := 0; l <= depth; l++ {
				for i := range 1 << l {
					got, err := tr.Node(l, i)
					if err != nil {
						t.Fatal(err)
					}
					if got != want[l][i] {
						t.Fatalf("range %s depth %d: node (%d,%d) = %x, oracle %x", rng, depth, l, i, got[:6], want[l][i][:6])
					}
				}
			}
			if tr.Rows() != int64(len(kept)) {
				t.Fatalf("Rows() = %d, want %d", tr.Rows(), len(kept))
			}
		}
	}
}

// TestOrderIndependence: the same rows in any order, from any number of
// goroutines, give the same root; a duplicated row does not.
func TestOrderIndependence(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	rows := randomRows(rnd, 20000)
	full := token.Murmur3{}.Range()
	ref, err := build(t, newBudget(), rows, full, 14, 1).Root()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []int{2, 3, 8, 32} {
		shuffled := append([]Row(nil), rows...)
		rnd.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		got, err := build(t, newBudget(), shuffled, full, 14, g).Root()
		if err != nil {
			t.Fatal(err)
		}
		if got != ref {
			t.Fatalf("%d goroutines, shuffled: root %x, want %x", g, got[:8], ref[:8])
		}
	}
	dup, err := build(t, newBudget(), append(rows, rows[7]), full, 14, 2).Root()
	if err != nil {
		t.Fatal(err)
	}
	if dup == ref {
		t.Fatal("a duplicated row left the root unchanged")
	}
}

// TestLoadMatchesAdd checks the batched parallel loader against one
// goroutine adding rows one by one.
func TestLoadMatchesAdd(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	rows := randomRows(rnd, 5000)
	full := token.Murmur3{}.Range()
	want, _ := build(t, newBudget(), rows, full, 10, 1).Root()
	for _, workers := range []int{1, 2, 7} {
		tr, err := New(Options{Depth: 10, Budget: newBudget()})
		if err != nil {
			t.Fatal(err)
		}
		n, err := tr.Load(context.Background(), &sliceSource{rows: rows}, workers)
		if err != nil || n != int64(len(rows)) {
			t.Fatalf("Load: %d rows, %v", n, err)
		}
		if err := tr.Hash(context.Background()); err != nil {
			t.Fatal(err)
		}
		got, _ := tr.Root()
		if got != want || tr.Rows() != int64(len(rows)) {
			t.Fatalf("workers %d: root %x rows %d, want %x %d", workers, got[:8], tr.Rows(), want[:8], len(rows))
		}
		tr.Close()
	}
}

type sliceSource struct {
	rows []Row
	i    int
	err  error // returned instead of io.EOF at the end, if set
}

func (s *sliceSource) NextRow(r *Row) error {
	if s.i == len(s.rows) {
		if s.err != nil {
			return s.err
		}
		return eof
	}
	*r = s.rows[s.i]
	s.i++
	return nil
}

func TestLoadErrors(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 8))
	rows := randomRows(rnd, 3000)
	boom := errors.New("boom")
	tr, err := New(Options{Depth: 8, Budget: newBudget()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if _, err := tr.Load(context.Background(), &sliceSource{rows: rows, err: boom}, 2); !errors.Is(err, boom) {
		t.Fatalf("source error: got %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tr.Load(ctx, &sliceSource{rows: rows}, 2); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: got %v", err)
	}
	// A tree over half the ring refuses a row from the other half.
	half, err := New(Options{Range: token.Range{Lo: 0, Hi: 1 << 62}, Depth: 4, Budget: newBudget()})
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	if _, err := half.Load(context.Background(), &sliceSource{rows: rows}, 2); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("out of range: got %v", err)
	}
}

func TestNotHashed(t *testing.T) {
	tr, err := New(Options{Depth: 4, Budget: newBudget()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if _, err := tr.Root(); !errors.Is(err, ErrNotHashed) {
		t.Fatalf("new tree: %v", err)
	}
	if err := tr.Hash(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Root(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Add(&Row{Key: []byte("k")}); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Root(); !errors.Is(err, ErrNotHashed) {
		t.Fatalf("after Add: %v", err)
	}
	if _, err := tr.Node(4, 0); err != nil {
		t.Fatalf("leaves stay readable: %v", err)
	}
	for _, n := range [][2]int{{-1, 0}, {5, 0}, {2, 4}, {0, -1}} {
		if _, err := tr.Node(n[0], n[1]); !errors.Is(err, ErrNodeIndex) {
			t.Fatalf("Node(%d,%d): %v", n[0], n[1], err)
		}
	}
}

func TestBudget(t *testing.T) {
	b := arena.NewBudget(10 << 20) // room for depth 17 (8 MiB), not 18
	tr, err := New(Options{Depth: 18, Budget: b})
	if !errors.Is(err, arena.ErrBudgetExceeded) || tr != nil {
		t.Fatalf("depth 18 in 10 MiB: %v", err)
	}
	if b.Used() != 0 {
		t.Fatalf("a refused tree left %d bytes charged", b.Used())
	}
	for _, want := range []string{"asked", "left"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
	tr, err = New(Options{Depth: 17, Budget: b})
	if err != nil {
		t.Fatal(err)
	}
	if b.Used() < TreeBytes(17) {
		t.Fatalf("budget charged %d for a %d-byte tree", b.Used(), TreeBytes(17))
	}
	tr.Close()
	if b.Used() != 0 {
		t.Fatalf("Close left %d bytes charged", b.Used())
	}
	if _, err := New(Options{Depth: MaxDepth + 1, Budget: b}); !errors.Is(err, ErrDepth) {
		t.Fatalf("depth %d: %v", MaxDepth+1, err)
	}
	if _, err := New(Options{Depth: 2, Budget: b, Range: token.Range{Lo: 5, Hi: 5}}); !errors.Is(err, token.ErrBadRange) {
		t.Fatalf("empty range: %v", err)
	}
}

// TestConcurrentTreesShareBudget builds many trees at once against one
// budget: the budget never goes over its limit, refusals are clean, and all
// is returned at the end.
func TestConcurrentTreesShareBudget(t *testing.T) {
	b := arena.NewBudget(5 * (TreeBytes(12) + 4096))
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	for range 16 {
		wg.Go(func() {
			for range 20 {
				tr, err := New(Options{Depth: 12, Budget: b})
				mu.Lock()
				if err != nil {
					if !errors.Is(err, arena.ErrBudgetExceeded) {
						t.Error(err)
					}
					refused++
				} else {
					ok++
				}
				mu.Unlock()
				if err == nil {
					if b.Used() > b.Limit() {
						t.Errorf("used %d over limit %d", b.Used(), b.Limit())
					}
					tr.Close()
				}
			}
		})
	}
	wg.Wait()
	if b.Used() != 0 || ok == 0 || b.Peak() > b.Limit() {
		t.Fatalf("used %d, peak %d, limit %d, built %d, refused %d", b.Used(), b.Peak(), b.Limit(), ok, refused)
	}
}

func TestChooseDepth(t *testing.T) {
	tests := []struct {
		rows, avail int64
		want        int
		err         bool
	}{
		{0, 1 << 30, 0, false},
		{1, 1 << 30, 0, false},
		{2, 1 << 30, 1, false},
		{3, 1 << 30, 2, false},
		{1000, 1 << 30, 10, false},
		{1024, 1 << 30, 10, false},
		{1025, 1 << 30, 11, false},
		{1_000_000, 1 << 30, 20, false},
		{1 << 40, 1 << 40, 20, false},
		{1 << 40, 64 << 20, 20, false}, // depth 20: 64 MiB − 32 B, one page-rounded 64 MiB
		{1 << 40, 64<<20 - 1, 19, false},
		{1 << 40, 1 << 20, 14, false},
		{1 << 40, 100, 0, true},
	}
	for _, tc := range tests {
		got, err := ChooseDepth(tc.rows, tc.avail, nil)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("ChooseDepth(%d, %d) = %d, %v; want %d (error %v)", tc.rows, tc.avail, got, err, tc.want, tc.err)
		}
		if tc.err && !errors.Is(err, arena.ErrBudgetExceeded) {
			t.Errorf("ChooseDepth(%d, %d): %v, want ErrBudgetExceeded", tc.rows, tc.avail, err)
		}
	}
	b := arena.NewBudget(3 << 20)
	tr, err := New(Options{Depth: AutoDepth, ExpectedRows: 1 << 30, Budget: b})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if tr.Depth() != 15 {
		t.Fatalf("auto depth in 3 MiB: %d, want 15", tr.Depth())
	}
}

// TestUseAfterClose: every method of a closed tree returns ErrClosed, and
// none faults.
func TestUseAfterClose(t *testing.T) {
	b := newBudget()
	tr := build(t, b, randomRows(rand.New(rand.NewPCG(9, 9)), 100), token.Murmur3{}.Range(), 6, 1)
	other := build(t, b, nil, token.Murmur3{}.Range(), 6, 1)
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := context.Background()
	calls := map[string]func() error{
		"Add":       func() error { return tr.Add(&Row{Key: []byte("k")}) },
		"AddDigest": func() error { return tr.AddDigest([]byte("k"), &Digest{}) },
		"Hash":      func() error { return tr.Hash(ctx) },
		"Root":      func() error { _, err := tr.Root(); return err },
		"Node":      func() error { _, err := tr.Node(6, 3); return err },
		"Diff a":    func() error { _, err := Diff(ctx, tr, other); return err },
		"Diff b":    func() error { _, err := Diff(ctx, other, tr); return err },
		"Fold":      func() error { _, err := tr.Fold(ctx, 3); return err },
		"Save":      func() error { return tr.Save(t.TempDir() + "/x.tree") },
		"Verify":    func() error { return tr.Verify(ctx) },
		"Sync":      func() error { return tr.Checkpoint() },
		"Load": func() error {
			_, err := tr.Load(ctx, &sliceSource{rows: []Row{{Key: []byte("k")}}}, 2)
			return err
		},
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

// TestConcurrentWriters mixes every write path at once — AddFrom batches
// from several goroutines, single Adds, and a Load — on one tree, at a depth
// where all writers share bands, and checks the result against the oracle.
func TestConcurrentWriters(t *testing.T) {
	rnd := rand.New(rand.NewPCG(31, 32))
	rows := randomRows(rnd, 20000)
	full := token.Murmur3{}.Range()
	for _, depth := range []int{3, 8, 16} {
		tr, err := New(Options{Depth: depth, Budget: newBudget()})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		ctx := context.Background()
		chunk := len(rows) / 8
		for w := range 6 {
			wg.Go(func() {
				src := &sliceSource{rows: rows[w*chunk : (w+1)*chunk]}
				if n, err := tr.AddFrom(ctx, src); err != nil || n != int64(chunk) {
					t.Errorf("AddFrom: %d rows, %v", n, err)
				}
			})
		}
		wg.Go(func() {
			for i := 6 * chunk; i < 7*chunk; i++ {
				if err := tr.Add(&rows[i]); err != nil {
					t.Error(err)
				}
			}
		})
		wg.Go(func() {
			if _, err := tr.Load(ctx, &sliceSource{rows: rows[7*chunk:]}, 3); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		if err := tr.Hash(ctx); err != nil {
			t.Fatal(err)
		}
		want := oracleLevels(rows, full, depth)
		got, _ := tr.Root()
		if got != want[0][0] || tr.Rows() != int64(len(rows)) {
			t.Fatalf("depth %d: root %x rows %d, oracle %x %d", depth, got[:6], tr.Rows(), want[0][0][:6], len(rows))
		}
		tr.Close()
	}
}

// TestNoAllocPerRow: the write paths allocate nothing per row.
func TestNoAllocPerRow(t *testing.T) {
	tr, err := New(Options{Depth: 12, Budget: newBudget()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	row := Row{Key: []byte("user:12345678"), Value: make([]byte, 64), TS: 1}
	if a := testing.AllocsPerRun(1000, func() { tr.Add(&row) }); a != 0 {
		t.Errorf("Add: %v allocations per row", a)
	}
	var h Hasher
	if a := testing.AllocsPerRun(1000, func() { d := h.Digest(&row); tr.AddDigest(row.Key, &d) }); a != 0 {
		t.Errorf("Hasher.Digest + AddDigest: %v allocations per row", a)
	}
	rows := randomRows(rand.New(rand.NewPCG(1, 1)), 50_000)
	ctx := context.Background()
	for name, load := range map[string]func(RowSource){
		"AddFrom": func(s RowSource) { tr.AddFrom(ctx, s) },
		"Load":    func(s RowSource) { tr.Load(ctx, s, 2) },
	} {
		// Allocations per call must not grow with the rows: compare 500
		// rows with 50 000.
		small := testing.AllocsPerRun(5, func() { load(&sliceSource{rows: rows[:500]}) })
		big := testing.AllocsPerRun(5, func() { load(&sliceSource{rows: rows}) })
		if big > small+2 {
			t.Errorf("%s: %v allocations for 500 rows, %v for 50 000", name, small, big)
		}
	}
}

// TestLayoutsAgree: every layout gives the same nodes, roots and diffs.
func TestLayoutsAgree(t *testing.T) {
	rnd := rand.New(rand.NewPCG(41, 42))
	rows := randomRows(rnd, 6000)
	full := token.Murmur3{}.Range()
	ctx := context.Background()
	layouts := []layout.Layout{layout.BFS{}, layout.Blocked{}, mirrorLayout{}}
	for _, depth := range []int{0, 1, 6, 7, 8, 13, 14} {
		want := oracleLevels(rows, full, depth)
		var trees []*Tree
		for _, l := range layouts {
			tr, err := New(Options{Depth: depth, Layout: l, Budget: newBudget()})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			if _, err := tr.Load(ctx, &sliceSource{rows: rows}, 3); err != nil {
				t.Fatal(err)
			}
			if err := tr.Hash(ctx); err != nil {
				t.Fatal(err)
			}
			for lv := 0; lv <= depth; lv++ {
				for i := range 1 << lv {
					if got, _ := tr.Node(lv, i); got != want[lv][i] {
						t.Fatalf("%s depth %d: node (%d,%d) differs from the oracle", l.Name(), depth, lv, i)
					}
				}
			}
			trees = append(trees, tr)
		}
		other := build(t, newBudget(), rows[:5990], full, depth, 2)
		ref, err := Diff(ctx, trees[0], other)
		if err != nil {
			t.Fatal(err)
		}
		for i, tr := range trees[1:] {
			res, err := Diff(ctx, tr, other)
			if err != nil {
				t.Fatal(err)
			}
			if res.DifferingLeaves != ref.DifferingLeaves || !slices.Equal(res.Ranges, ref.Ranges) {
				t.Fatalf("%s depth %d: diff %v, bfs %v", layouts[i+1].Name(), depth, res.Ranges, ref.Ranges)
			}
		}
	}
}
