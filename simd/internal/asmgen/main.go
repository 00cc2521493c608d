// Command asmgen writes simd/sha256x2_amd64.s, the two-stream SHA-NI
// kernels: run `go generate ./simd/` after changing it.
//
// The kernels follow the structure of the single-stream SHA-NI block
// function in Go's crypto/internal/fips140/sha256 (sha256block_amd64.s), with
// two independent messages' rounds interleaved, as ISA-L crypto's
// sha256_ni_x2 does: SHA256RNDS2 has a latency of several cycles and one
// message's rounds form a single dependency chain, so a second, independent
// chain fills the cycles the first leaves idle. The round schedule is
// generated rather than written out by hand so that the interleaving of the
// two streams cannot drift from one group of rounds to the next.
package main

import (
	"bytes"
	"fmt"
	"log"
	"os"
)

// SHA-256's round constants and initial hash value (FIPS 180-4).
var k256 = [64]uint32{
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

var iv = [8]uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}

var out bytes.Buffer

func emit(format string, args ...any) { fmt.Fprintf(&out, format+"\n", args...) }

// data emits a read-only table of 32-bit words, four to a 16-byte row.
func data(name string, words []uint32) {
	for i := 0; i < len(words); i += 2 {
		emit("DATA %s<>+%d(SB)/8, $0x%08x%08x", name, 4*i, words[i+1], words[i])
	}
	emit("GLOBL %s<>(SB), RODATA|NOPTR, $%d", name, 4*len(words))
	emit("")
}

// stream is one message's registers: its state as SHA256RNDS2 keeps it
// (s0 = ABEF, s1 = CDGH), its four message-schedule registers, a scratch
// register, and where its saved state lives in the frame.
type stream struct {
	s0, s1 string
	m      [4]string
	w      string
	save   int
}

var (
	sa = stream{"X1", "X2", [4]string{"X5", "X6", "X7", "X8"}, "X13", 0}
	sb = stream{"X3", "X4", [4]string{"X9", "X10", "X11", "X12"}, "X14", 32}
)

const mask = "X15" // byte swap of each 32-bit word, for loads and stores

// group emits rounds 4g..4g+3 of one 64-byte block for both streams, whose
// blocks start at pa and pb; the message words for rounds 16..63 are
// computed from the earlier ones as the groups go (SHA256MSG1/MSG2), exactly
// as in the single-stream kernel, once per stream.
func group(g int, pa, pb string) {
	emit("\t// rounds %d-%d", 4*g, 4*g+3)
	ss := []stream{sa, sb}
	ps := []string{pa, pb}
	for i, s := range ss {
		c := s.m[g%4]
		if g < 4 {
			emit("\tVMOVDQU %d(%s), %s", 16*g, ps[i], c)
			emit("\tVPSHUFB %s, %s, %s", mask, c, c)
		}
		emit("\tVPADDD k256<>+%d(SB), %s, X0", 16*g, c)
		emit("\tSHA256RNDS2 X0, %s, %s", s.s0, s.s1)
		emit("\tVPSHUFD $0x0e, X0, %s", s.w)
	}
	for _, s := range ss {
		emit("\tVMOVDQA %s, X0", s.w)
		emit("\tSHA256RNDS2 X0, %s, %s", s.s1, s.s0)
	}
	for _, s := range ss {
		c, prev, next := s.m[g%4], s.m[(g+3)%4], s.m[(g+1)%4]
		if g >= 3 && g <= 14 {
			emit("\tVPALIGNR $4, %s, %s, %s", prev, c, s.w)
			emit("\tVPADDD %s, %s, %s", s.w, next, next)
			emit("\tSHA256MSG2 %s, %s", c, next)
		}
		if g >= 1 && g <= 12 {
			emit("\tSHA256MSG1 %s, %s", c, prev)
		}
	}
}

// block emits one whole 64-byte block of each stream, with the feed-forward
// of the state saved in the frame at the start.
func block(pa, pb string) {
	for _, s := range []stream{sa, sb} {
		emit("\tVMOVDQU %s, %d(SP)", s.s0, s.save)
		emit("\tVMOVDQU %s, %d(SP)", s.s1, s.save+16)
	}
	for g := range 16 {
		group(g, pa, pb)
	}
	for _, s := range []stream{sa, sb} {
		emit("\tVPADDD %d(SP), %s, %s", s.save, s.s0, s.s0)
		emit("\tVPADDD %d(SP), %s, %s", s.save+16, s.s1, s.s1)
	}
}

// store emits the conversion of s's state from ABEF/CDGH back to H0..H7
// and stores it big-endian, as the digest's 32 bytes, at off(dst). It
// leaves the state registers as they were and clobbers X0 and s.w; t is one
// more scratch register.
func store(s stream, t, dst string, off int) {
	emit("\tVPSHUFD $0x1b, %s, %s", s.s0, s.w)
	emit("\tVPSHUFD $0xb1, %s, %s", s.s1, t)
	emit("\tVPBLENDW $0xf0, %s, %s, X0", t, s.w)
	emit("\tVPALIGNR $8, %s, %s, %s", s.w, t, t)
	emit("\tVPSHUFB %s, X0, X0", mask)
	emit("\tVPSHUFB %s, %s, %s", mask, t, t)
	emit("\tVMOVDQU X0, %d(%s)", off, dst)
	emit("\tVMOVDQU %s, %d(%s)", t, off+16, dst)
}

// other is the other stream's scratch register, free whenever a digest is
// stored.
func other(s stream) string {
	if s == sa {
		return sb.w
	}
	return sa.w
}

func loadIV() {
	for _, s := range []stream{sa, sb} {
		emit("\tVMOVDQU iv<>+0(SB), %s", s.s0)
		emit("\tVMOVDQU iv<>+16(SB), %s", s.s1)
	}
}

// rows emits blocksX2: two messages' blocks in lockstep. Each stream's
// blocks are its whole blocks in place, then its padded tail blocks in a
// separate buffer; the pointer moves from one to the other when the whole
// blocks run out. A stream that has no blocks left keeps hashing its last
// block, unseen, while the other finishes: its digest was stored when its
// last block was done.
func rows() {
	emit("// func blocksX2(out *[64]byte, a *byte, fullA int, tailA *byte, b *byte, fullB int, tailB *byte, blocksA, blocksB int)")
	emit("// Requires: AVX, SHA, SSE4.1, SSSE3")
	emit("TEXT ·blocksX2(SB), NOSPLIT, $64-72")
	emit("\tMOVQ out+0(FP), DI")
	emit("\tMOVQ a+8(FP), SI")
	emit("\tMOVQ fullA+16(FP), R8")
	emit("\tMOVQ tailA+24(FP), R9")
	emit("\tMOVQ b+32(FP), R10")
	emit("\tMOVQ fullB+40(FP), R11")
	emit("\tMOVQ tailB+48(FP), R12")
	emit("\tMOVQ blocksA+56(FP), R13")
	emit("\tMOVQ blocksB+64(FP), BX")
	emit("\t// CX = max(blocksA, blocksB) steps; each stream has at least one block")
	emit("\tMOVQ R13, CX")
	emit("\tCMPQ BX, CX")
	emit("\tCMOVQGT BX, CX")
	emit("\tTESTQ CX, CX")
	emit("\tJLE done")
	emit("\tVMOVDQU flip<>+0(SB), %s", mask)
	loadIV()
	emit("")
	emit("loop:")
	block("SI", "R10")
	emit("")
	for i, s := range []stream{sa, sb} {
		n, rem, full, tail, p := "A", "R13", "R8", "R9", "SI"
		if i == 1 {
			n, rem, full, tail, p = "B", "BX", "R11", "R12", "R10"
		}
		emit("\t// stream %s: store the digest after its last block, else step to its next block", n)
		emit("\tDECQ %s", rem)
		emit("\tJG next%s", n)
		emit("\tJL done%s", n)
		store(s, other(s), "DI", 32*i)
		emit("\tJMP done%s", n)
		emit("next%s:", n)
		emit("\tADDQ $64, %s", p)
		emit("\tDECQ %s", full)
		emit("\tCMOVQEQ %s, %s", tail, p)
		emit("done%s:", n)
	}
	emit("\tDECQ CX")
	emit("\tJNZ loop")
	emit("")
	emit("done:")
	emit("\tRET")
	emit("")
}

// pairs emits pairsX2: n times, two 64-byte pairs at src (each a whole
// message) to two digests at dst. A message of exactly one block has a
// second block that is always the same (0x80, zeros, the length 512), so
// that block's message schedule plus the round constants is a table:
// its rounds need no schedule instructions at all.
func pairs() {
	emit("// func pairsX2(dst *byte, src *byte, n int)")
	emit("// Requires: AVX, SHA, SSE4.1, SSSE3")
	emit("TEXT ·pairsX2(SB), NOSPLIT, $64-24")
	emit("\tMOVQ dst+0(FP), DI")
	emit("\tMOVQ src+8(FP), SI")
	emit("\tMOVQ n+16(FP), CX")
	emit("\tTESTQ CX, CX")
	emit("\tJLE pdone")
	emit("\tVMOVDQU flip<>+0(SB), %s", mask)
	emit("")
	emit("ploop:")
	emit("\tLEAQ 64(SI), R10")
	loadIV()
	block("SI", "R10")
	emit("\t// the padding block: the state after the first block is its feed-forward")
	for _, s := range []stream{sa, sb} {
		emit("\tVMOVDQA %s, %s", s.s0, s.m[0])
		emit("\tVMOVDQA %s, %s", s.s1, s.m[1])
	}
	for j := range 16 {
		emit("\tVMOVDQU pad<>+%d(SB), X0", 32*j)
		emit("\tSHA256RNDS2 X0, %s, %s", sa.s0, sa.s1)
		emit("\tSHA256RNDS2 X0, %s, %s", sb.s0, sb.s1)
		emit("\tVMOVDQU pad<>+%d(SB), X0", 32*j+16)
		emit("\tSHA256RNDS2 X0, %s, %s", sa.s1, sa.s0)
		emit("\tSHA256RNDS2 X0, %s, %s", sb.s1, sb.s0)
	}
	for _, s := range []stream{sa, sb} {
		emit("\tVPADDD %s, %s, %s", s.m[0], s.s0, s.s0)
		emit("\tVPADDD %s, %s, %s", s.m[1], s.s1, s.s1)
	}
	store(sa, other(sa), "DI", 0)
	store(sb, other(sb), "DI", 32)
	emit("\tADDQ $128, SI")
	emit("\tADDQ $64, DI")
	emit("\tDECQ CX")
	emit("\tJNZ ploop")
	emit("")
	emit("pdone:")
	emit("\tRET")
}

func rotr(x uint32, n uint) uint32 { return x>>n | x<<(32-n) }

// padSchedule is W[t]+K[t] for the block that follows a 64-byte message:
// 0x80, 55 zero bytes, the bit length 512 big-endian.
func padSchedule() [64]uint32 {
	var w [64]uint32
	w[0], w[15] = 0x80000000, 512
	for t := 16; t < 64; t++ {
		s0 := rotr(w[t-15], 7) ^ rotr(w[t-15], 18) ^ w[t-15]>>3
		s1 := rotr(w[t-2], 17) ^ rotr(w[t-2], 19) ^ w[t-2]>>10
		w[t] = w[t-16] + s0 + w[t-7] + s1
	}
	for t := range w {
		w[t] += k256[t]
	}
	return w
}

func main() {
	emit("// Code generated by simd/internal/asmgen; DO NOT EDIT.")
	emit("")
	emit("//go:build !purego")
	emit("")
	emit("#include \"textflag.h\"")
	emit("")
	data("k256", k256[:])
	// The initial hash value as SHA256RNDS2 holds it: ABEF then CDGH,
	// least significant word first.
	data("iv", []uint32{iv[5], iv[4], iv[1], iv[0], iv[7], iv[6], iv[3], iv[2]})
	data("flip", []uint32{0x00010203, 0x04050607, 0x08090a0b, 0x0c0d0e0f})
	// Two rounds to a 16-byte row: SHA256RNDS2 reads the low 8 bytes.
	ps := padSchedule()
	var pad []uint32
	for j := 0; j < 64; j += 2 {
		pad = append(pad, ps[j], ps[j+1], 0, 0)
	}
	data("pad", pad)
	rows()
	pairs()
	if err := os.WriteFile("sha256x2_amd64.s", out.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}
