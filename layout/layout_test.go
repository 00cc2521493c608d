package layout

import "testing"

// TestBFSBijection checks that every node of trees of depth 0..16 gets its
// own slot inside [0, Slots) and that no slot is left over, which is what
// lets the engine size its mapping from Slots alone.
func TestBFSBijection(t *testing.T) {
	var l Layout = BFS{}
	for depth := 0; depth <= 16; depth++ {
		n := l.Slots(depth)
		if n != Nodes(depth) {
			t.Fatalf("depth %d: Slots %d, want %d", depth, n, Nodes(depth))
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
			if !ok {
				t.Fatalf("depth %d: slot %d unused", depth, s)
			}
		}
	}
}

// TestBFSContiguous checks the property the batched hashing relies on: the
// children of node (l, i) are the adjacent slots of (l+1, 2i) and (l+1, 2i+1),
// and each level follows on from the one above.
func TestBFSContiguous(t *testing.T) {
	l := BFS{}
	if !l.LevelContiguous() {
		t.Fatal("BFS must report contiguous levels")
	}
	const depth = 12
	for level := 0; level < depth; level++ {
		first := l.Slot(depth, level, 0)
		for i := 0; i < 1<<level; i++ {
			if got := l.Slot(depth, level, i); got != first+i {
				t.Fatalf("(%d,%d) at %d, want %d", level, i, got, first+i)
			}
			left := l.Slot(depth, level+1, 2*i)
			right := l.Slot(depth, level+1, 2*i+1)
			if right != left+1 {
				t.Fatalf("children of (%d,%d) at %d and %d, not adjacent", level, i, left, right)
			}
		}
	}
}

func TestLookup(t *testing.T) {
	tests := []struct {
		name string
		id   uint8
		ok   bool
	}{
		{"bfs", 1, true},
		{"blocked", 2, true},
		{"Blocked", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		l, ok := ByName(tc.name)
		if ok != tc.ok {
			t.Fatalf("ByName(%q) ok=%v, want %v", tc.name, ok, tc.ok)
		}
		if !ok {
			continue
		}
		if l.ID() != tc.id {
			t.Fatalf("%s: ID %d, want %d", tc.name, l.ID(), tc.id)
		}
		back, ok := ByID(l.ID())
		if !ok || back.Name() != tc.name {
			t.Fatalf("ByID(%d) = %v, %v", l.ID(), back, ok)
		}
	}
	for _, id := range []uint8{0, 3, 255} {
		if _, ok := ByID(id); ok {
			t.Fatalf("ByID(%d) must not name a layout", id)
		}
	}
}
