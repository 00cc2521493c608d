package token

import (
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestRangeBasics(t *testing.T) {
	for _, c := range []struct {
		r     Range
		valid bool
		width uint64
		str   string
	}{
		{Range{math.MinInt64, math.MaxInt64}, true, math.MaxUint64, "(-9223372036854775808, 9223372036854775807]"},
		{Range{0, 1}, true, 1, "(0, 1]"},
		{Range{-5, 5}, true, 10, "(-5, 5]"},
		{Range{math.MinInt64, math.MinInt64 + 1}, true, 1, "(-9223372036854775808, -9223372036854775807]"},
		{Range{math.MaxInt64 - 1, math.MaxInt64}, true, 1, "(9223372036854775806, 9223372036854775807]"},
		{Range{-1, math.MaxInt64}, true, 1 << 63, "(-1, 9223372036854775807]"},
		{Range{0, 0}, false, 0, "(0, 0]"},
		{Range{5, -5}, false, 0, "(5, -5]"},
		{Range{math.MaxInt64, math.MinInt64}, false, 0, "(9223372036854775807, -9223372036854775808]"},
	} {
		err := c.r.Valid()
		if (err == nil) != c.valid {
			t.Errorf("%v.Valid() = %v, want valid=%v", c.r, err, c.valid)
		}
		if err != nil && (!errors.Is(err, ErrBadRange) || !strings.Contains(err.Error(), c.str)) {
			t.Errorf("%v.Valid() = %q: want ErrBadRange naming the bounds", c.r, err)
		}
		if got := c.r.Width(); got != c.width {
			t.Errorf("%v.Width() = %d, want %d", c.r, got, c.width)
		}
		if got := c.r.String(); got != c.str {
			t.Errorf("String() = %q, want %q", got, c.str)
		}
	}
	r := Range{-5, 5}
	for tok, want := range map[Token]bool{-6: false, -5: false, -4: true, 0: true, 5: true, 6: false,
		math.MinInt64: false, math.MaxInt64: false} {
		if r.Contains(tok) != want {
			t.Errorf("%v.Contains(%d) = %v", r, tok, !want)
		}
	}
	full := Range{math.MinInt64, math.MaxInt64}
	if full.Contains(math.MinInt64) || !full.Contains(math.MinInt64+1) || !full.Contains(math.MaxInt64) {
		t.Error("full ring must be (MinInt64, MaxInt64]")
	}
}

// bigBound is b(i) = floor(w*i / 2^depth) computed with math/big, an oracle
// independent of bits.Mul64.
func bigBound(w uint64, i uint64, depth int) uint64 {
	x := new(big.Int).SetUint64(w)
	x.Mul(x, new(big.Int).SetUint64(i))
	x.Rsh(x, uint(depth))
	return x.Uint64()
}

// bigLeafOf finds the leaf of t by the definition b(i) < o <= b(i+1),
// with a binary search over big-int bounds.
func bigLeafOf(r Range, tok Token, depth int) int {
	if !(r.Lo < tok && tok <= r.Hi) {
		return -1
	}
	w := uint64(r.Hi) - uint64(r.Lo)
	o := uint64(tok) - uint64(r.Lo)
	lo, hi := 0, 1<<depth-1 // answer in [lo, hi]
	for lo < hi {
		mid := lo + (hi-lo)/2
		if o <= bigBound(w, uint64(mid)+1, depth) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

func testRanges(rng *rand.Rand) []Range {
	rs := []Range{
		{math.MinInt64, math.MaxInt64},
		{math.MinInt64, math.MinInt64 + 1},
		{math.MaxInt64 - 1, math.MaxInt64},
		{math.MinInt64, 0},
		{-1, math.MaxInt64},
		{0, 1 << 20},
		{-3, 3},
		{100, 107},         // width 7
		{-1000, -1000 + 3}, // width 3, < 2^depth for depth >= 2
		{1 << 40, 1<<40 + 1<<20 + 12345},
		{math.MaxInt64 - 1000, math.MaxInt64},
		{math.MinInt64, math.MinInt64 + 999},
	}
	for i := 0; i < 20; i++ {
		a, b := int64(rng.Uint64()), int64(rng.Uint64())
		if a > b {
			a, b = b, a
		}
		if a == b {
			continue
		}
		rs = append(rs, Range{a, b})
		// A small random range, width 1..5000.
		w := 1 + rng.Int64N(5000)
		lo := int64(rng.Uint64())
		if lo > math.MaxInt64-w {
			lo = math.MaxInt64 - w
		}
		rs = append(rs, Range{lo, lo + w})
	}
	return rs
}

// TestLeafTiling checks, for many ranges and depths 0..20, that the leaves
// tile the range exactly, that their bounds are the big-int ones, that they
// nest across depths, and that LeafOf maps every leaf's end tokens (and a
// random inside token) back to the leaf.
func TestLeafTiling(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, r := range testRanges(rng) {
		w := r.Width()
		for depth := 0; depth <= 20; depth++ {
			n := 1 << depth
			// Exhaustive below 2^12 leaves; sampled (plus both ends) above.
			var idx []int
			if n <= 1<<12 {
				for i := 0; i < n; i++ {
					idx = append(idx, i)
				}
			} else {
				idx = []int{0, 1, n/2 - 1, n / 2, n - 2, n - 1}
				for k := 0; k < 300; k++ {
					idx = append(idx, rng.IntN(n))
				}
			}
			if got := r.Leaf(0, depth).Lo; got != r.Lo {
				t.Fatalf("%v depth %d: leaf 0 starts at %d", r, depth, got)
			}
			if got := r.Leaf(n-1, depth).Hi; got != r.Hi {
				t.Fatalf("%v depth %d: last leaf ends at %d", r, depth, got)
			}
			for _, i := range idx {
				leaf := r.Leaf(i, depth)
				wantLo := Token(uint64(r.Lo) + bigBound(w, uint64(i), depth))
				wantHi := Token(uint64(r.Lo) + bigBound(w, uint64(i)+1, depth))
				if leaf.Lo != wantLo || leaf.Hi != wantHi {
					t.Fatalf("%v.Leaf(%d, %d) = %v, want (%d, %d]", r, i, depth, leaf, wantLo, wantHi)
				}
				if i+1 < n && r.Leaf(i+1, depth).Lo != leaf.Hi {
					t.Fatalf("%v depth %d: leaves %d and %d not consecutive", r, depth, i, i+1)
				}
				if depth > 0 {
					parent := r.Leaf(i/2, depth-1)
					if i%2 == 0 && parent.Lo != leaf.Lo || i%2 == 1 && parent.Hi != leaf.Hi {
						t.Fatalf("%v: leaf %d at depth %d does not nest in %v", r, i, depth, parent)
					}
					if i%2 == 0 && r.Leaf(i+1, depth).Hi != parent.Hi {
						t.Fatalf("%v: children of %v at depth %d do not fold", r, parent, depth)
					}
				}
				lw := uint64(leaf.Hi) - uint64(leaf.Lo)
				if lw == 0 {
					continue // empty leaf (Width < 2^depth): no token maps here
				}
				if leaf.Valid() != nil || !r.Contains(leaf.Hi) {
					t.Fatalf("%v: leaf %v not inside", r, leaf)
				}
				for _, tok := range []Token{leaf.Lo + 1, leaf.Hi, Token(uint64(leaf.Lo) + 1 + rng.Uint64N(lw))} {
					if got := r.LeafOf(tok, depth); got != i {
						t.Fatalf("%v.LeafOf(%d, %d) = %d, want %d (leaf %v)", r, tok, depth, got, i, leaf)
					}
				}
				// The token just past the leaf belongs to a later leaf.
				if i+1 < n {
					if got := r.LeafOf(leaf.Hi+1, depth); got <= i {
						t.Fatalf("%v.LeafOf(%d, %d) = %d, want > %d", r, leaf.Hi+1, depth, got, i)
					}
				}
			}
			// Random tokens: LeafOf agrees with the big-int definition.
			for k := 0; k < 200; k++ {
				tok := Token(uint64(r.Lo) + 1 + rng.Uint64N(w))
				got := r.LeafOf(tok, depth)
				if want := bigLeafOf(r, tok, depth); got != want {
					t.Fatalf("%v.LeafOf(%d, %d) = %d, big-int says %d", r, tok, depth, got, want)
				}
				if !r.Leaf(got, depth).Contains(tok) {
					t.Fatalf("%v: leaf %d at depth %d does not contain %d", r, got, depth, tok)
				}
			}
		}
	}
}

// TestLeafOfBruteForce enumerates every token of small ranges, near both
// ends of the ring and in the middle, and checks LeafOf against the leaf
// bounds and leaf sizes against the 2^depth split.
func TestLeafOfBruteForce(t *testing.T) {
	var ranges []Range
	for _, w := range []int64{1, 2, 3, 5, 7, 8, 16, 31, 64, 100, 255, 256, 257, 1000} {
		ranges = append(ranges,
			Range{math.MinInt64, math.MinInt64 + w},
			Range{math.MaxInt64 - w, math.MaxInt64},
			Range{-w / 2, w - w/2},
			Range{12345, 12345 + w})
	}
	for _, r := range ranges {
		w := r.Width()
		for depth := 0; depth <= 11; depth++ {
			n := 1 << depth
			count := make([]uint64, n)
			prev := -1
			for o := uint64(1); o <= w; o++ {
				tok := Token(uint64(r.Lo) + o)
				i := r.LeafOf(tok, depth)
				if i < 0 || i >= n || !r.Leaf(i, depth).Contains(tok) {
					t.Fatalf("%v.LeafOf(%d, %d) = %d: leaf does not contain it", r, tok, depth, i)
				}
				if i < prev {
					t.Fatalf("%v depth %d: LeafOf not monotonic at %d", r, depth, tok)
				}
				prev = i
				count[i]++
			}
			for i := 0; i < n; i++ {
				// Leaf sizes are floor or ceil of w / 2^depth.
				if lw := r.Leaf(i, depth).Width(); count[i] != lw && !(lw == 0 && count[i] == 0) {
					t.Fatalf("%v depth %d leaf %d: %d tokens, width %d", r, depth, i, count[i], lw)
				}
				q := w >> uint(depth)
				if count[i] != q && count[i] != q+1 {
					t.Fatalf("%v depth %d leaf %d: %d tokens, want %d or %d", r, depth, i, count[i], q, q+1)
				}
			}
			// Outside the range.
			for _, tok := range []Token{r.Lo, r.Hi + 1} {
				if tok == r.Hi+1 && r.Hi == math.MaxInt64 {
					continue
				}
				if got := r.LeafOf(tok, depth); got != -1 {
					t.Fatalf("%v.LeafOf(%d, %d) = %d, want -1", r, tok, depth, got)
				}
			}
		}
	}
}

func TestLeafGuards(t *testing.T) {
	r := Range{math.MinInt64, math.MaxInt64}
	for _, depth := range []int{-1, 63, 64, 1000, math.MinInt} {
		if got := r.LeafOf(0, depth); got != -1 {
			t.Errorf("LeafOf(0, %d) = %d, want -1", depth, got)
		}
		if got := r.Leaf(0, depth); got != (Range{}) {
			t.Errorf("Leaf(0, %d) = %v, want zero", depth, got)
		}
	}
	for _, c := range []struct{ i, depth int }{{-1, 3}, {8, 3}, {1, 0}, {math.MaxInt, 5}} {
		if got := r.Leaf(c.i, c.depth); got != (Range{}) {
			t.Errorf("Leaf(%d, %d) = %v, want zero", c.i, c.depth, got)
		}
	}
	bad := Range{5, 5}
	if bad.LeafOf(5, 3) != -1 || bad.Leaf(0, 3) != (Range{}) {
		t.Error("an invalid range has no leaves")
	}
	// Depth 62, the deepest allowed: extremes of the full ring.
	if got := r.LeafOf(math.MaxInt64, 62); got != 1<<62-1 {
		t.Errorf("LeafOf(MaxInt64, 62) = %d", got)
	}
	if got := r.LeafOf(math.MinInt64+1, 62); got != 0 {
		t.Errorf("LeafOf(MinInt64+1, 62) = %d", got)
	}
	if got := r.Leaf(1<<62-1, 62); got.Hi != math.MaxInt64 {
		t.Errorf("Leaf(last, 62) = %v", got)
	}
}

func TestLeafOfAllocs(t *testing.T) {
	r := Range{math.MinInt64, math.MaxInt64}
	narrow := Range{-1000, 123456789}
	if a := testing.AllocsPerRun(1000, func() {
		_ = r.LeafOf(42, 20)
		_ = narrow.LeafOf(42, 16)
		_ = r.LeafOf(42, 0)
		_ = r.Leaf(5, 20)
	}); a != 0 {
		t.Fatalf("LeafOf allocates %v times", a)
	}
}

func benchmarkLeafOf(b *testing.B, r Range, depth int) {
	toks := make([]Token, 1024)
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range toks {
		toks[i] = Token(uint64(r.Lo) + 1 + rng.Uint64N(r.Width()))
	}
	var sink int
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sink += r.LeafOf(toks[i&1023], depth)
		i++
	}
	_ = sink
}

func BenchmarkLeafOfFullRing20(b *testing.B) {
	benchmarkLeafOf(b, Range{math.MinInt64, math.MaxInt64}, 20)
}

func BenchmarkLeafOfNarrow20(b *testing.B) {
	benchmarkLeafOf(b, Range{-1 << 40, 1 << 40}, 20)
}

func BenchmarkLeafOfDepth0(b *testing.B) {
	benchmarkLeafOf(b, Range{math.MinInt64, math.MaxInt64}, 0)
}

func FuzzLeafOf(f *testing.F) {
	f.Add(int64(math.MinInt64), int64(math.MaxInt64), int64(0), uint8(20))
	f.Add(int64(math.MinInt64), int64(math.MaxInt64), int64(math.MaxInt64), uint8(62))
	f.Add(int64(-3), int64(3), int64(3), uint8(4))
	f.Add(int64(100), int64(107), int64(101), uint8(10))
	f.Add(int64(5), int64(5), int64(5), uint8(1))
	f.Fuzz(func(t *testing.T, lo, hi, tok int64, depth uint8) {
		r := Range{lo, hi}
		d := int(depth % 64)
		i := r.LeafOf(tok, d)
		if d >= 63 || !r.Contains(tok) {
			if i != -1 {
				t.Fatalf("%v.LeafOf(%d, %d) = %d, want -1", r, tok, d, i)
			}
			return
		}
		if i < 0 || i >= 1<<d {
			t.Fatalf("%v.LeafOf(%d, %d) = %d out of range", r, tok, d, i)
		}
		leaf := r.Leaf(i, d)
		if !leaf.Contains(tok) {
			t.Fatalf("%v.LeafOf(%d, %d) = %d but Leaf = %v", r, tok, d, i, leaf)
		}
		if d > 0 {
			if p := r.LeafOf(tok, d-1); p != i/2 {
				t.Fatalf("%v: LeafOf(%d) at depth %d = %d, at depth %d = %d: not nested", r, tok, d, i, d-1, p)
			}
		}
		if want := bigLeafOf(r, tok, d); i != want {
			t.Fatalf("%v.LeafOf(%d, %d) = %d, big-int says %d", r, tok, d, i, want)
		}
	})
}

// TestCompare: a range places itself below, around or above a token as a
// binary search over sorted, disjoint ranges needs.
func TestCompare(t *testing.T) {
	r := Range{Lo: -5, Hi: 10}
	for _, tc := range []struct {
		tok  Token
		want int
	}{{-6, 1}, {-5, 1}, {-4, 0}, {10, 0}, {11, -1}} {
		if got := r.Compare(tc.tok); got != tc.want {
			t.Errorf("%s.Compare(%d) = %d, want %d", r, tc.tok, got, tc.want)
		}
		if (r.Compare(tc.tok) == 0) != r.Contains(tc.tok) {
			t.Errorf("Compare and Contains disagree at %d", tc.tok)
		}
	}
}
