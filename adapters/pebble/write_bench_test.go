package grovepebble

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
)

// writeRows is the number of rows each pass of BenchmarkWritePath writes:
// GROVE_WRITE_ROWS, default 200,000, so that -benchtime 1x is one pass of a
// size that outlasts Pebble's first memtable flush.
func writeRows(b *testing.B) int {
	s := os.Getenv("GROVE_WRITE_ROWS")
	if s == "" {
		return 200_000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("GROVE_WRITE_ROWS=%q: want a positive integer", s)
	}
	return n
}

// writeBenchRows makes n rows of random 16-byte keys and 90-byte values.
// The seed is fixed so that plain and grove write the same rows.
func writeBenchRows(n int) []engine.Row {
	rng := rand.New(rand.NewPCG(15, 15))
	rows := make([]engine.Row, n)
	for i := range rows {
		key := make([]byte, 16)
		for j := range key {
			key[j] = byte(rng.Uint32())
		}
		value := make([]byte, 90)
		for j := range value {
			value[j] = byte(rng.Uint32())
		}
		rows[i] = engine.Row{Key: key, Value: value, TS: int64(i) + 1}
	}
	return rows
}

// BenchmarkWritePath measures the cost of grove's write path against Pebble
// alone, for synced batches of 16 and 256 rows with random keys: "plain"
// writes the rows' stored keys and values with Set into a bare Pebble
// database; "grove" writes the same rows through Node.Apply on a node of
// eight ranges: fg-ratio-vs-plain is the time until its last batch was
// durable, ratio-vs-plain the time until its trees had followed every
// write and hashed their roots (the sustained cost). ratio-vs-plain divides grove's
// time per row by plain's from the same process, so the figure survives a
// change of machine where the absolute rates do not.
//
//	GROVE_WRITE_ROWS=200000 go test -run '^$' -bench WritePath -benchtime 1x .
func BenchmarkWritePath(b *testing.B) {
	rows := writeBenchRows(writeRows(b))
	for _, size := range []int{16, 256} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			// Plain runs first; grove's ratio needs it, so a filter that
			// skips plain leaves grove without one.
			var plainNsPerRow float64
			b.Run("plain", func(b *testing.B) {
				plainNsPerRow = benchPlainWrites(b, rows, size)
			})
			b.Run("grove", func(b *testing.B) {
				fg, ns := benchGroveWrites(b, rows, size)
				if plainNsPerRow > 0 {
					b.ReportMetric(fg/plainNsPerRow, "fg-ratio-vs-plain")
					b.ReportMetric(ns/plainNsPerRow, "ratio-vs-plain")
				}
			})
		})
	}
}

// benchPlainWrites writes rows in synced batches of size into a bare Pebble
// database opened as a Node opens its own, and returns ns per row. Each pass
// gets a new database, untimed, so that every pass inserts: a second pass
// into the same one would overwrite for plain but be refused for grove,
// which keeps a stored version that is equal.
func benchPlainWrites(b *testing.B, rows []engine.Row, size int) float64 {
	p := token.Murmur3{}
	var ck, v []byte
	b.StopTimer()
	for range b.N {
		// The options a Node opens Pebble with: bloom filters cost plain
		// their share of every flush and compaction too.
		o := &pebble.Options{Logger: quietLogger{}}
		cache := lookupOptions(o, DefaultBlockCache)
		db, err := pebble.Open(b.TempDir(), o)
		cache.Unref()
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for start := 0; start < len(rows); start += size {
			batch := db.NewBatch()
			for i := start; i < min(start+size, len(rows)); i++ {
				r := &rows[i]
				// The same bytes a Node stores, so that the two differ
				// only in what grove does around them.
				ck = appendRowKey(ck[:0], p.Token(r.Key), r.Key)
				v = appendValue(v[:0], r)
				if err := batch.Set(ck, v, nil); err != nil {
					b.Fatal(err)
				}
			}
			if err := batch.Commit(pebble.Sync); err != nil {
				b.Fatal(err)
			}
			batch.Close()
		}
		b.StopTimer()
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
	return reportWriteRate(b, len(rows))
}

// benchGroveWrites writes rows through Node.Apply in batches of size into a
// node of eight ranges covering the ring, new for each pass as in
// benchPlainWrites, and returns ns per row until the last batch was
// durable (the foreground) and until every tree had followed the writes
// and hashed its root (sustained).
func benchGroveWrites(b *testing.B, rows []engine.Row, size int) (fg, sustained float64) {
	ctx := context.Background()
	ring := token.Murmur3{}.Range()
	var ranges []token.Range
	for i := range 8 {
		ranges = append(ranges, ring.Leaf(i, 3))
	}
	var fgTime time.Duration
	b.StopTimer()
	for range b.N {
		// The trees are planned for the rows about to arrive, as on a
		// node that already holds its data: a node growing from empty
		// also rebuilds each range as its rows double, a cost of growth
		// and not of the write path.
		perRange := int64(len(rows) / len(ranges))
		n, err := Open(ctx, b.TempDir(), Options{Ranges: ranges, Create: true, RangeRows: func(token.Range) int64 { return perRange }})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		b.StartTimer()
		for start := 0; start < len(rows); start += size {
			if _, err := n.Apply(ctx, rows[start:min(start+size, len(rows))]); err != nil {
				b.Fatal(err)
			}
		}
		fgTime += time.Since(start)
		for _, r := range n.Replicas() {
			if _, err := r.Root(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		// Close checkpoints the forest: a cost of shutdown, not of the
		// writes, so it is left out of the time.
		if err := n.Close(); err != nil {
			b.Fatal(err)
		}
	}
	total := float64(b.N) * float64(len(rows))
	b.ReportMetric(total/fgTime.Seconds(), "fg-rows/s")
	return float64(fgTime.Nanoseconds()) / total, reportWriteRate(b, len(rows))
}

// reportWriteRate reports rows/s over the timed passes and returns ns per
// row.
func reportWriteRate(b *testing.B, perPass int) float64 {
	total := float64(b.N) * float64(perPass)
	secs := b.Elapsed().Seconds()
	b.ReportMetric(total/secs, "rows/s")
	return secs * 1e9 / total
}
