package forest_test

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/rowstore"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/forest"
	"github.com/antientropy/grove/ring"
)

// A node keeps one tree per range it replicates: built once from its rows,
// kept live through the write path, and reopened after a clean close
// without reading a row.
func Example() {
	ctx := context.Background()
	r, _ := ring.Read(strings.NewReader(`{"partitioner": "murmur3", "replication_factor": 2, "nodes": [
		{"id": "n1", "address": "http://127.0.0.1:7101", "tokens": ["-4000000000000000000", "4000000000000000000"]},
		{"id": "n2", "address": "http://127.0.0.1:7102", "tokens": ["0"]},
		{"id": "n3", "address": "http://127.0.0.1:7103", "tokens": ["8000000000000000000"]}]}`))
	reps, _ := r.RangesOf("n1")
	var ranges []token.Range
	for _, rep := range reps {
		ranges = append(ranges, rep.Range)
	}

	store := rowstore.New(token.Murmur3{}) // the node's storage engine
	var rows []engine.Row
	for i := range 1000 {
		rows = append(rows, engine.Row{Key: fmt.Appendf(nil, "user:%d", i), Value: []byte("v"), TS: 1})
	}
	store.Apply(ctx, rows, nil)

	dir, _ := os.MkdirTemp("", "forest")
	defer os.RemoveAll(dir)
	opts := forest.Options{Budget: arena.NewBudget(64 << 20), Ranges: ranges, Store: store}
	f, err := forest.Open(ctx, dir, opts)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d ranges built, %d row reads\n", f.Stats().Built, f.Stats().RowsScanned)

	// A write: its mark goes into the storage batch with the row; once the
	// batch commits, the tree follows.
	row := engine.Row{Key: []byte("user:1000"), Value: []byte("v"), TS: 2}
	mark, _ := f.Mark(row.Key, forest.RowDelta(nil, &row))
	store.Apply(ctx, []engine.Row{row}, nil) // with mark, in a real store
	f.Update(nil, &row)
	fmt.Printf("mark: generation %d, %+d row\n", mark.Generation, mark.Rows)

	g, _ := f.Close(ctx) // marks of generation ≤ g may now be deleted
	f, _ = forest.Open(ctx, dir, opts)
	defer f.Close(ctx)
	fmt.Printf("closed at generation %d; reopened: %d trees reused, %d row reads\n", g, f.Stats().Reused, f.Stats().RowsScanned)
	// Output:
	// 5 ranges built, 2000 row reads
	// mark: generation 1, +1 row
	// closed at generation 1; reopened: 5 trees reused, 0 row reads
}
