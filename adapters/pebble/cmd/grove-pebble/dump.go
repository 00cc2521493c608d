package main

import (
	"context"
	"io"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/jsonl"
	"github.com/antientropy/grove/internal/cli"
)

func runDump(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	fs := cli.NewFlagSet("dump")
	db := fs.String("db", "", "the Pebble database directory `DIR` (required)")
	rf := addRingFlags(fs)
	rate := addScanRate(fs)
	if err := cli.ParseNamed(fs, args); err != nil {
		return 0, err
	}
	// Opening builds a tree, so every row is checked before one is printed;
	// the shallowest tree does for that. A node of many ranges keeps its
	// trees, and checks that no row is outside its ranges.
	nf := nodeFlags{db: db, depth: &cli.Depth{Depth: 1}, ring: rf, scanRate: rate}
	if rf.set() {
		nf.depth = nil
	}
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
