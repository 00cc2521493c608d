package engine_test

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
)

// Build a tree from rows added by any number of goroutines, then hash it and
// read its root.
func Example_build() {
	budget := arena.NewBudget(256 << 20) // shared by every tree of the process
	tree, err := engine.New(engine.Options{Depth: 10, Budget: budget})
	if err != nil {
		panic(err)
	}
	defer tree.Close()

	for i := range 1000 {
		row := engine.Row{Key: fmt.Appendf(nil, "user:%d", i), Value: []byte("v"), TS: 1700000000000000}
		if err := tree.Add(&row); err != nil {
			panic(err)
		}
	}
	if err := tree.Hash(context.Background()); err != nil {
		panic(err)
	}
	root, _ := tree.Root()
	fmt.Printf("%d rows in %d leaves, %d bytes off the Go heap, root %x…\n", tree.Rows(), tree.Leaves(), tree.Bytes(), root[:4])
	// Output: 1000 rows in 1024 leaves, 65504 bytes off the Go heap, root 4e025bdd…
}

// Diff two replicas' trees: it returns the token ranges to repair, and
// CompareKeys turns them into the exact keys.
func ExampleDiff() {
	ctx := context.Background()
	budget := arena.NewBudget(256 << 20)
	rowsA := []engine.Row{
		{Key: []byte("alice"), Value: []byte("1"), TS: 10},
		{Key: []byte("bob"), Value: []byte("2"), TS: 10},
		{Key: []byte("carol"), Value: []byte("3"), TS: 10},
	}
	rowsB := []engine.Row{
		{Key: []byte("alice"), Value: []byte("1"), TS: 10},
		{Key: []byte("bob"), Value: []byte("2"), TS: 10, Deleted: true}, // B saw a delete A missed
	}
	// Trees of different depths still compare exactly: the deeper one is folded.
	a := mustBuild(budget, 16, rowsA)
	defer a.Close()
	b := mustBuild(budget, 12, rowsB)
	defer b.Close()

	res, err := engine.Diff(ctx, a, b)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d differing leaves at depth %d, %d node pairs compared\n", res.DifferingLeaves, res.Depth, res.NodesCompared)

	keys, err := engine.CompareKeys(ctx, a.Partitioner(), res.Ranges, &rowSlice{rows: rowsA}, &rowSlice{rows: rowsB})
	if err != nil {
		panic(err)
	}
	for _, k := range keys.OnlyHere {
		fmt.Printf("only in A: %s\n", k.Key)
	}
	for _, k := range keys.Different {
		fmt.Printf("different: %s\n", k.Key)
	}
	// Output:
	// 2 differing leaves at depth 12, 45 node pairs compared
	// only in A: carol
	// different: bob
}

// Close returns a tree's memory to its budget; every later call fails with
// ErrClosed rather than touching unmapped memory.
func ExampleTree_Close() {
	budget := arena.NewBudget(64 << 20)
	tree, err := engine.New(engine.Options{Depth: 20, Budget: budget})
	if err != nil {
		panic(err)
	}
	fmt.Println("in use:", arena.FormatBytes(budget.Used()))
	_, err = engine.New(engine.Options{Depth: 20, Budget: budget})
	fmt.Println("a second depth-20 tree:", errors.Is(err, arena.ErrBudgetExceeded))

	tree.Close()
	fmt.Println("after Close:", arena.FormatBytes(budget.Used()))
	_, err = tree.Root()
	fmt.Println(err)
	// Output:
	// in use: 64.0 MiB
	// a second depth-20 tree: true
	// after Close: 0 B
	// engine: tree closed
}

func mustBuild(budget *arena.Budget, depth int, rows []engine.Row) *engine.Tree {
	t, err := engine.New(engine.Options{Depth: depth, Budget: budget})
	if err != nil {
		panic(err)
	}
	if _, err := t.Load(context.Background(), &rowSlice{rows: rows}, 0); err != nil {
		panic(err)
	}
	if err := t.Hash(context.Background()); err != nil {
		panic(err)
	}
	return t
}

// rowSlice is an engine.RowSource over rows in memory.
type rowSlice struct {
	rows []engine.Row
	i    int
}

func (s *rowSlice) NextRow(r *engine.Row) error {
	if s.i == len(s.rows) {
		return io.EOF
	}
	*r = s.rows[s.i]
	s.i++
	return nil
}

// Keep a tree live as rows are written, and freeze it for a reader: a
// Snapshot (a hashed View) to diff or save while writes go on, or a LeafView
// (the leaves alone) for a repair session.
func ExampleTree_Snapshot() {
	ctx := context.Background()
	budget := arena.NewBudget(256 << 20)
	live, err := engine.New(engine.Options{Depth: 8, Budget: budget})
	if err != nil {
		panic(err)
	}
	defer live.Close()
	old := engine.Row{Key: []byte("user:1"), Value: []byte("a"), TS: 1}
	live.Update(nil, &old) // insert
	live.Hash(ctx)

	before, err := live.Snapshot(ctx)
	if err != nil {
		panic(err)
	}
	defer before.Close()
	newer := engine.Row{Key: []byte("user:1"), Value: []byte("b"), TS: 2}
	live.Update(&old, &newer) // a write replaces the row: O(1) on one leaf
	live.Hash(ctx)            // rehashes only the path above that leaf

	res, err := engine.Diff(ctx, before, live)
	if err != nil {
		panic(err)
	}
	leaves, err := live.LeafView(ctx)
	if err != nil {
		panic(err)
	}
	defer leaves.Close()
	var sum [1]engine.Digest
	leaves.Sums(ctx, 0, 0, sum[:])
	fmt.Println("differing leaves:", res.DifferingLeaves, "rows:", before.Rows(), live.Rows())
	fmt.Println("the leaf view sums the new row:", sum[0] == engine.RowDigest(&newer))
	// Output:
	// differing leaves: 1 rows: 1 1
	// the leaf view sums the new row: true
}
