package simd

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"
)

// checkX2 hashes a and b with fn and compares both digests with
// crypto/sha256, and checks that neither input was modified.
func checkX2(t *testing.T, fn func(a, b []byte) ([32]byte, [32]byte), a, b []byte) {
	t.Helper()
	ca, cb := bytes.Clone(a), bytes.Clone(b)
	da, db := fn(a, b)
	if wa := sha256.Sum256(ca); da != wa {
		t.Fatalf("len(a) %d, len(b) %d: digest of a %x, want %x", len(a), len(b), da, wa)
	}
	if wb := sha256.Sum256(cb); db != wb {
		t.Fatalf("len(a) %d, len(b) %d: digest of b %x, want %x", len(a), len(b), db, wb)
	}
	if !bytes.Equal(a, ca) || !bytes.Equal(b, cb) {
		t.Fatalf("len(a) %d, len(b) %d: an input was modified", len(a), len(b))
	}
}

// edges are the lengths where SHA-256's padding changes shape: a block
// boundary, and the 55/56 bytes past it where the length no longer fits in
// the last block.
var edges = []int{0, 1, 2, 31, 54, 55, 56, 57, 63, 64, 65, 100, 110, 118, 119, 120, 121, 127, 128, 129, 183, 184, 191, 192, 193, 255, 256, 257, 300}

// TestSum256x2Lengths hashes every length 0..300 in each stream against the
// edge lengths in the other, and a grid of both, from random bytes at
// varying offsets (so most inputs are unaligned), with every two-stream
// implementation this build runs here.
func TestSum256x2Lengths(t *testing.T) {
	for _, k := range x2Kernels() {
		t.Run(k.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(21, 22))
			buf := randomBytes(r, 700)
			slice := func(n int) []byte {
				off := r.IntN(64)
				return buf[off : off+n]
			}
			for n := 0; n <= 300; n++ {
				for _, m := range edges {
					checkX2(t, k.fn, slice(n), slice(m))
					checkX2(t, k.fn, slice(m), slice(n))
				}
			}
			for n := 0; n <= 300; n += 3 {
				for m := 0; m <= 300; m += 7 {
					checkX2(t, k.fn, slice(n), slice(m))
				}
			}
		})
	}
}

// TestSum256x2Long covers messages of many blocks, equal and very unequal
// in length (where Sum256x2 hashes them one after the other, and the kernel
// keeps stepping the finished stream), and nil, empty and shared inputs.
func TestSum256x2Long(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	big := randomBytes(r, 20000)
	lens := []int{0, 1, 64, 65, 119, 640, 1000, 1023, 4096, 4099, 9999}
	for _, k := range x2Kernels() {
		t.Run(k.name, func(t *testing.T) {
			for _, n := range lens {
				for _, m := range lens {
					checkX2(t, k.fn, big[3:3+n], big[10000-m:10000])
				}
			}
			checkX2(t, k.fn, nil, nil)
			checkX2(t, k.fn, nil, big[:77])
			checkX2(t, k.fn, big[5:5], big[:1])
			checkX2(t, k.fn, big[:130], big[:130]) // the same bytes twice
			checkX2(t, k.fn, big[:130], big[1:200])
			for range 200 {
				n, m := r.IntN(2000), r.IntN(2000)
				checkX2(t, k.fn, big[r.IntN(1000):][:n], big[r.IntN(1000):][:m])
			}
		})
	}
}

func TestSum256x2NoAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("instrumented builds allocate")
	}
	r := rand.New(rand.NewPCG(25, 26))
	src := randomBytes(r, 512)
	for _, k := range x2Kernels() {
		if a := testing.AllocsPerRun(100, func() { pairSink, pairSink2 = k.fn(src[:117], src[200:311]) }); a != 0 {
			t.Errorf("%s: %v allocations per call, want 0", k.name, a)
		}
	}
	if a := testing.AllocsPerRun(100, func() {
		var x, y [117]byte
		x[0], y[5] = pairSink[1], pairSink2[3]
		pairSink, pairSink2 = Sum256x2(x[:], y[:100])
	}); a != 0 {
		t.Errorf("Sum256x2 on stack buffers: %v allocations per call, want 0", a)
	}
}

// TestSum256x2StackGrowth calls Sum256x2 on stack buffers at many depths
// of recursion on fresh goroutines, so that some calls move the stack.
func TestSum256x2StackGrowth(t *testing.T) {
	var x, y [150]byte
	for i := range x {
		x[i], y[i] = byte(i), byte(5*i+1)
	}
	wa, wb := sha256.Sum256(x[:110]), sha256.Sum256(y[:])
	var recurse func(depth int, pad [64]byte) error
	recurse = func(depth int, pad [64]byte) error {
		if depth > 0 {
			pad[depth%64]++
			return recurse(depth-1, pad)
		}
		a, b := x, y
		da, db := Sum256x2(a[:110], b[:])
		if da != wa || db != wb {
			return fmt.Errorf("got %x, %x; want %x, %x", da, db, wa, wb)
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

func TestParseOverride(t *testing.T) {
	for _, c := range []struct {
		in                string
		noSHANI, noAVX512 bool
	}{
		{"", false, false},
		{"noshani", true, false},
		{"NoSHANI, noavx512", true, true},
		{"noavx512", false, true},
		{"shani,bogus", false, false},
	} {
		o := parseOverride(c.in)
		if o.noSHANI != c.noSHANI || o.noAVX512 != c.noAVX512 || o.set != (c.in != "") {
			t.Errorf("parseOverride(%q) = %+v", c.in, o)
		}
	}
}

// TestOverrideApplies checks that a GROVESIMD override in the environment
// of this test run took effect: no SHA-NI kernel of grove's or minio's runs,
// gohashtree does not report its SHA-NI path, and Features says so.
func TestOverrideApplies(t *testing.T) {
	env := os.Getenv(overrideEnv)
	if env == "" {
		t.Skipf("%s is not set", overrideEnv)
	}
	f := Features()
	if !strings.Contains(f, overrideEnv) {
		t.Errorf("Features %q does not show %s", f, overrideEnv)
	}
	if runtime.GOARCH != "amd64" || purego {
		return
	}
	o := parseOverride(env)
	if o.noSHANI && (x2OK || rowsFast || strings.Contains(f, "sha-ni")) {
		t.Errorf("%s=%q: two-stream kernel %v, minio %v, Features %q", overrideEnv, env, x2OK, rowsFast, f)
	}
	if o.noAVX512 && strings.Contains(f, "avx-512") {
		t.Errorf("%s=%q: Features %q", overrideEnv, env, f)
	}
}

// TestHashPairsX2 checks the exported entry to the two-stream pair kernel:
// digests, the length and overlap errors, and ErrUnsupported where the
// kernel cannot run.
func TestHashPairsX2(t *testing.T) {
	if !x2OK {
		if err := HashPairsX2(make([]byte, 32), make([]byte, 64)); !errors.Is(err, errors.ErrUnsupported) {
			t.Fatalf("without the kernel: got %v, want ErrUnsupported", err)
		}
		return
	}
	r := rand.New(rand.NewPCG(27, 28))
	f := func(dst, src []byte) {
		if err := HashPairsX2(dst, src); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range pairCounts {
		checkKernel(t, f, randomBytes(r, 64*n), 0)
		checkKernel(t, f, randomBytes(r, 64*n+3)[3:], 5)
	}
	if err := HashPairsX2(make([]byte, 32), make([]byte, 32)); !errors.Is(err, ErrLength) {
		t.Errorf("bad lengths: got %v, want ErrLength", err)
	}
	buf := make([]byte, 256)
	if err := HashPairsX2(buf[:64], buf[:128]); !errors.Is(err, ErrOverlap) {
		t.Errorf("overlap: got %v, want ErrOverlap", err)
	}
	if a := testing.AllocsPerRun(20, func() {
		var d [64]byte
		var s [128]byte
		s[0] = d[1]
		if err := HashPairsX2(d[:], s[:]); err != nil {
			t.Fatal(err)
		}
	}); a != 0 && testing.CoverMode() == "" {
		t.Errorf("HashPairsX2 on stack buffers: %v allocations per call", a)
	}
}
