package grovepebble

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
)

// benchRows is the number of rows BenchmarkValidationScan loads:
// GROVE_PEBBLE_BENCH_ROWS, default 1,000,000.
func benchRows(b *testing.B) int {
	s := os.Getenv("GROVE_PEBBLE_BENCH_ROWS")
	if s == "" {
		return 1_000_000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("GROVE_PEBBLE_BENCH_ROWS=%q: want a positive integer", s)
	}
	return n
}

// BenchmarkValidationScan times Open on a database of benchRows rows (keys
// of 14 bytes, values of 64 random bytes), flushed and compacted into
// sstables: reading every row, checking it, hashing it into a depth-20 tree,
// and hashing the inner levels. The files are in the page cache after the
// first pass, as they are on a node that has been serving them.
//
//	go test -run '^$' -bench ValidationScan -benchtime 5x .
func BenchmarkValidationScan(b *testing.B) {
	rows := benchRows(b)
	dir := b.TempDir()
	p := token.Murmur3{}
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}, Merger: Merger})
	if err != nil {
		b.Fatal(err)
	}
	// The format record a Node writes at its first Open: without it the
	// database would be another application's.
	if err := db.Set(metaFormat, []byte{layoutVersion, p.ID(), formatStrict}, pebble.NoSync); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	value := make([]byte, 64)
	batch := db.NewBatch()
	var ck, v []byte
	for i := range rows {
		key := fmt.Appendf(nil, "user:%09d", i)
		for j := range value {
			value[j] = byte(rng.Uint32())
		}
		ck = appendRowKey(ck[:0], p.Token(key), key)
		v = appendStored(v[:0], ck, &engine.Row{Value: value, TS: int64(i)}, 0, false)
		if err := batch.Set(ck, v, nil); err != nil {
			b.Fatal(err)
		}
		if batch.Count() == 10_000 {
			if err := batch.Commit(pebble.NoSync); err != nil {
				b.Fatal(err)
			}
			batch = db.NewBatch()
		}
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		b.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := db.Compact(context.Background(), []byte{rowPrefix}, []byte{rowPrefix + 1}, true); err != nil {
		b.Fatal(err)
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}

	budget := arena.NewBudget(1 << 30)
	var total ScanStats // summed over the passes
	for b.Loop() {
		n, err := Open(context.Background(), dir, Options{Depth: 20, Budget: budget})
		if err != nil {
			b.Fatal(err)
		}
		s := n.ScanStats()
		if s.Rows != int64(rows) {
			b.Fatalf("scanned %d rows, want %d", s.Rows, rows)
		}
		total.Rows += s.Rows
		total.Bytes += s.Bytes
		total.Duration += s.Duration
		total.HashDuration += s.HashDuration
		total.Workers = s.Workers
		if err := n.Close(); err != nil {
			b.Fatal(err)
		}
	}
	passes := float64(total.Rows) / float64(rows)
	b.ReportMetric(total.RowsPerSecond(), "rows/s")
	b.ReportMetric(total.MBPerSecond(), "MB/s")
	b.ReportMetric(total.Duration.Seconds()*1e3/passes, "scan-ms")
	b.ReportMetric(total.HashDuration.Seconds()*1e3/passes, "hash-ms")
}
