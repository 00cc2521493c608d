package grovepebble

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/engine/token"
)

var _ repair.Replica = (*Node)(nil)

// The write path against a map that applies Cassandra's rule: after every
// batch of random puts, deletes and applies — with older, equal and newer
// timestamps, and several rows for one key in one Apply — the database holds
// exactly the oracle's winners, each write reports whether it won, and the
// live tree equals a tree rebuilt from the database.
func TestWritePathMatchesOracle(t *testing.T) {
	for _, c := range []struct {
		name string
		opts Options
	}{
		{"murmur3 whole ring", Options{Depth: 6}},
		{"murmur3 half ring", Options{Depth: 5, Range: token.Range{Lo: math.MinInt64, Hi: 0}}},
		{"byte-ordered", Options{Depth: 4, Partitioner: token.ByteOrdered{}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := openNode(t, t.TempDir(), created(c.opts))
			p := n.p
			rng := rand.New(rand.NewPCG(1, uint64(len(c.name))))
			var keys [][]byte
			for i := 0; len(keys) < 48; i++ {
				k := []byte(fmt.Sprintf("key-%d", i))
				if n.rng.Contains(p.Token(k)) {
					keys = append(keys, k)
				}
			}
			values := [][]byte{nil, []byte("a"), []byte("b"), []byte("bb")}
			oracle := map[string]engine.Row{}
			// wins reports whether r beats what the oracle holds, and
			// records it if so.
			wins := func(r engine.Row) bool {
				old, ok := oracle[string(r.Key)]
				if ok && !engine.Supersedes(&r, &old) {
					return false
				}
				oracle[string(r.Key)] = cloneRow(r)
				return true
			}
			randRow := func() engine.Row {
				return engine.Row{
					Key:     keys[rng.IntN(len(keys))],
					Value:   values[rng.IntN(len(values))],
					TS:      int64(rng.IntN(12)),
					Deleted: rng.IntN(4) == 0,
				}
			}
			ctx := context.Background()
			for batch := range 12 {
				for op := range 40 {
					switch rng.IntN(3) {
					case 0:
						r := randRow()
						r.Deleted = false
						wins(r)
						if err := n.Put(ctx, r.Key, r.Value, r.TS); err != nil {
							t.Fatalf("batch %d op %d: Put(%q, %q, %d): %v", batch, op, r.Key, r.Value, r.TS, err)
						}
					case 1:
						r := randRow()
						r.Deleted, r.Value = true, nil
						wins(r)
						if err := n.Delete(ctx, r.Key, r.TS); err != nil {
							t.Fatalf("batch %d op %d: Delete(%q, %d): %v", batch, op, r.Key, r.TS, err)
						}
					default:
						rows := make([]engine.Row, 1+rng.IntN(6))
						for i := range rows {
							rows[i] = randRow()
						}
						// Several rows for one key count once: Apply
						// reports the keys it wrote, winning or not.
						best := map[string]engine.Row{}
						for _, r := range rows {
							if b, ok := best[string(r.Key)]; !ok || engine.Supersedes(&r, &b) {
								best[string(r.Key)] = r
							}
						}
						want := len(best)
						for _, r := range best {
							wins(r)
						}
						got, err := n.Apply(ctx, rows)
						if err != nil || got != want {
							t.Fatalf("batch %d op %d: Apply(%d rows) = %d, %v; want %d", batch, op, len(rows), got, err, want)
						}
					}
				}
				var all []engine.Row
				for _, r := range oracle {
					all = append(all, r)
				}
				if got, want := dbRows(t, n), sortedRows(p, all); !equalRows(got, want) {
					t.Fatalf("batch %d: database differs from the oracle: %s", batch, diffRows(got, want))
				}
				if got, want := n.Rows(), int64(len(oracle)); got != want {
					t.Fatalf("batch %d: Rows() = %d, want %d", batch, got, want)
				}
				if live, rebuilt := liveRoot(t, n), rebuiltRoot(t, n); live != rebuilt {
					t.Fatalf("batch %d: live root %x, rebuilt from the database %x", batch, live[:8], rebuilt[:8])
				}
				for _, k := range keys[:8] {
					want, wantOK := oracle[string(k)]
					got, ok, err := n.Get(ctx, k)
					if err != nil || ok != wantOK || (ok && !equalRows([]storedRow{{0, got}}, []storedRow{{0, want}})) {
						t.Fatalf("batch %d: Get(%q) = %+v, %v, %v; want %+v, %v", batch, k, got, ok, err, want, wantOK)
					}
				}
			}
		})
	}
}

// Writers on many goroutines, with views and sums taken meanwhile, leave the
// tree equal to the data: the writer lock keeps each read-before-write and
// its tree update together.
func TestConcurrentWritesKeepTreeAndData(t *testing.T) {
	n := openNode(t, t.TempDir(), Options{Depth: 8, NoSync: true, Create: true})
	ctx := context.Background()
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 2))
			for i := range 300 {
				k := []byte(fmt.Sprintf("k%d", rng.IntN(200)))
				var err error
				switch i % 3 {
				case 0:
					err = n.Put(ctx, k, []byte(fmt.Sprint(w, i)), int64(rng.IntN(50)))
				case 1:
					err = n.Delete(ctx, k, int64(rng.IntN(50)))
				default:
					_, err = n.Apply(ctx, []engine.Row{{Key: k, Value: []byte("x"), TS: int64(rng.IntN(50))}, {Key: []byte("shared"), TS: int64(i)}})
				}
				if err != nil {
					errc <- err
					return
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range 50 {
				v, release, err := n.View(ctx)
				if err != nil {
					errc <- err
					return
				}
				var sum [1]engine.Digest
				if err := v.Sums(ctx, 0, 0, sum[:]); err != nil {
					errc <- fmt.Errorf("view's sum: %w", err)
					release()
					return
				}
				release()
				if _, err := n.Sum(ctx); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if live, rebuilt := liveRoot(t, n), rebuiltRoot(t, n); live != rebuilt {
		t.Fatalf("live root %x, rebuilt from the database %x", live[:8], rebuilt[:8])
	}
	if got, want := n.Rows(), int64(len(dbRows(t, n))); got != want {
		t.Fatalf("Rows() = %d, database holds %d", got, want)
	}
}

// A write that fails leaves the database, the tree and the row count exactly
// as they were, and the Node keeps working.
func TestApplyIsAtomic(t *testing.T) {
	errCommit := errors.New("disk on fire")
	half := token.Range{Lo: math.MinInt64, Hi: 0}
	var inside, outside []byte
	for i := 0; inside == nil || outside == nil; i++ {
		k := []byte(fmt.Sprintf("probe-%d", i))
		if half.Contains(token.Murmur3{}.Token(k)) {
			inside = k
		} else {
			outside = k
		}
	}
	for _, c := range []struct {
		name    string
		rows    func(base []engine.Row) []engine.Row
		commit  func(*pebble.Batch, *pebble.WriteOptions) error
		cancel  bool
		wantErr error
	}{
		{
			name:    "commit fails",
			commit:  func(*pebble.Batch, *pebble.WriteOptions) error { return errCommit },
			wantErr: errCommit,
		},
		{
			name:    "context ends before the commit",
			cancel:  true,
			wantErr: context.Canceled,
		},
		{
			name: "one row outside the range",
			rows: func(base []engine.Row) []engine.Row {
				return append(base, engine.Row{Key: outside, TS: 1})
			},
			wantErr: ErrOutOfRange,
		},
		{
			name: "one key too large",
			rows: func(base []engine.Row) []engine.Row {
				return append(base, engine.Row{Key: bytes.Repeat([]byte{'x'}, repair.MaxKeyBytes+1), TS: 1})
			},
			wantErr: ErrKeyTooLarge,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := openNode(t, t.TempDir(), Options{Depth: 6, Range: half, Create: true})
			ctx := context.Background()
			var base []engine.Row
			for i := 0; len(base) < 200; i++ {
				k := []byte(fmt.Sprintf("row-%d", i))
				if half.Contains(n.p.Token(k)) {
					base = append(base, engine.Row{Key: k, Value: []byte("v1"), TS: 10})
				}
			}
			if _, err := n.Apply(ctx, base); err != nil {
				t.Fatal(err)
			}
			rowsBefore, rootBefore, countBefore := dbRows(t, n), liveRoot(t, n), n.Rows()

			// The failing batch replaces some rows, deletes others and
			// adds new ones: every kind of tree update.
			var batch []engine.Row
			for i, r := range base[:60] {
				switch i % 3 {
				case 0:
					batch = append(batch, engine.Row{Key: r.Key, Value: []byte("v2"), TS: 11})
				case 1:
					batch = append(batch, engine.Row{Key: r.Key, TS: 11, Deleted: true})
				default:
					batch = append(batch, engine.Row{Key: append([]byte("new-"), r.Key...), Value: []byte("v"), TS: 1})
				}
			}
			batch = slices.DeleteFunc(batch, func(r engine.Row) bool { return !half.Contains(n.p.Token(r.Key)) })
			batch = append(batch, engine.Row{Key: inside, Value: []byte("v"), TS: 1})
			if c.rows != nil {
				batch = c.rows(batch)
			}
			actx := ctx
			if c.cancel {
				cctx, cancel := context.WithCancel(ctx)
				cancel()
				actx = cctx
			}
			committed := false
			if c.commit != nil {
				n.commit = func(b *pebble.Batch, wo *pebble.WriteOptions) error {
					committed = true
					if b.Count() == 0 {
						t.Errorf("the failing commit was handed an empty batch")
					}
					return c.commit(b, wo)
				}
			}
			w, err := n.Apply(actx, batch)
			if !errors.Is(err, c.wantErr) || w != 0 {
				t.Fatalf("Apply = %d, %v; want 0, %v", w, err, c.wantErr)
			}
			if c.commit != nil && !committed {
				t.Fatalf("the commit was never attempted")
			}
			if got := dbRows(t, n); !equalRows(got, rowsBefore) {
				t.Fatalf("database changed by a failed Apply: %s", diffRows(got, rowsBefore))
			}
			if got := liveRoot(t, n); got != rootBefore {
				t.Fatalf("tree changed by a failed Apply: root %x, was %x", got[:8], rootBefore[:8])
			}
			if got := n.Rows(); got != countBefore {
				t.Fatalf("Rows() = %d after a failed Apply, was %d", got, countBefore)
			}

			// The same batch, rid of what made it fail, goes in whole.
			n.commit = (*pebble.Batch).Commit
			ok := slices.DeleteFunc(slices.Clone(batch), func(r engine.Row) bool {
				return !half.Contains(n.p.Token(r.Key)) || len(r.Key) > repair.MaxKeyBytes
			})
			if w, err := n.Apply(ctx, ok); err != nil || w != len(ok) {
				t.Fatalf("Apply after the failure = %d, %v; want %d", w, err, len(ok))
			}
			if live, rebuilt := liveRoot(t, n), rebuiltRoot(t, n); live != rebuilt {
				t.Fatalf("live root %x, rebuilt %x", live[:8], rebuilt[:8])
			}
		})
	}
}

// Closing and opening again rebuilds, from the data alone, the tree the
// Node kept live; AutoDepth then sizes the tree from the recorded count.
func TestReopenRebuildsSameTree(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	opts := Options{Depth: 10}
	n := openNode(t, dir, created(opts))
	if got := n.ScanStats().Rows; got != 0 {
		t.Fatalf("a new database scanned %d rows", got)
	}
	var rows []engine.Row
	for i := range 3000 {
		rows = append(rows, engine.Row{Key: []byte(fmt.Sprintf("user:%d", i)), Value: []byte(fmt.Sprint("v", i)), TS: int64(i)})
	}
	if _, err := n.Apply(ctx, rows); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := n.Delete(ctx, rows[i*7].Key, 5000); err != nil {
			t.Fatal(err)
		}
		if err := n.Put(ctx, rows[i*11].Key, []byte("newer"), 6000); err != nil {
			t.Fatal(err)
		}
	}
	root, count, stored := liveRoot(t, n), n.Rows(), dbRows(t, n)

	n = reopen(t, n, dir, opts)
	if got := liveRoot(t, n); got != root {
		t.Fatalf("reopened root %x, live root was %x", got[:8], root[:8])
	}
	if n.Rows() != count || n.ScanStats().Rows != count {
		t.Fatalf("reopened: Rows() %d, scanned %d; want %d", n.Rows(), n.ScanStats().Rows, count)
	}
	if got := dbRows(t, n); !equalRows(got, stored) {
		t.Fatalf("rows changed across reopen: %s", diffRows(got, stored))
	}
	if s := n.ScanStats(); s.Bytes <= 0 || s.Duration <= 0 || s.Workers < 1 || s.RowsPerSecond() <= 0 || s.MBPerSecond() <= 0 {
		t.Fatalf("ScanStats = %+v", s)
	}

	for _, c := range []struct {
		name   string
		opts   Options
		forget bool // delete the recorded count before opening
		want   int
	}{
		{"recorded count", Options{}, false, 12}, // ⌈log2 3000⌉
		{"expected rows", Options{ExpectedRows: 1 << 16}, false, 16},
		{"explicit", Options{Depth: 3}, false, 3},
		{"budget too small for the count", Options{Budget: arena.NewBudget(4 * engine.TreeBytes(9))}, false, 8},
		{"no recorded count", Options{}, true, engine.DefaultMaxDepth},
		{"recorded again", Options{}, false, 12},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			if c.forget {
				rawDelete(t, dir, metaRows)
			}
			n = openNode(t, dir, c.opts)
			if n.Depth() != c.want {
				t.Fatalf("depth %d, want %d", n.Depth(), c.want)
			}
			if n.Rows() != count {
				t.Fatalf("Rows() = %d, want %d", n.Rows(), count)
			}
		})
	}
}

// Open refuses a database it cannot serve truthfully, and says why.
func TestOpenRefuses(t *testing.T) {
	p := token.Murmur3{}
	good := appendValue(nil, &engine.Row{Value: []byte("v"), TS: 1})
	var high []byte // a key whose token is above 0
	for i := 0; high == nil; i++ {
		if k := []byte(fmt.Sprint("h", i)); p.Token(k) > 0 {
			high = k
		}
	}
	for _, c := range []struct {
		name    string
		plant   func(t *testing.T, dir string)
		opts    Options
		wantErr error
		wantMsg string
	}{
		{
			name:    "another partitioner",
			opts:    Options{Partitioner: token.ByteOrdered{}},
			wantErr: ErrIncompatible,
			wantMsg: "murmur3",
		},
		{
			name:    "another layout version",
			plant:   func(t *testing.T, dir string) { rawSet(t, dir, metaFormat, []byte{9, p.ID()}) },
			wantErr: ErrIncompatible,
			wantMsg: "version 9",
		},
		{
			name:    "a damaged format record",
			plant:   func(t *testing.T, dir string) { rawSet(t, dir, metaFormat, []byte{1}) },
			wantErr: ErrCorrupt,
		},
		{
			name:    "a row outside the range",
			plant:   func(t *testing.T, dir string) { rawSet(t, dir, appendRowKey(nil, p.Token(high), high), good) },
			opts:    Options{Range: token.Range{Lo: math.MinInt64, Hi: 0}},
			wantErr: ErrOutOfRange,
		},
		{
			name:    "a bad range",
			opts:    Options{Range: token.Range{Lo: 5, Hi: 5}},
			wantErr: token.ErrBadRange,
		},
		{
			name:    "a bad depth",
			opts:    Options{Depth: engine.MaxDepth + 1},
			wantErr: engine.ErrDepth,
		},
		{
			name:    "a budget that holds no tree",
			opts:    Options{Budget: arena.NewBudget(1)},
			wantErr: arena.ErrBudgetExceeded,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			n, err := Open(context.Background(), dir, Options{Depth: 4, Create: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Put(context.Background(), []byte("ok"), []byte("v"), 1); err != nil {
				t.Fatal(err)
			}
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			if c.plant != nil {
				c.plant(t, dir)
			}
			n, err = Open(context.Background(), dir, c.opts)
			if err == nil {
				n.Close()
			}
			if !errors.Is(err, c.wantErr) || !strings.Contains(fmt.Sprint(err), c.wantMsg) {
				t.Fatalf("Open = %v, want %v mentioning %q", err, c.wantErr, c.wantMsg)
			}
			// The refusal released Pebble's lock: the directory opens
			// again once the options fit.
			if c.plant == nil {
				n = openNode(t, dir, Options{Depth: 4})
				if n.Rows() != 1 {
					t.Fatalf("after a refused Open, Rows() = %d, want 1", n.Rows())
				}
			}
		})
	}
}

// A stored row that does not decode, fails its checksum or sits under
// another key's token is damage, not a reason to refuse the node: Open
// builds the tree from the other rows, no read serves it, and the scrub
// moves it aside.
func TestOpenSkipsDamagedRows(t *testing.T) {
	p := token.Murmur3{}
	key := []byte("k")
	ck := appendRowKey(nil, p.Token(key), key)
	good := appendStored(nil, ck, &engine.Row{Key: key, Value: []byte("v"), TS: 1}, 0, false)
	for _, c := range []struct {
		name   string
		ck, v  []byte
		reason string
	}{
		{"a value with reserved flags", ck, append([]byte{0x80}, good[1:]...), "reserved"},
		{"a truncated value", ck, good[:3], "at least"},
		{"a row under the wrong token", appendRowKey(nil, p.Token(key)^1, key), good, "stored under token"},
		{"a value changed under its checksum", ck, append(slices.Clone(good[:len(good)-1]), 'w'), "checksum"},
		{"a value without its checksum", ck, appendValue(nil, &engine.Row{Key: key, Value: []byte("v"), TS: 1}), "checksum"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			n := openNode(t, dir, created(Options{Depth: 4}))
			if err := n.Put(ctx, []byte("ok"), []byte("v"), 1); err != nil {
				t.Fatal(err)
			}
			want := liveRoot(t, n)
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			rawSet(t, dir, c.ck, c.v)
			n = openNode(t, dir, Options{Depth: 4})
			if n.Rows() != 1 || liveRoot(t, n) != want {
				t.Fatalf("Open built a tree of %d rows over the damaged one", n.Rows())
			}
			var seen int
			if err := n.Scan(ctx, p.Range(), func(*engine.Row) error { seen++; return nil }); err != nil || seen != 1 {
				t.Fatalf("Scan served %d rows, %v; want the sound one", seen, err)
			}
			if c.ck[0] == rowPrefix && bytes.Equal(c.ck, ck) {
				if _, _, err := n.Get(ctx, key); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Get of the damaged row: %v, want ErrCorrupt", err)
				}
			}
			rep, err := n.Scrub(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Quarantined) != 1 || !strings.Contains(rep.Quarantined[0].Reason, c.reason) || len(rep.Mismatches) != 0 {
				t.Fatalf("scrub: %+v; want the damaged row moved aside for %q, and no leaf wrong", rep, c.reason)
			}
			if _, closer, err := n.db.Get(c.ck); !errors.Is(err, pebble.ErrNotFound) {
				if err == nil {
					closer.Close()
				}
				t.Fatalf("the damaged row is still stored: %v", err)
			}
		})
	}
}

// After Close every method fails with ErrClosed — nothing faults — and a
// view taken before stays usable until released.
func TestClosedNode(t *testing.T) {
	n, err := Open(context.Background(), t.TempDir(), Options{Depth: 4, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := n.Put(ctx, []byte("k"), []byte("v"), 1); err != nil {
		t.Fatal(err)
	}
	view, release, err := n.View(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for name, call := range map[string]func() error{
		"Put":    func() error { err := n.Put(ctx, []byte("k"), nil, 2); return err },
		"Delete": func() error { err := n.Delete(ctx, []byte("k"), 2); return err },
		"Apply":  func() error { _, err := n.Apply(ctx, []engine.Row{{Key: []byte("k"), TS: 3}}); return err },
		"Apply0": func() error { _, err := n.Apply(ctx, nil); return err },
		"Get":    func() error { _, _, err := n.Get(ctx, []byte("k")); return err },
		"Sum":    func() error { _, err := n.Sum(ctx); return err },
		"View":   func() error { _, _, err := n.View(ctx); return err },
		"Root":   func() error { _, err := n.Root(ctx); return err },
		"Scan": func() error {
			return n.Scan(ctx, n.rng, func(*engine.Row) error { return nil })
		},
	} {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	var sum [1]engine.Digest
	if err := view.Sums(ctx, 0, 0, sum[:]); err != nil {
		t.Fatalf("view taken before Close: %v", err)
	}
	release()
}

// Scan yields exactly the rows whose tokens lie in the asked range (and the
// Node's), in token order, and stops on ctx or on fn's error.
func TestScan(t *testing.T) {
	nodeRange := token.Range{Lo: -1 << 62, Hi: 1 << 62}
	n := openNode(t, t.TempDir(), Options{Depth: 6, Range: nodeRange, Create: true})
	ctx := context.Background()
	var rows []engine.Row
	for i := 0; len(rows) < 500; i++ {
		k := []byte(fmt.Sprint("s", i))
		if nodeRange.Contains(n.p.Token(k)) {
			rows = append(rows, engine.Row{Key: k, Value: []byte("v"), TS: int64(i), Deleted: i%5 == 0})
		}
	}
	if _, err := n.Apply(ctx, rows); err != nil {
		t.Fatal(err)
	}
	all := sortedRows(n.p, rows)
	for _, r := range []token.Range{
		nodeRange,
		{Lo: math.MinInt64, Hi: math.MaxInt64},
		{Lo: -1 << 60, Hi: 1 << 59},
		{Lo: all[10].Token, Hi: all[20].Token}, // excludes all[10], includes all[20]
		{Lo: 1 << 62, Hi: math.MaxInt64},       // outside the Node's range
	} {
		var want []storedRow
		for _, s := range all {
			if r.Contains(s.Token) {
				want = append(want, s)
			}
		}
		var got []storedRow
		err := n.Scan(ctx, r, func(row *engine.Row) error {
			got = append(got, storedRow{n.p.Token(row.Key), cloneRow(*row)})
			return nil
		})
		if err != nil || !equalRows(got, want) {
			t.Errorf("Scan(%v): %v; %s", r, err, diffRows(got, want))
		}
	}
	stop := errors.New("stop")
	calls := 0
	if err := n.Scan(ctx, nodeRange, func(*engine.Row) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Scan with fn failing: %v after %d calls, want stop after 1", err, calls)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := n.Scan(cctx, nodeRange, func(*engine.Row) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Scan with ctx done = %v, want context.Canceled", err)
	}
	if err := n.Scan(ctx, token.Range{Lo: 3, Hi: 3}, func(*engine.Row) error { return nil }); !errors.Is(err, token.ErrBadRange) {
		t.Errorf("Scan of an empty range = %v, want ErrBadRange", err)
	}
}
