package fuzz

import (
	"testing"

	"github.com/antientropy/grove/layout"
)

// refSlot is the page-blocked layout as layout.Blocked's documentation
// describes it, computed the slow and obvious way: bands of 7 levels cut
// from the leaves up (only the top band, of depth%7+1 levels, can be short),
// one 128-slot block per node of a band's first level, blocks band by band
// from the top and within a band in index order, nodes breadth-first inside
// their block.
func refBlockedSlot(depth, level, index int) int {
	block := 0
	first := 0         // first level of the current band
	top := depth%7 + 1 // levels in the top band
	for next := top; next <= level; next += 7 {
		block += 1 << first // every block of the band above
		first = next
	}
	j := level - first
	root := index >> j
	return (block+root)*128 + (1<<j - 1) + (index - root<<j)
}

func refBlockedSlots(depth int) int {
	blocks := 0
	for first := 0; first <= depth; {
		blocks += 1 << first
		if first == 0 {
			first = depth%7 + 1
		} else {
			first += 7
		}
	}
	return blocks * 128
}

// FuzzLayoutSlot checks both layouts: every slot lies in [0, Slots), BFS is
// 2^level − 1 + index, Blocked agrees with a loop that follows its
// documentation, Slots is at least the node count, and for depths up to 10
// Slot maps the nodes one to one into [0, Slots) (checked the first time a
// process meets the depth).
func FuzzLayoutSlot(f *testing.F) {
	// The bijection check depends on the layout and depth alone: once a
	// process has made it for one, running it again for every input that
	// has that depth (thousands of Slot calls) would only repeat it.
	var bijective [2][11]bool
	f.Fuzz(func(t *testing.T, depth, level uint8, index uint64) {
		d := int(depth) % (layout.MaxDepth + 1)
		lv := int(level) % (d + 1)
		idx := int(index % (uint64(1) << lv))

		checkIDs(t)
		for li, l := range []layout.Layout{layout.BFS{}, layout.Blocked{}} {
			slots := l.Slots(d)
			if slots < layout.Nodes(d) {
				t.Fatalf("%s: Slots(%d) = %d < %d nodes", l.Name(), d, slots, layout.Nodes(d))
			}
			got := l.Slot(d, lv, idx)
			if got < 0 || got >= slots {
				t.Fatalf("%s: Slot(%d, %d, %d) = %d, outside [0, %d)", l.Name(), d, lv, idx, got, slots)
			}
			var want int
			switch l.(type) {
			case layout.BFS:
				want = 1<<lv - 1 + idx
				if slots != layout.Nodes(d) {
					t.Fatalf("bfs: Slots(%d) = %d, want %d", d, slots, layout.Nodes(d))
				}
			case layout.Blocked:
				want = refBlockedSlot(d, lv, idx)
				if ws := refBlockedSlots(d); slots != ws {
					t.Fatalf("blocked: Slots(%d) = %d, reference %d", d, slots, ws)
				}
			}
			if got != want {
				t.Fatalf("%s: Slot(%d, %d, %d) = %d, reference %d", l.Name(), d, lv, idx, got, want)
			}
			// Slot uses the first and last node of the level too: the
			// extremes are where shifts and masks go wrong.
			for _, i := range []int{0, 1<<lv - 1} {
				if s := l.Slot(d, lv, i); s < 0 || s >= slots {
					t.Fatalf("%s: Slot(%d, %d, %d) = %d, outside [0, %d)", l.Name(), d, lv, i, s, slots)
				}
			}
			if d <= 10 && !bijective[li][d] {
				checkBijection(t, l, d)
				bijective[li][d] = true
			}
		}
	})
}

// checkBijection checks that Slot maps the nodes of a depth-d tree to
// distinct slots in [0, Slots(d)).
func checkBijection(t *testing.T, l layout.Layout, d int) {
	slots := l.Slots(d)
	seen := make([]int32, slots) // 1 + index into nodes, 0 for free
	n := int32(0)
	for lv := 0; lv <= d; lv++ {
		for i := 0; i < 1<<lv; i++ {
			n++
			s := l.Slot(d, lv, i)
			if s < 0 || s >= slots {
				t.Fatalf("%s: Slot(%d, %d, %d) = %d, outside [0, %d)", l.Name(), d, lv, i, s, slots)
			}
			if seen[s] != 0 {
				t.Fatalf("%s depth %d: nodes %d and (%d, %d) share slot %d", l.Name(), d, seen[s]-1, lv, i, s)
			}
			seen[s] = n
		}
	}
	if int(n) != layout.Nodes(d) {
		t.Fatalf("depth %d: counted %d nodes, Nodes says %d", d, n, layout.Nodes(d))
	}
}

func checkIDs(t *testing.T) {
	for _, l := range []layout.Layout{layout.BFS{}, layout.Blocked{}} {
		if b, ok := layout.ByID(l.ID()); !ok || b.Name() != l.Name() {
			t.Fatalf("ByID(%d) = %v, %v; want %s", l.ID(), b, ok, l.Name())
		}
		if b, ok := layout.ByName(l.Name()); !ok || b.ID() != l.ID() {
			t.Fatalf("ByName(%q) = %v, %v", l.Name(), b, ok)
		}
	}
}
