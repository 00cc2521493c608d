//go:build !purego && (amd64 || arm64)

package simd

import "github.com/prysmaticlabs/gohashtree"

// fastOK says whether gohashtree's assembly kernel can run on this CPU; when
// it cannot, HashPairs uses hashPairsGeneric (gohashtree's own fallback is a
// pure-Go loop slower than crypto/sha256). fastName names the kernel the
// assembly picks. Both are set once at package initialisation (see cpu_*.go)
// and never change.
var fastOK, fastName = detect()

// maxBatch bounds the pairs handed to the kernel in one call: it takes the
// count as a uint32, so a larger level is fed in slices. 2^20 pairs (64 MiB
// of input) is far below the limit and far above any per-call cost.
const maxBatch = 1 << 20

// hashPairsFast hashes with gohashtree's kernel through its public API.
// Lengths and overlap are checked by the caller, so HashByteSlice's own
// checks cannot fail. gohashtree does not mark its kernel noescape, so the
// buffers escape: callers pass heap or mmap'd memory (the engine's nodes are
// mmap'd), never a stack array they expect to stay on the stack.
func hashPairsFast(dst, src []byte) {
	for len(dst) > 0 {
		n := min(len(dst)/32, maxBatch)
		if err := gohashtree.HashByteSlice(dst[:32*n], src[:64*n]); err != nil {
			hashPairsGeneric(dst[:32*n], src[:64*n])
		}
		dst, src = dst[32*n:], src[64*n:]
	}
}
