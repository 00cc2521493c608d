//go:build !purego

package simd

//go:generate go run ./internal/asmgen

import (
	"encoding/binary"
	"unsafe"

	"github.com/klauspost/cpuid/v2"
)

// x2OK says whether the two-stream SHA-NI kernels of sha256x2_amd64.s can
// run here: SHA-NI (not overridden), and the AVX encodings they use for
// everything around SHA256RNDS2. Set once at initialisation.
var x2OK = hasSHANI && cpuid.CPU.Supports(cpuid.AVX)

const x2Name = "sha-ni x2 (grove)"

// blocksX2 hashes two messages in lockstep, each given as its whole blocks
// in place (a, fullA of them; when fullA is 0, a is tailA) followed by its
// padded final blocks in a separate buffer (tailA), blocksA in all, and
// stores the two digests in out. See asmgen for how a stream that finishes
// first is handled.
//
//go:noescape
func blocksX2(out *[64]byte, a *byte, fullA int, tailA *byte, b *byte, fullB int, tailB *byte, blocksA, blocksB int)

// pairsX2 hashes 2n 64-byte messages at src, two at a time, into 2n
// digests at dst.
//
//go:noescape
func pairsX2(dst, src *byte, n int)

// sum256x2Fast is Sum256x2 on blocksX2. Only the final one or two blocks of
// each message are copied (into padding buffers on the stack); whole blocks
// are read in place.
func sum256x2Fast(a, b []byte) (da, db [32]byte) {
	var tails [2][128]byte
	na, nb := padTail(&tails[0], a), padTail(&tails[1], b)
	fa, fb := len(a)/64, len(b)/64
	pa, pb := &tails[0][0], &tails[1][0]
	if fa > 0 {
		pa = unsafe.SliceData(a)
	}
	if fb > 0 {
		pb = unsafe.SliceData(b)
	}
	var out [64]byte
	blocksX2(&out, pa, fa, &tails[0][0], pb, fb, &tails[1][0], fa+na, fb+nb)
	return [32]byte(out[:32]), [32]byte(out[32:])
}

// padTail writes the bytes of b after its last whole block, then SHA-256's
// padding and b's length in bits, to t and returns how many blocks that
// took (1, or 2 when fewer than 9 bytes were left in the first).
func padTail(t *[128]byte, b []byte) int {
	r := len(b) % 64
	copy(t[:], b[len(b)-r:])
	t[r] = 0x80
	n := 1
	if r >= 64-8 {
		n = 2
	}
	binary.BigEndian.PutUint64(t[64*n-8:64*n], uint64(len(b))<<3)
	return n
}

// hashPairsX2 is HashPairs on pairsX2. An odd last pair is hashed beside a
// copy of itself, from a stack buffer: the second stream costs next to
// nothing, since it runs in the cycles the first leaves idle.
func hashPairsX2(dst, src []byte) {
	n := len(dst) / 32
	if n >= 2 {
		pairsX2(unsafe.SliceData(dst), unsafe.SliceData(src), n/2)
	}
	if n%2 == 1 {
		var s [128]byte
		var d [64]byte
		last := src[64*(n-1) : 64*n]
		copy(s[:64], last)
		copy(s[64:], last)
		pairsX2(&d[0], &s[0], 1)
		copy(dst[32*(n-1):32*n], d[:32])
	}
}

// pairsUseX2 says whether HashPairs uses hashPairsX2 rather than
// gohashtree's kernel. On the CPUs measured (AMD Zen 5) the two tie on
// whole levels, within the noise of BenchmarkHashPairs: gohashtree's SHA-NI
// path interleaves two pairs too, and both then run at SHA256RNDS2's
// throughput, not its latency; and gohashtree hashes a lone pair with a
// single stream, which is faster than pairing it with a copy of itself. So
// gohashtree stays wherever it runs, and hashPairsX2 is kept measured
// (grove bench's pair_kernel_vs_gohashtree) and tested, ready for a CPU
// where the order changes.
const pairsUseX2 = false
