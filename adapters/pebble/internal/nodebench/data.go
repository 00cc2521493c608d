package nodebench

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	grovepebble "github.com/antientropy/grove/adapters/pebble"
	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/ring"
	"github.com/antientropy/grove/ring/ringtest"
)

// The rows every measurement uses: fixed sizes and a fixed seed, so that
// two runs, or two builds of grove, time the same work.
const (
	keyBytes   = 16
	valueBytes = 90
	dataSeed   = 15
	// storedBytes is a row's stored key and value: prefix and token, the
	// key; flags, timestamp and checksum, the value (doc.go of grovepebble), with no
	// generation of birth, as a node of one range writes it (writeDB).
	storedBytes = 1 + 8 + keyBytes + 1 + 8 + 4 + valueBytes
)

// The ring the node of many ranges takes its ranges from: a node of six,
// eight vnodes each, three replicas, so that node n1 holds about half the
// ring in a few dozen ranges of uneven widths, as a real node does.
const (
	ringNodes  = 6
	ringTokens = 8
	ringRF     = 3
	ringSeed   = 15
	nodeID     = "n1"
)

// dataset is the rows of a benchmark database, held in memory in the order
// the database keeps them (token, then key), and the ranges of the node
// that holds them.
type dataset struct {
	p      token.Partitioner
	ranges []token.Range
	rows   []engine.Row
	tokens []token.Token // the token of each row
}

// nodeRanges returns the ranges node n1 replicates in the benchmark ring.
func nodeRanges() ([]token.Range, error) {
	r, err := ring.Parse(ringtest.JSON(ringNodes, ringTokens, ringRF, ringSeed))
	if err != nil {
		return nil, fmt.Errorf("nodebench: the benchmark ring: %w", err)
	}
	reps, err := r.RangesOf(nodeID)
	if err != nil {
		return nil, fmt.Errorf("nodebench: the benchmark ring: %w", err)
	}
	return ring.TokenRanges(reps), nil
}

// makeDataset makes n rows of random keys whose tokens lie in the node's
// ranges (keys that fall outside are drawn again), each with a random value.
func makeDataset(n int) (*dataset, error) {
	rs, err := nodeRanges()
	if err != nil {
		return nil, err
	}
	d := &dataset{p: token.Murmur3{}, ranges: rs, rows: make([]engine.Row, 0, n), tokens: make([]token.Token, 0, n)}
	rnd := rand.New(rand.NewPCG(dataSeed, dataSeed))
	// One allocation for every row's bytes.
	buf := make([]byte, n*(keyBytes+valueBytes))
	type tokRow struct {
		tok token.Token
		row engine.Row
	}
	all := make([]tokRow, 0, n)
	for len(all) < n {
		b := buf[len(all)*(keyBytes+valueBytes):][:keyBytes+valueBytes]
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		key := b[:keyBytes:keyBytes]
		tok := d.p.Token(key)
		if !inRanges(rs, tok) {
			continue
		}
		all = append(all, tokRow{tok, engine.Row{Key: key, Value: b[keyBytes:], TS: int64(len(all)) + 1}})
	}
	slices.SortFunc(all, func(a, b tokRow) int {
		if c := cmp.Compare(a.tok, b.tok); c != 0 {
			return c
		}
		return bytes.Compare(a.row.Key, b.row.Key)
	})
	// The rows' bytes are laid out again in token order, as a scan
	// reads them: hashing rows scattered over the buffer would time cache
	// misses, not hashing.
	sorted := make([]byte, 0, len(buf))
	for _, r := range all {
		off := len(sorted)
		sorted = append(append(sorted, r.row.Key...), r.row.Value...)
		row := r.row
		row.Key = sorted[off : off+keyBytes : off+keyBytes]
		row.Value = sorted[off+keyBytes : off+keyBytes+valueBytes : off+keyBytes+valueBytes]
		d.rows = append(d.rows, row)
		d.tokens = append(d.tokens, r.tok)
	}
	return d, nil
}

func inRanges(rs []token.Range, tok token.Token) bool {
	_, found := slices.BinarySearchFunc(rs, tok, token.Range.Compare)
	return found
}

// loadBatch is how many rows each Apply of the load writes.
const loadBatch = 20_000

// writeDB writes the dataset into a new node database in dir through the
// node's own write path, as a node of one range (whose writes keep no
// forest, so a later open with Ranges builds every tree from the rows),
// then compacts it into sstables: the layout of a node that has been
// serving its data for a while.
func writeDB(ctx context.Context, dir string, d *dataset) error {
	n, err := grovepebble.Open(ctx, dir, grovepebble.Options{Create: true, Depth: 1, Budget: arena.NewBudget(64 << 20), Partitioner: d.p})
	if err != nil {
		return fmt.Errorf("nodebench: creating the database: %w", err)
	}
	for i := 0; i < len(d.rows); i += loadBatch {
		if _, err := n.Apply(ctx, d.rows[i:min(i+loadBatch, len(d.rows))]); err != nil {
			n.Close()
			return fmt.Errorf("nodebench: loading rows %d on: %w", i, err)
		}
	}
	if err := n.Close(); err != nil {
		return fmt.Errorf("nodebench: closing the loaded database: %w", err)
	}
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}, ErrorIfNotExists: true, Merger: grovepebble.Merger})
	if err != nil {
		return fmt.Errorf("nodebench: opening the database to compact it: %w", err)
	}
	err = db.Flush()
	if err == nil {
		// Everything: the rows' prefix 0x01 and the node's metadata under
		// 0x00.
		err = db.Compact(ctx, []byte{0x00}, []byte{0xff}, true)
	}
	if err = errors.Join(err, db.Close()); err != nil {
		return fmt.Errorf("nodebench: compacting the database: %w", err)
	}
	return nil
}

// quietLogger drops Pebble's informational messages; a benchmark prints
// its own.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	pebble.DefaultLogger.Fatalf(format, args...)
}
