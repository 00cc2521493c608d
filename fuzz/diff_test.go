package fuzz

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"testing"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/layout"
)

// diffKeys is the key alphabet of FuzzDiffBruteForce: few enough that keys
// repeat and are shared, with keys that collide under the byte-ordered
// partitioner (same first 8 bytes, zero padding, the all-zero prefix that
// is clamped) and the empty key.
var diffKeys = func() [][]byte {
	keys := [][]byte{
		{}, []byte("a"), []byte("b"), []byte("k"), []byte("user:1"), []byte("user:2"),
		{0, 0, 0, 1}, {0xff}, {0x80, 0x81}, []byte("abcdefgh"), []byte("abcdefgh1"),
		[]byte("abcdefgh2"), []byte("ab"), []byte("ab\x00"), make([]byte, 8), make([]byte, 9),
		bytes.Repeat([]byte{0xff}, 8), bytes.Repeat([]byte{0xff}, 9),
	}
	for i := 0; len(keys) < 32; i++ {
		keys = append(keys, fmt.Appendf(nil, "key%02d", i))
	}
	return keys
}()

var (
	diffValues = [][]byte{{}, []byte("v"), []byte("w"), []byte("\x00value")}
	diffTS     = []int64{0, 1, 2, -1, 1700000000000000, math.MaxInt64, math.MinInt64, 42}
)

// rowDigest is SHA-256 of the row encoding of docs/FORMAT.md, written out
// here independently of the engine.
func rowDigest(r *engine.Row) [32]byte {
	var b []byte
	b = append(b, 1)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.Key)))
	b = append(b, r.Key...)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(r.Value)))
	b = append(b, r.Value...)
	b = binary.LittleEndian.AppendUint64(b, uint64(r.TS))
	var flags byte
	if r.Deleted {
		flags = 1
	}
	return sha256.Sum256(append(b, flags))
}

// refTree computes, from rows alone, the nodes a tree over rng at depth must
// have: leaves are lane-wise sums of row digests, inner nodes SHA-256 of
// their children. levels[l][i] is node (l, i).
func refTree(p token.Partitioner, rng token.Range, depth int, rows []engine.Row) [][][32]byte {
	levels := make([][][32]byte, depth+1)
	levels[depth] = make([][32]byte, 1<<depth)
	for i := range rows {
		leaf := &levels[depth][rng.LeafOf(p.Token(rows[i].Key), depth)]
		d := rowDigest(&rows[i])
		for lane := 0; lane < 4; lane++ {
			s := binary.LittleEndian.Uint64(leaf[8*lane:]) + binary.LittleEndian.Uint64(d[8*lane:])
			binary.LittleEndian.PutUint64(leaf[8*lane:], s)
		}
	}
	for l := depth - 1; l >= 0; l-- {
		levels[l] = make([][32]byte, 1<<l)
		for i := range levels[l] {
			levels[l][i] = sha256.Sum256(append(levels[l+1][2*i][:], levels[l+1][2*i+1][:]...))
		}
	}
	return levels
}

// nodeReader is a hashed tree, live or frozen, read node by node.
type nodeReader interface {
	Node(level, index int) (engine.Digest, error)
	Depth() int
	Layout() layout.Layout
}

// checkTree compares every node of a hashed tree with refTree's.
func checkTree(t *testing.T, name string, tr nodeReader, want [][][32]byte) {
	t.Helper()
	for l := range want {
		for i := range want[l] {
			got, err := tr.Node(l, i)
			if err != nil {
				t.Fatalf("%s: Node(%d, %d): %v", name, l, i, err)
			}
			if got != want[l][i] {
				t.Fatalf("%s (depth %d, %s): node (%d, %d) = %x, brute force %x", name, tr.Depth(), tr.Layout().Name(), l, i, got, want[l][i])
			}
		}
	}
}

type sliceSource struct{ rows []engine.Row }

func (s *sliceSource) NextRow(r *engine.Row) error {
	if len(s.rows) == 0 {
		return io.EOF
	}
	*r = s.rows[0]
	s.rows = s.rows[1:]
	return nil
}

// multiset is a side's rows per key, as sorted row digests.
func multiset(rows []engine.Row) map[string][][32]byte {
	m := map[string][][32]byte{}
	for i := range rows {
		m[string(rows[i].Key)] = append(m[string(rows[i].Key)], rowDigest(&rows[i]))
	}
	for k := range m {
		slices.SortFunc(m[k], func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	}
	return m
}

func sameDigests(a, b [][32]byte) bool { return slices.Equal(a, b) }

// FuzzDiffBruteForce builds two small trees (depths 0..8, either layout,
// either partitioner, the whole ring or a range cut at key tokens) from two
// multisets of rows drawn from a small alphabet, and checks against brute
// force: every node of each tree; Diff's depth, differing leaves, merged
// ranges and the nodes its walk compared (one, plus two per differing inner
// node); the same result in the other order; Fold to the shallower depth
// against a tree built there; CompareKeys on Diff's ranges against a per-key
// multiset comparison; and, when asked, a live tree edited from A's rows to
// B's with Update, hashed incrementally and snapshotted on the way, against
// a tree built from B's rows. Every byte charged is returned.
func FuzzDiffBruteForce(f *testing.F) {
	ctx := context.Background()
	// Trees over the whole ring of each partitioner, one per depth, made
	// when first needed and kept for the process: Diff must refuse them
	// against a tree of another partitioner or range. Making one costs a
	// mapping, a page fault and an unmapping, as much as the rest of a
	// small input.
	var whole [3][9]*engine.Tree // [partitioner id][depth]
	f.Cleanup(func() {
		for _, byDepth := range whole {
			for _, tr := range byDepth {
				if tr != nil {
					tr.Close()
				}
			}
		}
	})
	wholeRing := func(t *testing.T, p token.Partitioner, depth int) *engine.Tree {
		if tr := whole[p.ID()][depth]; tr != nil {
			return tr
		}
		tr, err := engine.New(engine.Options{Partitioner: p, Depth: depth, Budget: arena.NewBudget(1 << 20), NoHugePages: true})
		if err == nil {
			err = tr.Hash(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		whole[p.ID()][depth] = tr
		return tr
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &input{b: data}
		mode := in.byte()
		var p token.Partitioner = token.Murmur3{}
		if mode&1 != 0 {
			p = token.ByteOrdered{}
		}
		rng := p.Range()
		if mode&6 != 0 {
			pick := func() token.Token {
				c := in.byte()
				switch c >> 5 {
				case 6:
					return math.MinInt64
				case 7:
					return math.MaxInt64
				}
				tok := p.Token(diffKeys[c&31])
				switch (c >> 5) % 3 {
				case 1:
					if tok > math.MinInt64 {
						tok--
					}
				case 2:
					if tok < math.MaxInt64 {
						tok++
					}
				}
				return tok
			}
			lo, hi := pick(), pick()
			if lo > hi {
				lo, hi = hi, lo
			}
			if lo < hi {
				rng = token.Range{Lo: lo, Hi: hi}
			}
		}
		layouts := []layout.Layout{layout.BFS{}, layout.Blocked{}}
		layA, layB := layouts[mode>>3&1], layouts[mode>>4&1]
		loadA, addFromB, live := mode&0x20 != 0, mode&0x40 != 0, mode&0x80 != 0
		depthA, depthB := int(in.byte()%9), int(in.byte()%9)

		// Rows: two bytes each.
		var allA, allB, rowsA, rowsB []engine.Row // all, and those in range
		for !in.empty() && (len(allA) < 64 || len(allB) < 64) {
			c0, c1 := in.byte(), in.byte()
			r := engine.Row{
				Key:     diffKeys[c0&31],
				Value:   diffValues[c1&3],
				TS:      diffTS[c1>>2&7],
				Deleted: c0&0x80 != 0,
			}
			side := c0 >> 5 & 3
			inRange := rng.Contains(p.Token(r.Key))
			if side != 2 && len(allA) < 64 {
				allA = append(allA, r)
				if inRange {
					rowsA = append(rowsA, r)
				}
			}
			if side != 1 && len(allB) < 64 {
				allB = append(allB, r)
				if inRange {
					rowsB = append(rowsB, r)
				}
			}
		}

		budget := arena.NewBudget(1 << 20)
		var trees []io.Closer
		defer func() {
			for _, tr := range trees {
				tr.Close()
			}
		}()
		newTree := func(depth int, l layout.Layout) *engine.Tree {
			tr, err := engine.New(engine.Options{Partitioner: p, Range: rng, Depth: depth, Layout: l, Budget: budget, NoHugePages: true})
			if err != nil {
				t.Fatalf("New(depth %d, %s, %v): %v", depth, l.Name(), rng, err)
			}
			trees = append(trees, tr)
			return tr
		}
		build := func(depth int, l layout.Layout, all, in []engine.Row, how int) *engine.Tree {
			tr := newTree(depth, l)
			switch how {
			case 1: // Load: the source must hold only rows in range
				n, err := tr.Load(ctx, &sliceSource{rows: in}, 2)
				if err != nil || n != int64(len(in)) {
					t.Fatalf("Load: %d rows, %v; want %d", n, err, len(in))
				}
			case 2:
				n, err := tr.AddFrom(ctx, &sliceSource{rows: in})
				if err != nil || n != int64(len(in)) {
					t.Fatalf("AddFrom: %d rows, %v; want %d", n, err, len(in))
				}
			default: // Add, all rows: those out of range are refused
				for i := range all {
					err := tr.Add(&all[i])
					if want := rng.Contains(p.Token(all[i].Key)); want != (err == nil) || (!want && !errors.Is(err, engine.ErrOutOfRange)) {
						t.Fatalf("Add(%q) with token %d to %v: %v", all[i].Key, p.Token(all[i].Key), rng, err)
					}
				}
			}
			if tr.Rows() != int64(len(in)) {
				t.Fatalf("Rows() = %d, want %d", tr.Rows(), len(in))
			}
			if _, err := tr.Root(); depth > 0 && !errors.Is(err, engine.ErrNotHashed) {
				t.Fatalf("Root before Hash: %v, want ErrNotHashed", err)
			}
			if err := tr.Hash(ctx); err != nil {
				t.Fatalf("Hash: %v", err)
			}
			return tr
		}
		howA, howB := 0, 0
		if loadA {
			howA = 1
		}
		if addFromB {
			howB = 2
		}
		a := build(depthA, layA, allA, rowsA, howA)
		b := build(depthB, layB, allB, rowsB, howB)
		checkTree(t, "A", a, refTree(p, rng, depthA, rowsA))
		refB := refTree(p, rng, depthB, rowsB)
		checkTree(t, "B", b, refB)

		// Brute force: the keys whose row multisets differ, their leaves
		// at the shallower depth, and the inner nodes above those leaves.
		d := min(depthA, depthB)
		msA, msB := multiset(rowsA), multiset(rowsB)
		var wantA, wantB, wantDiff []engine.Key
		leaves := map[int]bool{}
		for k, da := range msA {
			key := engine.Key{Key: []byte(k), Token: p.Token([]byte(k))}
			db, ok := msB[k]
			switch {
			case !ok:
				wantA = append(wantA, key)
			case !sameDigests(da, db):
				wantDiff = append(wantDiff, key)
			default:
				continue
			}
			leaves[rng.LeafOf(key.Token, d)] = true
		}
		for k := range msB {
			if _, ok := msA[k]; !ok {
				key := engine.Key{Key: []byte(k), Token: p.Token([]byte(k))}
				wantB = append(wantB, key)
				leaves[rng.LeafOf(key.Token, d)] = true
			}
		}
		sorted := make([]int, 0, len(leaves))
		inner := map[[2]int]bool{}
		for i := range leaves {
			sorted = append(sorted, i)
			for l := 0; l < d; l++ {
				inner[[2]int{l, i >> (d - l)}] = true
			}
		}
		sort.Ints(sorted)
		var wantRanges []token.Range
		for _, i := range sorted {
			leaf := rng.Leaf(i, d)
			if n := len(wantRanges); n > 0 && wantRanges[n-1].Hi == leaf.Lo {
				wantRanges[n-1].Hi = leaf.Hi
			} else {
				wantRanges = append(wantRanges, leaf)
			}
		}
		wantCompared := 1 + 2*len(inner)

		var ab *engine.DiffResult // Diff(a, b), for CompareKeys below
		for i, order := range [][2]*engine.Tree{{a, b}, {b, a}} {
			res, err := engine.Diff(ctx, order[0], order[1])
			if err != nil {
				t.Fatalf("Diff: %v", err)
			}
			if i == 0 {
				ab = res
			}
			if res.Depth != d || res.DifferingLeaves != len(leaves) || !slices.Equal(res.Ranges, wantRanges) ||
				res.NodesCompared != wantCompared || res.Identical() != (len(leaves) == 0) {
				t.Fatalf("Diff (depths %d, %d, range %v): depth %d, %d differing leaves, ranges %v, %d compared;\n"+
					"brute force: depth %d, leaves %v, ranges %v, %d compared",
					depthA, depthB, rng, res.Depth, res.DifferingLeaves, res.Ranges, res.NodesCompared,
					d, sorted, wantRanges, wantCompared)
			}
		}

		// Trees over another range or partitioner are not comparable.
		var op token.Partitioner
		if rng != p.Range() {
			op = p
		} else if mode&1 != 0 {
			op = token.Murmur3{}
		} else {
			op = token.ByteOrdered{}
		}
		o := wholeRing(t, op, d)
		if _, err := engine.Diff(ctx, a, o); !errors.Is(err, engine.ErrIncompatible) {
			t.Fatalf("Diff of trees over %v (%s) and %v (%s): %v, want ErrIncompatible", rng, p.Name(), o.Range(), o.Partitioner().Name(), err)
		}

		// Fold against a tree built at the shallower depth.
		if depthA != depthB {
			deep, rows := a, rowsA
			if depthB > depthA {
				deep, rows = b, rowsB
			}
			folded, err := deep.Fold(ctx, d)
			if err != nil {
				t.Fatalf("Fold(%d): %v", d, err)
			}
			trees = append(trees, folded)
			if folded.Layout().ID() != deep.Layout().ID() || folded.Rows() != int64(len(rows)) {
				t.Fatalf("Fold: layout %s rows %d, want %s and %d", folded.Layout().Name(), folded.Rows(), deep.Layout().Name(), len(rows))
			}
			checkTree(t, "folded", folded, refTree(p, rng, d, rows))
		}

		// CompareKeys over Diff's ranges, with every row of each side
		// (those outside the tree's range too) in the sources.
		res := ab
		kd, err := engine.CompareKeys(ctx, p, res.Ranges, &sliceSource{rows: allA}, &sliceSource{rows: allB})
		if err != nil {
			t.Fatalf("CompareKeys: %v", err)
		}
		for _, l := range [][]engine.Key{wantA, wantB, wantDiff} {
			sort.Slice(l, func(i, j int) bool {
				if l[i].Token != l[j].Token {
					return l[i].Token < l[j].Token
				}
				return bytes.Compare(l[i].Key, l[j].Key) < 0
			})
		}
		if !sameKeys(kd.OnlyHere, wantA) || !sameKeys(kd.OnlyThere, wantB) || !sameKeys(kd.Different, wantDiff) ||
			kd.Identical() != (len(wantA)+len(wantB)+len(wantDiff) == 0) {
			t.Fatalf("CompareKeys over %v:\n got only A %s, only B %s, different %s\nwant only A %s, only B %s, different %s",
				res.Ranges, keyList(kd.OnlyHere), keyList(kd.OnlyThere), keyList(kd.Different),
				keyList(wantA), keyList(wantB), keyList(wantDiff))
		}
		for _, side := range []struct {
			name string
			got  engine.RangeRows
			rows []engine.Row
		}{{"A", kd.Here, rowsA}, {"B", kd.There, rowsB}} {
			var want engine.RangeRows
			for i := range side.rows {
				if inRanges(res.Ranges, p.Token(side.rows[i].Key)) {
					want.Rows++
					want.KeyBytes += int64(len(side.rows[i].Key))
				}
			}
			if side.got != want {
				t.Fatalf("CompareKeys: side %s counted %+v in the ranges, want %+v", side.name, side.got, want)
			}
		}

		if live {
			checkLive(t, ctx, newTree, p, rng, depthB, layA, rowsA, rowsB, refB)
		}

		for _, tr := range trees {
			if err := tr.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		}
		trees = nil
		if budget.Used() != 0 {
			t.Fatalf("%d bytes still charged after every tree was closed", budget.Used())
		}
	})
}

// checkLive builds A's rows into a tree of B's depth, turns it into B's rows
// with Update (replacing where a key loses one row and gains another,
// purging and inserting otherwise), hashing after some of the edits and
// snapshotting once, and checks the result and the snapshot against brute
// force.
func checkLive(t *testing.T, ctx context.Context, newTree func(int, layout.Layout) *engine.Tree,
	p token.Partitioner, rng token.Range, depth int, l layout.Layout, rowsA, rowsB []engine.Row, want [][][32]byte) {
	tr := newTree(depth, l)
	for i := range rowsA {
		if err := tr.Update(nil, &rowsA[i]); err != nil {
			t.Fatalf("Update(nil, row): %v", err)
		}
	}
	if err := tr.Hash(ctx); err != nil {
		t.Fatal(err)
	}
	// The multiset difference, row by row.
	count := map[[32]byte]int{}
	byDigest := map[[32]byte]*engine.Row{}
	for i := range rowsA {
		d := rowDigest(&rowsA[i])
		count[d]++
		byDigest[d] = &rowsA[i]
	}
	for i := range rowsB {
		d := rowDigest(&rowsB[i])
		count[d]--
		byDigest[d] = &rowsB[i]
	}
	var gone, added []*engine.Row // per key: rows to remove, rows to add
	for d, n := range count {
		for ; n > 0; n-- {
			gone = append(gone, byDigest[d])
		}
		for ; n < 0; n++ {
			added = append(added, byDigest[d])
		}
	}
	current := slices.Clone(rowsA)
	remove := func(r *engine.Row) {
		d := rowDigest(r)
		for i := range current {
			if rowDigest(&current[i]) == d {
				current = slices.Delete(current, i, i+1)
				return
			}
		}
		t.Fatalf("model: no row to remove")
	}
	var snap *engine.View
	var snapWant [][][32]byte
	step := 0
	apply := func(old, new *engine.Row) {
		if err := tr.Update(old, new); err != nil {
			t.Fatalf("Update(%v, %v): %v", old, new, err)
		}
		if old != nil {
			remove(old)
		}
		if new != nil {
			current = append(current, *new)
		}
		step++
		if step%3 == 0 {
			if err := tr.Hash(ctx); err != nil {
				t.Fatal(err)
			}
			checkTree(t, "live, mid-way", tr, refTree(p, rng, depth, current))
		}
		if step == 2 && snap == nil {
			var err error
			if snap, err = tr.Snapshot(ctx); err != nil {
				t.Fatalf("Snapshot: %v", err)
			}
			snapWant = refTree(p, rng, depth, current)
		}
	}
	for _, old := range gone {
		j := slices.IndexFunc(added, func(r *engine.Row) bool { return bytes.Equal(r.Key, old.Key) })
		if j >= 0 {
			apply(old, added[j])
			added = slices.Delete(added, j, j+1)
		} else {
			apply(old, nil)
		}
	}
	for _, r := range added {
		apply(nil, r)
	}
	if err := tr.Hash(ctx); err != nil {
		t.Fatal(err)
	}
	checkTree(t, "live", tr, want)
	if tr.Rows() != int64(len(rowsB)) {
		t.Fatalf("live tree: Rows() = %d, want %d", tr.Rows(), len(rowsB))
	}
	if snap != nil {
		checkTree(t, "snapshot", snap, snapWant)
		if err := snap.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func inRanges(rs []token.Range, tok token.Token) bool {
	for _, r := range rs {
		if r.Contains(tok) {
			return true
		}
	}
	return false
}

func sameKeys(a, b []engine.Key) bool {
	return slices.EqualFunc(a, b, func(x, y engine.Key) bool { return x.Token == y.Token && bytes.Equal(x.Key, y.Key) })
}

func keyList(ks []engine.Key) string {
	var b bytes.Buffer
	for _, k := range ks {
		fmt.Fprintf(&b, "%q ", k.Key)
	}
	return "[" + string(bytes.TrimSpace(b.Bytes())) + "]"
}
