// Package layout maps a node of a perfect binary tree, named by its level and
// its index within that level, to a slot in a flat array of fixed-size nodes.
//
// The engine never computes a slot itself, so a layout that groups nodes for
// locality (the page-blocked layout, docs/ARCHITECTURE.md) can replace the
// breadth-first one without touching the engine. Every function is pure: no
// I/O, no allocation, no state.
package layout

// MaxDepth is the deepest tree any layout here supports. It bounds every
// size computation so none can overflow, whatever a caller asks for; the
// engine's own limit is lower.
const MaxDepth = 40

// Layout places the nodes of a perfect binary tree of some depth in a flat
// array. Level 0 is the root; level depth holds the 2^depth leaves.
type Layout interface {
	// Name is the stable identifier recorded in tree files ("bfs").
	Name() string
	// ID is the stable small number recorded in tree files.
	ID() uint8
	// Slots is how many node slots a tree of the given depth occupies.
	Slots(depth int) int
	// Slot is where node (level, index) lives, for a tree of the given depth.
	// Callers guarantee 0 <= level <= depth and 0 <= index < 2^level.
	Slot(depth, level, index int) int
	// LevelContiguous reports whether the nodes of every level sit in
	// consecutive slots in index order, so a whole level can be hashed from
	// the level below in one batched call without gathering.
	LevelContiguous() bool
}

// Nodes is the number of nodes in a perfect binary tree of the given depth:
// 2^(depth+1) − 1.
func Nodes(depth int) int { return 1<<(depth+1) - 1 }

// BFS is the breadth-first layout: node (level, index) lives in slot
// 2^level − 1 + index. A level is contiguous, and the children of the nodes
// [i, j) of one level are the contiguous nodes [2i, 2j) of the next, which is
// exactly the shape the batched pair-hashing kernels want.
type BFS struct{}

// Name implements Layout.
func (BFS) Name() string { return "bfs" }

// ID implements Layout.
func (BFS) ID() uint8 { return 1 }

// Slots implements Layout.
func (BFS) Slots(depth int) int { return Nodes(depth) }

// Slot implements Layout.
func (BFS) Slot(_, level, index int) int { return 1<<level - 1 + index }

// LevelContiguous implements Layout.
func (BFS) LevelContiguous() bool { return true }

// ByID returns the layout recorded under id, and false if there is none.
func ByID(id uint8) (Layout, bool) {
	switch id {
	case BFS{}.ID():
		return BFS{}, true
	case Blocked{}.ID():
		return Blocked{}, true
	}
	return nil, false
}

// ByName returns the layout with the given name, and false if there is none.
func ByName(name string) (Layout, bool) {
	switch name {
	case BFS{}.Name():
		return BFS{}, true
	case Blocked{}.Name():
		return Blocked{}, true
	}
	return nil, false
}
