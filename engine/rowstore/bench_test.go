package rowstore

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
)

const benchRows = 1_000_000

// benchSource returns n rows of 13-byte keys and 16-byte values: a table of
// small rows, where the store's own overhead shows most.
func benchSource(n int) []engine.Row {
	rows := make([]engine.Row, n)
	for i := range rows {
		rows[i] = engine.Row{Key: fmt.Appendf(nil, "user:%08d", i), Value: []byte("value-0123456789"), TS: 1700000000000000}
	}
	return rows
}

func benchStore(b *testing.B, n int) *Store {
	b.Helper()
	s, err := Load(context.Background(), token.Murmur3{}, &sliceSource{rows: benchSource(n)})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkApply applies batches of 1,000 rows to a store of a million:
// newer versions of stored keys (entries repointed in place), new keys (the
// entry array rebuilt), and half of each.
func BenchmarkApply(b *testing.B) {
	const batch = 1000
	for _, mode := range []string{"updates", "inserts", "mixed"} {
		b.Run(mode, func(b *testing.B) {
			s := benchStore(b, benchRows)
			rng := rand.New(rand.NewPCG(1, 2))
			// Enough distinct batches that the store does not settle.
			batches := make([][]engine.Row, 64)
			stored := rng.Perm(benchRows) // distinct keys within a batch
			for i := range batches {
				rows := make([]engine.Row, batch)
				for j := range rows {
					key := fmt.Appendf(nil, "user:%08d", stored[i*batch+j])
					rows[j] = engine.Row{Key: key, Value: []byte("value-9876543210"), TS: 1700000000000001}
				}
				batches[i] = rows
			}
			ctx := context.Background()
			changes := 0
			changed := func(old, new *engine.Row) error { changes++; return nil }
			next := uint64(benchRows)
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				if s.Len() > benchRows*5/4 {
					// Keep measuring a store of about a million rows.
					b.StopTimer()
					s = benchStore(b, benchRows)
					next = benchRows
					b.StartTimer()
				}
				rows := batches[i%len(batches)]
				for j := range rows {
					rows[j].TS++ // newer every round, so updates keep applying
					if mode == "inserts" || (mode == "mixed" && j%2 == 1) {
						putKey(rows[j].Key, next) // a key never stored before
						next++
					}
				}
				i++
				n, err := s.Apply(ctx, rows, changed)
				if err != nil || n != batch {
					b.Fatalf("applied %d of %d: %v", n, batch, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/row")
		})
	}
}

// putKey rewrites the 8 digits of a "user:%08d" key in place with n,
// rather than allocate a new key in the timed loop.
func putKey(key []byte, n uint64) {
	for i := len(key) - 1; i >= len("user:"); i-- {
		key[i] = byte('0' + n%10)
		n /= 10
	}
}

// BenchmarkScanLeaf scans a token range holding about ten rows of a
// million-row store: what serving one differing leaf of a deep tree costs.
func BenchmarkScanLeaf(b *testing.B) {
	s := benchStore(b, benchRows)
	const perScan = 10
	width := uint64(math.MaxUint64) / benchRows * perScan
	rng := rand.New(rand.NewPCG(3, 4))
	ranges := make([]token.Range, 4096)
	for i := range ranges {
		lo := int64(rng.Uint64())
		if lo > math.MaxInt64-int64(width) {
			lo = math.MaxInt64 - int64(width)
		}
		ranges[i] = token.Range{Lo: lo, Hi: lo + int64(width)}
	}
	ctx := context.Background()
	rows := 0
	var sum int64
	fn := func(r *engine.Row) error { rows++; sum += r.TS; return nil }
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Scan(ctx, ranges[i%len(ranges)], fn); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(rows)/float64(b.N), "rows/op")
}

// BenchmarkGet looks up random stored keys in a million-row store.
func BenchmarkGet(b *testing.B) {
	s := benchStore(b, benchRows)
	rng := rand.New(rand.NewPCG(5, 6))
	keys := make([][]byte, 4096)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "user:%08d", rng.IntN(benchRows))
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.Get(keys[i%len(keys)]); !ok {
			b.Fatal("missing key")
		}
		i++
	}
}

// BenchmarkLoad loads a million rows and reports the store's heap cost per
// row beyond the key and value bytes.
func BenchmarkLoad(b *testing.B) {
	rows := benchSource(benchRows)
	ctx := context.Background()
	var m runtime.MemStats
	var overhead float64
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&m)
		before := m.HeapAlloc
		b.StartTimer()
		s, err := Load(ctx, token.Murmur3{}, &sliceSource{rows: rows})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&m)
		overhead = (float64(m.HeapAlloc) - float64(before) - float64(s.DataBytes())) / float64(s.Len())
		runtime.KeepAlive(s)
		b.StartTimer()
	}
	b.ReportMetric(overhead, "heap-B/row")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchRows), "ns/row")
}
