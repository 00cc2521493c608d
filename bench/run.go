package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/cpuid/v2"
	"github.com/prysmaticlabs/gohashtree"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/simd"
)

// Sizes of a full and a quick run.
const (
	FullDepth  = 20
	FullRows   = 10_000_000
	QuickDepth = 14
	QuickRows  = 100_000
)

// DefaultSeed is the corpus seed Run uses when Config.Seed is zero.
const DefaultSeed = 0x67726f7665 // "grove"

// diffKs are the numbers of differing leaves the diff is timed with.
var diffKs = []int{1, 10, 1000}

// Config says what Run measures. The zero value is a full run.
type Config struct {
	// Quick runs every measurement at small sizes (2^14 leaves, 100 k
	// rows), in a few seconds, so that tests can run it.
	Quick bool
	// Depth and Rows override the tree depth and the corpus size; zero
	// keeps the defaults of the mode (FullDepth and FullRows, or QuickDepth
	// and QuickRows).
	Depth, Rows int
	// Reps is how many times each measurement runs; the report gives the
	// median. Zero: 5 for the inner levels and 3 for the row builds in a
	// full run, 3 for both in a quick one. Diffs, which are short
	// (BenchmarkDiff measures them), always run 41 times (15 in a quick run).
	Reps int
	// Seed generates the corpus; zero means DefaultSeed.
	Seed uint64
	// Progress, when not nil, receives a line as each phase starts: a full
	// run takes a minute or two.
	Progress io.Writer
}

// Report is what Run measured. Its JSON form is
//
//	{"machine": {...}, "results": [{"name", "grove_ns", "baseline", "baseline_ns", "ratio"}], "figures": {...}}
type Report struct {
	// Machine describes where the numbers were measured.
	Machine Machine `json:"machine"`
	// Results compare grove with a baseline on the same inputs, in the same
	// process.
	Results []Result `json:"results"`
	// Figures are single numbers: efficiencies, allocation counts, diff
	// times, sizes. Names ending in _ns are nanoseconds, in _bytes bytes.
	Figures map[string]float64 `json:"figures"`

	order []string // figure names in the order they were measured
}

// Machine describes the machine and build a report comes from.
type Machine struct {
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	CPU        string `json:"cpu"` // brand name, from cpuid
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"` // how many cores grove's parallel paths use
	GoVersion  string `json:"go_version"`
	SIMD       string `json:"simd"` // simd.Features(): which hashing kernels ran
}

// Result is one comparison: the median time of grove and of a baseline doing
// the same work on the same input.
type Result struct {
	// Name identifies the measurement, e.g. "inner_levels/pointer", the same
	// as the go test benchmark that measures it.
	Name string `json:"name"`
	// GroveNS is grove's median time, in nanoseconds.
	GroveNS int64 `json:"grove_ns"`
	// Baseline says what grove is compared with.
	Baseline string `json:"baseline"`
	// BaselineNS is the baseline's median time, in nanoseconds.
	BaselineNS int64 `json:"baseline_ns"`
	// Ratio is GroveNS / BaselineNS: below 1, grove is faster.
	Ratio float64 `json:"ratio"`
	// Target is the ratio the issue aims for (at most), or 0 if none. The
	// table shows it; the JSON form leaves it out.
	Target float64 `json:"-"`
}

// Run measures grove against its baselines and returns the report. Every
// measurement runs grove and its baseline alternately, cfg.Reps times, on
// the same inputs; the report gives medians. Run checks as it goes that every
// baseline computes what grove computes (the same root, or the same sum of row
// digests) and that every row was counted: a mismatch is returned as an
// error, since a baseline that computes something else is not a baseline.
//
// Run takes the machine to itself for its duration: it uses every core and,
// in a full run, about 1.5 GB of memory.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Seed == 0 {
		cfg.Seed = DefaultSeed
	}
	r := &runner{ctx: ctx, cfg: cfg, depth: FullDepth, rows: FullRows, innerReps: 5, rowReps: 3, diffRuns: 41}
	if cfg.Quick {
		r.depth, r.rows, r.innerReps, r.rowReps, r.diffRuns = QuickDepth, QuickRows, 3, 3, 15
	}
	if cfg.Depth != 0 {
		r.depth = cfg.Depth
	}
	if cfg.Rows != 0 {
		r.rows = cfg.Rows
	}
	if cfg.Reps > 0 {
		r.innerReps, r.rowReps = cfg.Reps, cfg.Reps
	}
	if r.depth < 1 || r.depth > engine.DefaultMaxDepth {
		return nil, fmt.Errorf("bench: depth %d: want 1..%d", r.depth, engine.DefaultMaxDepth)
	}
	if r.rows < 1 {
		return nil, fmt.Errorf("bench: %d rows: want at least 1", r.rows)
	}
	if 1<<r.depth < 2*diffKs[len(diffKs)-1] {
		return nil, fmt.Errorf("bench: depth %d is too shallow for %d differing leaves", r.depth, diffKs[len(diffKs)-1])
	}
	// Two trees at most are alive at once (the kept build and the one being
	// measured, or the two diffed); twice that leaves room for page
	// rounding and huge-page alignment.
	r.budget = arena.NewBudget(4*engine.TreeBytes(r.depth) + 1<<20)
	r.rep = &Report{Machine: machine(), Figures: map[string]float64{}}
	r.figure("leaves", float64(int64(1)<<r.depth))
	r.figure("rows", float64(r.rows))
	r.figure("reps", float64(r.innerReps))
	r.figure("rows_reps", float64(r.rowReps))

	r.logf("generating %d rows (seed %#x)", r.rows, cfg.Seed)
	start := time.Now()
	c, err := NewCorpus(r.rows, cfg.Seed)
	if err != nil {
		return nil, err
	}
	r.corpus = c
	r.figure("corpus_bytes", float64(c.Bytes()))
	r.logf("  %d rows, %s on the Go heap, in %s", c.Len(), arena.FormatBytes(c.Bytes()), time.Since(start).Round(time.Millisecond))

	tree, err := r.measureRows()
	if err != nil {
		return nil, err
	}
	defer tree.Close()
	if err := r.measureInner(tree); err != nil {
		return nil, err
	}
	if err := r.measureDiff(tree); err != nil {
		return nil, err
	}
	r.figure("bytes_per_leaf", float64(engine.TreeBytes(engine.DefaultMaxDepth))/float64(int64(1)<<engine.DefaultMaxDepth))
	r.figure("cores_available", r.cores)
	return r.rep, nil
}

// machine describes this machine and build.
func machine() Machine {
	return Machine{
		GOOS:       runtime.GOOS,
		GOARCH:     runtime.GOARCH,
		CPU:        cpuid.CPU.BrandName,
		NumCPU:     runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		SIMD:       simd.Features(),
	}
}

type runner struct {
	ctx    context.Context
	cfg    Config
	budget *arena.Budget
	corpus *Corpus
	rep    *Report

	depth, rows                  int
	innerReps, rowReps, diffRuns int
	cores                        float64 // the fewest cores a probe found
}

// probeCores estimates how many cores the process really has right now —
// on a shared machine, fewer than GOMAXPROCS — and keeps the smallest
// estimate, reported as the figure cores_available: a parallel result
// measured while other processes held cores is not grove's.
func (r *runner) probeCores() {
	c := coresAvailable()
	r.logf("  cores available: %.2f of %d", c, runtime.GOMAXPROCS(0))
	if r.cores == 0 || c < r.cores {
		r.cores = c
	}
}

// coresAvailable runs a fixed SHA-256 load on one goroutine, then the same
// load on each of GOMAXPROCS goroutines at once, and returns GOMAXPROCS times
// the ratio of the two times: GOMAXPROCS when every core is free.
func coresAvailable() float64 {
	procs := runtime.GOMAXPROCS(0)
	work := func() {
		var b [64]byte
		for range 50_000 {
			d := sha256.Sum256(b[:])
			b[0] ^= d[0]
		}
		probeSink.Add(uint32(b[0]))
	}
	one, _ := timed(func() error { work(); return nil })
	all, _ := timed(func() error {
		var wg sync.WaitGroup
		for range procs {
			wg.Go(work)
		}
		wg.Wait()
		return nil
	})
	if all <= 0 {
		return float64(procs)
	}
	return min(float64(procs), float64(procs)*float64(one)/float64(all))
}

// probeSink keeps the probe's work from being optimised away.
var probeSink atomic.Uint32

func (r *runner) logf(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, format+"\n", args...)
	}
}

func (r *runner) figure(name string, v float64) {
	if _, ok := r.rep.Figures[name]; !ok {
		r.rep.order = append(r.rep.order, name)
	}
	r.rep.Figures[name] = v
}

func (r *runner) result(name, baseline string, grove, base []int64, target float64) {
	g, b := median(grove), median(base)
	res := Result{Name: name, GroveNS: g, Baseline: baseline, BaselineNS: b, Target: target}
	if b > 0 {
		res.Ratio = float64(g) / float64(b)
	}
	r.rep.Results = append(r.rep.Results, res)
}

// median returns the median of xs (the lower middle one for an even count).
func median(xs []int64) int64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// timed runs f and returns how long it took, in nanoseconds.
func timed(f func() error) (int64, error) {
	start := time.Now()
	err := f()
	return time.Since(start).Nanoseconds(), err
}

// measureRows times building a tree from every row of the corpus — in token
// order and in random order with AddFrom on GOMAXPROCS goroutines, and in
// token order through Load's single reader — against digesting the same rows
// with crypto/sha256 on one core, and measures the Go heap each parallel
// build allocates. It returns the first token-order tree, hashed, for the
// later phases.
func (r *runner) measureRows() (*engine.Tree, error) {
	var (
		c     = r.corpus
		procs = runtime.GOMAXPROCS(0)
		n     = int64(c.Len())
		ns    = map[string][]int64{}
		keep  *engine.Tree
		root  engine.Digest
		want  lanes // the sum of every row digest, from the baseline
		alloc uint64
		gcs   uint32
		lAll  uint64
		lGCs  uint32
	)
	fail := func(err error) (*engine.Tree, error) {
		if keep != nil {
			keep.Close()
		}
		return nil, err
	}
	// check verifies a build: every row counted, the same root as the
	// first build, and leaves summing to the baseline's digests.
	check := func(what string, t *engine.Tree, added int64) error {
		if added != n || t.Rows() != n {
			return fmt.Errorf("bench: %s: added %d rows, tree counts %d, corpus has %d", what, added, t.Rows(), n)
		}
		got, err := t.Root()
		if err != nil {
			return err
		}
		if keep == nil {
			leaves, err := leavesOf(t)
			if err != nil {
				return err
			}
			if s := leafSum(leaves); s != want {
				return fmt.Errorf("bench: %s: grove's leaves sum to %x, crypto/sha256 of the same rows to %x", what, s, want)
			}
			root = got
		} else if got != root {
			return fmt.Errorf("bench: %s: root %x, another build of the same rows gave %x", what, got, root)
		}
		return nil
	}
	build := func(what string, o Order) error {
		srcs := c.split(o, procs)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var (
			t     *engine.Tree
			added int64
		)
		d, err := timed(func() (err error) {
			t, added, err = buildParallel(r.ctx, r.depth, r.budget, srcs)
			return err
		})
		runtime.ReadMemStats(&after)
		if err != nil {
			return fmt.Errorf("bench: %s: %w", what, err)
		}
		alloc = max(alloc, after.TotalAlloc-before.TotalAlloc)
		gcs = max(gcs, after.NumGC-before.NumGC)
		if err := check(what, t, added); err != nil {
			t.Close()
			return err
		}
		ns["grove "+o.String()] = append(ns["grove "+o.String()], d)
		if keep == nil {
			keep = t
			return nil
		}
		return t.Close()
	}
	baseline := func(o Order) error {
		runtime.GC()
		var (
			sum  lanes
			rows int64
		)
		d, _ := timed(func() error {
			sum, rows = digestRows(c.Source(o, 0, c.Len()))
			return nil
		})
		if rows != n {
			return fmt.Errorf("bench: crypto/sha256 baseline: %d rows, corpus has %d", rows, n)
		}
		if want == (lanes{}) {
			want = sum
		} else if sum != want {
			return fmt.Errorf("bench: crypto/sha256 baseline: %s order sums to %x, token order to %x", o, sum, want)
		}
		ns["sha256 "+o.String()] = append(ns["sha256 "+o.String()], d)
		return nil
	}
	load := func() error {
		src := c.Source(TokenOrder, 0, c.Len())
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var (
			t     *engine.Tree
			added int64
		)
		d, err := timed(func() (err error) {
			t, added, err = buildLoad(r.ctx, r.depth, r.budget, src)
			return err
		})
		runtime.ReadMemStats(&after)
		if err != nil {
			return fmt.Errorf("bench: load: %w", err)
		}
		lAll = max(lAll, after.TotalAlloc-before.TotalAlloc)
		lGCs = max(lGCs, after.NumGC-before.NumGC)
		if err := check("load", t, added); err != nil {
			t.Close()
			return err
		}
		ns["load"] = append(ns["load"], d)
		return t.Close()
	}

	for i := range r.rowReps {
		r.probeCores()
		r.logf("rows: run %d of %d (grove on %d goroutines, then crypto/sha256 on one, each order)", i+1, r.rowReps, procs)
		steps := []func() error{
			func() error { return baseline(TokenOrder) }, // first: the sum the builds are checked against
			func() error { return build("build in token order", TokenOrder) },
			func() error { return baseline(RandomOrder) },
			func() error { return build("build in random order", RandomOrder) },
			load,
		}
		for _, step := range steps {
			if err := r.ctx.Err(); err != nil {
				return fail(err)
			}
			if err := step(); err != nil {
				return fail(err)
			}
		}
	}

	target := 1 / (0.9 * float64(procs)) // rows_efficiency ≥ 0.9
	r.result("rows/sorted", "crypto/sha256 of each row, 1 core, token order", ns["grove sorted"], ns["sha256 sorted"], target)
	r.result("rows/random", "crypto/sha256 of each row, 1 core, random order", ns["grove random"], ns["sha256 random"], target)
	r.result("rows/load_one_reader", "crypto/sha256 of each row, 1 core, token order", ns["load"], ns["sha256 sorted"], 0)

	eff := func(grove, base string) float64 {
		return float64(median(ns[base])) / (float64(procs) * float64(median(ns[grove])))
	}
	sorted, random := eff("grove sorted", "sha256 sorted"), eff("grove random", "sha256 random")
	r.figure("rows_efficiency", min(sorted, random))
	r.figure("rows_efficiency_sorted", sorted)
	r.figure("rows_efficiency_random", random)
	r.figure("rows_efficiency_load", eff("load", "sha256 sorted"))
	perSec := func(key string) float64 { return float64(n) / (float64(median(ns[key])) / 1e9) }
	r.figure("grove_rows_per_s_sorted", perSec("grove sorted"))
	r.figure("grove_rows_per_s_random", perSec("grove random"))
	r.figure("grove_rows_per_s_load", perSec("load"))
	r.figure("sha256_rows_per_s_one_core", perSec("sha256 sorted"))
	r.figure("heap_alloc_bytes", float64(alloc))
	r.figure("gc_cycles", float64(gcs))
	r.figure("load_heap_alloc_bytes", float64(lAll))
	r.figure("load_gc_cycles", float64(lGCs))
	return keep, nil
}

// measureInner times computing the inner levels over the leaves of t, with
// grove's Hash and with each baseline fed the same leaves, and checks every
// root against grove's.
func (r *runner) measureInner(t *engine.Tree) error {
	r.probeCores()
	r.logf("inner levels: %d leaves, %d runs each", t.Leaves(), r.innerReps)
	leaves, err := leavesOf(t)
	if err != nil {
		return err
	}
	want, err := t.Root()
	if err != nil {
		return err
	}
	r.figure("pointer_tree_heap_bytes", float64(pointerTreeHeap(leaves)))
	ptrLeaves := pointerLeaves(leaves)
	flatSHA := newFlatTree(leaves, r.depth)
	flatGHT := newFlatTree(leaves, r.depth)

	checkRoot := func(what string, got []byte) error {
		if !bytes.Equal(got, want[:]) {
			return fmt.Errorf("bench: inner levels: %s computed root %x, grove %x", what, got, want)
		}
		return nil
	}
	var grove, ptr, fsha, fght, cmpct []int64
	for range r.innerReps {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		runtime.GC()
		// Rehash, not Hash: the tree is hashed already, and Hash of a clean
		// tree returns at once.
		d, err := timed(func() error { return t.Rehash(r.ctx) })
		if err != nil {
			return err
		}
		if got, err := t.Root(); err != nil {
			return err
		} else if err := checkRoot("grove's Hash, again,", got[:]); err != nil {
			return err
		}
		grove = append(grove, d)

		runtime.GC()
		var root *ptrNode
		d, _ = timed(func() error { root = buildPointer(ptrLeaves); return nil })
		if err := checkRoot("the pointer tree", root.hash[:]); err != nil {
			return err
		}
		root = nil
		ptr = append(ptr, d)

		runtime.GC()
		var sum [32]byte
		d, _ = timed(func() error { sum = flatSHA.hashSHA256(); return nil })
		if err := checkRoot("flat slice + crypto/sha256", sum[:]); err != nil {
			return err
		}
		fsha = append(fsha, d)

		runtime.GC()
		d, err = timed(func() (err error) { sum, err = flatGHT.hashGohashtree(); return err })
		if err != nil {
			return err
		}
		if err := checkRoot("flat slice + gohashtree", sum[:]); err != nil {
			return err
		}
		fght = append(fght, d)

		runtime.GC()
		var croot []byte
		d, err = timed(func() (err error) { croot, err = compactRoot(leaves); return err })
		if err != nil {
			return err
		}
		if err := checkRoot("the compact range", croot); err != nil {
			return err
		}
		cmpct = append(cmpct, d)
	}
	runtime.KeepAlive(ptrLeaves)
	r.result("inner_levels/pointer", "pointer tree + crypto/sha256", grove, ptr, 1.0/8)
	r.result("inner_levels/flat_sha256", "flat slice + crypto/sha256, 1 goroutine", grove, fsha, 0)
	r.result("inner_levels/flat_gohashtree", "flat slice + gohashtree, 1 goroutine", grove, fght, 0.65)
	r.result("inner_levels/compact", "transparency-dev/merkle compact range", grove, cmpct, 1.0/10)
	r.figure("inner_levels_ns", float64(median(grove)))
	return r.checkKernelFloor(t.Depth(), median(grove))
}

// checkKernelFloor keeps the inner-level figure honest: computing every
// inner node is 2^depth − 1 pair hashes, which take at least their one-core
// kernel time divided by the cores. A time well below that floor means the
// benchmark timed less than the whole computation, and the run fails rather
// than report it. The figure inner_levels_vs_floor is grove's time over the
// floor: 1 is the kernel's own speed on every core.
func (r *runner) checkKernelFloor(depth int, groveNs int64) error {
	perPair := kernelPairNs()
	pairs := float64(int64(1)<<depth - 1)
	cores := float64(runtime.GOMAXPROCS(0))
	floor := pairs * perPair / cores
	r.figure("kernel_pair_ns", perPair)
	x2, ght, ratio := pairKernelVsGohashtree()
	r.figure("pair_kernel_vs_gohashtree", ratio)
	if ratio > 0 {
		r.logf("  pair kernels, one core: grove's two-stream SHA-NI %.1f ns, gohashtree %.1f ns a pair (%.2f×)", x2, ght, ratio)
	}
	r.figure("inner_levels_floor_ns", floor)
	r.figure("inner_levels_vs_floor", float64(groveNs)/floor)
	r.logf("  kernel floor: %d pairs × %.1f ns ÷ %.0f cores = %.2f ms; grove %.2f ms (%.2f× the floor)",
		int64(pairs), perPair, cores, floor/1e6, float64(groveNs)/1e6, float64(groveNs)/floor)
	if float64(groveNs) < floor/1.5 {
		return fmt.Errorf("bench: inner levels took %.3f ms, below the kernel's floor of %.3f ms for %d pair hashes: the benchmark did not time the whole computation", float64(groveNs)/1e6, floor/1e6, int64(pairs))
	}
	return nil
}

// pairKernelVsGohashtree times grove's own two-stream pair kernel
// (simd.HashPairsX2) and gohashtree's on one goroutine, alternating runs so
// that a noisy neighbour slows both alike, and returns each one's fastest
// time per pair and their ratio: below 1, grove's kernel is the faster and
// HashPairs should dispatch to it on this CPU. The ratio is 0 where grove's
// kernel cannot run.
func pairKernelVsGohashtree() (x2, ght, ratio float64) {
	const batch = 4096
	src := make([]byte, 64*batch)
	dst := make([]byte, 32*batch)
	for i := range src {
		src[i] = byte(i)
	}
	if simd.HashPairsX2(dst[:32], src[:64]) != nil {
		return 0, 0, 0
	}
	run := func(hash func(dst, src []byte) error) int64 {
		d, _ := timed(func() error {
			for range 16 {
				if err := hash(dst, src); err != nil {
					return err
				}
			}
			return nil
		})
		return d
	}
	var a, b []int64
	for range 15 {
		a = append(a, run(simd.HashPairsX2))
		b = append(b, run(gohashtree.HashByteSlice))
	}
	x2 = float64(slices.Min(a)) / (16 * batch)
	ght = float64(slices.Min(b)) / (16 * batch)
	return x2, ght, x2 / ght
}

// kernelPairNs is the fastest time of one 64-byte pair hash with the
// batched kernel on one goroutine, in batches of 4096 pairs, over 15 runs:
// the fastest, so that a run slowed by a noisy neighbour cannot raise the
// floor the inner-level figure is checked against.
func kernelPairNs() float64 {
	const batch = 4096
	src := make([]byte, 64*batch)
	dst := make([]byte, 32*batch)
	for i := range src {
		src[i] = byte(i)
	}
	var runs []int64
	for range 15 {
		d, _ := timed(func() error {
			for range 16 {
				if err := simd.HashPairs(dst, src); err != nil {
					return err
				}
				copy(src, dst)
			}
			return nil
		})
		runs = append(runs, d)
	}
	return float64(slices.Min(runs)) / (16 * batch)
}

// measureDiff times Diff of a against a second tree built from the same rows
// plus rows that make k leaves differ, for each k in diffKs, against
// comparing every leaf.
func (r *runner) measureDiff(a *engine.Tree) error {
	r.probeCores()
	r.logf("diff: k = %v differing leaves of %d, %d runs each", diffKs, a.Leaves(), r.diffRuns)
	b, added, err := buildParallel(r.ctx, r.depth, r.budget, r.corpus.split(TokenOrder, runtime.GOMAXPROCS(0)))
	if err != nil {
		return err
	}
	defer b.Close()
	if added != int64(r.corpus.Len()) {
		return fmt.Errorf("bench: diff: second tree added %d rows of %d", added, r.corpus.Len())
	}
	res, err := engine.Diff(r.ctx, a, b)
	if err != nil {
		return err
	}
	if !res.Identical() {
		return fmt.Errorf("bench: diff: two builds of the same rows differ in %d leaves", res.DifferingLeaves)
	}
	leavesA, err := leavesOf(a)
	if err != nil {
		return err
	}
	var (
		skip = map[int]bool{}
		next int
	)
	for _, k := range diffKs {
		rows, err := extraRows(b, k-len(skip), skip, &next)
		if err != nil {
			return err
		}
		for i := range rows {
			if err := b.Add(&rows[i]); err != nil {
				return err
			}
		}
		if err := b.Hash(r.ctx); err != nil {
			return err
		}
		leavesB, err := leavesOf(b)
		if err != nil {
			return err
		}
		var grove, scan []int64
		var nodes int
		runtime.GC()
		for range r.diffRuns {
			if err := r.ctx.Err(); err != nil {
				return err
			}
			var res *engine.DiffResult
			d, err := timed(func() (err error) { res, err = engine.Diff(r.ctx, a, b); return err })
			if err != nil {
				return err
			}
			if res.DifferingLeaves != k {
				return fmt.Errorf("bench: diff: %d differing leaves planted, Diff found %d", k, res.DifferingLeaves)
			}
			nodes = res.NodesCompared
			grove = append(grove, d)

			var found int
			d, _ = timed(func() error { found = scanLeaves(leavesA, leavesB); return nil })
			if found != k {
				return fmt.Errorf("bench: diff: %d differing leaves planted, the leaf scan found %d", k, found)
			}
			scan = append(scan, d)
		}
		r.result(fmt.Sprintf("diff/k=%d", k), fmt.Sprintf("compare all %d leaves", a.Leaves()), grove, scan, 0)
		r.figure(fmt.Sprintf("diff_k%d_ns", k), float64(median(grove)))
		r.figure(fmt.Sprintf("diff_k%d_nodes", k), float64(nodes))
	}
	return nil
}
