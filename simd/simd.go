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
	"errors"
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
	switch {
	case pairsUseX2:
		hashPairsX2(dst, src)
	case fastOK:
		hashPairsFast(dst, src)
	default:
		hashPairsGeneric(dst, src)
	}
	return nil
}

// HashPairsX2 is HashPairs on this package's two-stream SHA-NI kernel,
// whatever HashPairs dispatches to, so that benchmarks (grove bench's
// pair_kernel_vs_gohashtree) can keep measuring it against the kernel
// HashPairs prefers and show when the choice should change. Where the
// kernel cannot run (no SHA-NI, GROVESIMD=noshani, another architecture, the
// purego tag) it returns an error wrapping errors.ErrUnsupported; lengths
// and overlap are checked as by HashPairs. Unlike HashPairs, its buffers do
// not escape.
func HashPairsX2(dst, src []byte) error {
	if !x2OK {
		return fmt.Errorf("%w: simd: HashPairsX2: no two-stream SHA-NI kernel on this build and CPU (%s)", errors.ErrUnsupported, Features())
	}
	if len(dst)%32 != 0 || len(src) != 2*len(dst) {
		return fmt.Errorf("%w: HashPairsX2: len(dst) = %d, len(src) = %d; want len(dst) a multiple of 32 and len(src) = 2*len(dst)",
			ErrLength, len(dst), len(src))
	}
	if len(dst) == 0 {
		return nil
	}
	if overlap(dst, src) {
		return fmt.Errorf("%w: HashPairsX2: dst [%#x, +%d) and src [%#x, +%d)",
			ErrOverlap, addr(dst), len(dst), addr(src), len(src))
	}
	hashPairsX2(dst, src)
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

// Sum256x2 returns the SHA-256 digests of a and b. A row build has many
// independent rows to hash, and one row's SHA-256 is a single chain of
// dependent rounds that leaves SHA-NI idle most of the time; hashing two
// rows in one call lets the kernel interleave their rounds, so the pair
// costs little more than one row alone. Like Sum256 it does not allocate
// and neither slice escapes; a and b may have any lengths, equal or not, and
// may overlap (both are only read).
//
// On amd64 with SHA-NI it runs this package's two-stream kernel (see
// Features); when one message is much longer than the other, the rounds of
// the longer one's excess would have no partner, so it hashes them one after
// the other with Sum256 instead. Elsewhere it is two calls to Sum256.
// BenchmarkSum256 measures it per row against Sum256 and crypto/sha256.
func Sum256x2(a, b []byte) (da, db [32]byte) {
	if x2OK {
		// Whole blocks of each; a step of the kernel costs about 1.2 times
		// one block hashed alone (BenchmarkSum256, 64..1024 bytes).
		na, nb := len(a)/64, len(b)/64
		if max(na, nb) <= 4*min(na, nb)+8 {
			return sum256x2Fast(a, b)
		}
	}
	return Sum256(a), Sum256(b)
}

// Features names the HashPairs kernel that runs on this CPU and the row-digest
// implementation, for logs and benchmark reports: a number means little
// without knowing which path produced it.
func Features() string {
	return features
}

var features = pairsName() + ", row digests: " + rowsName() + overrideName()

func pairsName() string {
	if pairsUseX2 {
		return x2Name
	}
	return fastName
}

func rowsName() string {
	single := "crypto/sha256"
	if rowsFast {
		single = rowsFastName
	}
	if x2OK {
		return x2Name + " two at a time, " + single + " alone"
	}
	return single
}

func overrideName() string {
	if overrides.set {
		return fmt.Sprintf(" (%s=%q)", overrideEnv, overrides.raw)
	}
	return ""
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
