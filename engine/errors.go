package engine

import "errors"

// Sentinel errors. Every error the engine returns wraps one of these (or one
// of arena's or token's), with the details of what was wrong; callers test
// them with errors.Is.
var (
	// ErrClosed is returned by every method of a tree or view after Close.
	ErrClosed = errors.New("engine: tree closed")
	// ErrIncompatible means two trees cannot be compared: they use different
	// partitioners, cover different ranges, or were built under different
	// format versions.
	ErrIncompatible = errors.New("engine: trees are not comparable")
	// ErrNotHashed means rows were added since the inner levels were last
	// computed, so the root and inner nodes would be stale; call Hash first.
	ErrNotHashed = errors.New("engine: tree changed since last Hash")
	// ErrDepth means a depth outside what the engine supports.
	ErrDepth = errors.New("engine: depth out of range")
	// ErrOutOfRange means a row's token lies outside the tree's range.
	ErrOutOfRange = errors.New("engine: token outside the tree's range")
	// ErrNodeIndex means a node (level, index) that the tree does not have.
	ErrNodeIndex = errors.New("engine: no such node")
	// ErrInUse means a tree file is open writable elsewhere — in another
	// process, or another Tree of this one — and may not be opened writable
	// again: two writers would corrupt it.
	ErrInUse = errors.New("engine: tree file is in use")
	// ErrNoFile means a file operation (Checkpoint) on a tree that lives in
	// memory only.
	ErrNoFile = errors.New("engine: tree has no file")
	// ErrBadUpdate means an update that cannot be applied as given, such as
	// an old and a new row with different keys.
	ErrBadUpdate = errors.New("engine: bad update")
	// ErrCorrupt means a tree file that does not check out: it is never used.
	ErrCorrupt = errors.New("engine: corrupt tree file")
)
