package nodebench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	grovepebble "github.com/antientropy/grove/adapters/pebble"
	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
)

// Sizes and repetitions of the scan measurement, by mode.
const (
	// FullRows is the database a full run scans: large enough that a scan
	// takes about a second, so that a median of a few is steady.
	FullRows = 2_000_000
	// QuickRows is the database of a quick run, which takes seconds.
	QuickRows = 150_000
	fullReps  = 5
	quickReps = 3
)

// ScanWorkers are the core counts the scan and its floors are measured
// at: GOMAXPROCS for the node, and as many goroutines for each floor.
var ScanWorkers = []int{1, 2}

// ScanTarget is what the scan should reach: this fraction of the rows per
// second of the slower of its two floors.
const ScanTarget = 0.8

// ScanFigures are the validation scan's figures against its floors.
type ScanFigures struct {
	// Rows is the database's row count: every timed run of the scan and
	// of the floors read or hashed every one.
	Rows int
	// Ranges is how many ranges the node holds, one tree each.
	Ranges int
	// Reps is how many times each was timed; the figures are medians.
	Reps int
	// ByWorkers has one entry per count of ScanWorkers, in its order.
	ByWorkers []ScanAt
	// CoresAvailable is how many cores the run had at the most cores it
	// asked for (the median over its repetitions): the machine may be
	// shared, and a figure measured on fewer cores than asked for says
	// less about grove.
	CoresAvailable float64
}

// ScanAt is the scan and its floors at one core count.
type ScanAt struct {
	Workers int
	// Scan is the node's open that builds every range's tree from its
	// rows; Iter is a bare Pebble iteration over the same database; Hash
	// is the same rows' digests, from memory, summed into leaves; Validate
	// is the open of the same database as a node of one range, whose
	// validation scan (Node.validate) reads every row into one tree, with
	// no tree files to write.
	Scan, Iter, Hash, Validate time.Duration
	rows                       int
}

// ScanRowsPerS, IterRowsPerS and HashRowsPerS are the medians as rows a
// second.
func (s ScanAt) ScanRowsPerS() float64 { return rowsPerS(s.rows, s.Scan) }
func (s ScanAt) IterRowsPerS() float64 { return rowsPerS(s.rows, s.Iter) }
func (s ScanAt) HashRowsPerS() float64 { return rowsPerS(s.rows, s.Hash) }

// ValidateRowsPerS is the one-range node's open as rows a second.
func (s ScanAt) ValidateRowsPerS() float64 { return rowsPerS(s.rows, s.Validate) }

// VsFloor is the scan's rows a second over the slower floor's: 1 would
// be a scan that costs no more than the slower of reading and hashing
// alone.
func (s ScanAt) VsFloor() float64 { return s.vsFloor(s.ScanRowsPerS()) }

// ValidateVsFloor is VsFloor for the one-range node's open.
func (s ScanAt) ValidateVsFloor() float64 { return s.vsFloor(s.ValidateRowsPerS()) }

func (s ScanAt) vsFloor(rowsPerS float64) float64 {
	floor := min(s.IterRowsPerS(), s.HashRowsPerS())
	if floor <= 0 {
		return 0
	}
	return rowsPerS / floor
}

func rowsPerS(rows int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(rows) / d.Seconds()
}

// VsFloor is the lowest VsFloor over the core counts: the target holds
// only if the scan keeps up with its floors however many cores it has.
func (f ScanFigures) VsFloor() float64 { return f.lowest(ScanAt.VsFloor) }

// ValidateVsFloor is the lowest ValidateVsFloor over the core counts.
func (f ScanFigures) ValidateVsFloor() float64 { return f.lowest(ScanAt.ValidateVsFloor) }

func (f ScanFigures) lowest(ratio func(ScanAt) float64) float64 {
	v := 0.0
	for i, s := range f.ByWorkers {
		if i == 0 || ratio(s) < v {
			v = ratio(s)
		}
	}
	return v
}

// Figures names the figures for a report: scan_vs_floor (the lowest over
// the core counts), then each core count's ratio and rates. The rates
// without a core suffix are those of the most cores.
func (f ScanFigures) Figures() []Figure {
	out := []Figure{{Name: "scan_vs_floor", Value: f.VsFloor()}}
	for _, s := range f.ByWorkers {
		out = append(out, Figure{Name: fmt.Sprintf("scan_vs_floor_%dcore", s.Workers), Value: s.VsFloor()})
	}
	out = append(out, Figure{Name: "validate_vs_floor", Value: f.ValidateVsFloor()})
	for _, s := range f.ByWorkers {
		out = append(out, Figure{Name: fmt.Sprintf("validate_vs_floor_%dcore", s.Workers), Value: s.ValidateVsFloor()})
	}
	for _, s := range f.ByWorkers {
		sfx := fmt.Sprintf("_%dcore", s.Workers)
		out = append(out,
			Figure{Name: "scan_rows_per_s" + sfx, Value: s.ScanRowsPerS()},
			Figure{Name: "floor_iter_rows_per_s" + sfx, Value: s.IterRowsPerS()},
			Figure{Name: "floor_hash_rows_per_s" + sfx, Value: s.HashRowsPerS()},
			Figure{Name: "validate_rows_per_s" + sfx, Value: s.ValidateRowsPerS()},
		)
	}
	if len(f.ByWorkers) > 0 {
		s := f.ByWorkers[len(f.ByWorkers)-1]
		out = append(out,
			Figure{Name: "scan_rows_per_s", Value: s.ScanRowsPerS()},
			Figure{Name: "floor_iter_rows_per_s", Value: s.IterRowsPerS()},
			Figure{Name: "floor_hash_rows_per_s", Value: s.HashRowsPerS()},
			Figure{Name: "validate_rows_per_s", Value: s.ValidateRowsPerS()},
		)
	}
	return append(out,
		Figure{Name: "cores_available", Value: f.CoresAvailable},
		Figure{Name: "scan_rows", Value: float64(f.Rows)},
		Figure{Name: "scan_ranges", Value: float64(f.Ranges)},
	)
}

// Scan measures the validation scan of a node of many ranges against its
// two floors over the same rows: it writes a database of opts' size in a
// temporary directory under opts.Dir (removed before it returns), then
// times, alternately and opts' repetitions each, at every count of
// ScanWorkers cores:
//
//   - the scan: Open of the node with no trees kept, so that its forest
//     builds every range's tree from the rows (reading, checking, hashing
//     and adding each row, hashing the inner levels, saving the trees);
//   - floor A: a bare Pebble iteration over the same database, opened
//     with the node's Pebble options (its block cache and filters), cut
//     into slices that the workers take in turn, touching each key and
//     value and decoding nothing;
//   - floor B: the same rows, held in memory in the database's order,
//     each given its token, its leaf, its digest (engine.Hasher.Digest2:
//     the row's encoding and SHA-256, two rows at a time) and added into
//     its leaf — what any build must do for a row, with no storage at all;
//   - beside them, the validation scan of a node of one range: Open of
//     the same database without Ranges, which reads every row into one
//     tree in memory (Node.validate) and writes no tree files.
//
// Every timed run is checked: the scan must leave every range's tree with
// the root of an independent build from the rows and count every row, the
// iteration must see every row's bytes, and the hashing must sum to the
// digests of all rows. A run that did less work fails Scan.
func Scan(ctx context.Context, opts Options) (ScanFigures, error) {
	rows, reps := opts.sizes()
	logf(opts.Log, "scan: making %d rows", rows)
	d, err := makeDataset(rows)
	if err != nil {
		return ScanFigures{}, err
	}
	tmp, err := os.MkdirTemp(opts.Dir, "grove-nodebench-")
	if err != nil {
		return ScanFigures{}, fmt.Errorf("nodebench: %w", err)
	}
	defer os.RemoveAll(tmp)
	dbDir := filepath.Join(tmp, "db")
	logf(opts.Log, "scan: writing them into %s through the node's write path", dbDir)
	if err := writeDB(ctx, dbDir, d); err != nil {
		return ScanFigures{}, err
	}
	m := newScanMeasure(d, dbDir, filepath.Join(tmp, "trees"))
	f := ScanFigures{Rows: rows, Ranges: len(d.ranges), Reps: reps}

	prev := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(prev)
	// One untimed pass of each warms the page cache and the heap.
	runtime.GOMAXPROCS(ScanWorkers[len(ScanWorkers)-1])
	if err := m.warm(ctx, ScanWorkers[len(ScanWorkers)-1]); err != nil {
		return ScanFigures{}, err
	}
	times := make([][kinds][]time.Duration, len(ScanWorkers))
	var cores []float64
	for rep := range reps {
		cores = append(cores, coresAvailable(ScanWorkers[len(ScanWorkers)-1]))
		for i, w := range ScanWorkers {
			runtime.GOMAXPROCS(w)
			// Alternate the order, so that neither side always runs
			// after the other.
			order := []int{kindScan, kindIter, kindHash, kindValidate}
			if rep%2 == 1 {
				slices.Reverse(order)
			}
			for _, k := range order {
				dt, err := m.run(ctx, k, w)
				if err != nil {
					return ScanFigures{}, err
				}
				times[i][k] = append(times[i][k], dt)
			}
			logf(opts.Log, "scan: rep %d/%d, %d cores: scan %v, iterate %v, hash %v, one-range validate %v", rep+1, reps, w,
				times[i][kindScan][rep].Round(time.Millisecond), times[i][kindIter][rep].Round(time.Millisecond),
				times[i][kindHash][rep].Round(time.Millisecond), times[i][kindValidate][rep].Round(time.Millisecond))
		}
	}
	slices.Sort(cores)
	f.CoresAvailable = cores[len(cores)/2]
	for i, w := range ScanWorkers {
		f.ByWorkers = append(f.ByWorkers, ScanAt{Workers: w, rows: rows,
			Scan: median(times[i][kindScan]), Iter: median(times[i][kindIter]), Hash: median(times[i][kindHash]),
			Validate: median(times[i][kindValidate])})
	}
	return f, nil
}

// The things Scan times.
const (
	kindScan = iota
	kindIter
	kindHash
	kindValidate
	kinds
)

// scanMeasure is the state of one Scan: the rows, where their database is,
// and what a correct run must produce.
type scanMeasure struct {
	d        *dataset
	dbDir    string
	treesDir string
	seq      int
	// want is the root of each range's tree at each depth the node chose,
	// built independently from the rows in memory.
	want    map[treeKey]engine.Digest
	wantSum engine.Digest // the sum of every row's digest
}

func newScanMeasure(d *dataset, dbDir, treesDir string) *scanMeasure {
	return &scanMeasure{d: d, dbDir: dbDir, treesDir: treesDir, want: map[treeKey]engine.Digest{}, wantSum: d.digestSum()}
}

type treeKey struct {
	r     token.Range
	depth int
}

// wantRoot is the root of a build of the rows of k's range at k's depth,
// built once per range and depth.
func (m *scanMeasure) wantRoot(k treeKey) (engine.Digest, error) {
	if want, ok := m.want[k]; ok {
		return want, nil
	}
	want, err := m.d.root(k.r, k.depth)
	if err != nil {
		return engine.Digest{}, err
	}
	m.want[k] = want
	return want, nil
}

func (m *scanMeasure) warm(ctx context.Context, workers int) error {
	for k := range kinds {
		if _, err := m.run(ctx, k, workers); err != nil {
			return err
		}
	}
	return nil
}

func (m *scanMeasure) run(ctx context.Context, kind, workers int) (time.Duration, error) {
	switch kind {
	case kindScan:
		return m.scan(ctx)
	case kindIter:
		return m.iterate(ctx, workers)
	case kindValidate:
		return m.validate(ctx)
	default:
		return m.hash(ctx, workers)
	}
}

// scan opens the node on fresh trees directory, which makes its forest
// build every tree from the rows, and checks the trees it built.
func (m *scanMeasure) scan(ctx context.Context) (time.Duration, error) {
	m.seq++
	dir := fmt.Sprintf("%s-%d", m.treesDir, m.seq)
	defer os.RemoveAll(dir)
	start := time.Now()
	n, err := grovepebble.Open(ctx, m.dbDir, grovepebble.Options{Ranges: m.d.ranges, TreesDir: dir, Budget: arena.NewBudget(grovepebble.DefaultBudget)})
	dt := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("nodebench: the scan: %w", err)
	}
	err = m.checkNode(ctx, n)
	if cerr := n.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("nodebench: closing the node: %w", cerr))
	}
	return dt, err
}

// validate opens the database as a node of one range, whose Open builds
// its one tree from every row with the validation scan, and checks the
// tree.
func (m *scanMeasure) validate(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	n, err := grovepebble.Open(ctx, m.dbDir, grovepebble.Options{Budget: arena.NewBudget(grovepebble.DefaultBudget)})
	dt := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("nodebench: the one-range validation scan: %w", err)
	}
	err = m.checkOne(ctx, n)
	if cerr := n.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("nodebench: closing the node: %w", cerr))
	}
	return dt, err
}

// checkOne checks that a node of one range read every row into its tree:
// the scan counted them, and the root is that of a build of the same rows.
func (m *scanMeasure) checkOne(ctx context.Context, n *grovepebble.Node) error {
	if s := n.ScanStats(); s.Rows != int64(len(m.d.rows)) || n.Rows() != int64(len(m.d.rows)) {
		return fmt.Errorf("nodebench: the validation scan read %d rows into a tree of %d, the database holds %d", s.Rows, n.Rows(), len(m.d.rows))
	}
	k := treeKey{m.d.p.Range(), n.Depth()}
	want, err := m.wantRoot(k)
	if err != nil {
		return err
	}
	got, err := n.Root(ctx)
	if err != nil {
		return fmt.Errorf("nodebench: the one-range root: %w", err)
	}
	if got != want {
		return fmt.Errorf("nodebench: the validation scan's tree at depth %d has root %x, a build of its rows %x", k.depth, got[:8], want[:8])
	}
	return nil
}

// checkNode checks that the node's open built every tree from every row:
// the trees hold every row, and each root is that of a build of the same
// rows, in memory, at the same depth.
func (m *scanMeasure) checkNode(ctx context.Context, n *grovepebble.Node) error {
	st := n.OpenStats()
	if st.Built != len(m.d.ranges) || st.RowsScanned < int64(len(m.d.rows)) {
		return fmt.Errorf("nodebench: the scan built %d trees of %d ranges reading %d rows of %d: it did not build them all from the rows",
			st.Built, len(m.d.ranges), st.RowsScanned, len(m.d.rows))
	}
	if got := n.Rows(); got != int64(len(m.d.rows)) {
		return fmt.Errorf("nodebench: the scan's trees hold %d rows, the database %d", got, len(m.d.rows))
	}
	for _, rep := range n.Replicas() {
		k := treeKey{rep.Range(), rep.Depth()}
		want, err := m.wantRoot(k)
		if err != nil {
			return err
		}
		got, err := rep.Root(ctx)
		if err != nil {
			return fmt.Errorf("nodebench: the root of %v: %w", k.r, err)
		}
		if got != want {
			return fmt.Errorf("nodebench: the scan's tree of %v at depth %d has root %x, a build of its rows %x", k.r, k.depth, got[:8], want[:8])
		}
	}
	return nil
}

// iterSlices is how many slices floor A cuts the rows into: a few per
// worker, as the node's own scans do, so that slices holding more rows
// than others even out.
const iterSlices = 64

// iterate is floor A: every row's key and value read from Pebble and
// touched (their lengths and first bytes summed), by workers taking
// slices of the row keys in turn.
func (m *scanMeasure) iterate(ctx context.Context, workers int) (time.Duration, error) {
	// The options the node opens Pebble with (pebbleOptions, as the
	// write measurement's plain side): the same block cache to fill, so
	// that the floor reads the database as the scan does.
	o := pebbleOptions()
	o.ReadOnly, o.Merger = true, grovepebble.Merger
	db, err := pebble.Open(m.dbDir, o)
	o.Cache.Unref()
	if err != nil {
		return 0, fmt.Errorf("nodebench: opening the database for the iteration: %w", err)
	}
	defer db.Close()
	var (
		next        atomic.Int64
		rows, bytes atomic.Int64
		errs        = make([]error, workers)
		wg          sync.WaitGroup
	)
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= iterSlices {
					return
				}
				// Stored row keys are 0x01 and the token, big-endian with
				// its sign bit flipped (doc.go of grovepebble): cutting
				// at the token's first byte cuts the ring evenly.
				lower := []byte{0x01, byte(i * 256 / iterSlices)}
				upper := []byte{0x01, byte((i + 1) * 256 / iterSlices)}
				if i == iterSlices-1 {
					upper = []byte{0x02}
				}
				n, b, err := iterSlice(ctx, db, lower, upper)
				rows.Add(n)
				bytes.Add(b)
				if err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	dt := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("nodebench: the iteration: %w", err)
	}
	wantBytes := int64(len(m.d.rows)) * storedBytes
	if rows.Load() != int64(len(m.d.rows)) || bytes.Load() != wantBytes {
		return 0, fmt.Errorf("nodebench: the iteration read %d rows (%d bytes), the database holds %d (%d bytes)",
			rows.Load(), bytes.Load(), len(m.d.rows), wantBytes)
	}
	return dt, nil
}

// iterSlice reads the keys in [lower, upper), returning how many and their
// bytes with those of their values.
func iterSlice(ctx context.Context, db *pebble.DB, lower, upper []byte) (rows, bytes int64, err error) {
	it, err := db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return 0, 0, err
	}
	var touch byte
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return rows, bytes, err
		}
		rows++
		bytes += int64(len(k) + len(v))
		if len(v) > 0 {
			touch ^= k[len(k)-1] ^ v[len(v)-1]
		}
	}
	sink.Add(uint32(touch))
	return rows, bytes, errors.Join(it.Error(), it.Close())
}

// sink keeps what the iteration touched alive, so that the compiler cannot
// drop the touching.
var sink atomic.Uint32

// hashChunk is how many rows a floor-B worker takes at a time.
const hashChunk = 4096

// hashDepth is the depth of floor B's leaves over the whole ring: about as
// many leaves as the node's trees have in all.
const hashDepth = 16

// hash is floor B: every row, from memory, given its token and its leaf,
// hashed with a Hasher and added into its leaf, by workers taking chunks of
// rows in turn, each into leaves of its own.
func (m *scanMeasure) hash(ctx context.Context, workers int) (time.Duration, error) {
	full := m.d.p.Range()
	leaves := make([][]engine.Digest, workers)
	for w := range leaves {
		leaves[w] = make([]engine.Digest, 1<<hashDepth)
	}
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		bad  atomic.Int64
	)
	rows := m.d.rows
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			var h engine.Hasher
			ls := leaves[w]
			for {
				lo := int(next.Add(hashChunk) - hashChunk)
				if lo >= len(rows) || ctx.Err() != nil {
					return
				}
				// Two rows at a time through the two-stream kernel, as
				// the scan's adder hashes them.
				hi := min(lo+hashChunk, len(rows))
				for i := lo; i < hi; i += 2 {
					a := &rows[i]
					la := full.LeafOf(m.d.p.Token(a.Key), hashDepth)
					if i+1 == hi {
						if la < 0 {
							bad.Add(1)
							continue
						}
						d := h.Digest(a)
						ls[la].Add(&d)
						continue
					}
					b := &rows[i+1]
					lb := full.LeafOf(m.d.p.Token(b.Key), hashDepth)
					if la < 0 || lb < 0 {
						bad.Add(1)
						continue
					}
					da, db := h.Digest2(a, b)
					ls[la].Add(&da)
					ls[lb].Add(&db)
				}
			}
		})
	}
	wg.Wait()
	dt := time.Since(start)
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var sum engine.Digest
	for _, ls := range leaves {
		for i := range ls {
			sum.Add(&ls[i])
		}
	}
	if bad.Load() != 0 || sum != m.wantSum {
		return 0, fmt.Errorf("nodebench: the hashing's leaves sum to %x, the rows' digests to %x", sum[:8], m.wantSum[:8])
	}
	return dt, nil
}

// digestSum is the lane-wise sum of every row's digest: what the leaves of
// any tree over all the rows sum to.
func (d *dataset) digestSum() engine.Digest {
	var sum engine.Digest
	for i := range d.rows {
		dg := engine.RowDigest(&d.rows[i])
		sum.Add(&dg)
	}
	return sum
}

// root builds the tree of range r at depth from the rows in memory, with
// the engine alone, and returns its root.
func (d *dataset) root(r token.Range, depth int) (engine.Digest, error) {
	t, err := engine.New(engine.Options{Partitioner: d.p, Range: r, Depth: depth, Budget: arena.NewBudget(1 << 30)})
	if err != nil {
		return engine.Digest{}, fmt.Errorf("nodebench: the reference tree of %v: %w", r, err)
	}
	defer t.Close()
	// The rows of (Lo, Hi]: those after every token ≤ Lo, up to the
	// last token ≤ Hi.
	lo := sort.Search(len(d.tokens), func(i int) bool { return d.tokens[i] > r.Lo })
	hi := sort.Search(len(d.tokens), func(i int) bool { return d.tokens[i] > r.Hi })
	for i := lo; i < hi; i++ {
		if err := t.Add(&d.rows[i]); err != nil {
			return engine.Digest{}, fmt.Errorf("nodebench: the reference tree of %v: %w", r, err)
		}
	}
	if err := t.Hash(context.Background()); err != nil {
		return engine.Digest{}, fmt.Errorf("nodebench: the reference tree of %v: %w", r, err)
	}
	return t.Root()
}

// coresAvailable measures how many of n cores the process gets now: n
// goroutines each hash as many rows as one goroutine alone, and the cores
// are n times the one's time over the n's.
func coresAvailable(n int) float64 {
	const digests = 50_000 // about ten milliseconds
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(n))
	row := engine.Row{Key: make([]byte, keyBytes), Value: make([]byte, valueBytes)}
	spin := func(goroutines int) time.Duration {
		var wg sync.WaitGroup
		start := time.Now()
		for range goroutines {
			wg.Go(func() {
				r := row
				var h engine.Hasher
				var acc engine.Digest
				for range digests {
					d := h.Digest(&r)
					acc.Add(&d)
				}
				sink.Add(uint32(acc[0]))
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	// The first run after a GOMAXPROCS change finds the new cores' threads
	// not yet started: it warms them.
	spin(n)
	one, all := spin(1), spin(n)
	if all <= 0 {
		return 0
	}
	return min(float64(n), float64(n)*one.Seconds()/all.Seconds())
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
