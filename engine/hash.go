package engine

import (
	"context"
	"fmt"
	"math/bits"
	"runtime"
	"sync"

	"github.com/antientropy/grove/simd"
)

// hashChunk is how many parent nodes one batched kernel call computes: big
// enough to amortise the call, small enough that a cancelled context is
// noticed within microseconds.
const hashChunk = 4096

// hashLevels recomputes every inner node of s from its leaves, on up to
// workers goroutines (GOMAXPROCS when workers <= 0). The tree is cut at a
// split level with at least 4 subtrees per worker, so workers stay busy even
// when one is descheduled; each worker hashes whole subtrees from the leaves
// up to the split level, then one goroutine finishes the top. The caller
// keeps everyone else off s's nodes.
func hashLevels(ctx context.Context, s *shape, workers int) error {
	if s.depth == 0 {
		return nil
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	split := 0
	for split < s.depth && 1<<split < 4*workers {
		split++
	}
	if workers <= 1 || s.depth-split < 4 {
		// Too small to be worth a goroutine: the tree fits in cache.
		return hashSubtree(ctx, s, 0, 0, s.depth-1, newGather(s))
	}
	var (
		wg   sync.WaitGroup
		next = make(chan int, 1<<split)
		errs = make([]error, workers)
	)
	for i := range 1 << split {
		next <- i
	}
	close(next)
	for w := range workers {
		wg.Go(func() {
			g := newGather(s)
			for root := range next {
				if err := hashSubtree(ctx, s, split, root, s.depth-1, g); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return hashSubtree(ctx, s, 0, 0, split-1, newGather(s))
}

// hashSubtree computes the inner nodes of the subtree rooted at (level,
// index) on levels deepest up to level, bottom-up.
func hashSubtree(ctx context.Context, s *shape, level, index, deepest int, g *gather) error {
	for l := deepest; l >= level; l-- {
		width := 1 << (l - level)
		first := index * width
		for from := first; from < first+width; from += hashChunk {
			if err := ctx.Err(); err != nil {
				return err
			}
			to := min(from+hashChunk, first+width)
			if err := hashRange(s, l, from, to, g); err != nil {
				return err
			}
		}
	}
	return nil
}

// hashRange sets the nodes [from, to) of level l from their children: in
// place when the layout keeps each level contiguous (a parent run and its
// children's run are then two slices), through g otherwise.
func hashRange(s *shape, l, from, to int, g *gather) error {
	if g == nil {
		ps := s.layout.Slot(s.depth, l, from) * NodeSize
		cs := s.layout.Slot(s.depth, l+1, 2*from) * NodeSize
		n := to - from
		if err := simd.HashPairs(s.nodes[ps:ps+n*NodeSize], s.nodes[cs:cs+2*n*NodeSize]); err != nil {
			return fmt.Errorf("engine: hashing level %d: %w", l, err)
		}
		return nil
	}
	for start := from; start < to; start += gatherChunk {
		idx := g.run(start, min(gatherChunk, to-start))
		if err := g.hash(s, l, idx); err != nil {
			return err
		}
		g.store(s, l, idx)
	}
	return nil
}

// rehashMarked recomputes the inner nodes above the leaves marked in marks,
// level by level with the batched kernel, and clears the marks. When most
// paths are marked it recomputes every inner node instead, which is faster
// than gathering them. The caller keeps everyone else off s's nodes.
func rehashMarked(ctx context.Context, s *shape, marks []uint64, workers int) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var cur []int
	for w, word := range marks {
		for word != 0 {
			cur = append(cur, w*64+bits.TrailingZeros64(word))
			word &= word - 1
		}
	}
	clear(marks)
	if len(cur) > 1<<s.depth/8 {
		return hashLevels(ctx, s, workers)
	}
	g := newScratch() // shared by the levels hashed on this goroutine
	for l := s.depth - 1; l >= 0 && len(cur) > 0; l-- {
		// cur is sorted, so the parents come out sorted with duplicates
		// adjacent.
		parents := cur[:0]
		for _, c := range cur {
			if p := c >> 1; len(parents) == 0 || parents[len(parents)-1] != p {
				parents = append(parents, p)
			}
		}
		cur = parents
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := hashNodes(s, l, cur, workers, g); err != nil {
			return err
		}
	}
	return nil
}

// hashNodes recomputes the listed nodes of level l, in parallel when there
// are enough of them to be worth it.
func hashNodes(s *shape, l int, idx []int, workers int, g *gather) error {
	const perWorker = 2048
	if workers <= 1 || len(idx) < 2*perWorker {
		return g.hashList(s, l, idx)
	}
	var (
		wg   sync.WaitGroup
		errs = make([]error, workers)
	)
	chunk := (len(idx) + workers - 1) / workers
	for w := range workers {
		part := idx[min(w*chunk, len(idx)):min((w+1)*chunk, len(idx))]
		wg.Go(func() {
			errs[w] = newScratch().hashList(s, l, part)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// gather is a goroutine's scratch space for hashing nodes whose children do
// not lie in one run: children are copied in, hashed in one batched call,
// and each parent handed on. A copy costs far less than the hash it feeds,
// and keeps the batched kernel usable for every layout and for scattered
// dirty paths.
type gather struct {
	src, dst []byte
	idx      [gatherChunk]int // a run of parents, for run
}

// gatherChunk is how many parents one gathered batch holds: 24 KiB of
// scratch, which stays in L1 beside the nodes being read.
const gatherChunk = 256

func newScratch() *gather {
	return &gather{src: make([]byte, 2*gatherChunk*NodeSize), dst: make([]byte, gatherChunk*NodeSize)}
}

// newGather returns scratch space for s's layout, or nil when the layout
// keeps levels contiguous and needs none.
func newGather(s *shape) *gather {
	if s.layout.LevelContiguous() {
		return nil
	}
	return newScratch()
}

// hash computes into g.dst the parents idx (at most gatherChunk of them)
// of level l from their children in s.
func (g *gather) hash(s *shape, l int, idx []int) error {
	for i, p := range idx {
		copy(g.src[2*i*NodeSize:], s.node(l+1, 2*p))
		copy(g.src[(2*i+1)*NodeSize:], s.node(l+1, 2*p+1))
	}
	if err := simd.HashPairs(g.dst[:len(idx)*NodeSize], g.src[:2*len(idx)*NodeSize]); err != nil {
		return fmt.Errorf("engine: hashing level %d: %w", l, err)
	}
	return nil
}

// store writes the parents hash computed to their slots in s.
func (g *gather) store(s *shape, l int, idx []int) {
	for i, p := range idx {
		copy(s.node(l, p), g.dst[i*NodeSize:(i+1)*NodeSize])
	}
}

// hashList recomputes the listed nodes of level l, a batch at a time.
func (g *gather) hashList(s *shape, l int, idx []int) error {
	for len(idx) > 0 {
		n := min(gatherChunk, len(idx))
		if err := g.hash(s, l, idx[:n]); err != nil {
			return err
		}
		g.store(s, l, idx[:n])
		idx = idx[n:]
	}
	return nil
}

// run fills g's index scratch with first, first+1, … (n of them).
func (g *gather) run(first, n int) []int {
	idx := g.idx[:n]
	for i := range idx {
		idx[i] = first + i
	}
	return idx
}

// checkInner verifies every inner node of s against the hash of its
// children, bottom-up, and names the first that differs; name says whose
// nodes they are.
func checkInner(ctx context.Context, s *shape, name string) error {
	g := newScratch()
	for l := s.depth - 1; l >= 0; l-- {
		for start := 0; start < 1<<l; start += gatherChunk {
			if start%hashChunk == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			idx := g.run(start, min(gatherChunk, 1<<l-start))
			if err := g.hash(s, l, idx); err != nil {
				return err
			}
			for i, p := range idx {
				if string(s.node(l, p)) != string(g.dst[i*NodeSize:(i+1)*NodeSize]) {
					return corrupt(name, "node (%d, %d) is not the hash of its children", l, p)
				}
			}
		}
	}
	return nil
}
