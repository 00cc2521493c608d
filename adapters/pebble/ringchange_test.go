package grovepebble

import (
	"context"
	"errors"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/forest"
	"github.com/antientropy/grove/ring/ringtest"
)

// ringRowsEnv sets the rows TestSeventhNodeJoins loads; the README's
// figure is from 2,000,000.
const ringRowsEnv = "GROVEPEBBLE_RING_ROWS"

func ringRows(t *testing.T) int {
	if v := os.Getenv(ringRowsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive row count", ringRowsEnv, v)
		}
		return n
	}
	return 40_000
}

// spanLen is the number of tokens in r, as a float: ring spans overflow
// int64.
func spanLen(r token.Range) float64 { return float64(uint64(r.Hi - r.Lo)) }

// checkUnowned checks the node's unowned spans against the ring change
// from old to now, without the node's span arithmetic: each span lies in
// the old ranges and in no new one, and together with the overlap of the
// old and new ranges they cover the old ranges exactly.
func checkUnowned(t *testing.T, unowned, old, now []token.Range) {
	t.Helper()
	overlap := func(a, b token.Range) float64 {
		if lo, hi := max(a.Lo, b.Lo), min(a.Hi, b.Hi); lo < hi {
			return spanLen(token.Range{Lo: lo, Hi: hi})
		}
		return 0
	}
	var covered, want float64
	for _, u := range unowned {
		var inOld float64
		for _, o := range old {
			inOld += overlap(u, o)
		}
		for _, r := range now {
			if r.Lo < u.Hi && u.Lo < r.Hi {
				t.Fatalf("unowned span %v overlaps the node's range %v", u, r)
			}
		}
		if math.Abs(inOld-spanLen(u)) > 1e-9*spanLen(u) {
			t.Fatalf("unowned span %v is not within the node's old ranges", u)
		}
		covered += spanLen(u)
	}
	for _, o := range old {
		want += spanLen(o)
		for _, r := range now {
			covered += overlap(o, r)
		}
	}
	// Sums of float64 token counts round; an error of one span would be
	// far above 1e-9 of the whole.
	if math.Abs(covered-want) > 1e-9*want {
		t.Fatalf("unowned spans and kept ranges cover %g tokens of the old ranges' %g", covered, want)
	}
}

// TestSeventhNodeJoins: a node of a 6-node ring (16 tokens each, RF 3)
// reopened with the ring after a 7th node joined reads only the rows of
// its split ranges, keeps its unchanged trees, keeps the rows of the
// ranges it gave away (unowned, served by no tree) until Cleanup deletes
// them, and its trees equal a rebuild at every step.
func TestSeventhNodeJoins(t *testing.T) {
	ctx := context.Background()
	old := ringtest.RangesOf(t, ringtest.Random(t, 6, 16, 3, 11), "n1")
	now := ringtest.RangesOf(t, ringtest.Random(t, 7, 16, 3, 11), "n1")
	keys := rangeKeys(old, "k", ringRows(t), true)
	dir := t.TempDir()
	budget := arena.NewBudget(512 << 20)
	n := openNode(t, dir, created(Options{Ranges: old, NodeID: "n1", Budget: budget, RangeRows: func(token.Range) int64 { return int64(len(keys) / len(old)) }}))
	loadRows(t, n, keys, 1)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	// Worked out from the two rings, not from the node: which rows the
	// new ranges that were not old ranges hold (those of the split
	// ranges), and which rows the node no longer replicates.
	isOld := map[token.Range]bool{}
	for _, r := range old {
		isOld[r] = true
	}
	var split, gone int64
	var splitRanges, keptRanges int
	for _, r := range now {
		if isOld[r] {
			keptRanges++
		} else {
			splitRanges++
		}
	}
	for _, k := range keys {
		tok := token.Murmur3{}.Token(k)
		i := slices.IndexFunc(now, func(r token.Range) bool { return r.Contains(tok) })
		switch {
		case i < 0:
			gone++
		case !isOld[now[i]]:
			split++
		}
	}
	if splitRanges == 0 || gone == 0 {
		t.Fatalf("the 7th node split %d of n1's ranges and took %d of its rows: the ring does not test a join", splitRanges, gone)
	}

	opts := Options{Ranges: now, NodeID: "n1", Budget: budget}
	n = openNode(t, dir, opts)
	st := n.OpenStats()
	if st.RowsScanned != split || st.Built != splitRanges || st.Reused != keptRanges || st.Dropped == 0 {
		t.Fatalf("after the join: OpenStats %+v; want %d rows read (the split ranges'), %d built, %d reused", st, split, splitRanges, keptRanges)
	}
	t.Logf("a 7th node joined: n1 read %d of its %d rows at open (%.1f%%): %d of its %d ranges split and rebuilt, %d kept, %d dropped; %d rows no longer its own",
		st.RowsScanned, len(keys), 100*float64(st.RowsScanned)/float64(len(keys)), splitRanges, len(now), keptRanges, st.Dropped, gone)
	unowned := n.Unowned()
	checkUnowned(t, unowned, old, now)
	checkTreesKeeping(t, n, now, unowned)
	var inTrees int64
	for _, r := range n.Replicas() {
		inTrees += r.Rows()
	}
	if inTrees != int64(len(keys))-gone {
		t.Fatalf("the trees hold %d rows; the node replicates %d of its %d", inTrees, int64(len(keys))-gone, len(keys))
	}

	// A row of a range given away is no longer the node's to write.
	var lost []byte
	for _, k := range keys {
		if inRanges(unowned, token.Murmur3{}.Token(k)) {
			lost = k
			break
		}
	}
	if err := n.Put(ctx, lost, []byte("x"), 9); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("Put to an unowned span: %v, want ErrOutOfRange", err)
	}

	// The spans outlive a restart, which reads nothing.
	n = reopen(t, n, dir, opts)
	if st := n.OpenStats(); st.RowsScanned != 0 || st.Reused != len(now) {
		t.Fatalf("reopened after the join: OpenStats %+v, want every tree reused and no row read", st)
	}
	if got := n.Unowned(); !slices.Equal(got, unowned) {
		t.Fatalf("unowned spans after reopening: %v, want %v", got, unowned)
	}

	// Under another node's id the database is refused, and left as it is.
	before := dbRows(t, n)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, dir, Options{Ranges: now, NodeID: "n2", Budget: budget}); !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), `"n1"`) {
		t.Fatalf("opened as n2: %v, want ErrIncompatible naming n1", err)
	}
	n = openNode(t, dir, opts)
	if after := dbRows(t, n); !equalRows(before, after) {
		t.Fatalf("a refused Open changed the data: %s", diffRows(before, after))
	}

	cs, err := n.Cleanup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cs.Spans, unowned) || cs.Bytes == 0 {
		t.Fatalf("Cleanup: %+v, want the spans %v and their bytes", cs, unowned)
	}
	if len(n.Unowned()) != 0 {
		t.Fatalf("after Cleanup: unowned %v", n.Unowned())
	}
	after := dbRows(t, n)
	if int64(len(after)) != int64(len(keys))-gone {
		t.Fatalf("after Cleanup: %d rows stored, want the %d the node replicates", len(after), int64(len(keys))-gone)
	}
	checkTrees(t, n, now)
	n = reopen(t, n, dir, opts)
	if st := n.OpenStats(); st.RowsScanned != 0 || len(n.Unowned()) != 0 {
		t.Fatalf("reopened after Cleanup: OpenStats %+v, unowned %v", st, n.Unowned())
	}
	checkTrees(t, n, now)
}

// TestRingChangeUndone: a node given back, before cleaning up, the ranges
// a join took rebuilds them from the rows it kept; nothing is unowned and
// no row was lost.
func TestRingChangeUndone(t *testing.T) {
	old := ringtest.RangesOf(t, ringtest.Random(t, 6, 16, 3, 12), "n1")
	now := ringtest.RangesOf(t, ringtest.Random(t, 7, 16, 3, 12), "n1")
	keys := rangeKeys(old, "k", 5000, true)
	dir := t.TempDir()
	n := openNode(t, dir, created(Options{Ranges: old, NodeID: "n1"}))
	loadRows(t, n, keys, 1)
	n = reopen(t, n, dir, Options{Ranges: now, NodeID: "n1"})
	if len(n.Unowned()) == 0 {
		t.Fatal("the join left the node no unowned span")
	}
	n = reopen(t, n, dir, Options{Ranges: old, NodeID: "n1"})
	if u := n.Unowned(); len(u) != 0 {
		t.Fatalf("with its old ranges back: unowned %v", u)
	}
	if len(dbRows(t, n)) != len(keys) {
		t.Fatalf("%d rows stored, want %d", len(dbRows(t, n)), len(keys))
	}
	checkTrees(t, n, old)
}

// TestForeignRowBesideUnowned: a stored row in a span the node never held
// still fails Open, which names it and the spans it checked.
func TestForeignRowBesideUnowned(t *testing.T) {
	old := ringtest.RangesOf(t, ringtest.Random(t, 6, 16, 3, 13), "n1")
	now := ringtest.RangesOf(t, ringtest.Random(t, 7, 16, 3, 13), "n1")
	dir := t.TempDir()
	n := openNode(t, dir, created(Options{Ranges: old, NodeID: "n1"}))
	loadRows(t, n, rangeKeys(old, "k", 500, true), 1)
	n = reopen(t, n, dir, Options{Ranges: now, NodeID: "n1"})
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	foreign := rangeKeys(old, "f", 1, false)[0]
	row := engine.Row{Key: foreign, Value: []byte("x"), TS: 1}
	rawSet(t, dir, appendRowKey(nil, token.Murmur3{}.Token(foreign), foreign), appendValue(nil, &row))
	_, err := Open(context.Background(), dir, Options{Ranges: now, NodeID: "n1"})
	if !errors.Is(err, ErrOutOfRange) || !strings.Contains(err.Error(), string(foreign)) || !strings.Contains(err.Error(), "spans it held before its ring changed") {
		t.Fatalf("Open over a foreign row: %v, want ErrOutOfRange naming %q and the kept spans", err, foreign)
	}
}

func TestSpanArithmetic(t *testing.T) {
	r := func(lo, hi token.Token) token.Range { return token.Range{Lo: lo, Hi: hi} }
	for _, tc := range []struct {
		name          string
		spans, rs     []token.Range
		merged, minus []token.Range
	}{
		{"nothing taken", []token.Range{r(0, 10)}, nil, []token.Range{r(0, 10)}, []token.Range{r(0, 10)}},
		{"all taken", []token.Range{r(0, 10)}, []token.Range{r(0, 10)}, []token.Range{r(0, 10)}, nil},
		{"split", []token.Range{r(0, 10)}, []token.Range{r(0, 4)}, []token.Range{r(0, 10)}, []token.Range{r(4, 10)}},
		{"middle", []token.Range{r(0, 10)}, []token.Range{r(3, 5)}, []token.Range{r(0, 10)}, []token.Range{r(0, 3), r(5, 10)}},
		{"adjacent joined", []token.Range{r(0, 3), r(3, 6), r(8, 9)}, []token.Range{r(2, 4), r(5, 9)}, []token.Range{r(0, 6), r(8, 9)}, []token.Range{r(0, 2), r(4, 5)}},
		{"unsorted merge", []token.Range{r(8, 9), r(0, 3), r(1, 2)}, nil, []token.Range{r(0, 3), r(8, 9)}, []token.Range{r(8, 9), r(0, 3), r(1, 2)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mergeSpans(tc.spans); !slices.Equal(got, tc.merged) {
				t.Errorf("merge = %v, want %v", got, tc.merged)
			}
			if got := subtractSpans(tc.spans, tc.rs); !slices.Equal(got, tc.minus) {
				t.Errorf("subtract = %v, want %v", got, tc.minus)
			}
		})
	}
	enc := encodeSpans([]token.Range{r(-5, 3), r(7, 9)})
	if got, err := decodeSpans(enc); err != nil || !slices.Equal(got, []token.Range{r(-5, 3), r(7, 9)}) {
		t.Fatalf("decode(encode) = %v, %v", got, err)
	}
	for _, bad := range [][]byte{enc[:15], encodeSpans([]token.Range{r(7, 9), r(-5, 3)}), encodeSpans([]token.Range{r(3, 3)})} {
		if _, err := decodeSpans(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decode(%x): %v, want ErrCorrupt", bad, err)
		}
	}
}

// TestGrowingNodeRebalancesItself: a new node's trees are planned for no
// rows; as writes fill its ranges, a checkpoint finds them drifted and
// re-plans them deeper, with no call to Rebalance, and the trees equal
// their rebuilds.
func TestGrowingNodeRebalancesItself(t *testing.T) {
	dir := t.TempDir()
	rs := testRanges()
	opts := Options{Ranges: rs, Checkpoints: forest.CheckpointPolicy{Writes: 2000}}
	n := openNode(t, dir, created(opts))
	for _, r := range n.Replicas() {
		if r.Depth() > 1 {
			t.Fatalf("a new node's range %v has depth %d, want at most 1 (planned for no rows)", r.Range(), r.Depth())
		}
	}
	loadRows(t, n, rangeKeys(rs, "k", 48_000, true), 1)
	for _, r := range n.Replicas() {
		if r.Depth() < 10 {
			t.Errorf("range %v of %d rows still has depth %d", r.Range(), r.Rows(), r.Depth())
		}
	}
	checkTrees(t, n, rs)
	n = reopen(t, n, dir, opts)
	if st := n.OpenStats(); st.RowsScanned != 0 {
		t.Fatalf("reopened: OpenStats %+v, want no rows read", st)
	}
	checkTrees(t, n, rs)
}
