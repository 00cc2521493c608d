package forest

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/layout"
)

const page = 4096

func liveCost(d int) int64 { return engine.LiveBytes(layout.BFS{}, d, page) }

// bruteBest enumerates every assignment of depths 0..maxDepth and returns
// the least Σ rows/2^d whose bytes fit.
func bruteBest(rows []int64, available int64, maxDepth int) float64 {
	limits := make([]int, len(rows)) // ⌈log2 rows⌉, at most maxDepth
	for i, n := range rows {
		for limits[i] < maxDepth && int64(1)<<limits[i] < n {
			limits[i]++
		}
	}
	best := -1.0
	depths := make([]int, len(rows))
	var walk func(i int, bytes int64)
	walk = func(i int, bytes int64) {
		if bytes > available {
			return
		}
		if i == len(rows) {
			var obj float64
			for j, n := range rows {
				obj += float64(n) / float64(int64(1)<<depths[j])
			}
			if best < 0 || obj < best {
				best = obj
			}
			return
		}
		for d := 0; d <= limits[i]; d++ {
			depths[i] = d
			walk(i+1, bytes+liveCost(d))
		}
	}
	walk(0, 0)
	return best
}

// TestPlanNearOptimal: on cases small enough to enumerate, the plan fits
// and its Σ rows/2^depth is within 5% of the brute-force optimum.
func TestPlanNearOptimal(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 7))
	worst := 1.0
	for trial := range 2000 {
		n := 1 + rnd.IntN(4)
		maxDepth := 4 + rnd.IntN(9) // 4..12: depths where pages matter and where they do not
		rows := make([]int64, n)
		for i := range rows {
			rows[i] = int64(rnd.IntN(1_000_000))
			if rnd.IntN(5) == 0 {
				rows[i] = 0
			}
		}
		var floor, ceil int64
		for range rows {
			floor += liveCost(0)
			ceil += liveCost(maxDepth)
		}
		available := floor + rnd.Int64N(ceil-floor+1)
		p, err := PlanDepths(rows, available, PlanOptions{MaxDepth: maxDepth, PageSize: page})
		if err != nil {
			t.Fatal(err)
		}
		var bytes int64
		var obj float64
		for i, d := range p.Depths {
			if d < 0 || d > maxDepth || (d > 0 && int64(1)<<(d-1) >= rows[i]) {
				t.Fatalf("trial %d: depth %d outside 0..%d", trial, d, maxDepth)
			}
			bytes += liveCost(d)
			obj += float64(rows[i]) / float64(int64(1)<<d)
		}
		if bytes != p.Bytes || bytes > available {
			t.Fatalf("trial %d: plan %v charges %d (says %d), budget %d", trial, p.Depths, bytes, p.Bytes, available)
		}
		if obj != p.RowsPerLeaf {
			t.Fatalf("trial %d: RowsPerLeaf %v, computed %v", trial, p.RowsPerLeaf, obj)
		}
		best := bruteBest(rows, available, maxDepth)
		if best > 0 {
			if r := obj / best; r > worst {
				worst = r
			}
		}
		if obj > best*1.05+1e-9 {
			t.Fatalf("trial %d: rows %v, budget %d, max depth %d: plan %v gives %.1f, brute force %.1f", trial, rows, available, maxDepth, p.Depths, obj, best)
		}
	}
	t.Logf("worst plan / optimum over 2000 trials: %.4f", worst)
}

// TestPlan768Ranges: a node's 768 ranges, row counts spread 10× apart,
// under 256 MiB: the plan fits, bigger ranges get at least the depth of
// smaller ones, and the budget is nearly all used.
func TestPlan768Ranges(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	rows := make([]int64, 768)
	for i := range rows {
		rows[i] = 100_000 + rnd.Int64N(900_001) // 100 k .. 1 M
	}
	const budget = 256 << 20
	p, err := PlanDepths(rows, budget, PlanOptions{PageSize: page})
	if err != nil {
		t.Fatal(err)
	}
	if p.Bytes > budget {
		t.Fatalf("plan charges %d, budget %d", p.Bytes, budget)
	}
	hist := map[int]int{}
	for i := range rows {
		hist[p.Depths[i]]++
		for j := range rows {
			if rows[i] > rows[j] && p.Depths[i] < p.Depths[j] {
				t.Fatalf("range of %d rows at depth %d, one of %d at depth %d", rows[i], p.Depths[i], rows[j], p.Depths[j])
			}
		}
	}
	// Whatever is left cannot buy even the cheapest remaining step.
	cheapest := int64(-1)
	for _, d := range p.Depths {
		if d < engine.DefaultMaxDepth {
			if c := liveCost(d+1) - liveCost(d); cheapest < 0 || c < cheapest {
				cheapest = c
			}
		}
	}
	if cheapest >= 0 && budget-p.Bytes >= cheapest {
		t.Fatalf("plan leaves %d bytes unused, and a step costs %d", budget-p.Bytes, cheapest)
	}
	t.Logf("depths %v; %s of 256 MiB; %.0f rows per differing leaf summed over the ranges", hist, arena.FormatBytes(p.Bytes), p.RowsPerLeaf)
}

// TestPlanTooSmall: a budget that cannot hold one leaf per range says how
// much the ranges need.
func TestPlanTooSmall(t *testing.T) {
	rows := make([]int64, 768)
	_, err := PlanDepths(rows, 1<<20, PlanOptions{PageSize: page})
	if !errors.Is(err, arena.ErrBudgetExceeded) {
		t.Fatalf("err %v, want ErrBudgetExceeded", err)
	}
	for _, says := range []string{"768 ranges need 6.0 MiB for one leaf each", "the budget has 1.0 MiB"} {
		if !strings.Contains(err.Error(), says) {
			t.Fatalf("error %q does not say %q", err, says)
		}
	}
}

// TestPlanEmptyRangesStayShallow: a range without rows gains nothing from
// depth, and none goes past one row per leaf, however large the budget.
func TestPlanEmptyRangesStayShallow(t *testing.T) {
	p, err := PlanDepths([]int64{0, 1000}, 1<<30, PlanOptions{PageSize: page})
	if err != nil {
		t.Fatal(err)
	}
	// 1000 rows want no more than ⌈log2 1000⌉ = 10 levels.
	if p.Depths[0] != 0 || p.Depths[1] != 10 {
		t.Fatalf("depths %v, want [0 10]", p.Depths)
	}
}

// TestGreedyNearExact: where a node's budget is too large for the exact
// plan, the greedy one is used; on instances where both run, it stays
// within 5% of the exact optimum (which brute force checks on small cases).
func TestGreedyNearExact(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	worst := 1.0
	for trial := range 200 {
		n := 2 + rnd.IntN(40)
		maxDepth := 8 + rnd.IntN(9) // 8..16
		rows := make([]int64, n)
		for i := range rows {
			rows[i] = 1000 + rnd.Int64N(10_000_000)
		}
		var floor, ceil int64
		for range rows {
			floor += liveCost(0)
			ceil += liveCost(maxDepth)
		}
		available := floor + rnd.Int64N(min(ceil-floor+1, 2000*page))
		limits := depthLimits(rows, maxDepth)
		exact := planExact(rows, available/page, limits, func(d int) int64 { return liveCost(d) / page })
		p := Plan{Depths: make([]int, n), Bytes: floor}
		planGreedy(&p, rows, available, limits, liveCost)
		var got, want float64
		var bytes int64
		for i, r := range rows {
			got += float64(r) / float64(int64(1)<<p.Depths[i])
			want += float64(r) / float64(int64(1)<<exact[i])
			bytes += liveCost(p.Depths[i])
		}
		if bytes > available || bytes != p.Bytes {
			t.Fatalf("trial %d: greedy plan charges %d (says %d), budget %d", trial, bytes, p.Bytes, available)
		}
		if got < want-1e-6 {
			t.Fatalf("trial %d: greedy %.1f beats the exact optimum %.1f: the exact plan is wrong", trial, got, want)
		}
		worst = max(worst, got/want)
		if got > want*1.05 {
			t.Fatalf("trial %d: %d ranges, max depth %d, %d pages: greedy %.1f, exact %.1f", trial, n, maxDepth, available/page, got, want)
		}
	}
	t.Logf("worst greedy / exact over 200 trials: %.4f", worst)
}

// BenchmarkPlan768 times planning a node's 768 ranges under 256 MiB, the
// greedy path, as at a node's first start or after its ring changes.
func BenchmarkPlan768(b *testing.B) {
	rnd := rand.New(rand.NewPCG(1, 2))
	rows := make([]int64, 768)
	for i := range rows {
		rows[i] = 100_000 + rnd.Int64N(900_001)
	}
	for b.Loop() {
		if _, err := PlanDepths(rows, 256<<20, PlanOptions{PageSize: page}); err != nil {
			b.Fatal(err)
		}
	}
}
