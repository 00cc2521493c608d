package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/simd"
)

// wantResults are the comparisons every report has, in order.
var wantResults = []string{
	"rows/sorted", "rows/random", "rows/load_one_reader",
	"inner_levels/pointer", "inner_levels/flat_sha256", "inner_levels/flat_gohashtree", "inner_levels/compact",
	"diff/k=1", "diff/k=10", "diff/k=1000",
}

// wantFigures are the figures every report has.
var wantFigures = []string{
	"leaves", "rows", "reps", "rows_reps", "corpus_bytes",
	"rows_efficiency", "rows_efficiency_sorted", "rows_efficiency_random", "rows_efficiency_load",
	"grove_rows_per_s_sorted", "grove_rows_per_s_random", "grove_rows_per_s_load", "sha256_rows_per_s_one_core",
	"heap_alloc_bytes", "gc_cycles", "load_heap_alloc_bytes", "load_gc_cycles",
	"pointer_tree_heap_bytes", "inner_levels_ns", "kernel_pair_ns", "pair_kernel_vs_gohashtree", "inner_levels_floor_ns", "inner_levels_vs_floor",
	"diff_k1_ns", "diff_k1_nodes", "diff_k10_ns", "diff_k10_nodes", "diff_k1000_ns", "diff_k1000_nodes",
	"bytes_per_leaf", "cores_available",
}

var quick struct {
	once sync.Once
	rep  *Report
	err  error
}

// quickReport runs Run once in quick mode for all the tests that look at a
// report.
func quickReport(t *testing.T) *Report {
	t.Helper()
	quick.once.Do(func() { quick.rep, quick.err = Run(context.Background(), Config{Quick: true}) })
	if quick.err != nil {
		t.Fatalf("Run(Quick): %v", quick.err)
	}
	return quick.rep
}

func TestRunQuick(t *testing.T) {
	rep := quickReport(t)
	var names []string
	for _, r := range rep.Results {
		names = append(names, r.Name)
		if r.GroveNS <= 0 || r.BaselineNS <= 0 || r.Ratio <= 0 || r.Baseline == "" {
			t.Errorf("result %+v: want positive times and ratio, and a baseline", r)
		}
	}
	if !slices.Equal(names, wantResults) {
		t.Errorf("results %q, want %q", names, wantResults)
	}
	for _, name := range wantFigures {
		if _, ok := rep.Figures[name]; !ok {
			t.Errorf("figure %q missing", name)
		}
	}
	if len(rep.Figures) != len(wantFigures) {
		t.Errorf("%d figures, want %d: %v", len(rep.Figures), len(wantFigures), rep.Figures)
	}
	f := rep.Figures
	// Run fails below floor/1.5; a figure that low means the timed work was
	// not the whole computation.
	if f["inner_levels_vs_floor"] < 1/1.5 || f["kernel_pair_ns"] <= 0 {
		t.Errorf("inner levels at %.2f× the kernel floor (kernel %.1f ns a pair)", f["inner_levels_vs_floor"], f["kernel_pair_ns"])
	}
	if v := f["pair_kernel_vs_gohashtree"]; v < 0 || (v == 0) != (simd.HashPairsX2(make([]byte, 32), make([]byte, 64)) != nil) {
		t.Errorf("pair_kernel_vs_gohashtree %v: want a positive ratio exactly where simd.HashPairsX2 runs", v)
	}
	if f["rows"] != QuickRows || f["leaves"] != 1<<QuickDepth {
		t.Errorf("rows %v, leaves %v; want %d and %d", f["rows"], f["leaves"], QuickRows, 1<<QuickDepth)
	}
	if want := float64(engine.TreeBytes(20)) / (1 << 20); f["bytes_per_leaf"] != want || want >= 64 || want < 63.99 {
		t.Errorf("bytes_per_leaf %v, want %v (just under 64)", f["bytes_per_leaf"], want)
	}
	// Diff's work grows with k·depth: k paths of at most 2·depth+1
	// comparisons, and at least one full path.
	for _, k := range diffKs {
		nodes := f["diff_k"+itoa(k)+"_nodes"]
		if nodes < float64(2*QuickDepth+1) || nodes > float64(k*(2*QuickDepth+1)) {
			t.Errorf("diff with k=%d compared %v nodes: want %d..%d", k, nodes, 2*QuickDepth+1, k*(2*QuickDepth+1))
		}
	}
	if f["diff_k1_nodes"] != float64(2*QuickDepth+1) {
		t.Errorf("diff with one differing leaf compared %v nodes, want %d", f["diff_k1_nodes"], 2*QuickDepth+1)
	}
	if f["pointer_tree_heap_bytes"] < float64(2<<QuickDepth-1)*32 {
		t.Errorf("pointer_tree_heap_bytes %v: less than the hashes alone", f["pointer_tree_heap_bytes"])
	}
	if c := f["cores_available"]; c <= 0 || c > float64(runtime.GOMAXPROCS(0)) {
		t.Errorf("cores_available %v of %d", c, runtime.GOMAXPROCS(0))
	}
	m := rep.Machine
	if m.GOOS != runtime.GOOS || m.GOARCH != runtime.GOARCH || m.GOMAXPROCS != runtime.GOMAXPROCS(0) || m.GoVersion == "" || m.SIMD == "" {
		t.Errorf("machine %+v", m)
	}
}

func itoa(k int) string {
	b, _ := json.Marshal(k)
	return string(b)
}

func TestReportJSONShape(t *testing.T) {
	rep := quickReport(t)
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	if got := sortedKeys(top); !slices.Equal(got, []string{"figures", "machine", "results"}) {
		t.Fatalf("top-level keys %q", got)
	}
	var results []map[string]any
	if err := json.Unmarshal(top["results"], &results); err != nil {
		t.Fatal(err)
	}
	if len(results) != len(wantResults) {
		t.Errorf("%d results, want %d", len(results), len(wantResults))
	}
	for _, r := range results {
		if got := sortedKeys(r); !slices.Equal(got, []string{"baseline", "baseline_ns", "grove_ns", "name", "ratio"}) {
			t.Errorf("result keys %q", got)
		}
		for _, k := range []string{"grove_ns", "baseline_ns", "ratio"} {
			if _, ok := r[k].(float64); !ok {
				t.Errorf("result %v: %s is not a number", r["name"], k)
			}
		}
		for _, k := range []string{"name", "baseline"} {
			if _, ok := r[k].(string); !ok {
				t.Errorf("result %v: %s is not a string", r["name"], k)
			}
		}
	}
	var figures map[string]float64
	if err := json.Unmarshal(top["figures"], &figures); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"rows_efficiency", "heap_alloc_bytes", "gc_cycles", "diff_k1_ns", "diff_k10_ns", "diff_k1000_ns", "bytes_per_leaf"} {
		if _, ok := figures[name]; !ok {
			t.Errorf("figure %q missing from the JSON", name)
		}
	}
	var machine map[string]any
	if err := json.Unmarshal(top["machine"], &machine); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"goos", "goarch", "cpu", "num_cpu", "gomaxprocs", "go_version", "simd"} {
		if _, ok := machine[k]; !ok {
			t.Errorf("machine key %q missing", k)
		}
	}

	// A report read back from JSON still prints.
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := back.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "bytes_per_leaf") {
		t.Errorf("table from decoded report:\n%s", out.String())
	}
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestWriteTable(t *testing.T) {
	rep := quickReport(t)
	var out bytes.Buffer
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range append([]string{"ratio = grove time / baseline time", "machine:", rep.Machine.SIMD, "rows_efficiency", "diff_k1_ns"}, wantResults...) {
		if !strings.Contains(s, want) {
			t.Errorf("table lacks %q:\n%s", want, s)
		}
	}
}

// TestRunCancelled checks that Run reports its phases when asked, and that a
// cancelled context stops it.
func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var progress bytes.Buffer
	_, err := Run(ctx, Config{Quick: true, Rows: 1000, Progress: &progress})
	if err == nil {
		t.Fatal("Run with a cancelled context: no error")
	}
	if !strings.Contains(progress.String(), "generating 1000 rows") {
		t.Errorf("progress: %q", progress.String())
	}
}

func TestRunBadConfig(t *testing.T) {
	for _, cfg := range []Config{{Depth: 40}, {Rows: -1}, {Quick: true, Depth: 10}} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("Run(%+v): no error", cfg)
		}
	}
}

// TestBaselinesAgree checks every inner-level baseline against grove's root,
// and the rows baseline against grove's leaves, on a small tree.
func TestBaselinesAgree(t *testing.T) {
	ctx := context.Background()
	c := mustCorpus(t, 5000)
	for _, depth := range []int{1, 2, 9} {
		tree, n, err := buildParallel(ctx, depth, arena.NewBudget(1<<30), c.split(RandomOrder, 3))
		if err != nil {
			t.Fatal(err)
		}
		defer tree.Close()
		if n != 5000 || tree.Rows() != 5000 {
			t.Fatalf("depth %d: added %d rows, tree has %d", depth, n, tree.Rows())
		}
		want, err := tree.Root()
		if err != nil {
			t.Fatal(err)
		}
		leaves, err := leavesOf(tree)
		if err != nil {
			t.Fatal(err)
		}
		if got := buildPointer(pointerLeaves(leaves)).hash; got != want {
			t.Errorf("depth %d: pointer tree root %x, grove %x", depth, got, want)
		}
		if got := newFlatTree(leaves, depth).hashSHA256(); got != want {
			t.Errorf("depth %d: flat sha256 root %x, grove %x", depth, got, want)
		}
		got, err := newFlatTree(leaves, depth).hashGohashtree()
		if err != nil || got != want {
			t.Errorf("depth %d: flat gohashtree root %x, %v; grove %x", depth, got, err, want)
		}
		croot, err := compactRoot(leaves)
		if err != nil || !bytes.Equal(croot, want[:]) {
			t.Errorf("depth %d: compact range root %x, %v; grove %x", depth, croot, err, want)
		}
		sum, rows := digestRows(c.Source(TokenOrder, 0, c.Len()))
		if rows != 5000 || sum != leafSum(leaves) {
			t.Errorf("depth %d: crypto/sha256 of %d rows sums to %x, grove's leaves to %x", depth, rows, sum, leafSum(leaves))
		}

		loaded, n, err := buildLoad(ctx, depth, arena.NewBudget(1<<30), c.Source(TokenOrder, 0, c.Len()))
		if err != nil {
			t.Fatal(err)
		}
		if root, err := loaded.Root(); err != nil || root != want || n != 5000 {
			t.Errorf("depth %d: Load gave root %x (%v) from %d rows, AddFrom %x", depth, root, err, n, want)
		}
		loaded.Close()
	}
}

func TestExtraRows(t *testing.T) {
	tree, err := engine.New(engine.Options{Depth: 6, Budget: arena.NewBudget(1 << 20)})
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	skip := map[int]bool{}
	var next int
	for _, k := range []int{1, 9, 54} {
		rows, err := extraRows(tree, k, skip, &next)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != k {
			t.Fatalf("%d rows, want %d", len(rows), k)
		}
	}
	if len(skip) != 64 {
		t.Errorf("%d distinct leaves, want 64", len(skip))
	}
	if _, err := extraRows(tree, 1, skip, &next); err == nil {
		t.Error("a 65th differing leaf of 64: no error")
	}
}

// TestBuildAllocsPerRow checks that grove's build path — the one Run measures
// heap_alloc_bytes on — allocates less than a byte per row: nothing per row,
// a fixed amount per build.
func TestBuildAllocsPerRow(t *testing.T) {
	n := max(QuickRows, 50_000*runtime.GOMAXPROCS(0))
	c := mustCorpus(t, n)
	budget := arena.NewBudget(1 << 30)
	for _, o := range []Order{TokenOrder, RandomOrder} {
		srcs := c.split(o, runtime.GOMAXPROCS(0))
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tree, added, err := buildParallel(context.Background(), QuickDepth, budget, srcs)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		tree.Close()
		if added != int64(n) {
			t.Fatalf("%s: added %d rows of %d", o, added, n)
		}
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s order: %d bytes allocated for %d rows (%.3f per row), %d GC cycles", o, alloc, n, float64(alloc)/float64(n), after.NumGC-before.NumGC)
		if float64(alloc)/float64(n) >= 1 {
			t.Errorf("%s order: %d bytes allocated for %d rows: want under 1 per row", o, alloc, n)
		}
	}
}

// TestFullRun runs the full benchmark and prints its table and JSON. It takes
// a minute or two and most of the machine, so it runs only when
// GROVE_BENCH_FULL=1.
func TestFullRun(t *testing.T) {
	if os.Getenv("GROVE_BENCH_FULL") != "1" {
		t.Skip("set GROVE_BENCH_FULL=1 to run the full benchmark")
	}
	rep, err := Run(context.Background(), Config{Progress: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", out.String())
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", b)
}

// testWriter sends progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
