package engine

import (
	"context"
	"testing"

	"github.com/antientropy/grove/arena"
)

// BenchmarkSnapshot20 times a snapshot of a hashed depth-20 tree: what each
// side of a repair session pays to freeze its tree.
func BenchmarkSnapshot20(b *testing.B) {
	ctx := context.Background()
	t := filled20(b)
	b.SetBytes(t.Bytes())
	for b.Loop() {
		s, err := t.Snapshot(ctx)
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// BenchmarkLeafView20 times a frozen copy of only the leaves, what a
// repair session's view needs.
func BenchmarkLeafView20(b *testing.B) {
	ctx := context.Background()
	t := filled20(b)
	b.SetBytes(32 << 20)
	for b.Loop() {
		s, err := t.LeafView(ctx)
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// BenchmarkSums20 times the subtree sum of the root of a depth-20 tree: a
// read of all 2^20 leaves, the cost of a whole-tree sum in a session.
func BenchmarkSums20(b *testing.B) {
	ctx := context.Background()
	t := filled20(b)
	b.SetBytes(32 << 20)
	var d [1]Digest
	for b.Loop() {
		if err := t.Sums(ctx, 0, 0, d[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// filled20 returns a hashed depth-20 tree, closed when the benchmark ends,
// whose pages are real memory, as in a tree built from rows.
func filled20(b *testing.B) *Tree {
	b.Helper()
	t, err := New(Options{Depth: 20, Budget: arena.NewBudget(1 << 30)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { t.Close() })
	// Every leaf written directly (a fresh tree is marked for a full Hash),
	// so no page is the kernel's shared zero page.
	for i := range t.Leaves() {
		leaf := t.node(t.depth, i)
		leaf[0], leaf[1], leaf[2] = byte(i), byte(i>>8), byte(i>>16)
	}
	if err := t.Hash(context.Background()); err != nil {
		b.Fatal(err)
	}
	return t
}
