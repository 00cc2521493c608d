package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/layout"
)

// BenchmarkColdDiff compares the layouts where they differ: a k = 1 diff of
// two depth-20 tree files whose pages are not in memory (dropped from the
// page cache before every run), as after a restart. It reports the page
// faults the diff takes (major: read from disk; minor: found in the page
// cache, e.g. by readahead) and its time.
//
//	go test -run '^$' -bench ColdDiff -benchtime 20x ./engine/
func BenchmarkColdDiff(b *testing.B) {
	ctx := context.Background()
	budget := arena.NewBudget(1 << 30)
	f := makeFlatRows(1<<17, false)
	for _, l := range []layout.Layout{layout.BFS{}, layout.Blocked{}} {
		dir := b.TempDir()
		paths := [2]string{filepath.Join(dir, "a.tree"), filepath.Join(dir, "b.tree")}
		for i, p := range paths {
			tr, err := New(Options{Depth: 20, Layout: l, Budget: budget})
			if err != nil {
				b.Fatal(err)
			}
			tr.AddFrom(ctx, &flatSource{f: f, end: f.n()})
			if i == 1 {
				tr.Add(&Row{Key: []byte("the one difference")})
			}
			tr.Hash(ctx)
			if err := tr.Save(p); err != nil {
				b.Fatal(err)
			}
			tr.Close()
		}
		b.Run(l.Name(), func(b *testing.B) {
			var minflt, majflt int64
			var elapsed time.Duration
			for range b.N {
				for _, p := range paths {
					dropCache(b, p)
				}
				ta, err := Open(paths[0], budget)
				if err != nil {
					b.Fatal(err)
				}
				tb, err := Open(paths[1], budget)
				if err != nil {
					b.Fatal(err)
				}
				var before, after unix.Rusage
				unix.Getrusage(unix.RUSAGE_SELF, &before)
				start := time.Now()
				res, err := Diff(ctx, ta, tb)
				elapsed += time.Since(start)
				unix.Getrusage(unix.RUSAGE_SELF, &after)
				if err != nil || res.DifferingLeaves != 1 {
					b.Fatalf("diff: %v, %v", res, err)
				}
				minflt += after.Minflt - before.Minflt
				majflt += after.Majflt - before.Majflt
				ta.Close()
				tb.Close()
			}
			b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N), "diff-ns/op")
			b.ReportMetric(float64(minflt)/float64(b.N), "minflt/op")
			b.ReportMetric(float64(majflt)/float64(b.N), "majflt/op")
		})
	}
}

// dropCache evicts a file's pages from the page cache (they are clean:
// Save fsynced them), so the next mapping reads them from disk.
func dropCache(b *testing.B, path string) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		b.Fatal(fmt.Errorf("fadvise: %w", err))
	}
}
