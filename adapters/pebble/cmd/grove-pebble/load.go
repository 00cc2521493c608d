package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/jsonl"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/internal/cli"

	grovepebble "github.com/antientropy/grove/adapters/pebble"
)

// loadBatchBytes bounds the key and value bytes of one batch: large enough
// that the fsync per batch is amortised, small enough to hold in memory.
const loadBatchBytes = 64 << 20

func runLoad(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	fs := cli.NewFlagSet("load")
	db := fs.String("db", "", "the Pebble database directory `DIR`, created if absent or empty (required)")
	rowsPath := fs.String("rows", "", "JSON Lines rows to write (`FILE`, - for stdin; required)")
	batchRows := fs.Int("batch-rows", 100_000, "rows per atomic batch (`N`)")
	cf := addCheckpointFlags(fs, "written")
	rf := addRingFlags(fs)
	mbps := addScanRate(fs)
	if err := cli.ParseNamed(fs, args); err != nil {
		return 0, err
	}
	rate, err := scanRate(mbps)
	if err != nil {
		return 0, err
	}
	nr, err := rf.load()
	if err != nil {
		return 0, err
	}
	if *db == "" || *rowsPath == "" {
		return 0, errors.New("--db and --rows are required")
	}
	if *batchRows < 1 {
		return 0, fmt.Errorf("--batch-rows %d: want at least 1", *batchRows)
	}
	policy, err := cf.policy()
	if err != nil {
		return 0, err
	}
	in, name := os.Stdin, "stdin"
	if *rowsPath != "-" {
		f, err := os.Open(*rowsPath)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		in, name = f, *rowsPath
	}
	rows, counts, cleanup, err := checkRows(ctx, in, nr)
	if err != nil {
		return 0, fmt.Errorf("%s: %w (nothing written)", name, err)
	}
	defer cleanup()
	// The tree is not used here, only kept up to date, so the shallowest
	// will do; the next Open sizes its own from the row count Close records.
	// A node of many ranges keeps its trees instead: they are planned for
	// the rows they had when built, so Rebalance sizes them for the rows
	// loaded.
	opts := grovepebble.Options{Depth: 1, Create: true}
	if nr != nil {
		opts = nr.options(grovepebble.Options{Create: true})
		// New trees are sized for the rows about to arrive, so that a
		// load killed midway rereads only marked leaves at the next open.
		opts.RangeRows = func(r token.Range) int64 { return counts[r] }
		opts.Checkpoints = policy
	}
	opts.ScanRate = rate
	node, err := grovepebble.Open(ctx, *db, opts)
	if err != nil {
		return 0, err
	}
	read, written, err := load(ctx, node, jsonl.NewReader(bufio.NewReaderSize(rows, 1<<20)), *batchRows, nr)
	if err == nil && nr != nil {
		_, err = node.Rebalance(ctx)
	}
	held := node.Rows()
	if cerr := node.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w (%d rows written before)", name, err, written)
	}
	fmt.Fprintf(stdout, "loaded %d rows from %s: %d keys written (a key's rows in one batch count once; of a key's versions the store keeps the newest); the database holds %d rows\n",
		read, name, written, held)
	return exitOK, nil
}

// checkRows is load's first pass: it reads every row of f and checks it as
// the writing pass will, so that a bad row stops load before anything is
// written — rather than after the batches before its own. Memory stays
// bounded: one row is held at a time. It returns the file to write from: f
// rewound, or — when f is not a regular file (stdin, a pipe) and so cannot
// be read twice — a temporary copy made as it was checked, which the
// returned func removes.
func checkRows(ctx context.Context, f *os.File, nr *nodeRing) (*os.File, map[token.Range]int64, func(), error) {
	release := func() {}
	in, rows := io.Reader(f), f
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		spool, err := os.CreateTemp("", "grove-pebble-load-*.jsonl")
		if err != nil {
			return nil, nil, nil, fmt.Errorf("a copy of the rows to read twice: %w", err)
		}
		release = func() {
			spool.Close()
			os.Remove(spool.Name())
		}
		in, rows = io.TeeReader(f, spool), spool
	}
	counts, err := checkEach(ctx, in, nr)
	if err != nil {
		release()
		return nil, nil, nil, err
	}
	if _, err := rows.Seek(0, io.SeekStart); err != nil {
		release()
		return nil, nil, nil, err
	}
	return rows, counts, release, nil
}

// checkEach reads every row of in and checks it; with a ring it also counts
// the rows of each of the node's ranges.
func checkEach(ctx context.Context, in io.Reader, nr *nodeRing) (map[token.Range]int64, error) {
	r := jsonl.NewReader(bufio.NewReaderSize(in, 1<<20))
	var row engine.Row
	counts := map[token.Range]int64{}
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		err := r.NextRow(&row)
		if err == io.EOF {
			return counts, nil
		}
		if err == nil {
			err = checkRow(r.Line(), &row, nr)
		}
		if err != nil {
			return nil, err
		}
		if nr != nil {
			counts[nr.rangeOf(nr.ring.Partitioner().Token(row.Key))]++
		}
	}
}

// checkRow refuses, naming its line, a row the node would refuse in Apply
// — where the error could only name the row's place in its batch. Without
// a ring the node load opens serves the whole ring, so no row is out of
// its range; with one, a row in none of the node's ranges is refused.
func checkRow(line int, row *engine.Row, nr *nodeRing) error {
	if len(row.Key) > engine.MaxKeyBytes {
		return fmt.Errorf("line %d: %w: %d bytes, at most %d", line, grovepebble.ErrKeyTooLarge, len(row.Key), engine.MaxKeyBytes)
	}
	return nr.checkInRanges(line, row.Key)
}

// load writes the rows of r into node in batches through Apply, whose merge
// of a key's versions keeps the winner, as a replica does.
func load(ctx context.Context, node *grovepebble.Node, r *jsonl.Reader, batchRows int, nr *nodeRing) (read int64, written int, err error) {
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
		if err == nil {
			// Checked in the first pass already; checked again in case
			// the file changed since.
			err = checkRow(r.Line(), &row, nr)
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
