package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/jsonl"

	grovepebble "github.com/antientropy/grove/adapters/pebble"
)

// loadBatchBytes bounds the key and value bytes of one batch: large enough
// that the fsync per batch is amortised, small enough to hold in memory.
const loadBatchBytes = 64 << 20

func runLoad(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	db := fs.String("db", "", "the Pebble database directory, created if absent (required)")
	rowsPath := fs.String("rows", "", "JSON Lines rows to write, - for stdin (required)")
	batchRows := fs.Int("batch-rows", 100_000, "rows per atomic batch")
	if err := parse(fs, args); err != nil {
		return 0, err
	}
	if *db == "" || *rowsPath == "" {
		return 0, errors.New("--db and --rows are required")
	}
	if *batchRows < 1 {
		return 0, fmt.Errorf("--batch-rows %d: want at least 1", *batchRows)
	}
	in := io.Reader(os.Stdin)
	name := "stdin"
	if *rowsPath != "-" {
		f, err := os.Open(*rowsPath)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		in, name = f, *rowsPath
	}
	// The tree is not used here, only kept up to date, so the shallowest
	// will do; the next Open sizes its own from the row count Close records.
	node, err := grovepebble.Open(ctx, *db, grovepebble.Options{Depth: 1})
	if err != nil {
		return 0, err
	}
	read, written, err := load(ctx, node, jsonl.NewReader(bufio.NewReaderSize(in, 1<<20)), *batchRows)
	held := node.Rows()
	if cerr := node.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w (%d rows written before)", name, err, written)
	}
	fmt.Fprintf(stdout, "loaded %d rows from %s: %d written, %d superseded by a version already stored or loaded; the database holds %d rows\n",
		read, name, written, read-int64(written), held)
	return exitOK, nil
}

// load writes the rows of r into node in batches through Apply, which reads
// each key's stored version first and keeps the winner, as a replica does.
func load(ctx context.Context, node *grovepebble.Node, r *jsonl.Reader, batchRows int) (read int64, written int, err error) {
	var (
		rows  []engine.Row
		slab  []byte
		bytes int
		row   engine.Row
	)
	flush := func() error {
		n, err := node.Apply(ctx, rows)
		written += n
		rows, slab, bytes = rows[:0], nil, 0
		return err
	}
	for {
		err := r.NextRow(&row)
		if err == io.EOF {
			break
		}
		if err != nil {
			return read, written, err
		}
		read++
		// The reader reuses its buffers, so the batch keeps copies, in one
		// slab per batch (a new slab when it fills: rows point into the old).
		if cap(slab)-len(slab) < len(row.Key)+len(row.Value) {
			slab = make([]byte, 0, max(1<<20, len(row.Key)+len(row.Value)))
		}
		k := len(slab)
		slab = append(slab, row.Key...)
		v := len(slab)
		slab = append(slab, row.Value...)
		rows = append(rows, engine.Row{Key: slab[k:v:v], Value: slab[v:len(slab):len(slab)], TS: row.TS, Deleted: row.Deleted})
		bytes += len(row.Key) + len(row.Value)
		if len(rows) >= batchRows || bytes >= loadBatchBytes {
			if err := flush(); err != nil {
				return read, written, err
			}
		}
	}
	if len(rows) > 0 {
		if err := flush(); err != nil {
			return read, written, err
		}
	}
	return read, written, nil
}
