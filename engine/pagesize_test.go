package engine

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/layout"
)

// TestOpenAtLargerPages opens tree files through budgets whose pages are
// 16 KiB and 64 KiB, as on Apple silicon and some arm64 kernels, where the
// nodes' file offset (4096) is no page boundary: read-only and writable,
// both layouts, and the result equals the tree that was saved. Mapping at
// the nodes' offset, as grove once did, is refused at those page sizes
// (the arena check below), so this test fails if Open goes back to it.
func TestOpenAtLargerPages(t *testing.T) {
	ctx := context.Background()
	rows := randomRows(rand.New(rand.NewPCG(5, 6)), 3000)
	for _, page := range []int{os.Getpagesize(), 16 << 10, 64 << 10} {
		for _, l := range []layout.Layout{layout.BFS{}, layout.Blocked{}} {
			src, err := New(Options{Depth: 10, Layout: l, Budget: newBudget()})
			if err != nil {
				t.Fatal(err)
			}
			for i := range rows {
				src.Add(&rows[i])
			}
			src.Hash(ctx)
			want, _ := src.Root()
			path := filepath.Join(t.TempDir(), "t.tree")
			if err := src.Save(path); err != nil {
				t.Fatal(err)
			}
			src.Close()

			b, err := arena.NewBudgetPages(1<<30, page)
			if err != nil {
				t.Fatal(err)
			}
			ro, err := Open(path, b)
			if err != nil {
				t.Fatalf("page %d, %s: Open: %v", page, l.Name(), err)
			}
			if err := ro.Verify(ctx); err != nil {
				t.Fatalf("page %d, %s: Verify: %v", page, l.Name(), err)
			}
			if got, _ := ro.Root(); got != want {
				t.Fatalf("page %d, %s: root differs", page, l.Name())
			}
			if used := b.Used(); used%int64(page) != 0 || used < int64(headerSize)+ro.Bytes() {
				t.Fatalf("page %d: charged %d, want a multiple of the page covering header and nodes", page, used)
			}
			ro.Close()

			w, err := OpenWritable(path, b)
			if err != nil {
				t.Fatalf("page %d, %s: OpenWritable: %v", page, l.Name(), err)
			}
			extra := Row{Key: []byte("one more"), Value: []byte("v"), TS: 1}
			if err := w.Update(nil, &extra); err != nil {
				t.Fatal(err)
			}
			if err := w.Hash(ctx); err != nil {
				t.Fatal(err)
			}
			if err := w.Checkpoint(); err != nil {
				t.Fatal(err)
			}
			after, _ := w.Root()
			w.Close()
			again, err := Open(path, b)
			if err != nil {
				t.Fatal(err)
			}
			if err := again.Verify(ctx); err != nil {
				t.Fatalf("page %d, %s: after a writable update: %v", page, l.Name(), err)
			}
			if got, _ := again.Root(); got != after || got == want {
				t.Fatalf("page %d, %s: the update did not reach the file", page, l.Name())
			}
			again.Close()
			if b.Used() != 0 {
				t.Fatalf("page %d: %d bytes still charged", page, b.Used())
			}
		}
	}
}

// TestMapAtNodeOffsetRefusedAtLargePages pins why Open maps from offset 0.
func TestMapAtNodeOffsetRefusedAtLargePages(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(1 << 20)
	b, _ := arena.NewBudgetPages(1<<30, 64<<10)
	if _, err := arena.MapFile(b, f, headerSize, 4096, false); !errors.Is(err, arena.ErrInvalidSize) {
		t.Fatalf("MapFile at offset %d with 64 KiB pages: %v, want ErrInvalidSize", headerSize, err)
	}
}
