package rowstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/jsonl"
	"github.com/antientropy/grove/engine/token"
)

// call is one call of Apply's changed callback, copied.
type call struct {
	old *engine.Row
	new engine.Row
}

func recordCalls(calls *[]call) func(old, new *engine.Row) error {
	return func(old, new *engine.Row) error {
		c := call{new: clone(new)}
		if old != nil {
			o := clone(old)
			c.old = &o
		}
		*calls = append(*calls, c)
		return nil
	}
}

// expectedCalls is what Apply must report for a batch, worked out from the
// oracle before and after it: one (before, after) pair per key that
// changed, in (token, key) order.
func expectedCalls(p token.Partitioner, before, after oracle) []call {
	var want []call
	for _, r := range after.rows(p) {
		old, ok := before[string(r.Key)]
		switch {
		case !ok:
			want = append(want, call{new: r})
		case !sameRow(&old, &r):
			want = append(want, call{old: &old, new: r})
		}
	}
	return want
}

func checkCalls(t testing.TB, got, want []call) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("changed called %d times, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if (g.old == nil) != (w.old == nil) || (g.old != nil && !sameRow(g.old, w.old)) || !sameRow(&g.new, &w.new) {
			t.Fatalf("call %d: changed(%s, %s), want changed(%s, %s)", i, fmtRow(g.old), fmtRow(&g.new), fmtRow(w.old), fmtRow(&w.new))
		}
	}
}

// TestApplyOracle: under random batches (keys repeated within a batch,
// timestamps that tie, tombstones, equal timestamps with different values)
// the store holds what a map written row by row holds, and Apply reports
// exactly the changes between the two states, in order.
func TestApplyOracle(t *testing.T) {
	ctx := context.Background()
	for _, p := range partitioners {
		t.Run(p.Name(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, uint64(p.ID())))
			keys := keyPool(rng, 80)
			s := New(p)
			o := oracle{}
			for batch := range 300 {
				n := rng.IntN(40)
				if batch%50 == 49 {
					n = 400 // a batch larger than the store
				}
				rows := make([]engine.Row, n)
				for i := range rows {
					rows[i] = randomRow(rng, keys)
				}
				before := o.clone()
				for i := range rows {
					o.put(&rows[i])
				}
				want := expectedCalls(p, before, o)

				var calls []call
				applied, err := s.Apply(ctx, rows, recordCalls(&calls))
				if err != nil {
					t.Fatalf("batch %d: %v", batch, err)
				}
				checkCalls(t, calls, want)
				if applied != len(want) {
					t.Fatalf("batch %d: applied %d, want %d", batch, applied, len(want))
				}
				checkRows(t, fmt.Sprintf("batch %d: All", batch), all(t, s), o.rows(p))
				if s.Len() != len(o) || s.DataBytes() != o.dataBytes() {
					t.Fatalf("batch %d: Len %d, DataBytes %d; want %d, %d", batch, s.Len(), s.DataBytes(), len(o), o.dataBytes())
				}
				checkInvariants(t, s)
			}
			for _, k := range append(keys, []byte("absent"), nil) {
				got, ok := s.Get(k)
				want, wok := o[string(k)]
				if ok != wok || (ok && !sameRow(&got, &want)) {
					t.Fatalf("Get(%q) = %s, %v; want %s, %v", k, fmtRow(&got), ok, fmtRow(&want), wok)
				}
			}
		})
	}
}

// TestApplyNilKey: a nil key and an empty key are one key.
func TestApplyNilKey(t *testing.T) {
	s := New(nil)
	if _, ok := s.Partitioner().(token.Murmur3); !ok {
		t.Fatalf("New(nil) partitioner %v, want Murmur3", s.Partitioner())
	}
	rows := []engine.Row{{Key: nil, Value: []byte("a"), TS: 1}, {Key: []byte{}, Value: []byte("b"), TS: 2}}
	n, err := s.Apply(context.Background(), rows, nil)
	if err != nil || n != 1 || s.Len() != 1 {
		t.Fatalf("applied %d, %v, Len %d; want one row", n, err, s.Len())
	}
	if got, ok := s.Get(nil); !ok || string(got.Value) != "b" {
		t.Fatalf("Get(nil) = %s, %v; want value b", fmtRow(&got), ok)
	}
}

// TestApplyPaths covers both ways a batch commits: new versions of stored
// keys only (entries repointed in place) and batches that add keys (a new
// entry array), with compaction after many overwrites bounding the slab.
func TestApplyPaths(t *testing.T) {
	ctx := context.Background()
	s := New(token.ByteOrdered{})
	o := oracle{}
	const keys = 200
	value := bytes.Repeat([]byte("v"), 100)
	for round := range 50 {
		rows := make([]engine.Row, keys)
		for i := range rows {
			rows[i] = engine.Row{Key: fmt.Appendf(nil, "key%04d", i), Value: value, TS: int64(round)}
			o.put(&rows[i])
		}
		before := snapshot(s)
		n, err := s.Apply(ctx, rows, nil)
		if err != nil || n != keys {
			t.Fatalf("round %d: applied %d, %v; want %d", round, n, err, keys)
		}
		after := snapshot(s)
		if round > 0 {
			// Same keys: the same tokens in the same places; only offsets move.
			if len(after.ents) != keys || !slices.EqualFunc(before.ents, after.ents, func(a, b entry) bool { return a.tok == b.tok }) {
				t.Fatalf("round %d: entries changed beyond their offsets", round)
			}
		}
		checkInvariants(t, s)
		checkRows(t, fmt.Sprintf("round %d", round), all(t, s), o.rows(s.p))
	}
	live := int64(0)
	for _, r := range o {
		live += int64(recordLen(&r))
	}
	// Without compaction the slab would hold all 50 rounds.
	if got := int64(len(s.slab)); got > 2*live+1 {
		t.Fatalf("slab holds %d bytes for %d live: replaced rows not compacted", got, live)
	}
}

// TestScanOracle: Scan of any range returns exactly the rows of All whose
// tokens lie in it, in order, including ranges at the ends of the ring,
// ranges that start or end on a row's token, and tokens shared by keys.
func TestScanOracle(t *testing.T) {
	ctx := context.Background()
	for _, p := range partitioners {
		t.Run(p.Name(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(11, uint64(p.ID())))
			keys := keyPool(rng, 500)
			var src []engine.Row
			for range 2000 {
				src = append(src, randomRow(rng, keys))
			}
			s, err := Load(ctx, p, &sliceSource{rows: src})
			if err != nil {
				t.Fatal(err)
			}
			rows := all(t, s)
			o := oracle{}
			for i := range src {
				o.put(&src[i])
			}
			checkRows(t, "All", rows, o.rows(p))
			tokens := make([]token.Token, len(rows))
			for i := range rows {
				tokens[i] = p.Token(rows[i].Key)
			}
			shared := 0
			for i := 1; i < len(tokens); i++ {
				if tokens[i] == tokens[i-1] {
					shared++
				}
			}
			if p.ID() == (token.ByteOrdered{}).ID() && shared == 0 {
				t.Fatal("no two keys share a token: the test lost its point")
			}

			anyTok := func() token.Token { return tokens[rng.IntN(len(tokens))] }
			ranges := []token.Range{
				{Lo: math.MinInt64, Hi: math.MaxInt64},
				{Lo: math.MinInt64, Hi: math.MinInt64 + 1},
				{Lo: math.MaxInt64 - 1, Hi: math.MaxInt64},
				{Lo: math.MinInt64, Hi: tokens[0]},
				{Lo: math.MinInt64, Hi: tokens[0] - 1},
				{Lo: tokens[len(tokens)-1], Hi: math.MaxInt64},
				{Lo: tokens[len(tokens)-1] - 1, Hi: math.MaxInt64},
			}
			for range 300 {
				a, b := anyTok(), anyTok()
				switch rng.IntN(4) {
				case 0:
					a, b = int64(rng.Uint64()), int64(rng.Uint64())
				case 1:
					a = math.MinInt64
				case 2:
					b = math.MaxInt64
				}
				if a > b {
					a, b = b, a
				}
				ranges = append(ranges, token.Range{Lo: a, Hi: b}) // a == b: an empty range
				if a > math.MinInt64 {
					ranges = append(ranges, token.Range{Lo: a - 1, Hi: a}) // exactly one token
				}
				if a < b {
					ranges = append(ranges, token.Range{Lo: a, Hi: a + int64(uint64(b-a)/1000)}) // often holds no row
				}
			}
			for _, r := range ranges {
				var want []engine.Row
				for i := range rows {
					if tok := p.Token(rows[i].Key); r.Lo < tok && tok <= r.Hi {
						want = append(want, rows[i])
					}
				}
				var got []engine.Row
				if err := s.Scan(ctx, r, func(row *engine.Row) error {
					got = append(got, clone(row))
					return nil
				}); err != nil {
					t.Fatalf("Scan %v: %v", r, err)
				}
				checkRows(t, "Scan "+r.String(), got, want)
			}
		})
	}
}

// TestScanBadRange: a wrapping range is an error; an empty one holds
// nothing; an empty store scans fine.
func TestScanBadRange(t *testing.T) {
	ctx := context.Background()
	s := New(token.Murmur3{})
	if _, err := s.Apply(ctx, []engine.Row{{Key: []byte("k"), TS: 1}}, nil); err != nil {
		t.Fatal(err)
	}
	tok := s.p.Token([]byte("k"))
	tests := []struct {
		name    string
		r       token.Range
		wantErr error
		rows    int
	}{
		{"wraps", token.Range{Lo: tok, Hi: tok - 1}, token.ErrBadRange, 0},
		{"empty at the row's token", token.Range{Lo: tok, Hi: tok}, nil, 0},
		{"holds the row", token.Range{Lo: tok - 1, Hi: tok}, nil, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			err := s.Scan(ctx, tc.r, func(*engine.Row) error { n++; return nil })
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) || n != tc.rows {
				t.Fatalf("Scan %v: %d rows, %v; want %d rows, %v", tc.r, n, err, tc.rows, tc.wantErr)
			}
		})
	}
	empty := New(token.ByteOrdered{})
	if err := empty.Scan(ctx, token.Range{Lo: math.MinInt64, Hi: math.MaxInt64}, func(*engine.Row) error {
		return errors.New("called")
	}); err != nil {
		t.Fatalf("scan of an empty store: %v", err)
	}
}

// TestScanStops: fn's error ends the scan and comes back as it is; a done
// context ends it too.
func TestScanStops(t *testing.T) {
	rows := make([]engine.Row, 3*ctxEvery)
	for i := range rows {
		rows[i] = engine.Row{Key: fmt.Appendf(nil, "k%d", i), TS: 1}
	}
	s, err := Load(context.Background(), nil, &sliceSource{rows: rows})
	if err != nil {
		t.Fatal(err)
	}
	full := token.Range{Lo: math.MinInt64, Hi: math.MaxInt64}
	stop := errors.New("stop")

	tests := []struct {
		name      string
		scan      func(ctx context.Context, fn func(*engine.Row) error) error
		cancelAt  int // cancel the context in the call with this number
		failAt    int // return stop from the call with this number
		preCancel bool
		want      error
		maxCalls  int
	}{
		{"Scan, fn fails", func(ctx context.Context, fn func(*engine.Row) error) error { return s.Scan(ctx, full, fn) }, 0, 5, false, stop, 5},
		{"All, fn fails", s.All, 0, 1, false, stop, 1},
		{"Scan, cancelled during", func(ctx context.Context, fn func(*engine.Row) error) error { return s.Scan(ctx, full, fn) }, 10, 0, false, context.Canceled, ctxEvery},
		{"All, cancelled during", s.All, 10, 0, false, context.Canceled, ctxEvery},
		{"Scan, cancelled before", func(ctx context.Context, fn func(*engine.Row) error) error { return s.Scan(ctx, full, fn) }, 0, 0, true, context.Canceled, 0},
		{"All, cancelled before", s.All, 0, 0, true, context.Canceled, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.preCancel {
				cancel()
			}
			calls := 0
			err := tc.scan(ctx, func(*engine.Row) error {
				calls++
				if calls == tc.cancelAt {
					cancel()
				}
				if calls == tc.failAt {
					return stop
				}
				return nil
			})
			if !errors.Is(err, tc.want) || calls > tc.maxCalls {
				t.Fatalf("%d calls, %v; want at most %d calls, %v", calls, err, tc.maxCalls, tc.want)
			}
			if tc.want == stop && err != stop {
				t.Fatalf("fn's error came back as %v, not as it was", err)
			}
		})
	}
}

// TestApplyAtomic: an Apply that fails — changed fails on its k-th call, or
// the context is done before or during — leaves the store exactly as it
// was, internals included, and says how many calls succeeded.
func TestApplyAtomic(t *testing.T) {
	for _, p := range partitioners {
		t.Run(p.Name(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, uint64(p.ID())))
			keys := keyPool(rng, 100)
			var base []engine.Row
			for range 150 {
				base = append(base, randomRow(rng, keys))
			}
			var batch []engine.Row
			for range 200 {
				r := randomRow(rng, keys)
				r.TS += 2 // newer than most: many replaces, and new keys
				batch = append(batch, r)
			}
			ctx := context.Background()
			probe, err := Load(ctx, p, &sliceSource{rows: base})
			if err != nil {
				t.Fatal(err)
			}
			changes, err := probe.Apply(ctx, batch, nil)
			if err != nil || changes < 10 {
				t.Fatalf("probe: %d changes, %v; want at least 10", changes, err)
			}

			boom := errors.New("boom")
			tests := []struct {
				name     string
				failAt   int // changed fails on this call
				cancelAt int // changed cancels ctx on this call (and returns nil)
				pre      bool
				want     error
				applied  int
			}{
				{"changed fails on the first call", 1, 0, false, boom, 0},
				{"changed fails midway", changes / 2, 0, false, boom, changes/2 - 1},
				{"changed fails on the last call", changes, 0, false, boom, changes - 1},
				{"context done before", 0, 0, true, context.Canceled, 0},
				{"context done during", 0, 3, false, context.Canceled, 3},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					s, err := Load(ctx, p, &sliceSource{rows: base})
					if err != nil {
						t.Fatal(err)
					}
					before, rowsBefore := snapshot(s), all(t, s)
					var jsonBefore bytes.Buffer
					if err := s.WriteJSONL(ctx, &jsonBefore); err != nil {
						t.Fatal(err)
					}

					actx, cancel := context.WithCancel(ctx)
					defer cancel()
					if tc.pre {
						cancel()
					}
					calls := 0
					applied, err := s.Apply(actx, batch, func(old, new *engine.Row) error {
						calls++
						if calls == tc.cancelAt {
							cancel()
						}
						if calls == tc.failAt {
							return boom
						}
						return nil
					})
					if !errors.Is(err, tc.want) || applied != tc.applied {
						t.Fatalf("Apply = %d, %v; want %d, %v", applied, err, tc.applied, tc.want)
					}
					if !snapshot(s).equal(before) {
						t.Fatal("the store changed")
					}
					checkRows(t, "All after the failed Apply", all(t, s), rowsBefore)
					var jsonAfter bytes.Buffer
					if err := s.WriteJSONL(ctx, &jsonAfter); err != nil || !bytes.Equal(jsonAfter.Bytes(), jsonBefore.Bytes()) {
						t.Fatalf("WriteJSONL differs after the failed Apply (%v)", err)
					}
					// The store is still good for the same batch.
					if n, err := s.Apply(ctx, batch, nil); err != nil || n != changes {
						t.Fatalf("retry: %d, %v; want %d", n, err, changes)
					}
					checkRows(t, "after the retry", all(t, s), all(t, probe))
				})
			}
		})
	}
}

// TestLoad: several rows for one key keep the one that supersedes the
// others, whatever their order; errors from the source and the context are
// returned.
func TestLoad(t *testing.T) {
	ctx := context.Background()
	for _, p := range partitioners {
		t.Run(p.Name(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, uint64(p.ID())))
			for _, nkeys := range []int{1, 20, 300} {
				keys := keyPool(rng, nkeys)[:nkeys]
				var src []engine.Row
				o := oracle{}
				for range 1000 {
					r := randomRow(rng, keys)
					src = append(src, r)
					o.put(&r)
				}
				src = append(src, src[:50]...) // identical duplicates too
				rng.Shuffle(len(src), func(i, j int) { src[i], src[j] = src[j], src[i] })
				s, err := Load(ctx, p, &sliceSource{rows: src})
				if err != nil {
					t.Fatal(err)
				}
				checkRows(t, fmt.Sprintf("%d keys", nkeys), all(t, s), o.rows(p))
				checkInvariants(t, s)
				if s.garbage != 0 || !inOrder(s.ents) {
					t.Fatalf("after Load: %d bytes of garbage, records in scan order: %v; want none, true", s.garbage, inOrder(s.ents))
				}
				if s.DataBytes() != o.dataBytes() {
					t.Fatalf("DataBytes %d, want %d", s.DataBytes(), o.dataBytes())
				}
			}
		})
	}

	bad := errors.New("bad source")
	if _, err := Load(ctx, nil, &sliceSource{rows: make([]engine.Row, 3), err: bad}); !errors.Is(err, bad) {
		t.Fatalf("source error: %v, want %v", err, bad)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Load(cctx, nil, &sliceSource{rows: make([]engine.Row, 3)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled load: %v", err)
	}
}

// TestWriteJSONLRoundTrip: WriteJSONL, read back by jsonl.Reader into Load,
// gives the same rows, and writing again gives the same bytes.
func TestWriteJSONLRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, p := range partitioners {
		t.Run(p.Name(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(9, uint64(p.ID())))
			keys := keyPool(rng, 300)
			var src []engine.Row
			for range 1000 {
				src = append(src, randomRow(rng, keys))
			}
			src = append(src, engine.Row{Key: []byte("\"quoted\"\n\\"), Value: []byte("\x00\x7f😀"), TS: math.MinInt64, Deleted: true})
			s, err := Load(ctx, p, &sliceSource{rows: src})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := s.WriteJSONL(ctx, &out); err != nil {
				t.Fatal(err)
			}
			if lines := bytes.Count(out.Bytes(), []byte("\n")); lines != s.Len() {
				t.Fatalf("%d lines for %d rows", lines, s.Len())
			}
			back, err := Load(ctx, p, jsonl.NewReader(bytes.NewReader(out.Bytes())))
			if err != nil {
				t.Fatal(err)
			}
			checkRows(t, "round trip", all(t, back), all(t, s))
			var again bytes.Buffer
			if err := back.WriteJSONL(ctx, &again); err != nil || !bytes.Equal(again.Bytes(), out.Bytes()) {
				t.Fatalf("second WriteJSONL differs (%v)", err)
			}
		})
	}
}

// TestRowsDoNotAlias: Get's bytes are the caller's; a scan callback that
// appends to the row's slices cannot overwrite the next row.
func TestRowsDoNotAlias(t *testing.T) {
	ctx := context.Background()
	s := New(token.ByteOrdered{})
	rows := []engine.Row{{Key: []byte("a"), Value: []byte("1"), TS: 1}, {Key: []byte("b"), Value: []byte("2"), TS: 1}}
	if _, err := s.Apply(ctx, rows, nil); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get([]byte("a"))
	got.Key[0], got.Value[0] = 'X', 'X'
	_ = append(got.Key, "YYYY"...)
	if err := s.All(ctx, func(r *engine.Row) error {
		_ = append(r.Key, "ZZZZZZZZ"...)
		_ = append(r.Value, "ZZZZZZZZ"...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rows[0].Key[0] = 'Q' // nor does the store keep the caller's rows
	checkRows(t, "after writing to returned bytes", all(t, s), []engine.Row{
		{Key: []byte("a"), Value: []byte("1"), TS: 1}, {Key: []byte("b"), Value: []byte("2"), TS: 1},
	})
}

// TestConcurrent: scans and Gets run while batches are applied; each scan
// sees one consistent, ordered state. Run with -race.
func TestConcurrent(t *testing.T) {
	ctx := context.Background()
	p := token.ByteOrdered{}
	s := New(p)
	keys := keyPool(rand.New(rand.NewPCG(1, 1)), 300)
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 8)
	for w := range 3 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(2, uint64(w)))
			for {
				select {
				case <-done:
					return
				default:
				}
				a, b := int64(rng.Uint64()), int64(rng.Uint64())
				r := token.Range{Lo: min(a, b), Hi: max(a, b)}
				var prev []byte
				prevTok := token.Token(math.MinInt64)
				n := 0
				err := s.Scan(ctx, r, func(row *engine.Row) error {
					tok := p.Token(row.Key)
					if !r.Contains(tok) || tok < prevTok || (tok == prevTok && n > 0 && bytes.Compare(prev, row.Key) >= 0) {
						return fmt.Errorf("row %q (token %d) out of order or range %v", row.Key, tok, r)
					}
					prev, prevTok = append(prev[:0], row.Key...), tok
					n++
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
				s.Get(keys[rng.IntN(len(keys))])
				s.Len()
				s.DataBytes()
			}
		})
	}
	rng := rand.New(rand.NewPCG(3, 3))
	for range 300 {
		rows := make([]engine.Row, rng.IntN(30))
		for i := range rows {
			rows[i] = randomRow(rng, keys)
		}
		if _, err := s.Apply(ctx, rows, func(old, new *engine.Row) error {
			s.Get(new.Key) // changed may read the store
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkInvariants(t, s)
}

// TestHeapPerRow measures the store's own heap cost per row beyond the key
// and value bytes, through Load and then an Apply that adds keys (which
// allocates the spare entry array).
func TestHeapPerRow(t *testing.T) {
	n := 1_000_000
	if testing.Short() || raceEnabled {
		n = 200_000
	}
	ctx := context.Background()
	rows := make([]engine.Row, n)
	for i := range rows {
		rows[i] = engine.Row{Key: fmt.Appendf(nil, "user:%08d", i), Value: []byte("value-0123456789"), TS: 1700000000000000}
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	h0 := heap()
	s, err := Load(ctx, nil, &sliceSource{rows: rows})
	if err != nil {
		t.Fatal(err)
	}
	h1 := heap()
	data1 := float64(s.DataBytes())
	more := make([]engine.Row, 1000)
	for i := range more {
		more[i] = engine.Row{Key: fmt.Appendf(nil, "new:%08d", i), Value: []byte("value-0123456789"), TS: 1700000000000000}
	}
	if _, err := s.Apply(ctx, more, nil); err != nil {
		t.Fatal(err)
	}
	h2 := heap()
	data := float64(s.DataBytes())
	loaded := (float64(h1) - float64(h0) - data1) / float64(n)
	applied := (float64(h2) - float64(h0) - data) / float64(s.Len())
	t.Logf("%d rows, %.0f key+value bytes: overhead %.1f B/row after Load, %.1f B/row after an Apply adding keys",
		s.Len(), data, loaded, applied)
	if loaded > 100 || applied > 100 {
		t.Fatalf("heap overhead %.1f / %.1f B/row, want < 100", loaded, applied)
	}
	runtime.KeepAlive(rows)
	runtime.KeepAlive(s)
}
