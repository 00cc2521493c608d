package grovepebble_test

import (
	"context"
	"fmt"
	"os"

	grovepebble "github.com/antientropy/grove/adapters/pebble"
	"github.com/antientropy/grove/engine"
)

// A node over a new Pebble database: rows written through it, its tree
// kept in step, and a scrub that finds the tree agreeing with the disk.
func ExampleNode_Scrub() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "grovepebble-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	node, err := grovepebble.Open(ctx, dir, grovepebble.Options{Create: true, Depth: 8})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer node.Close()
	var rows []engine.Row
	for i := range 100 {
		rows = append(rows, engine.Row{Key: fmt.Appendf(nil, "user:%03d", i), Value: []byte("v"), TS: 1})
	}
	if _, err := node.Apply(ctx, rows); err != nil {
		fmt.Println(err)
		return
	}
	rep, err := node.Scrub(ctx, 0) // 0: no pace of its own
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d range, %d rows read, %d leaves corrected\n", rep.Ranges, rep.Rows, len(rep.Mismatches))
	// Output: 1 range, 100 rows read, 0 leaves corrected
}
