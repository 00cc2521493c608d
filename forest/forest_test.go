package forest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/rowstore"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/ring/ringtest"
)

// countingStore is a row store that counts the rows its scans return. The
// forest scans ranges in parallel; the count is read once Open returns.
type countingStore struct {
	*rowstore.Store
	scanned int64
}

func (s *countingStore) Scan(ctx context.Context, r token.Range, fn func(*engine.Row) error) error {
	var n int64
	defer func() { atomic.AddInt64(&s.scanned, n) }()
	return s.Store.Scan(ctx, r, func(row *engine.Row) error {
		n++
		return fn(row)
	})
}

// nodeRanges places a ring of nodes × tokens (RF 3) and returns node n1's
// ranges, as a node would take them from its ring file.
func nodeRanges(t testing.TB, nodes, tokens int, seed uint64) []token.Range {
	t.Helper()
	return ringtest.RangesOf(t, ringtest.Random(t, nodes, tokens, 3, seed), "n1")
}

// storeFor holds n rows, of which only those in ranges are kept: a node
// stores only what it replicates.
func storeFor(t testing.TB, n int, ranges []token.Range) *countingStore {
	t.Helper()
	s := rowstore.New(token.Murmur3{})
	var rows []engine.Row
	p := token.Murmur3{}
	for i := range n {
		r := engine.Row{Key: fmt.Appendf(nil, "user:%d", i), Value: fmt.Appendf(nil, "v%d", i), TS: 1}
		if inAny(ranges, p.Token(r.Key)) {
			rows = append(rows, r)
		}
	}
	if _, err := s.Apply(context.Background(), rows, nil); err != nil {
		t.Fatal(err)
	}
	return &countingStore{Store: s}
}

func inAny(rs []token.Range, tok token.Token) bool {
	for _, r := range rs {
		if r.Contains(tok) {
			return true
		}
	}
	return false
}

// checkAgainstRebuild compares every tree of f with a tree of the same
// range and depth built from all of the store's rows.
func checkAgainstRebuild(t *testing.T, f *Forest, s *countingStore) {
	t.Helper()
	ctx := context.Background()
	before := s.scanned
	for _, tr := range f.Trees() {
		want, err := engine.New(engine.Options{Range: tr.Range, Depth: tr.Live.Depth(), Budget: arena.NewBudget(1 << 30)})
		if err != nil {
			t.Fatal(err)
		}
		s.Scan(ctx, tr.Range, func(r *engine.Row) error { return want.Add(r) })
		want.Hash(ctx)
		if err := tr.Live.Hash(ctx); err != nil {
			t.Fatal(err)
		}
		got, _ := tr.Live.Root()
		w, _ := want.Root()
		if got != w || tr.Live.Rows() != want.Rows() {
			t.Fatalf("tree of %s: root %x rows %d; a rebuild has %x and %d", tr.Range, got[:6], tr.Live.Rows(), w[:6], want.Rows())
		}
		want.Close()
	}
	s.scanned = before
}

// TestCleanRestartReadsNoRows: a forest of a node's ranges, closed
// cleanly, opens again without reading a row, and its trees equal a
// rebuild.
func TestCleanRestartReadsNoRows(t *testing.T) {
	ctx := context.Background()
	ranges := nodeRanges(t, 6, 16, 1)
	store := storeFor(t, 200_000, ranges)
	dir := t.TempDir()
	budget := arena.NewBudget(256 << 20)
	f, err := Open(ctx, dir, Options{Budget: budget, Ranges: ranges, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	st := f.Stats()
	if st.Built != len(ranges) || st.RowsScanned != 2*int64(store.Len()) {
		t.Fatalf("first open: %+v; want %d ranges built, each row read twice (%d)", st, len(ranges), 2*store.Len())
	}
	if _, err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if budget.Used() != 0 {
		t.Fatalf("%d bytes still charged after Close", budget.Used())
	}
	store.scanned = 0
	start := time.Now()
	f, err = Open(ctx, dir, Options{Budget: budget, Ranges: ranges, Store: store})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(ctx)
	if st := f.Stats(); st.RowsScanned != 0 || store.scanned != 0 || st.Reused != len(ranges) {
		t.Fatalf("clean reopen: %+v, store scanned %d rows; want every tree reused and no row read", st, store.scanned)
	}
	t.Logf("%d ranges, %d rows: clean reopen in %v, no rows read", len(ranges), store.Len(), took)
	checkAgainstRebuild(t, f, store)
}

// abandon is a crash: the trees' files are left as they are, with no
// checkpoint, and the directory lock goes with the process.
func (f *Forest) abandon() {
	f.closeTrees()
	f.lock.Close()
}

// TestCrashRecovery: batches commit rows and marks to the store, then
// update the trees; a crash cuts the last batch's tree updates short at a
// random point. Reopening with the marks gives trees equal to a rebuild,
// reading only the rows of the marked leaves.
func TestCrashRecovery(t *testing.T) {
	ctx := context.Background()
	ranges := nodeRanges(t, 6, 16, 2)
	for trial := range 8 {
		rnd := rand.New(rand.NewPCG(uint64(trial), 3))
		store := storeFor(t, 100_000, ranges)
		dir := t.TempDir()
		budget := arena.NewBudget(256 << 20)
		opts := Options{Budget: budget, Ranges: ranges, Store: store}
		f, err := Open(ctx, dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		var marks []Mark
		checkpoints := rnd.IntN(3)
		for b := range 1 + rnd.IntN(6) {
			var batch []engine.Row
			for range 1 + rnd.IntN(300) {
				k := fmt.Appendf(nil, "user:%d", rnd.IntN(120_000))
				if !inAny(ranges, token.Murmur3{}.Token(k)) {
					continue
				}
				batch = append(batch, engine.Row{Key: k, Value: fmt.Appendf(nil, "w%d", rnd.Int()), TS: int64(2 + b), Deleted: rnd.IntN(5) == 0})
			}
			// Commit: rows and marks together; the tree updates follow.
			var changes [][2]*engine.Row
			_, err := store.Apply(ctx, batch, func(old, new *engine.Row) error {
				m, err := f.Mark(new.Key, RowDelta(old, new))
				if err != nil {
					return err
				}
				marks = append(marks, m)
				changes = append(changes, [2]*engine.Row{clone(old), clone(new)})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if b == 0 && checkpoints > 0 {
				// A checkpoint between batches: its marks may go.
				for _, c := range changes {
					f.Update(c[0], c[1])
				}
				g, err := f.Checkpoint(ctx)
				if err != nil {
					t.Fatal(err)
				}
				marks = dropCovered(marks, g)
				continue
			}
			cut := len(changes)
			if rnd.IntN(2) == 0 {
				cut = rnd.IntN(len(changes) + 1)
			}
			for _, c := range changes[:cut] {
				if err := f.Update(c[0], c[1]); err != nil {
					t.Fatal(err)
				}
			}
		}
		f.abandon()

		store.scanned = 0
		f, err = Open(ctx, dir, Options{Budget: budget, Ranges: ranges, Store: store, Marks: marks})
		if err != nil {
			t.Fatal(err)
		}
		st := f.Stats()
		if st.RowsScanned != store.scanned || st.RowsScanned > int64(store.Len())/4 {
			t.Fatalf("trial %d: %+v, store scanned %d of %d rows", trial, st, store.scanned, store.Len())
		}
		checkAgainstRebuild(t, f, store)
		// Marks up to the recovery are covered: a second crash right
		// after it, with the marks not yet deleted, recovers to the same.
		f.abandon()
		f, err = Open(ctx, dir, Options{Budget: budget, Ranges: ranges, Store: store, Marks: marks})
		if err != nil {
			t.Fatal(err)
		}
		if st := f.Stats(); st.Recovered != 0 || st.RowsScanned != 0 {
			t.Fatalf("trial %d: reopened with marks the last open covered: %+v", trial, st)
		}
		checkAgainstRebuild(t, f, store)
		f.Close(ctx)
	}
}

func clone(r *engine.Row) *engine.Row {
	if r == nil {
		return nil
	}
	c := engine.Row{Key: append([]byte(nil), r.Key...), Value: append([]byte(nil), r.Value...), TS: r.TS, Deleted: r.Deleted}
	return &c
}

func dropCovered(marks []Mark, g uint64) []Mark {
	var out []Mark
	for _, m := range marks {
		if m.Generation > g {
			out = append(out, m)
		}
	}
	return out
}

// TestTopologyChange: a seventh node joins the ring; the node's forest
// reopened with its new ranges scans only the new ranges' rows, keeps the
// unchanged trees, drops the rest, and equals a rebuild.
func TestTopologyChange(t *testing.T) {
	ctx := context.Background()
	ring6 := nodeRanges(t, 6, 16, 5)
	ring7 := nodeRanges(t, 7, 16, 5) // the same first six nodes' tokens, and n7's
	all := append(append([]token.Range(nil), ring6...), ring7...)
	store := storeFor(t, 200_000, all)
	dir := t.TempDir()
	budget := arena.NewBudget(256 << 20)
	f, err := Open(ctx, dir, Options{Budget: budget, Ranges: ring6, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	f.Close(ctx)
	old := map[token.Range]bool{}
	for _, r := range ring6 {
		old[r] = true
	}
	var newRows, total int64
	for _, r := range ring7 {
		var n int64
		store.Store.Scan(ctx, r, func(*engine.Row) error { n++; return nil })
		total += n
		if !old[r] {
			newRows += n
		}
	}
	store.scanned = 0
	f, err = Open(ctx, dir, Options{Budget: budget, Ranges: ring7, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(ctx)
	st := f.Stats()
	// The new ranges are parts of ranges the node held: their row counts
	// are estimated from the old trees', so each is read once, to build.
	if st.RowsScanned != newRows || store.scanned != newRows || st.Built+st.Reused != len(ring7) || st.Built == 0 || st.Dropped == 0 {
		t.Fatalf("after n7 joined: %+v, store scanned %d; the new ranges hold %d of the node's %d rows", st, store.scanned, newRows, total)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.tree"))
	if len(files) != len(ring7) {
		t.Fatalf("%d tree files for %d ranges", len(files), len(ring7))
	}
	t.Logf("a 7th node joined: %d of %d ranges rebuilt, %d dropped; rows read %d of the node's %d",
		st.Built, len(ring7), st.Dropped, st.RowsScanned, total)
	checkAgainstRebuild(t, f, store)
}

func TestEstimateRows(t *testing.T) {
	entry := func(lo, hi, rows int64) manifestEntry {
		r := token.Range{Lo: lo, Hi: hi}
		return manifestEntry{Lo: strconv.FormatInt(lo, 10), Hi: strconv.FormatInt(hi, 10), File: fileName(r), Rows: &rows}
	}
	unknown := entry(100, 200, 0)
	unknown.Rows = nil
	full := token.Murmur3{}.Range()
	for _, tc := range []struct {
		name string
		r    token.Range
		old  []manifestEntry
		want int64
		ok   bool
	}{
		{"first half of a split", token.Range{Lo: 0, Hi: 50}, []manifestEntry{entry(0, 100, 1000)}, 500, true},
		{"second half of a split", token.Range{Lo: 50, Hi: 100}, []manifestEntry{entry(0, 100, 1000)}, 500, true},
		{"merge of two", token.Range{Lo: 0, Hi: 200}, []manifestEntry{entry(0, 100, 1000), entry(100, 200, 10)}, 1010, true},
		{"across two", token.Range{Lo: 90, Hi: 110}, []manifestEntry{entry(0, 100, 1000), entry(100, 200, 10)}, 101, true},
		{"not covered", token.Range{Lo: 50, Hi: 150}, []manifestEntry{entry(0, 100, 1000)}, 0, false},
		{"count not recorded", token.Range{Lo: 100, Hi: 150}, []manifestEntry{unknown}, 0, false},
		{"whole ring", full, []manifestEntry{entry(full.Lo, 0, 7), entry(0, full.Hi, 9)}, 16, true},
		{"half the ring", token.Range{Lo: full.Lo, Hi: 0}, []manifestEntry{entry(full.Lo, full.Hi, 1<<20)}, 1 << 19, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := estimateRows(tc.r, tc.old)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("estimateRows(%v) = %d, %v; want %d, %v", tc.r, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	ranges := nodeRanges(t, 3, 4, 7)
	store := storeFor(t, 1000, ranges)
	dir := t.TempDir()
	f, err := Open(ctx, dir, Options{Budget: arena.NewBudget(64 << 20), Ranges: ranges, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, dir, Options{Budget: arena.NewBudget(64 << 20), Ranges: ranges, Store: store}); !errors.Is(err, ErrInUse) {
		t.Fatalf("second open: %v, want ErrInUse", err)
	}
	f.Close(ctx)

	rev := []token.Range{ranges[1], ranges[0]}
	if _, err := Open(ctx, dir, Options{Budget: arena.NewBudget(64 << 20), Ranges: rev, Store: store}); !errors.Is(err, ErrBadRanges) {
		t.Fatalf("ranges out of order: %v", err)
	}
	if _, err := Open(ctx, t.TempDir(), Options{Budget: arena.NewBudget(64 << 10), Ranges: ranges, Store: store}); !errors.Is(err, arena.ErrBudgetExceeded) || !strings.Contains(err.Error(), "for one leaf each") {
		t.Fatalf("a budget too small: %v", err)
	}
	os.WriteFile(filepath.Join(dir, manifestName), []byte("{not json"), 0o644)
	if _, err := Open(ctx, dir, Options{Budget: arena.NewBudget(64 << 20), Ranges: ranges, Store: store}); !errors.Is(err, ErrBadManifest) {
		t.Fatalf("a damaged manifest: %v", err)
	}
}

// TestRebalance: after most of one range's rows are deleted and another
// range's rows multiply, Rebalance folds the first (reading no rows) and
// rebuilds the second deeper from its own rows; both then equal a rebuild,
// and the forest reopens clean at the new depths.
func TestRebalance(t *testing.T) {
	ctx := context.Background()
	ranges := nodeRanges(t, 6, 4, 21)
	store := storeFor(t, 100_000, ranges)
	dir := t.TempDir()
	budget := arena.NewBudget(64 << 20)
	f, err := Open(ctx, dir, Options{Budget: budget, Ranges: ranges, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if f.Drifted() {
		t.Fatal("a forest just planned has drifted")
	}
	trees := f.Trees()
	shrink, grow := trees[0], trees[len(trees)-1]
	before := map[*Tree]int{shrink: shrink.Live.Depth(), grow: grow.Live.Depth()}
	// Purge all but a few rows of one range; write many new rows into
	// another. Each change goes through the forest as a node's would.
	var gone []engine.Row
	store.Store.Scan(ctx, shrink.Range, func(r *engine.Row) error {
		gone = append(gone, *clone(r))
		return nil
	})
	next := rowstore.New(token.Murmur3{})
	keep := map[string]bool{}
	for i, r := range gone {
		if i < 4 {
			keep[string(r.Key)] = true
		} else if err := f.Update(&gone[i], nil); err != nil {
			t.Fatal(err)
		}
	}
	var rows []engine.Row
	store.Store.All(ctx, func(r *engine.Row) error {
		if !shrink.Range.Contains(token.Murmur3{}.Token(r.Key)) || keep[string(r.Key)] {
			rows = append(rows, *clone(r))
		}
		return nil
	})
	for i := 0; len(rows) < 400_000 && i < 10_000_000; i++ {
		r := engine.Row{Key: fmt.Appendf(nil, "more:%d", i), Value: []byte("x"), TS: 1}
		if grow.Range.Contains(token.Murmur3{}.Token(r.Key)) {
			rows = append(rows, r)
			if err := f.Update(nil, &r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !f.Drifted() {
		t.Fatalf("one range emptied, another grown from %d to %d rows: not drifted", grow.planned.Load(), grow.Live.Rows())
	}
	if _, err := next.Apply(ctx, rows, nil); err != nil {
		t.Fatal(err)
	}
	store.Store = next
	store.scanned = 0
	moved, _, err := f.Rebalance(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var foldRead, growRead int64 = -1, -1
	for _, m := range moved {
		switch m.Tree {
		case shrink:
			foldRead = m.RowsRead
			if m.To >= before[shrink] {
				t.Fatalf("the emptied range went from depth %d to %d", m.From, m.To)
			}
		case grow:
			growRead = m.RowsRead
			if m.To <= before[grow] {
				t.Fatalf("the grown range went from depth %d to %d", m.From, m.To)
			}
		}
	}
	var growRows int64
	store.Store.Scan(ctx, grow.Range, func(*engine.Row) error { growRows++; return nil })
	if foldRead != 0 || growRead != growRows {
		t.Fatalf("moved %+v: the fold read %d rows (want 0), the rebuild %d (want its range's %d)", moved, foldRead, growRead, growRows)
	}
	if f.Drifted() {
		t.Fatal("drifted right after Rebalance")
	}
	checkAgainstRebuild(t, f, store)
	if _, err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
	store.scanned = 0
	f, err = Open(ctx, dir, Options{Budget: budget, Ranges: ranges, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(ctx)
	if st := f.Stats(); st.RowsScanned != 0 || st.Reused != len(ranges) {
		t.Fatalf("reopened after a rebalance: %+v", st)
	}
	if f.Drifted() {
		t.Fatal("reopened after a rebalance: drifted (the planned counts were not kept)")
	}
	checkAgainstRebuild(t, f, store)
}

// TestDriftThresholds: Drifted needs a tree's rows to have doubled or
// halved since its plan, and by a few thousand rows; a tree below a plan
// it has never reached (planned for rows to come) has not drifted.
func TestDriftThresholds(t *testing.T) {
	for _, tc := range []struct {
		planned, rows int64
		peak          int64 // the most rows seen before; the plan's if 0
		want          bool
	}{
		{0, 0, 0, false},
		{0, driftMinRows - 1, 0, false},
		{0, driftMinRows, 0, true},
		{10_000, 19_999, 0, false},
		{10_000, 20_000, 0, true},
		{10_000, 5_001, 0, false},
		{10_000, 5_000, 0, true},
		{1_000, 4_000, 0, false}, // quadrupled, but by fewer rows than matter
		{1 << 20, 1 << 21, 0, true},
		// Planned for 100 000 rows about to arrive, holding 10 000 so far.
		{100_000, 10_000, 10_000, false},
		// Reached 60 000 of them, then fell back to 10 000: still short of
		// the plan, so still filling — the first load's rows may be deleted
		// and rewritten.
		{100_000, 10_000, 60_000, false},
		// Reached the plan, then lost most of it: drifted.
		{100_000, 10_000, 100_000, true},
		// Past the plan it was filling toward: drifted as any tree.
		{100_000, 200_000, 10_000, true},
	} {
		tr, err := engine.New(engine.Options{Partitioner: token.Murmur3{}, Range: token.Murmur3{}.Range(), Depth: 1, Budget: arena.NewBudget(1 << 20)})
		if err != nil {
			t.Fatal(err)
		}
		for i := range tc.rows {
			if err := tr.Add(&engine.Row{Key: fmt.Appendf(nil, "%d", i), TS: 1}); err != nil {
				t.Fatal(err)
			}
		}
		ft := &Tree{Live: tr}
		ft.planned.Store(tc.planned)
		ft.peak.Store(cmp.Or(tc.peak, tc.planned))
		if got := (&Forest{trees: []*Tree{ft}}).Drifted(); got != tc.want {
			t.Errorf("planned for %d, holding %d, at most %d before: Drifted = %v, want %v", tc.planned, tc.rows, cmp.Or(tc.peak, tc.planned), got, tc.want)
		}
		tr.Close()
	}
}

// TestDue: a checkpoint falls due after the policy's writes, or its
// interval once anything was written, and not before.
func TestDue(t *testing.T) {
	ctx := context.Background()
	ranges := nodeRanges(t, 3, 2, 4)
	store := storeFor(t, 1000, ranges)
	f, err := Open(ctx, t.TempDir(), Options{Budget: arena.NewBudget(64 << 20), Ranges: ranges, Store: store, Checkpoints: CheckpointPolicy{Writes: 3, Interval: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(ctx)
	for i := range 3 {
		if f.Due() {
			t.Fatalf("due after %d writes of 3", i)
		}
		r := engine.Row{Key: fmt.Appendf(nil, "new:%d", i), TS: 1}
		if err := f.Update(nil, &r); err != nil {
			t.Fatal(err)
		}
	}
	if !f.Due() {
		t.Fatal("not due after 3 writes")
	}
	f.Checkpoint(ctx)
	if f.Due() {
		t.Fatal("due right after a checkpoint")
	}
	// A store that feeds its trees behind its writes: the changes count
	// from their commit, not from their late Updates.
	f.Committed(2)
	if f.Due() {
		t.Fatal("due after 2 committed changes of 3")
	}
	f.Committed(1)
	if !f.Due() {
		t.Fatal("not due after 3 changes committed, none yet applied")
	}
	f.Checkpoint(ctx)
	if f.Due() {
		t.Fatal("due right after a checkpoint that covered the committed changes")
	}
	f.policy.Interval = time.Nanosecond
	if f.Due() {
		t.Fatal("due with nothing written")
	}
	r := engine.Row{Key: []byte("late"), TS: 1}
	f.Update(nil, &r)
	if !f.Due() {
		t.Fatal("not due past the interval with a write")
	}
}

// TestDamagedTreeIsRebuilt: a tree file that no longer checks out is
// rebuilt from the store at its depth; the others are reused as they are.
func TestDamagedTreeIsRebuilt(t *testing.T) {
	ctx := context.Background()
	ranges := nodeRanges(t, 6, 4, 31)
	store := storeFor(t, 50_000, ranges)
	dir := t.TempDir()
	budget := arena.NewBudget(64 << 20)
	f, err := Open(ctx, dir, Options{Budget: budget, Ranges: ranges, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	victim := f.Trees()[2]
	depth := victim.Live.Depth()
	path := filepath.Join(dir, victim.file)
	f.Close(ctx)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[3] ^= 0xff // the magic: not a tree file any more
	os.WriteFile(path, data, 0o644)
	var rows int64
	store.Store.Scan(ctx, victim.Range, func(*engine.Row) error { rows++; return nil })
	store.scanned = 0
	f, err = Open(ctx, dir, Options{Budget: budget, Ranges: ranges, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(ctx)
	if st := f.Stats(); st.Damaged != 1 || st.Built != 1 || st.Reused != len(ranges)-1 || st.RowsScanned != rows {
		t.Fatalf("after damaging one tree file: %+v; want it alone rebuilt, reading its %d rows", st, rows)
	}
	for _, tr := range f.Trees() {
		if tr.Range == victim.Range && tr.Live.Depth() != depth {
			t.Fatalf("rebuilt at depth %d, was %d", tr.Live.Depth(), depth)
		}
	}
	checkAgainstRebuild(t, f, store)
}

// TestRetire: a retired forest is no longer one, and its next Open builds
// every tree from the store.
func TestRetire(t *testing.T) {
	ctx := context.Background()
	ranges := nodeRanges(t, 3, 2, 41)
	store := storeFor(t, 5000, ranges)
	dir := t.TempDir()
	f, err := Open(ctx, dir, Options{Budget: arena.NewBudget(64 << 20), Ranges: ranges, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	f.Close(ctx)
	if !Exists(dir) {
		t.Fatal("a closed forest does not exist")
	}
	if err := Retire(dir); err != nil || Exists(dir) {
		t.Fatalf("Retire: %v; exists %v", err, Exists(dir))
	}
	f, err = Open(ctx, dir, Options{Budget: arena.NewBudget(64 << 20), Ranges: ranges, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(ctx)
	if st := f.Stats(); st.Built != len(ranges) || st.Reused != 0 {
		t.Fatalf("after Retire: %+v, want every tree built", st)
	}
}

// TestExpectedRows: with the rows a new range will hold given, Open plans
// its depth for them and reads each row once, to build.
func TestExpectedRows(t *testing.T) {
	ctx := context.Background()
	ranges := nodeRanges(t, 3, 2, 51)
	store := storeFor(t, 0, ranges) // an empty node, about to load
	f, err := Open(ctx, t.TempDir(), Options{Budget: arena.NewBudget(256 << 20), Ranges: ranges, Store: store,
		ExpectedRows: func(token.Range) int64 { return 100_000 }})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(ctx)
	for _, tr := range f.Trees() {
		if d := tr.Live.Depth(); d != 17 { // ⌈log2 100 000⌉
			t.Fatalf("range %s of an empty node expecting 100 000 rows: depth %d, want 17", tr.Range, d)
		}
	}
	if st := f.Stats(); st.RowsScanned != 0 || store.scanned != 0 {
		t.Fatalf("%+v, store scanned %d: nothing to count or read", st, store.scanned)
	}
}

// sourceStore is a countingStore that also hands out a range's rows as an
// engine.RowSource (SourceStore), counting the sources it gave and closed.
type sourceStore struct {
	*countingStore
	opened, closed atomic.Int64
}

// rowsSource yields rows held in a slice.
type rowsSource struct{ rows []engine.Row }

func (s *rowsSource) NextRow(r *engine.Row) error {
	if len(s.rows) == 0 {
		return io.EOF
	}
	*r, s.rows = s.rows[0], s.rows[1:]
	return nil
}

func (s *sourceStore) Source(ctx context.Context, r token.Range) (engine.RowSource, func() error, error) {
	var rows []engine.Row
	err := s.Scan(ctx, r, func(row *engine.Row) error {
		rows = append(rows, engine.Row{Key: slices.Clone(row.Key), Value: slices.Clone(row.Value), TS: row.TS, Deleted: row.Deleted})
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	s.opened.Add(1)
	return &rowsSource{rows}, func() error { s.closed.Add(1); return nil }, nil
}

// TestSourceStoreBuilds: with a SourceStore, new ranges are built from its
// sources — each released — in parallel, and the trees equal a rebuild
// from Scan, whatever the core count.
func TestSourceStoreBuilds(t *testing.T) {
	ctx := context.Background()
	ranges := nodeRanges(t, 6, 16, 3)
	for _, procs := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("procs=%d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			store := &sourceStore{countingStore: storeFor(t, 20_000, ranges)}
			f, err := Open(ctx, t.TempDir(), Options{Budget: arena.NewBudget(256 << 20), Ranges: ranges, Store: store})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close(ctx)
			st := f.Stats()
			if st.Built != len(ranges) || store.opened.Load() != int64(len(ranges)) || store.closed.Load() != store.opened.Load() {
				t.Fatalf("%+v; %d sources opened, %d closed; want %d ranges built from as many sources, each closed",
					st, store.opened.Load(), store.closed.Load(), len(ranges))
			}
			if st.RowsScanned != 2*int64(store.Len()) {
				t.Fatalf("%+v: want every row counted, then read (%d)", st, 2*store.Len())
			}
			checkAgainstRebuild(t, f, store.countingStore)
		})
	}
}

// TestDueDefaultFollowsLeaves: with no Writes in its policy, a forest is
// due a checkpoint after as many writes as its trees have leaves, and not
// before, so that a checkpoint's tree pages are paid for by at least as
// many rows.
func TestDueDefaultFollowsLeaves(t *testing.T) {
	ctx := context.Background()
	ranges := nodeRanges(t, 6, 4, 41)
	store := storeFor(t, 1000, ranges)
	f, err := Open(ctx, t.TempDir(), Options{Budget: arena.NewBudget(256 << 20), Ranges: ranges, Store: store, Checkpoints: CheckpointPolicy{Interval: time.Hour},
		// Planned for many rows to come: deep trees.
		ExpectedRows: func(token.Range) int64 { return 200_000 }})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(ctx)
	var leaves int64
	for _, tr := range f.Trees() {
		leaves += int64(1) << tr.Live.Depth()
	}
	if leaves <= MinCheckpointWrites {
		t.Fatalf("the trees have %d leaves: the test needs more than %d", leaves, MinCheckpointWrites)
	}
	for _, tc := range []struct {
		writes int64
		want   bool
	}{
		{MinCheckpointWrites, false},
		{leaves - 1, false},
		{leaves, true},
	} {
		f.writes.Store(tc.writes)
		if got := f.Due(); got != tc.want {
			t.Errorf("%d writes, %d leaves: Due = %v, want %v", tc.writes, leaves, got, tc.want)
		}
	}
}

// TestUpdateDigestsAcrossTrees: a batch of changes in token order that
// spans many of the forest's trees (the rows a store's round wrote) leaves
// every tree equal to a rebuild from the store, and a change whose token is
// in no range fails with ErrNoRange.
func TestUpdateDigestsAcrossTrees(t *testing.T) {
	ctx := context.Background()
	ranges := nodeRanges(t, 6, 4, 17)
	store := storeFor(t, 20_000, ranges)
	f, err := Open(ctx, t.TempDir(), Options{Budget: arena.NewBudget(64 << 20), Ranges: ranges, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(ctx)
	p := token.Murmur3{}
	var rows []engine.Row
	for i := 0; len(rows) < 3000; i++ {
		r := engine.Row{Key: fmt.Appendf(nil, "batch:%d", i), Value: []byte("v"), TS: 2}
		if inAny(ranges, p.Token(r.Key)) {
			rows = append(rows, r)
		}
	}
	// Replace some stored rows too: the change subtracts what they held.
	old := make([]engine.Row, 0, 500)
	store.Scan(ctx, ranges[0], func(r *engine.Row) error {
		if len(old) < 500 {
			old = append(old, engine.Row{Key: slices.Clone(r.Key), Value: slices.Clone(r.Value), TS: r.TS})
		}
		return nil
	})
	var changes []engine.DigestChange
	digests := make([]engine.Digest, 2*(len(rows)+len(old)))
	for i, r := range rows {
		digests[i] = engine.RowDigest(&r)
		changes = append(changes, engine.DigestChange{Token: p.Token(r.Key), Key: r.Key, New: &digests[i]})
	}
	var replaced []engine.Row
	for i, o := range old {
		nr := engine.Row{Key: o.Key, Value: []byte("newer"), TS: o.TS + 1}
		replaced = append(replaced, nr)
		d := len(rows) + 2*i
		digests[d], digests[d+1] = engine.RowDigest(&o), engine.RowDigest(&nr)
		changes = append(changes, engine.DigestChange{Token: p.Token(o.Key), Key: o.Key, Old: &digests[d], New: &digests[d+1]})
	}
	slices.SortFunc(changes, func(a, b engine.DigestChange) int { return cmp.Compare(a.Token, b.Token) })
	if err := f.UpdateDigests(changes); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Apply(ctx, append(rows, replaced...), nil); err != nil {
		t.Fatal(err)
	}
	checkAgainstRebuild(t, f, store)

	var outside token.Token
	for tok := token.Token(math.MinInt64 + 1); ; tok += 1 << 50 {
		if !inAny(ranges, tok) {
			outside = tok
			break
		}
	}
	if err := f.UpdateDigests([]engine.DigestChange{{Token: outside, Key: []byte("stray"), New: &digests[0]}}); !errors.Is(err, ErrNoRange) {
		t.Fatalf("a change of token %d, in none of the ranges: %v, want ErrNoRange", outside, err)
	}
}
