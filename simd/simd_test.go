package simd

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

var pairCounts = []int{0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 1000, 4096}

// referencePairs is the definition HashPairs must meet, written as plainly as
// possible.
func referencePairs(src []byte) []byte {
	out := make([]byte, 0, len(src)/2)
	for i := 0; i+64 <= len(src); i += 64 {
		d := sha256.Sum256(src[i : i+64])
		out = append(out, d[:]...)
	}
	return out
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// checkKernel runs fn on src into a dst carved out of a larger buffer at
// offset dstOff, and checks the digests, that no byte around dst was
// written, and that src was not modified.
func checkKernel(t *testing.T, fn func(dst, src []byte), src []byte, dstOff int) {
	t.Helper()
	const guard = 67
	want := referencePairs(src)
	srcCopy := bytes.Clone(src)
	buf := make([]byte, dstOff+len(want)+guard)
	for i := range buf {
		buf[i] = 0xA5
	}
	dst := buf[dstOff : dstOff+len(want)]
	fn(dst, src)
	if !bytes.Equal(dst, want) {
		for i := 0; i < len(want); i += 32 {
			if !bytes.Equal(dst[i:i+32], want[i:i+32]) {
				t.Fatalf("%d pairs: pair %d: got %x, want %x", len(src)/64, i/32, dst[i:i+32], want[i:i+32])
			}
		}
	}
	for i, c := range buf {
		if (i < dstOff || i >= dstOff+len(want)) && c != 0xA5 {
			t.Fatalf("%d pairs: byte %d outside dst (dst is [%d,%d)) was overwritten", len(src)/64, i, dstOff, dstOff+len(want))
		}
	}
	if !bytes.Equal(src, srcCopy) {
		t.Fatalf("%d pairs: src was modified", len(src)/64)
	}
}

func TestKernelsMatchCryptoSHA256(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, k := range kernels() {
		t.Run(k.name, func(t *testing.T) {
			for _, n := range pairCounts {
				checkKernel(t, k.fn, randomBytes(r, 64*n), 0)
			}
		})
	}
}

// TestKernelsMisaligned hashes sub-slices of a bigger buffer that start at
// odd offsets, as a level inside an mmap'd tree file may, with dst misaligned
// too.
func TestKernelsMisaligned(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	big := randomBytes(r, 64*4096+64)
	for _, k := range kernels() {
		t.Run(k.name, func(t *testing.T) {
			for _, off := range []int{1, 3, 7, 8, 13, 31, 33, 63} {
				for _, n := range []int{1, 2, 3, 5, 8, 9, 17, 33, 65, 1000, 4096} {
					src := big[off : off+64*n]
					checkKernel(t, k.fn, src, (off*5)%32+1)
				}
			}
		})
	}
}

// TestHashPairs checks the exported, dispatching entry point the same way.
func TestHashPairs(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	f := func(dst, src []byte) {
		if err := HashPairs(dst, src); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range pairCounts {
		checkKernel(t, f, randomBytes(r, 64*n), 0)
		checkKernel(t, f, randomBytes(r, 64*n+5)[5:], 3)
	}
}

// TestHashPairsBatches covers a level bigger than the gohashtree batch
// bound, so the loop that feeds it in slices is exercised.
func TestHashPairsBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes 96 MiB")
	}
	r := rand.New(rand.NewPCG(7, 8))
	n := 1<<20 + 3
	src := randomBytes(r, 64*n)
	f := func(dst, src []byte) {
		if err := HashPairs(dst, src); err != nil {
			t.Fatal(err)
		}
	}
	checkKernel(t, f, src, 0)
}

func TestHashPairsLengthErrors(t *testing.T) {
	for _, c := range []struct{ dst, src int }{
		{32, 32}, {32, 128}, {31, 62}, {33, 66}, {0, 64}, {64, 64}, {16, 32}, {32, 0},
	} {
		err := HashPairs(make([]byte, c.dst), make([]byte, c.src))
		if !errors.Is(err, ErrLength) {
			t.Errorf("len(dst)=%d len(src)=%d: got %v, want ErrLength", c.dst, c.src, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, fmt.Sprintf("len(dst) = %d", c.dst)) || !strings.Contains(msg, fmt.Sprintf("len(src) = %d", c.src)) {
			t.Errorf("error %q does not name len(dst)=%d and len(src)=%d", msg, c.dst, c.src)
		}
	}
	if err := HashPairs(nil, nil); err != nil {
		t.Errorf("zero pairs: %v", err)
	}
	if err := HashPairs(make([]byte, 32), make([]byte, 64)); err != nil {
		t.Errorf("one pair: %v", err)
	}
}

func TestHashPairsOverlap(t *testing.T) {
	buf := make([]byte, 512)
	for _, c := range []struct {
		name        string
		dst, src    []byte
		overlapping bool
	}{
		{"in place", buf[0:64], buf[0:128], true},
		{"dst inside src", buf[32:96], buf[0:128], true},
		{"dst tail on src head", buf[0:64], buf[32:160], true},
		{"dst head on src tail", buf[127:191], buf[0:128], true},
		{"src head on dst tail", buf[0:64], buf[63:191], true},
		{"adjacent after", buf[128:192], buf[0:128], false},
		{"adjacent before", buf[0:64], buf[64:192], false},
	} {
		err := HashPairs(c.dst, c.src)
		if c.overlapping && !errors.Is(err, ErrOverlap) {
			t.Errorf("%s: got %v, want ErrOverlap", c.name, err)
		}
		if !c.overlapping && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// TestOnePair hashes single inner nodes, SHA-256(left ‖ right), as the diff
// path and incremental updates do: through HashPairs on one 64-byte pair and
// through every kernel directly, each against crypto/sha256.
func TestOnePair(t *testing.T) {
	ks := append(kernels(), kernel{"HashPairs", func(dst, src []byte) {
		if err := HashPairs(dst, src); err != nil {
			t.Fatal(err)
		}
	}})
	for _, k := range ks {
		t.Run(k.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(9, 10))
			pair := func(l, rr []byte) [32]byte {
				src := append(bytes.Clone(l), rr...)
				dst := make([]byte, 32)
				k.fn(dst, src)
				if !bytes.Equal(src[:32], l) || !bytes.Equal(src[32:], rr) {
					t.Fatal("hashing a pair modified its inputs")
				}
				return [32]byte(dst)
			}
			for i := 0; i < 1000; i++ {
				l, rr := randomBytes(r, 32), randomBytes(r, 32)
				want := sha256.Sum256(append(bytes.Clone(l), rr...))
				if got := pair(l, rr); got != want {
					t.Fatalf("pair (%x, %x) = %x, want %x", l, rr, got, want)
				}
			}
			// Order matters: a tree whose children are swapped is a
			// different tree.
			a, b := make([]byte, 32), make([]byte, 32)
			a[0] = 1
			if pair(a, b) == pair(b, a) {
				t.Fatal("pair hashing is symmetric")
			}
		})
	}
}

func TestSum256(t *testing.T) {
	for _, k := range rowKernels() {
		t.Run(k.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(11, 12))
			buf := randomBytes(r, 301)
			for n := 0; n <= 300; n++ {
				b := buf[:n]
				if got, want := k.fn(b), sha256.Sum256(b); got != want {
					t.Fatalf("len %d: got %x, want %x", n, got, want)
				}
				b = buf[1 : 1+n] // and misaligned
				if got, want := k.fn(b), sha256.Sum256(b); got != want {
					t.Fatalf("len %d at offset 1: got %x, want %x", n, got, want)
				}
			}
		})
	}
}

func TestNoAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("instrumented builds allocate")
	}
	r := rand.New(rand.NewPCG(13, 14))
	src := randomBytes(r, 64*1024)
	dst := make([]byte, 32*1024)
	for _, k := range kernels() {
		if a := testing.AllocsPerRun(20, func() { k.fn(dst, src) }); a != 0 {
			t.Errorf("kernel %s: %v allocations per 1024-pair call, want 0", k.name, a)
		}
	}
	var err error
	if a := testing.AllocsPerRun(20, func() { err = HashPairs(dst, src) }); a != 0 || err != nil {
		t.Errorf("HashPairs: %v allocations per 1024-pair call (error %v), want 0", a, err)
	}
	// One pair, as the diff path and incremental updates hash it: every
	// kernel and HashPairs on a single 64-byte pair.
	pairSrc, pairDst := src[:64], dst[:32]
	for _, k := range kernels() {
		if a := testing.AllocsPerRun(100, func() { k.fn(pairDst, pairSrc) }); a != 0 {
			t.Errorf("kernel %s: %v allocations per one-pair call, want 0", k.name, a)
		}
	}
	if a := testing.AllocsPerRun(100, func() { err = HashPairs(pairDst, pairSrc) }); a != 0 || err != nil {
		t.Errorf("HashPairs: %v allocations per one-pair call (error %v), want 0", a, err)
	}
	var sink [32]byte
	row := src[:117]
	if a := testing.AllocsPerRun(100, func() { sink = Sum256(row) }); a != 0 {
		t.Errorf("Sum256: %v allocations per call, want 0", a)
	}
	if a := testing.AllocsPerRun(100, func() {
		var row [117]byte
		row[0] = sink[2]
		sink = Sum256(row[:])
	}); a != 0 {
		t.Errorf("Sum256 on a stack buffer: %v allocations per call, want 0", a)
	}
	_ = sink
}

// TestFeatures checks that Features names the kernel HashPairs dispatches to
// and the row-digest implementation.
func TestFeatures(t *testing.T) {
	f := Features()
	t.Logf("Features() = %q", f)
	if f == "" {
		t.Fatal("empty")
	}
	single := "crypto/sha256"
	if usesRowsFast() {
		single = "minio/sha256-simd"
	}
	rows := "row digests: " + single
	x2Rows, x2Pairs := usesX2()
	if x2Rows {
		rows = "row digests: sha-ni x2 (grove) two at a time, " + single
	}
	if !strings.Contains(f, rows) {
		t.Errorf("%q does not name the row-digest implementation (%s)", f, rows)
	}
	if usesFast() != strings.Contains(f, "(gohashtree)") {
		t.Errorf("%q disagrees with the dispatch (fast kernel: %v)", f, usesFast())
	}
	if x2Pairs != strings.HasPrefix(f, "sha-ni x2 (grove)") {
		t.Errorf("%q disagrees with the dispatch (two-stream pair kernel: %v)", f, x2Pairs)
	}
	if !usesFast() && !x2Pairs && !strings.HasPrefix(f, "generic (crypto/sha256") {
		t.Errorf("%q does not name the generic path", f)
	}
	if usesFast() {
		known := false
		for _, p := range []string{"sha-ni ", "avx-512 ", "avx2 ", "sha2 ", "neon "} {
			known = known || strings.HasPrefix(f, p)
		}
		if !known {
			t.Errorf("%q names no known gohashtree kernel", f)
		}
	}
	if (runtime.GOARCH == "arm64") && !purego && !usesFast() {
		t.Errorf("gohashtree always has a kernel on arm64, but HashPairs does not use it")
	}
}

// TestStackGrowth calls the kernels with buffers on the stack from fresh
// goroutines at many recursion depths, so that some calls land right at the
// end of a small stack and the kernel's own frame forces the runtime to move
// the stack mid-call; a wrong result or a crash here means a buffer was not
// where the kernel was told it was.
func TestStackGrowth(t *testing.T) {
	var lr [64]byte // one pair: left ‖ right
	for i := range 32 {
		lr[i], lr[32+i] = byte(i), byte(3*i+1)
	}
	want := sha256.Sum256(lr[:])
	var wantPairs [4 * 32]byte
	var src [4 * 64]byte
	for i := range src {
		src[i] = byte(7 * i)
	}
	copy(wantPairs[:], referencePairs(src[:]))

	var recurse func(depth int, pad [64]byte) error
	recurse = func(depth int, pad [64]byte) error {
		if depth > 0 {
			pad[depth%64]++
			return recurse(depth-1, pad)
		}
		pair := lr
		var got [32]byte
		if err := HashPairs(got[:], pair[:]); err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("HashPairs on one pair: got %x, want %x", got, want)
		}
		s := src
		var d [4 * 32]byte
		if err := HashPairs(d[:], s[:]); err != nil {
			return err
		}
		if d != wantPairs {
			return fmt.Errorf("HashPairs: got %x, want %x", d, wantPairs)
		}
		return nil
	}
	for depth := 0; depth < 200; depth++ {
		done := make(chan error)
		go func() { done <- recurse(depth, [64]byte{}) }()
		if err := <-done; err != nil {
			t.Fatalf("recursion depth %d: %v", depth, err)
		}
	}
}
