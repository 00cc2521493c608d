package bench

import (
	"context"
	"os"
	"strconv"
	"testing"
)

// repairRows is the scenario size: the 10 M rows unless
// GROVE_REPAIR_ROWS says otherwise (building two 10 M-row replicas takes
// about a minute and a few GiB).
func repairRows(b *testing.B) int {
	if s := os.Getenv("GROVE_REPAIR_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1000 {
			b.Fatalf("GROVE_REPAIR_ROWS=%q: want a number ≥ 1000", s)
		}
		return n
	}
	return 10_000_000
}

// repairDepth is the scenario's tree depth: 20 unless GROVE_REPAIR_DEPTH
// says otherwise, to measure leaves of other densities (1 M rows at depth 7
// hold ~7,800 rows a leaf).
func repairDepth(b *testing.B) int {
	if s := os.Getenv("GROVE_REPAIR_DEPTH"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 30 {
			b.Fatalf("GROVE_REPAIR_DEPTH=%q: want a depth 1..30", s)
		}
		return n
	}
	return 20
}

// BenchmarkSyncLoopback runs the three scenarios over loopback
// Connect/gRPC and reports bytes, round trips and bytes per differing key,
// beside the Cassandra and row-hash models on the same data:
//
//	go test -run '^$' -bench SyncLoopback -benchtime 1x -timeout 30m ./bench/
//
// GROVE_REPAIR_ROWS and GROVE_REPAIR_DEPTH change the size and depth.
func BenchmarkSyncLoopback(b *testing.B) {
	n, depth := repairRows(b), repairDepth(b)
	for _, sc := range []struct {
		name   string
		differ int
	}{{"identical", 0}, {"one_key", 1}, {"0.1pct", n / 1000}} {
		b.Run(sc.name, func(b *testing.B) {
			var f *RepairFigures
			for range b.N {
				var err error
				f, err = RunRepair(context.Background(), RepairConfig{Rows: n, Differ: sc.differ, Depth: depth, Repair: true, Seed: 1})
				if err != nil {
					b.Fatal(err)
				}
				if !f.Converged {
					b.Fatal("not converged")
				}
				if f.DifferingKeys != sc.differ {
					b.Fatalf("found %d differing keys, planted %d", f.DifferingKeys, sc.differ)
				}
			}
			b.ReportMetric(float64(f.BytesSent+f.BytesReceived), "bytes")
			b.ReportMetric(float64(f.RowBytes), "row_bytes")
			b.ReportMetric(float64(f.RoundTrips), "round_trips")
			b.ReportMetric(f.ProtocolBytesPerKey, "protocol_B/key")
			b.ReportMetric(float64(f.WireBytes), "wire_bytes")
			b.ReportMetric(float64(f.Elapsed.Microseconds())/1000, "session_ms")
			b.ReportMetric(float64(f.CassandraTreeBytes+f.CassandraStreamBytes), "cassandra_bytes")
			b.ReportMetric(float64(f.RowHashBytes), "rowhash_bytes")
			b.Logf("%+v", *f)
		})
	}
}
