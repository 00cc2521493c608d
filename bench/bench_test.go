package bench

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
)

// The benchmarks measure what Run measures, at full size (2^20 leaves, 10 M
// rows), one go test benchmark per comparison:
//
//	go test -run '^$' -bench . -benchtime 5x ./bench/
//
// Their fixtures (the corpus, a loaded tree, the diffed trees) are made once
// per process and shared; under -short the benchmarks are skipped.

var fixtures struct {
	corpusOnce sync.Once
	corpus     *Corpus
	corpusErr  error

	treeOnce sync.Once
	tree     *engine.Tree // hashed, from every row of the corpus
	leaves   []byte
	root     engine.Digest
	treeErr  error

	diffMu   sync.Mutex
	diffB    *engine.Tree // tree plus the rows that make diffK leaves differ
	diffK    int
	diffSkip map[int]bool
	diffNext int
}

// benchBudget is large enough for every tree the benchmarks keep at once.
var benchBudget = arena.NewBudget(8 * engine.TreeBytes(FullDepth))

func fullCorpus(b *testing.B) *Corpus {
	b.Helper()
	if testing.Short() {
		b.Skip("full-size benchmark: skipped under -short")
	}
	fixtures.corpusOnce.Do(func() {
		fixtures.corpus, fixtures.corpusErr = NewCorpus(FullRows, DefaultSeed)
	})
	if fixtures.corpusErr != nil {
		b.Fatal(fixtures.corpusErr)
	}
	return fixtures.corpus
}

// fullTree returns the hashed tree of every row of the corpus, its leaves
// and its root.
func fullTree(b *testing.B) (*engine.Tree, []byte, engine.Digest) {
	b.Helper()
	c := fullCorpus(b)
	fixtures.treeOnce.Do(func() {
		t, _, err := buildParallel(context.Background(), FullDepth, benchBudget, c.split(TokenOrder, runtime.GOMAXPROCS(0)))
		if err == nil {
			fixtures.leaves, err = leavesOf(t)
		}
		if err == nil {
			fixtures.root, err = t.Root()
		}
		fixtures.tree, fixtures.treeErr = t, err
	})
	if fixtures.treeErr != nil {
		b.Fatal(fixtures.treeErr)
	}
	return fixtures.tree, fixtures.leaves, fixtures.root
}

// diffTrees returns the full tree and a tree of the same rows plus rows that
// make exactly k leaves differ.
func diffTrees(b *testing.B, k int) (*engine.Tree, *engine.Tree) {
	b.Helper()
	a, _, _ := fullTree(b)
	fixtures.diffMu.Lock()
	defer fixtures.diffMu.Unlock()
	f := &fixtures
	if f.diffB != nil && f.diffK > k { // differing leaves only ever grow: start again
		f.diffB.Close()
		f.diffB = nil
	}
	if f.diffB == nil {
		t, _, err := buildParallel(context.Background(), FullDepth, benchBudget, fullCorpus(b).split(TokenOrder, runtime.GOMAXPROCS(0)))
		if err != nil {
			b.Fatal(err)
		}
		f.diffB, f.diffK, f.diffSkip, f.diffNext = t, 0, map[int]bool{}, 0
	}
	rows, err := extraRows(f.diffB, k-f.diffK, f.diffSkip, &f.diffNext)
	if err != nil {
		b.Fatal(err)
	}
	for i := range rows {
		if err := f.diffB.Add(&rows[i]); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.diffB.Hash(context.Background()); err != nil {
		b.Fatal(err)
	}
	f.diffK = k
	return a, f.diffB
}

func BenchmarkInnerLevels(b *testing.B) {
	ctx := context.Background()
	tree, leaves, want := fullTree(b)
	check := func(b *testing.B, what string, got []byte) {
		if !bytes.Equal(got, want[:]) {
			b.Fatalf("%s: root %x, grove %x", what, got, want)
		}
	}
	b.Run("grove", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			// Rehash: Hash of an already hashed tree does nothing.
			if err := tree.Rehash(ctx); err != nil {
				b.Fatal(err)
			}
		}
		got, err := tree.Root()
		if err != nil {
			b.Fatal(err)
		}
		check(b, "grove", got[:])
	})
	b.Run("pointer", func(b *testing.B) {
		b.ReportAllocs()
		ptrLeaves := pointerLeaves(leaves)
		var root *ptrNode
		for b.Loop() {
			root = buildPointer(ptrLeaves)
		}
		check(b, "pointer tree", root.hash[:])
	})
	b.Run("flat_sha256", func(b *testing.B) {
		b.ReportAllocs()
		f := newFlatTree(leaves, FullDepth)
		var root [32]byte
		for b.Loop() {
			root = f.hashSHA256()
		}
		check(b, "flat sha256", root[:])
	})
	b.Run("flat_gohashtree", func(b *testing.B) {
		b.ReportAllocs()
		f := newFlatTree(leaves, FullDepth)
		var (
			root [32]byte
			err  error
		)
		for b.Loop() {
			if root, err = f.hashGohashtree(); err != nil {
				b.Fatal(err)
			}
		}
		check(b, "flat gohashtree", root[:])
	})
	b.Run("compact", func(b *testing.B) {
		b.ReportAllocs()
		var (
			root []byte
			err  error
		)
		for b.Loop() {
			if root, err = compactRoot(leaves); err != nil {
				b.Fatal(err)
			}
		}
		check(b, "compact range", root)
	})
}

func BenchmarkRows(b *testing.B) {
	ctx := context.Background()
	c := fullCorpus(b)
	_, _, want := fullTree(b)
	perRow := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(c.Len()), "ns/row")
		b.ReportMetric(float64(c.Len())*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	}
	build := func(o Order) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				t, n, err := buildParallel(ctx, FullDepth, benchBudget, c.split(o, runtime.GOMAXPROCS(0)))
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				root, err := t.Root()
				t.Close()
				if err != nil || root != want || n != int64(c.Len()) {
					b.Fatalf("%s: root %x (%v) from %d rows; want %x from %d", o, root, err, n, want, c.Len())
				}
				b.StartTimer()
			}
			perRow(b)
		}
	}
	b.Run("sorted", build(TokenOrder))
	b.Run("random", build(RandomOrder))
	b.Run("load_one_reader", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			t, _, err := buildLoad(ctx, FullDepth, benchBudget, c.Source(TokenOrder, 0, c.Len()))
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			root, err := t.Root()
			t.Close()
			if err != nil || root != want {
				b.Fatalf("Load: root %x (%v), want %x", root, err, want)
			}
			b.StartTimer()
		}
		perRow(b)
	})
	b.Run("sha256_one_core", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, n := digestRows(c.Source(TokenOrder, 0, c.Len())); n != int64(c.Len()) {
				b.Fatalf("%d rows of %d", n, c.Len())
			}
		}
		perRow(b)
	})
}

func BenchmarkDiff(b *testing.B) {
	ctx := context.Background()
	for _, k := range diffKs {
		b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
			x, y := diffTrees(b, k)
			b.ReportAllocs()
			var res *engine.DiffResult
			for b.Loop() {
				var err error
				if res, err = engine.Diff(ctx, x, y); err != nil {
					b.Fatal(err)
				}
			}
			if res.DifferingLeaves != k {
				b.Fatalf("%d differing leaves, want %d", res.DifferingLeaves, k)
			}
			b.ReportMetric(float64(res.NodesCompared), "nodes")
		})
	}
}
