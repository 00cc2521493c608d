// Package forest keeps a storage node's many live trees — one per token
// range it replicates — under one memory budget. This file chooses each
// range's depth.
package forest

import (
	"container/heap"
	"fmt"
	"math"
	"os"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/layout"
)

// PlanOptions shape a depth plan. The zero value plans breadth-first trees
// of at most engine.DefaultMaxDepth on this system's pages.
type PlanOptions struct {
	// MaxDepth caps every range's depth. Zero means engine.DefaultMaxDepth.
	MaxDepth int
	// Layout is the trees' layout; nil means breadth-first.
	Layout layout.Layout
	// PageSize is the page size arena charges in; zero means this system's.
	PageSize int64
}

// Plan is the depth chosen for each range.
type Plan struct {
	// Depths has one depth per range, in the order the rows were given.
	Depths []int
	// Bytes is what the trees charge their budget at those depths
	// (engine.LiveBytes each).
	Bytes int64
	// RowsPerLeaf is Σ rows_i / 2^depth_i: summed over the ranges, the
	// rows one differing leaf drags into a repair. The plan makes it as
	// small as the budget allows.
	RowsPerLeaf float64
}

// PlanDepths chooses a depth for each range from its row count: it makes
// Σ rows_i / 2^depth_i as small as it can while Σ engine.LiveBytes(depth_i)
// stays within available bytes and no depth exceeds MaxDepth or ⌈log2
// rows_i⌉ (past one row per leaf, depth buys nothing). Each step
// deeper halves a range's rows per leaf and roughly doubles its bytes, so
// the plan deepens, one level at a time, whichever range gains the most
// rows per leaf for each byte the step costs, until no step fits; then it
// trades single levels between ranges while a trade helps, which recovers
// what whole pages make the greedy order miss.
//
// If even one leaf per range does not fit, it fails with an error wrapping
// arena.ErrBudgetExceeded that says how much the ranges need.
func PlanDepths(rows []int64, available int64, opts PlanOptions) (Plan, error) {
	if opts.MaxDepth == 0 {
		opts.MaxDepth = engine.DefaultMaxDepth
	}
	if opts.MaxDepth < 0 || opts.MaxDepth > engine.MaxDepth {
		return Plan{}, fmt.Errorf("%w: MaxDepth %d (want 0..%d)", engine.ErrDepth, opts.MaxDepth, engine.MaxDepth)
	}
	if opts.PageSize == 0 {
		opts.PageSize = int64(os.Getpagesize())
	}
	cost := func(d int) int64 { return engine.LiveBytes(opts.Layout, d, opts.PageSize) }
	p := Plan{Depths: make([]int, len(rows))}
	for i, n := range rows {
		if n < 0 {
			return Plan{}, fmt.Errorf("forest: range %d has %d rows", i, n)
		}
		p.Bytes += cost(0)
	}
	if p.Bytes > available {
		return Plan{}, fmt.Errorf("%w: %d ranges need %s for one leaf each, and %s for trees of depth %d; the budget has %s",
			arena.ErrBudgetExceeded, len(rows), arena.FormatBytes(p.Bytes),
			arena.FormatBytes(int64(len(rows))*cost(opts.MaxDepth)), opts.MaxDepth, arena.FormatBytes(available))
	}
	limits := depthLimits(rows, opts.MaxDepth)
	if pages := available / opts.PageSize; int64(len(rows))*int64(opts.MaxDepth+1)*(pages+1) <= exactWork {
		p.Depths = planExact(rows, pages, limits, func(d int) int64 { return cost(d) / opts.PageSize })
		p.Bytes = 0
		for i, n := range rows {
			p.Bytes += cost(p.Depths[i])
			p.RowsPerLeaf += float64(n) / float64(int64(1)<<p.Depths[i])
		}
		return p, nil
	}
	planGreedy(&p, rows, available, limits, cost)
	for i, n := range rows {
		p.RowsPerLeaf += float64(n) / float64(int64(1)<<p.Depths[i])
	}
	return p, nil
}

// exactWork bounds the table planExact fills (ranges × depths × pages):
// small enough to take milliseconds and a megabyte or two.
const exactWork = 1 << 24

// planExact finds the best plan by dynamic programming over the budget in
// whole pages (a multiple-choice knapsack): best[b] is the least rows per
// leaf of the ranges so far in at most b pages. cost is in pages.
func planExact(rows []int64, pages int64, limits []int, cost func(int) int64) []int {
	best := make([]float64, pages+1)
	next := make([]float64, pages+1)
	choice := make([][]uint8, len(rows))
	for i, n := range rows {
		choice[i] = make([]uint8, pages+1)
		for b := range next {
			next[b] = math.Inf(1)
			for d := 0; d <= limits[i]; d++ {
				c := cost(d)
				if c > int64(b) {
					break
				}
				if v := best[int64(b)-c] + float64(n)/float64(int64(1)<<d); v < next[b] {
					next[b], choice[i][b] = v, uint8(d)
				}
			}
		}
		best, next = next, best
	}
	depths := make([]int, len(rows))
	b := pages
	for i := len(rows) - 1; i >= 0; i-- {
		depths[i] = int(choice[i][b])
		b -= cost(depths[i])
	}
	return depths
}

// planGreedy deepens, one level at a time, whichever range gains the most
// rows per leaf for each byte the step costs, until no step fits, then
// trades levels between ranges (improve). p holds depth 0 for every range
// and its bytes.
func planGreedy(p *Plan, rows []int64, available int64, limits []int, cost func(int) int64) {
	steps := make(stepHeap, 0, len(rows))
	for i, n := range rows {
		if n > 0 && limits[i] > 0 {
			steps = append(steps, step{i: i, gain: gainPerByte(n, 0, cost)})
		}
	}
	heap.Init(&steps)
	for len(steps) > 0 {
		s := &steps[0]
		d := p.Depths[s.i]
		extra := cost(d+1) - cost(d)
		if p.Bytes+extra > available {
			// Its steps only grow dearer, and the budget only fills:
			// this range is done.
			heap.Pop(&steps)
			continue
		}
		p.Bytes += extra
		p.Depths[s.i] = d + 1
		if d+1 == limits[s.i] {
			heap.Pop(&steps)
			continue
		}
		s.gain = gainPerByte(rows[s.i], d+1, cost)
		heap.Fix(&steps, 0)
	}
	improve(p, rows, available, limits, cost)
}

// improve trades depth between ranges where pages make the greedy plan
// miss: a step's cost jumps when a tree crosses a page, so a plan can gain
// by taking levels from other ranges to pay for a level of one. For each
// range's next step it looks for a cheap way to free the bytes the step
// lacks — taking single levels, least rows-per-leaf lost per byte freed
// first, or at any point the one level that frees all the rest at the least
// loss — and makes the best trade that lowers the rows per leaf, until none
// does.
func improve(p *Plan, rows []int64, available int64, limits []int, cost func(int) int64) {
	perLeaf := func(i, d int) float64 { return float64(rows[i]) / float64(int64(1)<<d) }
	depths := make([]int, len(rows)) // scratch: the depths a trade would leave
	var best []int
	for {
		bestGain := 1e-9
		best = best[:0]
		for i := range rows {
			d := p.Depths[i]
			if d >= limits[i] || rows[i] == 0 {
				continue
			}
			up := perLeaf(i, d) - perLeaf(i, d+1)
			if up <= bestGain {
				continue
			}
			need := p.Bytes + cost(d+1) - cost(d) - available
			copy(depths, p.Depths)
			depths[i] = d + 1
			if need <= 0 {
				bestGain = up
				best = append(best[:0], depths...)
				continue
			}
			// Free the bytes a level at a time, least loss per byte
			// first; at each point also weigh finishing with the one
			// level that frees all the rest at the least loss.
			var lost float64
			for need > 0 && up-lost > bestGain {
				pick, pickRate, finish, finishLoss := -1, math.Inf(1), -1, math.Inf(1)
				for j := range rows {
					e := depths[j]
					if j == i || e == 0 {
						continue
					}
					freed := cost(e) - cost(e-1)
					if freed <= 0 {
						continue
					}
					loss := perLeaf(j, e-1) - perLeaf(j, e)
					if freed >= need && loss < finishLoss {
						finish, finishLoss = j, loss
					}
					if r := loss / float64(freed); r < pickRate {
						pick, pickRate = j, r
					}
				}
				if finish >= 0 && up-lost-finishLoss > bestGain {
					bestGain = up - lost - finishLoss
					best = append(best[:0], depths...)
					best[finish]--
				}
				if pick < 0 {
					break
				}
				e := depths[pick]
				need -= cost(e) - cost(e-1)
				lost += perLeaf(pick, e-1) - perLeaf(pick, e)
				depths[pick] = e - 1
				if need <= 0 && up-lost > bestGain {
					bestGain = up - lost
					best = append(best[:0], depths...)
				}
			}
		}
		if len(best) == 0 {
			return
		}
		copy(p.Depths, best)
		p.Bytes = 0
		for _, d := range p.Depths {
			p.Bytes += cost(d)
		}
	}
}

// depthLimits caps each range's depth at MaxDepth and at ⌈log2 rows⌉, as
// engine.AutoDepth does for one tree: past one row per leaf a deeper tree
// costs memory and finds no smaller repair.
func depthLimits(rows []int64, maxDepth int) []int {
	limits := make([]int, len(rows))
	for i, n := range rows {
		d := 0
		for d < maxDepth && int64(1)<<d < n {
			d++
		}
		limits[i] = d
	}
	return limits
}

// gainPerByte is how much deepening a range of n rows from depth d to d+1
// lowers its rows per leaf, per byte it costs. Steps that cost nothing
// (both depths fit the same pages) come first.
func gainPerByte(n int64, d int, cost func(int) int64) float64 {
	gain := float64(n) / float64(int64(2)<<d)
	extra := cost(d+1) - cost(d)
	if extra <= 0 {
		return math.Inf(1)
	}
	return gain / float64(extra)
}

// step is a range's next deepening and what it gains per byte.
type step struct {
	i    int
	gain float64
}

// stepHeap orders steps by gain per byte, best first; ties go to the
// lower range index, so plans are deterministic.
type stepHeap []step

func (h stepHeap) Len() int { return len(h) }
func (h stepHeap) Less(a, b int) bool {
	if h[a].gain != h[b].gain {
		return h[a].gain > h[b].gain
	}
	return h[a].i < h[b].i
}
func (h stepHeap) Swap(a, b int) { h[a], h[b] = h[b], h[a] }
func (h *stepHeap) Push(x any)   { *h = append(*h, x.(step)) }
func (h *stepHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
