package repair

import (
	"math/rand/v2"
	"testing"
)

// TestLocate checks locate against a brute-force search: for a node whose
// descendants differ in one place it finds that place whatever the
// difference (odd, even, a high power of two), and for nodes that differ in
// two or more it almost never claims one — every claim it makes is one a
// brute-force search over 1..2^levels confirms is the only j+1 that fits.
func TestLocate(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, levels := range []int{1, 4, 9, 14, 20, 24} {
		for range 2000 {
			j := rnd.Uint64N(1 << levels)
			d := rnd.Uint32()
			if rnd.IntN(4) == 0 {
				d <<= rnd.IntN(31) // even differences too
			}
			if d == 0 {
				continue
			}
			got, ok := locate(uint32(j+1)*d, d, levels)
			e := 0
			for d>>e&1 == 0 {
				e++
			}
			if 32-e > levels && (!ok || got != j) {
				t.Fatalf("levels %d, j %d, d %#x: located %d, %v", levels, j, d, got, ok)
			}
			if ok && uint32(got+1)*d != uint32(j+1)*d {
				t.Fatalf("levels %d: located %d, which does not fit", levels, got)
			}
		}
	}
	// Two differences: a claim happens with probability about 2^levels /
	// 2^32, and must then be the one j+1 the weights fit.
	claims := 0
	const trials = 200_000
	for range trials {
		levels := 12
		a, b := rnd.Uint64N(1<<levels), rnd.Uint64N(1<<levels)
		if a == b {
			continue
		}
		da, db := rnd.Uint32(), rnd.Uint32()
		s, dw := da+db, uint32(a+1)*da+uint32(b+1)*db
		if j, ok := locate(dw, s, levels); ok {
			claims++
			if uint32(j+1)*s != dw {
				t.Fatalf("claimed %d, which does not fit", j)
			}
		}
	}
	if claims > 2 {
		t.Fatalf("%d of %d two-difference nodes passed for one-difference ones, want about %d", claims, trials, trials>>20)
	}
	if _, ok := locate(5, 0, 4); ok {
		t.Fatal("located a difference in a node that does not differ")
	}
}

// TestIndexesRoundTrip checks the packing of located indexes, and that
// parseIndexes refuses a wrong length or set padding bits.
func TestIndexesRoundTrip(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for _, width := range []int{1, 3, 7, 8, 9, 13, 24} {
		for _, n := range []int{0, 1, 5, 17} {
			v := make([]uint64, n)
			for i := range v {
				v[i] = rnd.Uint64N(1 << width)
			}
			b := putIndexes(v, width)
			got, err := parseIndexes(b, n, width, "found")
			if err != nil {
				t.Fatal(err)
			}
			for i := range v {
				if got[i] != v[i] {
					t.Fatalf("width %d: index %d is %d, want %d", width, i, got[i], v[i])
				}
			}
			if _, err := parseIndexes(append(b, 0), n, width, "found"); err == nil {
				t.Fatal("a byte too many accepted")
			}
			if n*width%8 != 0 {
				b[len(b)-1] |= 0x80
				if _, err := parseIndexes(b, n, width, "found"); err == nil {
					t.Fatal("a padding bit accepted")
				}
			}
		}
	}
}

// TestProbeWalk checks the planner's choices at the extremes: one node
// hiding one difference is probed at once, a dense frontier walks first,
// and nodes a probe could not locate are never probed again in place.
func TestProbeWalk(t *testing.T) {
	if w := probeWalk(1, 0.01, 1, 18, 1088); w != 0 {
		t.Errorf("a lone difference: walk %d levels first, want a probe now", w)
	}
	if w := probeWalk(1024, 20, 1, 14, 1088); w == 0 {
		t.Error("a dense frontier (20 differences a node): probed at once")
	}
	if w := probeWalk(10, 0.01, 2, 10, 1088); w == 0 {
		t.Error("nodes a probe could not locate: probed again in place")
	}
}
