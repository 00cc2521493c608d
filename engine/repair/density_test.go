package repair_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	// Dot-imported, as in repair_test.go.
	. "github.com/antientropy/grove/engine/repair"
)

// densityCost syncs two replicas of rows rows that differ in keys planted
// differences (every kind diverge makes), with trees of the given depth, and
// returns the protocol bytes per differing key — both ways, the differing
// rows themselves left out, since they are the same whatever the depth —
// and the session's result. The same seed gives the same rows at every
// depth, so two depths compare the protocol alone.
func densityCost(t testing.TB, rows, keys, depth int, seed uint64) (float64, *Result) {
	t.Helper()
	rnd := rand.New(rand.NewPCG(seed, 7))
	a, b := diverge(rnd, baseRows(rnd, rows), keys)
	ra, rb := newReplica(t, a, depth), newReplica(t, b, depth)
	res, err := Sync(context.Background(), ra, NewResponder(rb, ResponderOptions{}), Options{Repair: true})
	if err != nil {
		t.Fatal(err)
	}
	n := len(res.OnlyHere) + len(res.OnlyThere) + len(res.Different)
	if !res.Converged || n == 0 {
		t.Fatalf("converged %v with %d differing keys", res.Converged, n)
	}
	protocol := res.BytesSent + res.BytesReceived - res.RowBytesSent - res.RowBytesReceived
	return float64(protocol) / float64(n), res
}

// TestCostIndependentOfDensity is the bound of issue 14: a few differing
// keys cost, per key, at most twice as much in leaves of ~12,500 rows as in
// leaves of ~12 — the same 200,000 rows, trees of depth 4 and 14. Before the
// descent went on inside the leaves, a leaf's every row cost 4 bytes: ~50 KB
// a key at depth 4. Bytes are deterministic given the seed.
func TestCostIndependentOfDensity(t *testing.T) {
	const rows, keys = 200_000, 8
	for seed := range uint64(3) {
		sparse, rs := densityCost(t, rows, keys, 14, seed)
		dense, rd := densityCost(t, rows, keys, 4, seed)
		t.Logf("seed %d: %.0f B a key at ~12 rows a leaf (%d round trips, level %d), %.0f B at ~12,500 (%d round trips, level %d)",
			seed, sparse, rs.RoundTrips, rs.Level, dense, rd.RoundTrips, rd.Level)
		if dense > 2*sparse {
			t.Errorf("seed %d: %.0f B a differing key in dense leaves, over twice the %.0f B in sparse ones", seed, dense, sparse)
		}
	}
}

// BenchmarkCostByDensity reports the protocol bytes per differing key (rows
// left out) and round trips for a few differing keys among 1 M rows in
// leaves of ~10 and ~10,000 rows (depths 17 and 7):
//
//	go test -run '^$' -bench CostByDensity -benchtime 1x ./engine/repair/
func BenchmarkCostByDensity(b *testing.B) {
	for _, tc := range []struct{ perLeaf, depth int }{{8, 17}, {7800, 7}} {
		b.Run(fmt.Sprintf("rows_per_leaf=%d", tc.perLeaf), func(b *testing.B) {
			var perKey float64
			var res *Result
			for range b.N {
				perKey, res = densityCost(b, 1_000_000, 8, tc.depth, 1)
			}
			b.ReportMetric(perKey, "protocol_B/key")
			b.ReportMetric(float64(res.RoundTrips), "round_trips")
			b.ReportMetric(float64(res.Level), "level")
		})
	}
}
