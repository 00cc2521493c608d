package token

import (
	"fmt"
	"math/bits"
	"strconv"
)

// maxDepth bounds the depth accepted by [Range.Leaf] and [Range.LeafOf]:
// depth must be in [0, maxDepth), that is [0, 63) on 64-bit platforms
// ([0, 31) where int has 32 bits). Leaf indexes then fit in an int and the
// 128-bit intermediate products cannot overflow.
const maxDepth = bits.UintSize - 1

// Range is the token range (Lo, Hi] as in Cassandra: it holds the tokens t
// with Lo < t <= Hi.
//
// This package supports only non-wrapping ranges, Lo < Hi. A Cassandra range
// that wraps around the ring (Lo >= Hi) must be split by the caller into
// (Lo, math.MaxInt64] and (math.MinInt64, Hi], dropping a piece that is
// empty (Lo == math.MaxInt64, or Hi == math.MinInt64, which Cassandra uses
// for "to the end of the ring"). Cassandra's Lo == Hi, the whole ring, splits
// the same way. The full ring of both partitioners is
// (math.MinInt64, math.MaxInt64], which covers every token they return.
//
// A range is split into 2^depth leaves with exact integer arithmetic: leaf i
// is (Lo + b(i), Lo + b(i+1)] with b(i) = floor(Width * i / 2^depth). Since
// b at depth d-1 and index i equals b at depth d and index 2i, the leaves of
// depth d nest exactly in those of depth d-1. If Width < 2^depth some leaves
// are empty (their Lo equals their Hi) and hold no token.
type Range struct {
	// Lo is the exclusive lower bound.
	Lo Token
	// Hi is the inclusive upper bound.
	Hi Token
}

// Valid returns nil if r is a non-empty, non-wrapping range (Lo < Hi), and
// otherwise an error wrapping [ErrBadRange] that names both bounds.
func (r Range) Valid() error {
	if r.Lo >= r.Hi {
		return fmt.Errorf("%w: %s: need lo < hi (split a wrapping range in two)", ErrBadRange, r)
	}
	return nil
}

// Compare places r against t as a sorted search over disjoint ranges wants
// it (slices.BinarySearchFunc): −1 if r lies wholly below t (t > Hi), +1
// if wholly above (t ≤ Lo), 0 if r contains t.
func (r Range) Compare(t Token) int {
	switch {
	case r.Hi < t:
		return -1
	case r.Lo >= t:
		return 1
	}
	return 0
}

// Contains reports whether Lo < t <= Hi.
func (r Range) Contains(t Token) bool {
	return r.Lo < t && t <= r.Hi
}

// Width returns the number of tokens in r, Hi - Lo, computed exactly: the
// full ring (math.MinInt64, math.MaxInt64] has width 2^64 - 1. It returns 0
// for a range that is not Valid.
func (r Range) Width() uint64 {
	if r.Lo >= r.Hi {
		return 0
	}
	return uint64(r.Hi) - uint64(r.Lo)
}

// String formats r as "(lo, hi]".
func (r Range) String() string {
	buf := make([]byte, 0, 48)
	buf = append(buf, '(')
	buf = strconv.AppendInt(buf, r.Lo, 10)
	buf = append(buf, ", "...)
	buf = strconv.AppendInt(buf, r.Hi, 10)
	buf = append(buf, ']')
	return string(buf)
}

// bound returns b(i) = floor(w * i / 2^depth) for 0 <= i <= 2^depth,
// computed in 128 bits. The result is at most w.
func bound(w uint64, i uint64, depth uint) uint64 {
	hi, lo := bits.Mul64(w, i)
	if depth == 0 {
		return lo
	}
	return lo>>depth | hi<<(64-depth)
}

// Leaf returns the bounds of leaf i of r split into 2^depth leaves:
// (Lo + b(i), Lo + b(i+1)] with b(i) = floor(Width * i / 2^depth). The
// leaves tile r exactly. A leaf may be empty (Lo == Hi) when
// Width < 2^depth.
//
// Leaf returns the zero Range, which is not Valid, if r is not Valid, depth
// is outside [0, 63) ([0, 31) where int has 32 bits), or i is outside
// [0, 2^depth).
func (r Range) Leaf(i, depth int) Range {
	if r.Lo >= r.Hi || depth < 0 || depth >= maxDepth || i < 0 || i >= 1<<uint(depth) {
		return Range{}
	}
	w := r.Width()
	d := uint(depth)
	lo := uint64(r.Lo)
	return Range{
		Lo: Token(lo + bound(w, uint64(i), d)),
		Hi: Token(lo + bound(w, uint64(i)+1, d)),
	}
}

// LeafOf returns the index of the leaf of r, split into 2^depth leaves, that
// contains t: the i with Leaf(i, depth).Contains(t). It returns -1 if r does
// not contain t (in particular if r is not Valid) or if depth is outside
// [0, 63) ([0, 31) where int has 32 bits).
//
// With o = t - Lo in [1, Width] the leaf is floor((o * 2^depth - 1) / Width),
// computed exactly in 128 bits. LeafOf does not allocate.
func (r Range) LeafOf(t Token, depth int) int {
	if !(r.Lo < t && t <= r.Hi) || uint(depth) >= maxDepth {
		return -1
	}
	if depth == 0 {
		return 0
	}
	w := uint64(r.Hi) - uint64(r.Lo)
	o := uint64(t) - uint64(r.Lo)
	d := uint(depth)
	// x = o * 2^d - 1 in 128 bits (o >= 1, so no underflow).
	hi := o >> (64 - d)
	lo := o << d
	lo, borrow := bits.Sub64(lo, 1, 0)
	hi -= borrow
	if hi == 0 {
		return int(lo / w)
	}
	// x < w * 2^d <= w * 2^62, so hi < w and Div64 cannot overflow.
	q, _ := bits.Div64(hi, lo, w)
	return int(q)
}
