package engine

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/layout"
)

// flatRows holds a corpus in one buffer so that millions of rows put no
// objects on the heap.
type flatRows struct {
	buf  []byte
	offs []int32 // row i: key at offs[2i]..offs[2i+1], value from offs[2i+1] to offs[2i+2]
}

func makeFlatRows(n int, sorted bool) *flatRows {
	rnd := rand.New(rand.NewPCG(42, 43))
	f := &flatRows{buf: make([]byte, 0, n*112), offs: make([]int32, 0, 2*n+1)}
	type kt struct {
		off int32
		tok int64
	}
	for range n {
		f.offs = append(f.offs, int32(len(f.buf)))
		kl := 16 + rnd.IntN(17)
		for range kl {
			f.buf = append(f.buf, byte('a'+rnd.IntN(26)))
		}
		f.offs = append(f.offs, int32(len(f.buf)))
		for range 64 {
			f.buf = append(f.buf, byte(rnd.Uint32()))
		}
	}
	f.offs = append(f.offs, int32(len(f.buf)))
	if sorted {
		idx := make([]int, n)
		toks := make([]int64, n)
		for i := range n {
			idx[i] = i
			toks[i] = token.Murmur3{}.Token(f.buf[f.offs[2*i]:f.offs[2*i+1]])
		}
		slices.SortFunc(idx, func(a, b int) int { return int(toks[a]>>1 - toks[b]>>1) })
		g := &flatRows{buf: make([]byte, 0, len(f.buf)), offs: make([]int32, 0, len(f.offs))}
		for _, i := range idx {
			g.offs = append(g.offs, int32(len(g.buf)))
			g.buf = append(g.buf, f.buf[f.offs[2*i]:f.offs[2*i+1]]...)
			g.offs = append(g.offs, int32(len(g.buf)))
			g.buf = append(g.buf, f.buf[f.offs[2*i+1]:f.offs[2*i+2]]...)
		}
		g.offs = append(g.offs, int32(len(g.buf)))
		f = g
	}
	return f
}

func (f *flatRows) n() int { return (len(f.offs) - 1) / 2 }

type flatSource struct {
	f      *flatRows
	i, end int
	_      [104]byte // each worker's source on its own cache lines: no false sharing of i
}

func (s *flatSource) NextRow(r *Row) error {
	if s.i == s.end {
		return io.EOF
	}
	o := s.f.offs[2*s.i:]
	r.Key = s.f.buf[o[0]:o[1]]
	r.Value = s.f.buf[o[1]:o[2]]
	r.TS = int64(s.i)
	r.Deleted = false
	s.i++
	return nil
}

func benchAddFrom(b *testing.B, sorted bool, workers int, noHuge bool) {
	const n = 1 << 20
	f := makeFlatRows(n, sorted)
	budget := arena.NewBudget(1 << 30)
	tr, err := New(Options{Depth: 20, Budget: budget, NoHugePages: noHuge})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	b.SetBytes(0)
	b.ResetTimer()
	for range b.N {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				src := &flatSource{f: f, i: w * n / workers, end: (w + 1) * n / workers}
				tr.AddFrom(context.Background(), src)
			})
		}
		wg.Wait()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
}

func BenchmarkAddFrom(b *testing.B) {
	for _, sorted := range []bool{false, true} {
		name := "random"
		if sorted {
			name = "sorted"
		}
		b.Run(name+"/1", func(b *testing.B) { benchAddFrom(b, sorted, 1, false) })
		b.Run(name+"/procs", func(b *testing.B) { benchAddFrom(b, sorted, runtime.GOMAXPROCS(0), false) })
		b.Run(name+"/procs/nohugepages", func(b *testing.B) { benchAddFrom(b, sorted, runtime.GOMAXPROCS(0), true) })
	}
	b.Run("sha256-one-core", func(b *testing.B) {
		const n = 1 << 20
		f := makeFlatRows(n, false)
		var buf []byte
		var sink byte
		b.ResetTimer()
		for range b.N {
			src := &flatSource{f: f, end: n}
			var r Row
			for src.NextRow(&r) == nil {
				buf = AppendEncoding(buf[:0], &r)
				d := sha256.Sum256(buf)
				sink ^= d[0]
			}
		}
		_ = sink
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
	})
}

func BenchmarkHash20(b *testing.B) {
	for _, l := range []layout.Layout{layout.BFS{}, layout.Blocked{}} {
		for _, noHuge := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/nohugepages=%v", l.Name(), noHuge), func(b *testing.B) {
				tr, err := New(Options{Depth: 20, Layout: l, Budget: arena.NewBudget(1 << 30), NoHugePages: noHuge})
				if err != nil {
					b.Fatal(err)
				}
				defer tr.Close()
				for range b.N {
					if err := tr.Rehash(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkSHA256Scaling hashes the same encodings on GOMAXPROCS goroutines:
// the ceiling any parallel row path can reach on this machine.
func BenchmarkSHA256Scaling(b *testing.B) {
	const n = 1 << 20
	f := makeFlatRows(n, false)
	workers := runtime.GOMAXPROCS(0)
	b.ResetTimer()
	for range b.N {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				var buf []byte
				var sink byte
				src := &flatSource{f: f, i: w * n / workers, end: (w + 1) * n / workers}
				var r Row
				for src.NextRow(&r) == nil {
					buf = AppendEncoding(buf[:0], &r)
					d := sha256.Sum256(buf)
					sink ^= d[0]
				}
				_ = sink
			})
		}
		wg.Wait()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
}

func BenchmarkHasherScaling(b *testing.B) {
	const n = 1 << 20
	f := makeFlatRows(n, false)
	for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprint(workers), func(b *testing.B) {
			for range b.N {
				var wg sync.WaitGroup
				for w := range workers {
					wg.Go(func() {
						var h Hasher
						var sink byte
						src := &flatSource{f: f, i: w * n / workers, end: (w + 1) * n / workers}
						var r Row
						for src.NextRow(&r) == nil {
							tok := token.Murmur3{}.Token(r.Key)
							d := h.Digest(&r)
							sink ^= d[0] ^ byte(tok)
						}
						_ = sink
					})
				}
				wg.Wait()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
		})
	}
}

func BenchmarkDiff20(b *testing.B) {
	ctx := context.Background()
	budget := arena.NewBudget(1 << 30)
	f := makeFlatRows(1<<18, false)
	mk := func() *Tree {
		tr, err := New(Options{Depth: 20, Budget: budget})
		if err != nil {
			b.Fatal(err)
		}
		tr.AddFrom(ctx, &flatSource{f: f, end: f.n()})
		return tr
	}
	a := mk()
	defer a.Close()
	a.Hash(ctx)
	for _, k := range []int{1, 10, 1000} {
		t2 := mk()
		for i := range k {
			t2.Add(&Row{Key: fmt.Appendf(nil, "extra-%d", i)})
		}
		t2.Hash(ctx)
		b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
			for range b.N {
				if _, err := Diff(ctx, a, t2); err != nil {
					b.Fatal(err)
				}
			}
		})
		t2.Close()
	}
}

// BenchmarkRehashDirty: after k updates to a depth-20 tree, Hash recomputes
// only their paths (compare BenchmarkHash20, the full rehash).
func BenchmarkRehashDirty(b *testing.B) {
	ctx := context.Background()
	tr, err := New(Options{Depth: 20, Budget: arena.NewBudget(1 << 30)})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	tr.Hash(ctx)
	for _, k := range []int{1, 1000, 100_000} {
		b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
			rows := make([]Row, k)
			for i := range rows {
				rows[i] = Row{Key: fmt.Appendf(nil, "key-%d", i), Value: []byte("v")}
			}
			var upd time.Duration
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				start := time.Now()
				for i := range rows {
					tr.Update(nil, &rows[i])
				}
				upd += time.Since(start)
				b.StartTimer()
				if err := tr.Hash(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(upd.Nanoseconds())/float64(b.N*k), "ns/update")
		})
	}
}

// BenchmarkUpdateDigests: a store's maintenance round handing a tree of
// 2^19 leaves, mapped from its file as a forest's are, 8,192 changes in
// token order (a sorted round's keys, each an insert), one UpdateDigestAt
// at a time or in batches of 256 with UpdateDigests.
//
//	go test -run '^$' -bench UpdateDigests -cpu 1 ./engine/
func BenchmarkUpdateDigests(b *testing.B) {
	const depth, round = 19, 8192
	path := b.TempDir() + "/tree"
	budget := arena.NewBudget(1 << 30)
	built, err := New(Options{Depth: depth, Budget: budget})
	if err != nil {
		b.Fatal(err)
	}
	if err := built.Hash(context.Background()); err != nil {
		b.Fatal(err)
	}
	if err := built.Save(path); err != nil {
		b.Fatal(err)
	}
	built.Close()
	tr, err := OpenWritable(path, budget)
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	rnd := rand.New(rand.NewPCG(7, 9))
	changes := make([]DigestChange, round)
	digests := make([]Digest, round)
	for i := range changes {
		for j := 0; j < len(digests[i]); j += 8 {
			binary.LittleEndian.PutUint64(digests[i][j:], rnd.Uint64())
		}
		changes[i] = DigestChange{Token: token.Token(rnd.Uint64()), Key: []byte("k"), New: &digests[i]}
	}
	slices.SortFunc(changes, func(a, c DigestChange) int { return cmp.Compare(a.Token, c.Token) })
	b.Run("one-at-a-time", func(b *testing.B) {
		for b.Loop() {
			for i := range changes {
				c := &changes[i]
				if err := tr.UpdateDigestAt(c.Token, c.Key, c.Old, c.New); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*round), "ns/change")
	})
	b.Run("batch=256", func(b *testing.B) {
		for b.Loop() {
			for i := 0; i < round; i += 256 {
				if err := tr.UpdateDigests(changes[i : i+256]); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*round), "ns/change")
	})
}
