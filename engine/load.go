package engine

import (
	"context"
	"errors"
	"io"
	"runtime"
	"sync"
)

// RowSource yields rows one at a time, as a scan of a table would.
type RowSource interface {
	// NextRow fills r with the next row and returns io.EOF after the last.
	// The slices it puts in r need only stay valid until the next call.
	NextRow(r *Row) error
}

// loadBatchRows is how many rows travel together from the reader to a
// worker: enough to make the hand-off cost nothing per row, few enough that
// a batch of typical rows stays in L2.
const loadBatchRows = 512

// batchRow locates one row inside its batch's buffer by offsets rather than
// slices, so the buffer can grow while it fills.
type batchRow struct {
	keyOff, keyLen, valOff, valLen int
	ts                             int64
	deleted                        bool
}

type loadBatch struct {
	buf  []byte
	rows []batchRow
}

func (b *loadBatch) reset() {
	b.buf = b.buf[:0]
	b.rows = b.rows[:0]
}

func (b *loadBatch) push(r *Row) {
	br := batchRow{keyOff: len(b.buf), keyLen: len(r.Key), ts: r.TS, deleted: r.Deleted}
	b.buf = append(b.buf, r.Key...)
	br.valOff, br.valLen = len(b.buf), len(r.Value)
	b.buf = append(b.buf, r.Value...)
	b.rows = append(b.rows, br)
}

func (b *loadBatch) row(i int, r *Row) {
	br := &b.rows[i]
	r.Key = b.buf[br.keyOff : br.keyOff+br.keyLen]
	r.Value = b.buf[br.valOff : br.valOff+br.valLen]
	r.TS, r.Deleted = br.ts, br.deleted
}

// Load adds every row of src to the tree and returns how many it added. The
// calling goroutine reads src; up to workers goroutines (GOMAXPROCS when
// workers <= 0) hash the rows and add them to their leaves. Rows are copied
// into a fixed set of reusable batches, so a load allocates nothing per row
// once the batches have grown to the size of the rows.
//
// Load stops at the first error — from src, a row outside the tree's range,
// or ctx — and returns it; rows added before it stay added.
func (t *Tree) Load(ctx context.Context, src RowSource, workers int) (n int64, err error) {
	defer func() {
		if err != nil {
			t.obs.BuildFailed()
		}
	}()
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	free := make(chan *loadBatch, 2*workers+2)
	for range cap(free) {
		// Sized for typical rows up front, so a load does not grow its
		// batches row by row; a batch of larger rows grows once and keeps
		// its size.
		free <- &loadBatch{rows: make([]batchRow, 0, loadBatchRows), buf: make([]byte, 0, loadBatchRows*128)}
	}
	full := make(chan *loadBatch, cap(free))
	counts := make([]int64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var (
				a = t.newAdder()
				r Row
			)
			for b := range full {
				if ctx.Err() == nil {
					for i := range b.rows {
						b.row(i, &r)
						if err := a.add(&r); err != nil {
							cancel(err)
							break
						}
					}
				}
				b.reset()
				free <- b
			}
			if err := a.flush(); err != nil {
				cancel(err)
			}
			counts[w] = a.added
		})
	}

	var (
		r       Row
		readErr error
		cur     *loadBatch
	)
	for readErr == nil {
		if cur == nil {
			select {
			case cur = <-free:
			case <-ctx.Done():
				readErr = context.Cause(ctx)
				continue
			}
		}
		err := src.NextRow(&r)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
			break
		}
		cur.push(&r)
		if len(cur.rows) == loadBatchRows {
			full <- cur
			cur = nil
		}
	}
	if cur != nil && len(cur.rows) > 0 && readErr == nil {
		full <- cur
	}
	close(full)
	wg.Wait()

	var total int64
	for _, n := range counts {
		total += n
	}
	if readErr == nil {
		// A worker's error, or the caller's cancellation, surfaces here;
		// our own deferred cancel has not run yet.
		readErr = context.Cause(ctx)
	}
	return total, readErr
}

// AddFrom adds every row of src on the calling goroutine and returns how
// many it added. To load in parallel, call it from several goroutines, each
// with its own source (for example one per SSTable, or per slice of a token
// range); for one sequential source, Load fans the rows out instead. It
// allocates nothing per row.
func (t *Tree) AddFrom(ctx context.Context, src RowSource) (int64, error) {
	a := t.newAdder()
	var r Row
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				a.flush()
				return a.added, err
			}
		}
		if err := src.NextRow(&r); err != nil {
			ferr := a.flush()
			if errors.Is(err, io.EOF) {
				err = ferr
			}
			return a.added, err
		}
		if err := a.add(&r); err != nil {
			return a.added, err
		}
	}
}
