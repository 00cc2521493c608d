package main

import (
	"context"
	"flag"
	"io"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/jsonl"
)

func runDump(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	fs := flag.NewFlagSet("dump", flag.ContinueOnError)
	db := fs.String("db", "", "the Pebble database directory (required)")
	if err := parse(fs, args); err != nil {
		return 0, err
	}
	// Opening builds a tree, so every row is checked before one is printed;
	// the shallowest tree does for that.
	nf := nodeFlags{db: db, depth: depthFlag{1}, budget: new("64MiB")}
	node, err := nf.open(ctx)
	if err != nil {
		return 0, err
	}
	defer node.Close()
	w := jsonl.NewWriter(stdout)
	if err := node.Scan(ctx, node.Shape().Range, func(r *engine.Row) error { return w.WriteRow(r) }); err != nil {
		return 0, err
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	return exitOK, node.Close()
}
