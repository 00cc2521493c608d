package forest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/antientropy/grove/arena"
)

// BenchmarkOpenClean times reopening a cleanly closed forest of a node
// holding 2 M rows: 16 or 256 tokens a node on 6 nodes, RF 3 (48 or 768
// ranges). It reports the open's time per op, the rows it read (none), and
// the target the issue sets, 50 ms + 1 ms per 10 ranges.
func BenchmarkOpenClean(b *testing.B) {
	for _, tokens := range []int{16, 256} {
		b.Run(fmt.Sprintf("tokens=%d", tokens), func(b *testing.B) {
			ctx := context.Background()
			ranges := nodeRanges(b, 6, tokens, 11)
			// 2 M rows on the node: keys enough that its ranges' share of
			// the ring holds that many.
			var share float64
			for _, r := range ranges {
				share += float64(r.Width()) / (1 << 64)
			}
			store := storeFor(b, int(2_000_000/share), ranges)
			dir := b.TempDir()
			budget := arena.NewBudget(256 << 20)
			f, err := Open(ctx, dir, Options{Budget: budget, Ranges: ranges, Store: store})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.Close(ctx); err != nil {
				b.Fatal(err)
			}
			var scanned int64
			var open time.Duration
			for b.Loop() {
				start := time.Now()
				f, err := Open(ctx, dir, Options{Budget: budget, Ranges: ranges, Store: store})
				open += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				scanned += f.Stats().RowsScanned
				if _, err := f.Close(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(open.Nanoseconds())/float64(b.N)/1e6, "open_ms")
			b.ReportMetric(50+float64(len(ranges))/10, "target_ms")
			b.ReportMetric(float64(scanned)/float64(b.N), "rows_read")
			b.ReportMetric(float64(store.Len()), "rows")
			b.ReportMetric(float64(len(ranges)), "ranges")
		})
	}
}
