package nodebench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	grovepebble "github.com/antientropy/grove/adapters/pebble"
	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
)

// WriteBatches are the batch sizes Write measures: the small synced
// batches of single-row writes coalesced by a client, and the larger ones
// of a bulk writer or a repair.
var WriteBatches = []int{16, 256}

// The write path's targets (issue 15): the foreground at 256 rows a batch,
// and the sustained cost at 256 and at 16.
const (
	WriteFgTarget256 = 1.2
	WriteTarget256   = 2
	WriteTarget16    = 3
)

// WriteFigures are the node's write path against plain Pebble, per batch
// size.
type WriteFigures struct {
	// Rows is how many rows each pass writes, into a new database.
	Rows int
	Reps int
	// ByBatch has one entry per size in WriteBatches.
	ByBatch []WriteAt
}

// WriteAt is the medians of one batch size's passes.
type WriteAt struct {
	Batch int
	// Plain is the time to write every row in synced batches with Pebble
	// alone; Foreground the time until the node's last batch was durable
	// (Apply returned); Sustained that plus bringing every tree up to date
	// with the writes (the inner levels hashed), after which each tree
	// equals a rebuild from the rows.
	Plain, Foreground, Sustained time.Duration
}

// FgRatio is the foreground time over plain's.
func (w WriteAt) FgRatio() float64 { return ratio(w.Foreground, w.Plain) }

// Ratio is the sustained time over plain's.
func (w WriteAt) Ratio() float64 { return ratio(w.Sustained, w.Plain) }

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Figures names the figures: write_ratio_N and write_fg_ratio_N for each
// batch size N, and the rows/s of each side.
func (f WriteFigures) Figures() []Figure {
	var out []Figure
	for _, w := range f.ByBatch {
		perS := func(d time.Duration) float64 { return rowsPerS(f.Rows, d) }
		out = append(out,
			Figure{fmt.Sprintf("write_fg_ratio_%d", w.Batch), w.FgRatio()},
			Figure{fmt.Sprintf("write_ratio_%d", w.Batch), w.Ratio()},
			Figure{fmt.Sprintf("write_plain_rows_per_s_%d", w.Batch), perS(w.Plain)},
			Figure{fmt.Sprintf("write_fg_rows_per_s_%d", w.Batch), perS(w.Foreground)},
			Figure{fmt.Sprintf("write_sustained_rows_per_s_%d", w.Batch), perS(w.Sustained)},
		)
	}
	return out
}

// Write measures the node's write path: every row of a dataset, in random
// order, written in synced batches of each size in WriteBatches, once with
// plain Pebble Set batches carrying the rows' stored keys and values (the
// floor) and once through grovepebble.Node.Apply on a new node of the
// benchmark ring's ranges, alternately, each pass into a new database
// opened with the same Pebble options (bloom filters, a block cache of
// grovepebble.DefaultBlockCache).
//
// Every node pass is checked, untimed: the node must count every row and
// each range's tree must have the root of an independent build from the
// rows in memory. A pass that did less work fails Write.
func Write(ctx context.Context, opts Options) (WriteFigures, error) {
	_, reps := opts.sizes()
	rows := writeRowsCap(opts)
	logf(opts.Log, "write: making %d rows", rows)
	d, err := makeDataset(rows)
	if err != nil {
		return WriteFigures{}, err
	}
	order := writeOrder(d)

	tmp, err := os.MkdirTemp(opts.Dir, "grove-nodebench-")
	if err != nil {
		return WriteFigures{}, fmt.Errorf("nodebench: %w", err)
	}
	defer os.RemoveAll(tmp)
	f := WriteFigures{Rows: rows, Reps: reps}
	pass := 0
	dir := func() string {
		pass++
		return filepath.Join(tmp, fmt.Sprint(pass))
	}
	for _, size := range WriteBatches {
		var plain, fg, sus []time.Duration
		for rep := range reps {
			sides := []func() error{
				func() error {
					dt, err := plainWrites(ctx, dir(), d, order, size)
					plain = append(plain, dt)
					return err
				},
				func() error {
					f, s, err := nodeWrites(ctx, dir(), d, order, size)
					fg, sus = append(fg, f), append(sus, s)
					return err
				},
			}
			if rep%2 == 1 {
				sides[0], sides[1] = sides[1], sides[0]
			}
			for _, side := range sides {
				if err := side(); err != nil {
					return WriteFigures{}, err
				}
			}
			logf(opts.Log, "write: batch %d, rep %d/%d: plain %v, node %v until durable, %v until its trees are current",
				size, rep+1, reps, plain[rep].Round(time.Millisecond), fg[rep].Round(time.Millisecond), sus[rep].Round(time.Millisecond))
		}
		f.ByBatch = append(f.ByBatch, WriteAt{Batch: size, Plain: median(plain), Foreground: median(fg), Sustained: median(sus)})
	}
	return f, nil
}

// writeOrder is d's rows in random key order, as a client writes them.
func writeOrder(d *dataset) []engine.Row {
	order := make([]engine.Row, len(d.rows))
	copy(order, d.rows)
	rnd := rand.New(rand.NewPCG(dataSeed, 1))
	rnd.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	return order
}

// writeRowsCap bounds the rows of a write pass: every pass writes into a
// new database, and at 16 rows a batch a full dataset would take minutes
// a pass.
func writeRowsCap(opts Options) int {
	if opts.Rows > 0 {
		return opts.Rows
	}
	if opts.Quick {
		return QuickWriteRows
	}
	return WriteRows
}

// WriteRows is the size of a full write pass (issue 15 names a million
// writes), QuickWriteRows of a quick one.
const (
	WriteRows      = 1_000_000
	QuickWriteRows = 100_000
)

// pebbleOptions are the options a Node opens Pebble with by default, for
// the plain side; the caller releases the cache once the database closed.
func pebbleOptions() *pebble.Options {
	o := &pebble.Options{Logger: quietLogger{}, Cache: pebble.NewCache(grovepebble.DefaultBlockCache)}
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return o
}

// plainWrites writes rows with Pebble alone, in synced batches of size,
// with the stored keys and values a node writes (doc.go of grovepebble:
// prefix 0x01, the token big-endian with its sign bit flipped, the key;
// flags, timestamp, value), and returns the time it took.
func plainWrites(ctx context.Context, dir string, d *dataset, rows []engine.Row, size int) (time.Duration, error) {
	o := pebbleOptions()
	db, err := pebble.Open(dir, o)
	o.Cache.Unref()
	if err != nil {
		return 0, fmt.Errorf("nodebench: plain: %w", err)
	}
	var k, v []byte
	start := time.Now()
	for i := 0; i < len(rows); i += size {
		if err := ctx.Err(); err != nil {
			db.Close()
			return 0, err
		}
		b := db.NewBatch()
		for j := i; j < min(i+size, len(rows)); j++ {
			r := &rows[j]
			k = append(k[:0], 0x01)
			k = binary.BigEndian.AppendUint64(k, uint64(d.p.Token(r.Key))^(1<<63))
			k = append(k, r.Key...)
			var flags byte
			if r.Deleted {
				flags = 1
			}
			v = append(v[:0], flags)
			v = binary.BigEndian.AppendUint64(v, uint64(r.TS))
			v = append(v, r.Value...)
			if err := b.Set(k, v, nil); err != nil {
				b.Close()
				db.Close()
				return 0, fmt.Errorf("nodebench: plain: %w", err)
			}
		}
		err := b.Commit(pebble.Sync)
		b.Close()
		if err != nil {
			db.Close()
			return 0, fmt.Errorf("nodebench: plain: %w", err)
		}
	}
	dt := time.Since(start)
	if err := db.Close(); err != nil {
		return 0, fmt.Errorf("nodebench: plain: %w", err)
	}
	return dt, os.RemoveAll(dir)
}

// nodeWrites writes rows through a new node's Apply in batches of size,
// and returns the time until the last batch was durable and the time until
// every tree was current; then, untimed, it checks the node against want.
func nodeWrites(ctx context.Context, dir string, d *dataset, rows []engine.Row, size int) (fg, sustained time.Duration, err error) {
	return nodeWritesScrubbed(ctx, dir, d, rows, size, 0)
}

// nodeWritesScrubbed is nodeWrites on a node scrubbing in the background
// at scrubRate bytes a second, if positive.
func nodeWritesScrubbed(ctx context.Context, dir string, d *dataset, rows []engine.Row, size int, scrubRate float64) (fg, sustained time.Duration, err error) {
	// The trees are planned for the rows about to arrive, as on a node
	// that already holds its data: a node growing from empty also
	// rebuilds each range as its rows double, a cost of growth and not of
	// the write path.
	perRange := map[token.Range]int64{}
	for _, tok := range d.tokens {
		i, _ := slices.BinarySearchFunc(d.ranges, tok, token.Range.Compare)
		perRange[d.ranges[i]]++
	}
	n, err := grovepebble.Open(ctx, dir, grovepebble.Options{Create: true, Ranges: d.ranges, Partitioner: d.p, NodeID: nodeID,
		Budget: arena.NewBudget(grovepebble.DefaultBudget), RangeRows: func(r token.Range) int64 { return perRange[r] }})
	if err != nil {
		return 0, 0, fmt.Errorf("nodebench: the node: %w", err)
	}
	defer func() {
		err = errors.Join(err, n.Close(), os.RemoveAll(dir))
	}()
	if scrubRate > 0 {
		if err := n.StartScrub(scrubRate); err != nil {
			return 0, 0, err
		}
	}
	start := time.Now()
	for i := 0; i < len(rows); i += size {
		if _, err := n.Apply(ctx, rows[i:min(i+size, len(rows))]); err != nil {
			return 0, 0, fmt.Errorf("nodebench: the node: rows %d on: %w", i, err)
		}
	}
	fg = time.Since(start)
	replicas := n.Replicas()
	roots := make([]engine.Digest, len(replicas))
	for i, r := range replicas {
		if roots[i], err = r.Root(ctx); err != nil {
			return 0, 0, fmt.Errorf("nodebench: the node: %w", err)
		}
	}
	sustained = time.Since(start)
	if got := n.Rows(); got != int64(len(rows)) {
		return 0, 0, fmt.Errorf("nodebench: the node counts %d rows after writing %d", got, len(rows))
	}
	for i, r := range replicas {
		ref, err := d.root(r.Range(), r.Depth())
		if err != nil {
			return 0, 0, err
		}
		if roots[i] != ref {
			return 0, 0, fmt.Errorf("nodebench: the node's tree of %v at depth %d has root %x, a rebuild from the rows %x", r.Range(), r.Depth(), roots[i][:8], ref[:8])
		}
	}
	return fg, sustained, nil
}
