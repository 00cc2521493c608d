package repair_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"

	// Dot-imported, as in repair_test.go.
	. "github.com/antientropy/grove/engine/repair"
)

// seeded is a deterministic salt source, so that a test's bytes, bands and
// probes are the same on every run.
type seeded struct{ r *rand.Rand }

func (s seeded) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(s.r.Uint32())
	}
	return len(p), nil
}

// TestProbesMatchBruteForce runs sessions where probes locate lone
// differences — few, scattered, and many, in sparse and dense leaves, at
// several depths — and checks the keys against a brute-force comparison of
// the two replicas' rows, and both sides after the repair against the
// brute-force merge (engine.Supersedes). Across the cases probes must both
// locate nodes and fail to (nodes hiding several differences), so both
// paths are checked.
func TestProbesMatchBruteForce(t *testing.T) {
	located, fellBack := 0, 0
	for i, tc := range []struct{ rows, diverge, depthA, depthB int }{
		{5000, 1, 12, 12},
		{5000, 3, 16, 16},
		{20_000, 40, 14, 14},
		{20_000, 200, 12, 10},
		{20_000, 30, 3, 3},
		{40_000, 500, 16, 16},
		{30_000, 12, 0, 4},
		{10_000, 60, 20, 20},
	} {
		t.Run(fmt.Sprintf("%d_rows_%d_diffs_depth_%d_%d", tc.rows, tc.diverge, tc.depthA, tc.depthB), func(t *testing.T) {
			ctx := context.Background()
			rnd := rand.New(rand.NewPCG(uint64(i), 123))
			a, b := diverge(rnd, baseRows(rnd, tc.rows), tc.diverge)
			onlyA, onlyB, diff, merged := expected(a, b)
			for _, keysOnly := range []bool{true, false} {
				ra, rb := newReplica(t, a, tc.depthA), newReplica(t, b, tc.depthB)
				res, err := Sync(ctx, ra, NewResponder(rb, ResponderOptions{}), Options{Repair: !keysOnly, KeysOnly: keysOnly, Rand: seeded{rand.New(rand.NewPCG(uint64(i), 5))}})
				if err != nil {
					t.Fatal(err)
				}
				if got := keyStrings(res.OnlyHere); !slices.Equal(got, onlyA) {
					t.Fatalf("only here: got %q, want %q", got, onlyA)
				}
				if got := keyStrings(res.OnlyThere); !slices.Equal(got, onlyB) {
					t.Fatalf("only there: got %q, want %q", got, onlyB)
				}
				if got := keyStrings(res.Different); !slices.Equal(got, diff) {
					t.Fatalf("different: got %q, want %q", got, diff)
				}
				for _, b := range res.Bands {
					if b.Probe {
						located += b.Differ
						fellBack += b.Frontier - b.Differ
					}
				}
				if keysOnly {
					continue
				}
				if !res.Converged {
					t.Fatal("not converged")
				}
				checkHolds(t, ra, merged, tc.depthA)
				checkHolds(t, rb, merged, tc.depthB)
			}
		})
	}
	t.Logf("probes located %d nodes and could not locate %d", located, fellBack)
	if located == 0 || fellBack == 0 {
		t.Fatalf("probes located %d nodes and could not locate %d: want both paths taken", located, fellBack)
	}
}

// TestProbeFallsBack plants two differences in one node of the first band,
// so that the probe that follows sees a node hiding two: it must not locate
// it (or, with probability about 2^-20, locate one and let the final check
// run another pass), walk on under it, and still find both keys and repair
// them.
func TestProbeFallsBack(t *testing.T) {
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(8, 9))
	base := baseRows(rnd, 20_000)
	p, rng := token.Murmur3{}, token.Murmur3{}.Range()
	// Two rows in the same node at level 6, where the first band stops.
	first, second := -1, -1
	for i := range base {
		if rng.LeafOf(p.Token(base[i].Key), 6) == rng.LeafOf(p.Token(base[0].Key), 6) && i > 0 {
			first, second = 0, i
			break
		}
	}
	if second < 0 {
		t.Fatal("no two rows share a level-6 node")
	}
	b := slices.Clone(base)
	b[first].Value = []byte("changed")
	b[second] = engine.Row{Key: b[second].Key, Deleted: true, TS: b[second].TS + 1}
	_, _, diff, merged := expected(base, b)
	ra, rb := newReplica(t, base, 12), newReplica(t, b, 12)
	res, err := Sync(ctx, ra, NewResponder(rb, ResponderOptions{}), Options{Repair: true, Rand: seeded{rand.New(rand.NewPCG(1, 1))}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("bands %+v, %d bytes, %d round trips", res.Bands, res.BytesSent+res.BytesReceived, res.RoundTrips)
	if len(res.Bands) < 2 || !res.Bands[1].Probe || res.Bands[1].Frontier != 1 || res.Bands[1].Differ != 0 {
		t.Fatalf("bands %+v: want the first band followed by a probe of one node that locates nothing", res.Bands)
	}
	if got := keyStrings(res.Different); !slices.Equal(got, diff) || len(diff) != 2 {
		t.Fatalf("different: got %q, want %q", got, diff)
	}
	if !res.Converged || res.Passes != 1 {
		t.Fatalf("converged %v in %d passes", res.Converged, res.Passes)
	}
	checkHolds(t, ra, merged, 12)
	checkHolds(t, rb, merged, 12)
}
