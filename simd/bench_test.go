package simd

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"

	minio "github.com/minio/sha256-simd"
)

// BenchmarkHashPairs times every kernel on one pair (the cost of a call) and
// on 2^19 pairs (a whole level of a depth-20 tree: 32 MiB in, 16 MiB out).
// Bytes are bytes hashed (64 per pair); ns/pair is the number to compare.
func BenchmarkHashPairs(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{1, 4096, 1 << 19} {
		src := randomBytes(r, 64*n)
		dst := make([]byte, 32*n)
		for _, k := range kernels() {
			b.Run(fmt.Sprintf("%s/%dpairs", k.name, n), func(b *testing.B) {
				b.SetBytes(int64(len(src)))
				for b.Loop() {
					k.fn(dst, src)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/pair")
			})
		}
	}
}

var pairSink [32]byte

// BenchmarkOnePair times one inner node, as the diff path and incremental
// updates hash it: HashPairs on one pair, with its length and overlap checks
// and dispatch, against crypto/sha256.Sum256 of the same 64 bytes.
func BenchmarkOnePair(b *testing.B) {
	src := make([]byte, 64)
	src[0], src[32] = 1, 2
	dst := make([]byte, 32)
	b.Run("HashPairs", func(b *testing.B) {
		b.SetBytes(64)
		for b.Loop() {
			if err := HashPairs(dst, src); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("crypto", func(b *testing.B) {
		b.SetBytes(64)
		for b.Loop() {
			pairSink = sha256.Sum256(src)
		}
	})
}

// The Sum256 benchmarks decide which implementation Sum256 and Sum256x2
// use. Row encodings are typically 100-130 bytes. impl=Sum256 is the
// exported function, a check that it runs at the speed of the
// implementation it picked; impl=x2 is the two-stream kernel and
// impl=Sum256x2 the exported function on two rows of the size, both timed
// per call and reported per row (ns/row), like the single-row ones. Compare
// with (benchstat is golang.org/x/perf/cmd/benchstat)
//
//	go test -run '^$' -bench Sum256 -count 20 ./simd/ > sum.txt
//	benchstat -col /impl -filter '.name:Sum256' sum.txt
func benchSum(b *testing.B, n int, sum func([]byte) [32]byte) {
	data := randomBytes(rand.New(rand.NewPCG(2, uint64(n))), n)
	b.SetBytes(int64(n))
	for b.Loop() {
		pairSink = sum(data)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/row")
}

var pairSink2 [32]byte

func benchSum2(b *testing.B, n int, sum func(a, b []byte) ([32]byte, [32]byte)) {
	data := randomBytes(rand.New(rand.NewPCG(2, uint64(n))), 2*n+1)
	x, y := data[:n], data[n+1:] // the second one unaligned
	b.SetBytes(int64(2 * n))
	for b.Loop() {
		pairSink, pairSink2 = sum(x, y)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/row")
}

func BenchmarkSum256(b *testing.B) {
	for _, n := range []int{64, 96, 110, 128, 256, 1024} {
		b.Run(fmt.Sprintf("impl=crypto/size=%dB", n), func(b *testing.B) { benchSum(b, n, sha256.Sum256) })
		b.Run(fmt.Sprintf("impl=minio/size=%dB", n), func(b *testing.B) { benchSum(b, n, minio.Sum256) })
		b.Run(fmt.Sprintf("impl=Sum256/size=%dB", n), func(b *testing.B) { benchSum(b, n, Sum256) })
		for _, k := range x2Kernels() {
			b.Run(fmt.Sprintf("impl=%s/size=%dB", k.name, n), func(b *testing.B) { benchSum2(b, n, k.fn) })
		}
	}
}
