package engine

import (
	"context"
	"fmt"
	"math"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/layout"
)

// shape is what a live Tree and a frozen View both are: 2^depth leaves and
// their inner nodes, placed by a layout, over a range of a partitioner's
// ring, in memory mapped outside the Go heap and charged to a budget. Its
// fields never change after construction except region and nodes, which
// Close clears under the owner's lock; the owner's lock guards every read
// of nodes.
type shape struct {
	budget *arena.Budget
	region *arena.Region // nil once closed
	nodes  []byte        // the nodes within region; never handed out

	part    token.Partitioner
	rng     token.Range
	depth   int
	layout  layout.Layout
	version uint16 // the FormatVersion the digests follow
	obs     Observer
}

// mapShape maps the memory of an empty tree of the given depth, charged to
// budget before anything is mapped.
func mapShape(budget *arena.Budget, part token.Partitioner, rng token.Range, depth int, l layout.Layout, obs Observer, hugePages bool) (shape, error) {
	size := LayoutBytes(l, depth)
	if size > math.MaxInt {
		return shape{}, fmt.Errorf("%w: depth %d needs %d bytes, more than this platform can map", ErrDepth, depth, size)
	}
	region, err := arena.Map(budget, int(size))
	if err != nil {
		return shape{}, fmt.Errorf("engine: tree of depth %d: %w", depth, err)
	}
	if hugePages {
		// Advice only: on failure the tree is merely slower.
		_ = region.AdviseHugePages()
	}
	s := shape{budget: budget, region: region, nodes: region.Bytes(), part: part, rng: rng, depth: depth, layout: l, version: FormatVersion, obs: orNop(obs)}
	s.obs.TreeOpened()
	return s, nil
}

// like maps an empty tree of the given depth with s's partitioner, range,
// layout, format version, budget and observer: the shape of s's snapshots
// and folds.
func (s *shape) like(depth int) (shape, error) {
	n, err := mapShape(s.budget, s.part, s.rng, depth, s.layout, s.obs, true)
	n.version = s.version
	return n, err
}

// Depth is the number of levels below the root.
func (s *shape) Depth() int { return s.depth }

// Leaves is the number of leaves, 2^Depth.
func (s *shape) Leaves() int { return 1 << s.depth }

// Range is the (lo, hi] range the tree covers.
func (s *shape) Range() token.Range { return s.rng }

// Partitioner is the partitioner that maps keys to tokens for this tree.
func (s *shape) Partitioner() token.Partitioner { return s.part }

// Layout is how the nodes are placed in memory.
func (s *shape) Layout() layout.Layout { return s.layout }

// Bytes is the size of the tree's nodes outside the Go heap.
func (s *shape) Bytes() int64 { return LayoutBytes(s.layout, s.depth) }

// node returns the 32 bytes of node (level, index).
func (s *shape) node(level, index int) []byte {
	o := s.layout.Slot(s.depth, level, index) * NodeSize
	return s.nodes[o : o+NodeSize : o+NodeSize]
}

// checkNode reports whether (level, index) is a node of s.
func (s *shape) checkNode(level, index int) error {
	if level < 0 || level > s.depth || index < 0 || index >= 1<<level {
		return fmt.Errorf("%w: (%d, %d) in a tree of depth %d", ErrNodeIndex, level, index, s.depth)
	}
	return nil
}

// copyLeaves copies every leaf, in index order, into dst.
func (s *shape) copyLeaves(dst []byte) {
	n := (1 << s.depth) * NodeSize
	if s.layout.LevelContiguous() {
		o := s.layout.Slot(s.depth, s.depth, 0) * NodeSize
		copy(dst, s.nodes[o:o+n])
		return
	}
	for i := range 1 << s.depth {
		copy(dst[i*NodeSize:], s.node(s.depth, i))
	}
}

// sumLeaves adds the leaves [lo, hi) into acc lane-wise.
func (s *shape) sumLeaves(acc *[4]uint64, lo, hi int) {
	if s.layout.LevelContiguous() {
		o := s.layout.Slot(s.depth, s.depth, lo) * NodeSize
		sumRun(acc, s.nodes[o:o+(hi-lo)*NodeSize])
		return
	}
	for i := lo; i < hi; i++ {
		sumLanes(acc, s.node(s.depth, i))
	}
}

// unmap releases the nodes' memory to the budget.
func (s *shape) unmap() error {
	s.obs.TreeClosed()
	s.nodes = nil
	err := s.region.Close()
	s.region = nil
	return err
}

// fold returns the hashed View of the given shallower depth that a build
// from the same rows would give, byte for byte: the leaf boundaries nest
// exactly, so each of its leaves is the sum of the 2^(s.depth−depth) leaves
// below it. The caller holds the owner's read lock.
func (s *shape) fold(ctx context.Context, depth int, rows int64) (*View, error) {
	if depth < 0 || depth > s.depth {
		return nil, fmt.Errorf("%w: cannot fold depth %d to %d", ErrDepth, s.depth, depth)
	}
	f, err := s.like(depth)
	if err != nil {
		return nil, fmt.Errorf("engine: folding depth %d to %d: %w", s.depth, depth, err)
	}
	v := &View{shape: f, rows: rows, hashed: true}
	shift := s.depth - depth
	for j := range 1 << depth {
		if j%4096 == 0 {
			if err := ctx.Err(); err != nil {
				v.Close()
				return nil, err
			}
		}
		var acc [4]uint64
		s.sumLeaves(&acc, j<<shift, (j+1)<<shift)
		putLanes(v.node(depth, j), &acc)
	}
	if err := hashLevels(ctx, &v.shape, 0); err != nil {
		v.Close()
		return nil, err
	}
	v.obs.Built()
	return v, nil
}

// compatible reports, as an error wrapping ErrIncompatible, why a and b
// cannot be compared.
func compatible(a, b *shape) error {
	switch {
	case a.version != b.version:
		return fmt.Errorf("%w: format versions %d and %d", ErrIncompatible, a.version, b.version)
	case a.part.ID() != b.part.ID():
		return fmt.Errorf("%w: partitioners %s and %s", ErrIncompatible, a.part.Name(), b.part.Name())
	case a.rng != b.rng:
		return fmt.Errorf("%w: ranges %s and %s", ErrIncompatible, a.rng, b.rng)
	}
	return nil
}
