package nodebench

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkScanOpen times the scan alone — a node's open that builds every
// tree from the rows — for profiling it:
//
//	NODEBENCH_ROWS=2000000 go test -run '^$' -bench ScanOpen -benchtime 5x -cpuprofile cpu.prof ./internal/nodebench/
func BenchmarkScanOpen(b *testing.B) {
	rows := QuickRows
	if s := os.Getenv("NODEBENCH_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("NODEBENCH_ROWS=%q: want a positive integer", s)
		}
		rows = n
	}
	ctx := context.Background()
	d, err := makeDataset(rows)
	if err != nil {
		b.Fatal(err)
	}
	tmp := b.TempDir()
	m := newScanMeasure(d, filepath.Join(tmp, "db"), filepath.Join(tmp, "trees"))
	if err := writeDB(ctx, m.dbDir, d); err != nil {
		b.Fatal(err)
	}
	if _, err := m.scan(ctx); err != nil { // warm, and the reference roots
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.scan(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
