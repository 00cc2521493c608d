// Package simd hashes at the speed of the machine: batched SHA-256 of 64-byte
// pairs for the inner nodes of a Merkle tree, and single SHA-256 digests for
// row encodings.
//
// Inner nodes are SHA-256(left ‖ right), exactly one 64-byte block plus a
// constant padding block, so the multi-buffer kernels of
// github.com/prysmaticlabs/gohashtree (SHA-NI, AVX-512, AVX2 on amd64; SHA2 or
// NEON on arm64) apply. The kernel is chosen once, at start-up, from what
// github.com/klauspost/cpuid/v2 reports; a CPU without any of them, any other
// architecture, and builds with the purego tag use a crypto/sha256 loop.
// Features says which path runs.
//
// Every function here is safe for concurrent use, keeps no reference to its
// arguments and allocates nothing on the heap (short of returning an error),
// so buffers may live in mmap'd memory that is unmapped right after the call.
package simd

import (
	"crypto/sha256"
	"fmt"
	"unsafe"
)

// HashPairs sets dst[32*i:32*i+32] = SHA-256(src[64*i:64*i+64]) for every i:
// it hashes one whole level of a Merkle tree from the level below in a single
// call, which is what lets the multi-buffer kernels keep all their lanes busy.
//
// len(src) must be 2*len(dst) and len(dst) a multiple of 32; otherwise the
// error wraps ErrLength and names both lengths. dst and src must not overlap
// (not even dst being the front of src): the kernels read and write whole
// batches, so in-place hashing is not supported, and an overlap is reported as
// an error wrapping ErrOverlap rather than producing wrong digests. Zero pairs
// is not an error. Neither slice is retained, and the call does not allocate
// (only a returned error does). gohashtree's kernel is not declared
// noescape, so a stack array passed here moves to the heap: pass heap or
// mmap'd memory.
//
// BenchmarkHashPairs measures each kernel, in ns/pair, on one pair and on a
// whole level of a depth-20 tree.
func HashPairs(dst, src []byte) error {
	if len(dst)%32 != 0 || len(src) != 2*len(dst) {
		return fmt.Errorf("%w: HashPairs: len(dst) = %d, len(src) = %d; want len(dst) a multiple of 32 and len(src) = 2*len(dst)",
			ErrLength, len(dst), len(src))
	}
	if len(dst) == 0 {
		return nil
	}
	if overlap(dst, src) {
		return fmt.Errorf("%w: HashPairs: dst [%#x, +%d) and src [%#x, +%d)",
			ErrOverlap, addr(dst), len(dst), addr(src), len(src))
	}
	if fastOK {
		hashPairsFast(dst, src)
	} else {
		hashPairsGeneric(dst, src)
	}
	return nil
}

// Sum256 returns the SHA-256 digest of b. grove uses it for row digests, so
// it runs once per row written: it must not allocate, and b (often a scratch
// buffer on the caller's stack) does not escape.
//
// On amd64 with SHA-NI it is github.com/minio/sha256-simd, elsewhere
// crypto/sha256. Both use SHA-NI there, but minio calls its kernel directly,
// while Go 1.26's crypto/sha256.Sum256 builds a hash.Hash from the FIPS 140
// module and writes through it, an overhead every row pays.
// BenchmarkSum256 measures the two against each other on row-sized inputs.
//
// Without SHA-NI minio's Sum256 falls back to pure Go, and on arm64 the two
// have not been compared, so those use crypto/sha256; Features says which
// runs.
func Sum256(b []byte) [32]byte {
	if rowsFast {
		return sum256Fast(b)
	}
	return sha256.Sum256(b)
}

// Features names the HashPairs kernel that runs on this CPU and the row-digest
// implementation, for logs and benchmark reports: a number means little
// without knowing which path produced it.
func Features() string {
	return features
}

var features = fastName + ", row digests: " + rowsName()

func rowsName() string {
	if rowsFast {
		return rowsFastName
	}
	return "crypto/sha256"
}

// hashPairsGeneric is the portable kernel: one crypto/sha256 call per pair.
// It is also what tests compare the fast kernels against. Lengths are
// checked by the caller.
func hashPairsGeneric(dst, src []byte) {
	for len(src) >= 64 && len(dst) >= 32 {
		d := sha256.Sum256(src[:64])
		copy(dst[:32], d[:])
		src, dst = src[64:], dst[32:]
	}
}

// addr is where b starts, for error messages; a uintptr, unlike a pointer,
// does not make b escape.
func addr(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

// overlap reports whether two non-empty slices share any byte.
func overlap(a, b []byte) bool {
	pa, pb := addr(a), addr(b)
	return pa < pb+uintptr(len(b)) && pb < pa+uintptr(len(a))
}
