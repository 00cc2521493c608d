package layout

import (
	"math/bits"
	"math/rand/v2"
	"testing"
)

const pageBytes = 4096

// band is one horizontal cut of the tree: levels [first, first+height).
type band struct{ first, height int }

// refBands lists the bands top first, cut from the leaves up as the layout's
// definition reads, so only the top one can be short.
func refBands(depth int) []band {
	var bs []band
	for top := depth + 1; top > 0; top -= bandLevels {
		first := max(top-bandLevels, 0)
		bs = append([]band{{first, top - first}}, bs...)
	}
	return bs
}

// refBand is the number of the band holding level, and that band.
func refBand(depth, level int) (int, band) {
	for k, b := range refBands(depth) {
		if level < b.first+b.height {
			return k, b
		}
	}
	panic("level below the leaves")
}

// refFirstBlock is the number of the first block of band k, counted by
// adding up the blocks of the bands above it: one per node of a band's
// first level.
func refFirstBlock(depth, k int) int {
	n := 0
	for _, b := range refBands(depth)[:k] {
		n += 1 << b.first
	}
	return n
}

// refBlocks is the total number of blocks, without the geometric-series
// shortcut Slots uses.
func refBlocks(depth int) int {
	return refFirstBlock(depth, len(refBands(depth)))
}

// refSlot is the definition of the layout written as loops, so the closed
// form in Slot is checked against the definition and not against itself.
func refSlot(depth, level, index int) int {
	k, b := refBand(depth, level)
	j := level - b.first
	block := refFirstBlock(depth, k) + index>>j
	return block*blockSlots + 1<<j - 1 + index%(1<<j)
}

// refInverse names the node stored in slot, or ok=false if the slot is
// padding or beyond the tree; it walks the bands rather than inverting the
// formula, so it shares no arithmetic with Slot.
func refInverse(depth, slot int) (level, index int, ok bool) {
	block, off := slot/blockSlots, slot%blockSlots
	j := bits.Len(uint(off+1)) - 1 // in-block level
	i := off + 1 - 1<<j
	for k, b := range refBands(depth) {
		start := refFirstBlock(depth, k)
		if block >= start+1<<b.first {
			continue
		}
		if j >= b.height {
			return 0, 0, false
		}
		return b.first + j, (block-start)<<j + i, true
	}
	return 0, 0, false
}

// blockNodes is the number of nodes held by block number n.
func blockNodes(depth, n int) int {
	if n == 0 {
		return 1<<refBands(depth)[0].height - 1
	}
	return blockSlots - 1
}

func TestBlockedRefInverse(t *testing.T) {
	// The brute-force inverse is itself checked against refSlot, so a bug in
	// it cannot hide a bug in Slot.
	for depth := 0; depth <= 12; depth++ {
		for level := 0; level <= depth; level++ {
			for i := 0; i < 1<<level; i++ {
				s := refSlot(depth, level, i)
				l, x, ok := refInverse(depth, s)
				if !ok || l != level || x != i {
					t.Fatalf("depth %d: refInverse(refSlot(%d,%d)=%d) = (%d,%d,%v)", depth, level, i, s, l, x, ok)
				}
			}
		}
	}
}

// TestBlockedMatchesDefinition pins every slot to the loop-based
// definition: the layout is recorded in tree files by ID, so the placement
// must never change, not merely stay a bijection.
func TestBlockedMatchesDefinition(t *testing.T) {
	l := Blocked{}
	for depth := 0; depth <= 16; depth++ {
		for level := 0; level <= depth; level++ {
			for i := 0; i < 1<<level; i++ {
				if got, want := l.Slot(depth, level, i), refSlot(depth, level, i); got != want {
					t.Fatalf("depth %d: Slot(%d,%d) = %d, want %d", depth, level, i, got, want)
				}
			}
		}
	}
}

// TestBlockedDeep samples trees too large to enumerate, up to MaxDepth,
// where the shift tricks of Slot run out of room first.
func TestBlockedDeep(t *testing.T) {
	l := Blocked{}
	rng := rand.New(rand.NewPCG(5, 6))
	for depth := 17; depth <= MaxDepth; depth++ {
		for level := 0; level <= depth; level++ {
			for _, i := range []int{0, 1<<level - 1, rng.IntN(1 << level), rng.IntN(1 << level)} {
				if got, want := l.Slot(depth, level, i), refSlot(depth, level, i); got != want {
					t.Fatalf("depth %d: Slot(%d,%d) = %d, want %d", depth, level, i, got, want)
				}
			}
		}
		last := l.Slot(depth, depth, 1<<depth-1)
		if last != l.Slots(depth)-2 {
			t.Fatalf("depth %d: last leaf at %d, want the last block's last node %d", depth, last, l.Slots(depth)-2)
		}
	}
}

// TestBlockedGolden spells out a few placements by hand, so the definition
// used by the other tests is itself pinned.
func TestBlockedGolden(t *testing.T) {
	tests := []struct {
		depth, level, index, slot int
	}{
		{0, 0, 0, 0},
		{6, 6, 63, 126}, // one full block, last leaf
		{7, 0, 0, 0},    // top band is the root alone
		{7, 1, 0, 128},  // band 1: blocks 1..2, roots at level 1
		{7, 1, 1, 256},
		{7, 2, 1, 128 + 2}, // right child of block 1's root
		{7, 7, 127, 256 + 126},
		{13, 6, 63, 126}, // top band full: levels 0..6
		{13, 7, 0, 128},  // band 1: blocks 1..128, roots at level 7
		{13, 7, 127, 128 * 128},
		{13, 13, 1<<13 - 1, 128*128 + 126},
		{15, 1, 1, 2},       // top band is levels 0..1
		{15, 2, 3, 4 * 128}, // band 1: blocks 1..4, roots at level 2
		{15, 9, 0, 5 * 128}, // band 2: blocks 5..516, roots at level 9
		{15, 10, 3, 6*128 + 2},
		{15, 15, 1<<15 - 1, 516*128 + 126},
	}
	for _, tc := range tests {
		if got := (Blocked{}).Slot(tc.depth, tc.level, tc.index); got != tc.slot {
			t.Errorf("depth %d: Slot(%d,%d) = %d, want %d", tc.depth, tc.level, tc.index, got, tc.slot)
		}
	}
}

// TestBlockedBijection checks that every node has its own slot in
// [0, Slots) and that every slot that is not a block's padding holds a node,
// so Slots is neither too small (overflow) nor wasteful beyond the padding.
func TestBlockedBijection(t *testing.T) {
	var l Layout = Blocked{}
	for depth := 0; depth <= 16; depth++ {
		n := l.Slots(depth)
		if n%blockSlots != 0 {
			t.Fatalf("depth %d: Slots %d not a whole number of blocks", depth, n)
		}
		seen := make([]bool, n)
		for level := 0; level <= depth; level++ {
			for i := 0; i < 1<<level; i++ {
				s := l.Slot(depth, level, i)
				if s < 0 || s >= n {
					t.Fatalf("depth %d: node (%d,%d) at slot %d outside [0,%d)", depth, level, i, s, n)
				}
				if seen[s] {
					t.Fatalf("depth %d: slot %d used twice (node (%d,%d))", depth, s, level, i)
				}
				seen[s] = true
			}
		}
		for s, ok := range seen {
			padding := s%blockSlots >= blockNodes(depth, s/blockSlots)
			if ok == padding {
				t.Fatalf("depth %d: slot %d used=%v, padding=%v", depth, s, ok, padding)
			}
		}
	}
}

func TestBlockedSlots(t *testing.T) {
	l := Blocked{}
	for depth := 0; depth <= 30; depth++ {
		if got, want := l.Slots(depth), refBlocks(depth)*blockSlots; got != want {
			t.Errorf("depth %d: Slots %d, want %d", depth, got, want)
		}
	}
	// MaxDepth must not overflow: Slots stays above the node count there.
	if got := l.Slots(MaxDepth); got < Nodes(MaxDepth) || got > Nodes(MaxDepth)/100*102 {
		t.Errorf("depth %d: Slots %d for %d nodes", MaxDepth, got, Nodes(MaxDepth))
	}
}

// TestBlockedPages checks the point of the layout: a root-to-leaf path
// touches one page per band, ⌈(depth+1)/7⌉ in all.
func TestBlockedPages(t *testing.T) {
	l := Blocked{}
	rng := rand.New(rand.NewPCG(1, 2))
	for depth := 0; depth <= 20; depth++ {
		want := (depth + 1 + bandLevels - 1) / bandLevels
		leaves := []int{0, 1<<depth - 1}
		for range 200 {
			leaves = append(leaves, rng.IntN(1<<depth))
		}
		for _, leaf := range leaves {
			pages := map[int]bool{}
			for level := 0; level <= depth; level++ {
				s := l.Slot(depth, level, leaf>>(depth-level))
				pages[s*32/pageBytes] = true
			}
			if len(pages) != want {
				t.Fatalf("depth %d: path to leaf %d touches %d pages, want %d", depth, leaf, len(pages), want)
			}
		}
	}
}

// TestBlockedLocality checks the shape behind the page count: a block's
// nodes share one page that no other block uses, and a node's children are
// on its page unless the node is at the bottom of its band.
func TestBlockedLocality(t *testing.T) {
	l := Blocked{}
	page := func(s int) int { return s * 32 / pageBytes }
	for depth := 0; depth <= 16; depth++ {
		owner := map[int][2]int{} // page -> (first level, root index) of its block
		for level := 0; level <= depth; level++ {
			_, b := refBand(depth, level)
			first := b.first
			for i := 0; i < 1<<level; i++ {
				s := l.Slot(depth, level, i)
				root := [2]int{first, i >> (level - first)}
				if o, ok := owner[page(s)]; ok && o != root {
					t.Fatalf("depth %d: page %d holds blocks %v and %v", depth, page(s), o, root)
				}
				owner[page(s)] = root
				if level == depth {
					continue
				}
				bottom := level == b.first+b.height-1
				for c := 2 * i; c <= 2*i+1; c++ {
					same := page(l.Slot(depth, level+1, c)) == page(s)
					if same == bottom {
						t.Fatalf("depth %d: node (%d,%d) bottom=%v, child %d on same page=%v", depth, level, i, bottom, c, same)
					}
				}
			}
		}
		if len(owner) != l.Slots(depth)/blockSlots {
			t.Fatalf("depth %d: %d pages used, want %d", depth, len(owner), l.Slots(depth)/blockSlots)
		}
	}
}

// FuzzBlockedSlot checks, for trees too large to enumerate, that a slot is
// in range, is not padding, and names the node it came from.
func FuzzBlockedSlot(f *testing.F) {
	f.Add(uint8(20), uint8(13), uint64(12345))
	f.Add(uint8(24), uint8(24), uint64(1<<24-1))
	f.Add(uint8(7), uint8(1), uint64(1))
	f.Add(uint8(0), uint8(0), uint64(0))
	f.Fuzz(func(t *testing.T, d, lv uint8, idx uint64) {
		depth := int(d % 25)
		level := int(lv) % (depth + 1)
		index := int(idx % (1 << level))
		l := Blocked{}
		s := l.Slot(depth, level, index)
		if s < 0 || s >= l.Slots(depth) {
			t.Fatalf("depth %d: Slot(%d,%d) = %d outside [0,%d)", depth, level, index, s, l.Slots(depth))
		}
		gl, gi, ok := refInverse(depth, s)
		if !ok || gl != level || gi != index {
			t.Fatalf("depth %d: Slot(%d,%d) = %d, which holds (%d,%d,%v)", depth, level, index, s, gl, gi, ok)
		}
	})
}

var sink int

// BenchmarkSlot measures one Slot call through the interface, as the engine
// makes it, on nodes spread over all levels of a depth-20 tree.
func BenchmarkSlot(b *testing.B) {
	const depth = 20
	rng := rand.New(rand.NewPCG(3, 4))
	nodes := make([][2]int, 1024)
	for k := range nodes {
		level := rng.IntN(depth + 1)
		nodes[k] = [2]int{level, rng.IntN(1 << level)}
	}
	for _, l := range []Layout{BFS{}, Blocked{}} {
		b.Run(l.Name(), func(b *testing.B) {
			s, k := 0, 0
			for b.Loop() {
				n := nodes[k&1023]
				s += l.Slot(depth, n[0], n[1])
				k++
			}
			sink = s
		})
	}
}
