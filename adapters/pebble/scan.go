package grovepebble

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
)

// ScanStats is what the validation scan at Open read and how long it took.
type ScanStats struct {
	// Rows is how many rows were read, tombstones included.
	Rows int64
	// Bytes is how many bytes of keys and values were read from Pebble, in
	// the stored layout (composite keys and encoded values).
	Bytes int64
	// Duration is the time to read every row and add it to its leaf;
	// HashDuration the time to hash the inner levels afterwards.
	Duration, HashDuration time.Duration
	// Workers is how many goroutines scanned, each its own slices of the
	// range with its own iterator.
	Workers int
	// Excised are the spans whose rows Open dropped because a table
	// holding them was damaged: the tree leaves them out, and the next
	// repair restores them from peers.
	Excised []Excised
}

// RowsPerSecond is the scan's throughput in rows.
func (s ScanStats) RowsPerSecond() float64 { return perSecond(float64(s.Rows), s.Duration) }

// MBPerSecond is the scan's throughput in megabytes (10^6 bytes) of stored
// keys and values.
func (s ScanStats) MBPerSecond() float64 { return perSecond(float64(s.Bytes)/1e6, s.Duration) }

func perSecond(x float64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return x / d.Seconds()
}

// String reports the scan in one line, as grove-pebble serve prints it.
func (s ScanStats) String() string {
	return fmt.Sprintf("validation scan: %d rows, %.1f MB in %v (%.0f rows/s, %.1f MB/s, %d workers), inner levels hashed in %v",
		s.Rows, float64(s.Bytes)/1e6, s.Duration.Round(time.Millisecond), s.RowsPerSecond(), s.MBPerSecond(), s.Workers,
		s.HashDuration.Round(time.Millisecond))
}

// validate is the validation scan: it reads every row of the database into
// the empty tree and hashes it. The range is cut into slices that workers
// (one per CPU) take in turn, each reading its slice with its own iterator
// and hashing on its own goroutine, so reading and hashing both scale. Rows
// stored outside the range — which no slice covers — fail it.
func (n *Node) validate(ctx context.Context) (ScanStats, error) {
	workers := runtime.GOMAXPROCS(0)
	// A few slices per worker even out slices that hold more rows than
	// others (a byte-ordered range is seldom uniform).
	level := min(bits.Len(uint(4*workers-1)), 16)
	if w := n.rng.Width(); w < 1<<level {
		level = bits.Len64(w) - 1
	}
	slices := 1 << level
	workers = min(workers, slices)

	start := time.Now()
	for _, outside := range n.outsideBounds() {
		if err := n.noRows(outside[0], outside[1], fmt.Sprintf("outside %v", n.rng)); err != nil {
			return ScanStats{}, err
		}
	}
	var (
		next        atomic.Int64
		rows, bytes atomic.Int64
		wg          sync.WaitGroup
		errMu       sync.Mutex
		firstErr    error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// work scans slices until none is left; a Fatalf inside Pebble is its
	// error, since no caller's recover reaches this goroutine.
	work := func() (err error) {
		defer catchFatal(&err)
		for {
			i := int(next.Add(1) - 1)
			if i >= slices || ctx.Err() != nil {
				return nil
			}
			r := n.rng.Leaf(i, level)
			if r.Lo == r.Hi {
				continue
			}
			src, err := n.newSource(ctx, r)
			if err != nil {
				return err
			}
			_, err = n.tree.AddFrom(ctx, src)
			err = errors.Join(err, src.close())
			rows.Add(src.rows)
			bytes.Add(src.bytes)
			if err != nil {
				return err
			}
		}
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := work(); err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				errMu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return ScanStats{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return ScanStats{}, err
	}
	s := ScanStats{Rows: rows.Load(), Bytes: bytes.Load(), Duration: time.Since(start), Workers: workers}
	start = time.Now()
	if err := n.tree.Hash(ctx); err != nil {
		return ScanStats{}, err
	}
	s.HashDuration = time.Since(start)
	return s, nil
}

// outsideBounds returns the composite-key spans of the row prefix that lie
// outside the Node's range.
func (n *Node) outsideBounds() [][2][]byte {
	lower, upper := rangeBounds(n.rng)
	return [][2][]byte{{{rowPrefix}, lower}, {upper, {rowPrefix + 1}}}
}

// noRows fails with ErrOutOfRange, naming the first key and saying where
// it is (outside what), if any row lies in [lower, upper).
func (n *Node) noRows(lower, upper []byte, where string) error {
	it, err := n.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	if it.First() {
		tok, k, err := splitRowKey(it.Key())
		if err == nil {
			err = fmt.Errorf("%w: stored key %s has token %d, %s", ErrOutOfRange, keyText(k), tok, where)
		}
		it.Close()
		return err
	}
	return errors.Join(it.Error(), it.Close())
}

// rowSource reads the rows of one token range from a Pebble iterator,
// decoding and checking each. It implements engine.RowSource.
type rowSource struct {
	ctx         context.Context
	it          *pebble.Iterator
	p           token.Partitioner
	started     bool
	rows, bytes int64
	tok         token.Token // the last row's
	// limit is Options.ScanRate's limiter, which every scan shares; pace
	// one of the scan's own (a scrub's rate); either may be nil.
	limit, pace *rateLimiter
	owed        int64 // bytes read but not yet charged
	// strict and suspect are the Node's: a row that does not decode or
	// fails its checksum is skipped — never served, hashed or sent — and
	// handed to suspect; bad counts them.
	strict  bool
	suspect func(ck []byte)
	bad     int64
	// legacy says the row NextRow returned last has no checksum: written
	// before layout 3, in a database that accepts such rows.
	legacy bool
}

// newSource reads the rows of r as the database holds them now.
func (n *Node) newSource(ctx context.Context, r token.Range) (*rowSource, error) {
	return n.sourceOn(ctx, n.db, r)
}

// sourceOn reads the rows of r from rd: the database, or a snapshot of it.
func (n *Node) sourceOn(ctx context.Context, rd pebble.Reader, r token.Range) (*rowSource, error) {
	lower, upper := rangeBounds(r)
	it, err := rd.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	return &rowSource{ctx: ctx, it: it, p: n.p, limit: n.limit, strict: n.isStrict(), suspect: n.suspect}, nil
}

// pay charges the bytes owed to the limiters and sleeps off what they ask.
func (s *rowSource) pay() error {
	if err := s.limit.wait(s.ctx, s.owed); err != nil {
		return err
	}
	if err := s.pace.wait(s.ctx, s.owed); err != nil {
		return err
	}
	s.owed = 0
	return nil
}

// ctxCheckEvery is how many rows a scan reads between looks at its context:
// often enough to stop within microseconds, rarely enough to cost nothing.
const ctxCheckEvery = 1024

// NextRow implements engine.RowSource. The iterator's bounds keep every
// token inside the slice; decodeRow checks that each is its key's, and
// the row's checksum.
func (s *rowSource) NextRow(r *engine.Row) error {
	for {
		var ok bool
		if s.started {
			ok = s.it.Next()
		} else {
			ok, s.started = s.it.First(), true
		}
		if !ok {
			if err := s.it.Error(); err != nil {
				return err
			}
			// The last bytes are paid for too: a scan of a small range
			// takes its time like any other.
			if err := s.pay(); err != nil {
				return err
			}
			return io.EOF
		}
		if (s.rows+s.bad)%ctxCheckEvery == 0 {
			if err := s.ctx.Err(); err != nil {
				return err
			}
		}
		ck := s.it.Key()
		v, err := s.it.ValueAndErr()
		if err != nil {
			return err
		}
		tok, err := decodeRow(s.p, ck, v, r, s.strict)
		if err != nil {
			s.bad++
			s.suspect(ck)
		} else {
			s.tok = tok
			s.rows++
			s.legacy = v[0]&flagSum == 0
		}
		s.bytes += int64(len(ck) + len(v))
		if s.limit != nil || s.pace != nil {
			if s.owed += int64(len(ck) + len(v)); s.owed >= scanChunk {
				if err := s.pay(); err != nil {
					return err
				}
			}
		}
		if err == nil {
			return nil
		}
	}
}

func (s *rowSource) close() error { return s.it.Close() }

// Scan implements repair.Replica: it calls fn for every row whose token is in
// r (and in the Node's range), in token order, from one Pebble iterator —
// a consistent view of the data as it was when Scan began. The *Row is
// valid only during the call.
func (n *Node) Scan(ctx context.Context, r token.Range, fn func(*engine.Row) error) (err error) {
	defer n.catch(&err)
	if err := r.Valid(); err != nil {
		return fmt.Errorf("grovepebble: scan: %w", err)
	}
	if err := n.use(); err != nil {
		return err
	}
	defer n.life.RUnlock()
	r.Lo, r.Hi = max(r.Lo, n.rng.Lo), min(r.Hi, n.rng.Hi)
	if r.Lo >= r.Hi {
		return nil
	}
	return n.scanRows(ctx, r, fn)
}

// scanRows calls fn for every row stored in r, in token order, from one
// iterator; the caller holds the life lock, or Open has not returned.
func (n *Node) scanRows(ctx context.Context, r token.Range, fn func(*engine.Row) error) (err error) {
	src, err := n.newSource(ctx, r)
	if err != nil {
		return asCorrupt(n.dir, err)
	}
	var row engine.Row
	for {
		if err = src.NextRow(&row); err != nil {
			if err == io.EOF {
				err = nil
			}
			err = asCorrupt(n.dir, err)
			break
		}
		if err = fn(&row); err != nil {
			break
		}
	}
	return errors.Join(err, asCorrupt(n.dir, src.close()))
}
