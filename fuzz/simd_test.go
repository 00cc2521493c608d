package fuzz

import (
	"bytes"
	"crypto/sha256"
	"testing"

	"github.com/antientropy/grove/simd"
)

// FuzzSum256x2 checks simd's hashing entry points against crypto/sha256 on
// arbitrary messages: Sum256x2 on two messages of independent lengths (and
// offsets, so most are unaligned), Sum256 on each, and HashPairs and
// HashPairsX2 (where it runs) on the whole 64-byte pairs of the first.
func FuzzSum256x2(f *testing.F) {
	long := bytes.Repeat([]byte("grove"), 200)
	f.Add([]byte{}, []byte{}, uint8(0), uint8(0))
	f.Add([]byte("a"), long[:110], uint8(1), uint8(3))
	f.Add(long[:55], long[:56], uint8(0), uint8(0))
	f.Add(long[:119], long[:120], uint8(7), uint8(0))
	f.Add(long[:128], long[:64], uint8(0), uint8(63))
	f.Add(long[:300], long[:1], uint8(2), uint8(2))
	f.Add(long, long[:3], uint8(0), uint8(1))
	f.Fuzz(func(t *testing.T, a, b []byte, offA, offB uint8) {
		// Copies at the requested offsets: the fuzzer's own slices are
		// usually aligned.
		a = append(make([]byte, offA%64), a...)[offA%64:]
		b = append(make([]byte, offB%64), b...)[offB%64:]
		wa, wb := sha256.Sum256(a), sha256.Sum256(b)
		if da, db := simd.Sum256x2(a, b); da != wa || db != wb {
			t.Fatalf("Sum256x2(len %d, len %d) = %x, %x; want %x, %x", len(a), len(b), da, db, wa, wb)
		}
		if d := simd.Sum256(a); d != wa {
			t.Fatalf("Sum256(len %d) = %x, want %x", len(a), d, wa)
		}
		src := a[:len(a)/64*64]
		want := make([]byte, 0, len(src)/2)
		for i := 0; i < len(src); i += 64 {
			d := sha256.Sum256(src[i : i+64])
			want = append(want, d[:]...)
		}
		dst := make([]byte, len(src)/2)
		if err := simd.HashPairs(dst, src); err != nil || !bytes.Equal(dst, want) {
			t.Fatalf("HashPairs of %d pairs: %x, %v; want %x", len(src)/64, dst, err, want)
		}
		clear(dst)
		if err := simd.HashPairsX2(dst, src); err == nil && !bytes.Equal(dst, want) {
			t.Fatalf("HashPairsX2 of %d pairs: %x; want %x", len(src)/64, dst, want)
		}
	})
}
