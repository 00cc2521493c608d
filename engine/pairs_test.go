package engine

import (
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"testing"

	"github.com/antientropy/grove/engine/token"
)

// reusingSource hands out rows the way a real reader does: every row's key
// and value live in one buffer that the next call overwrites, so an adder
// that kept a Row (rather than its encoding) past add would hash the wrong
// bytes.
type reusingSource struct {
	rows []Row
	i    int
	buf  []byte
}

func (s *reusingSource) NextRow(r *Row) error {
	for i := range s.buf {
		s.buf[i] = 0xEE // scribble over the previous row
	}
	if s.i == len(s.rows) {
		return eof
	}
	src := &s.rows[s.i]
	s.i++
	s.buf = append(append(s.buf[:0], src.Key...), src.Value...)
	*r = Row{Key: s.buf[:len(src.Key)], Value: s.buf[len(src.Key):], TS: src.TS, Deleted: src.Deleted}
	return nil
}

// rowsWithBigOnes is randomRows plus a few rows far longer than the rest,
// so that two rows hashed together differ a lot in length.
func rowsWithBigOnes(rnd *rand.Rand, n int) []Row {
	rows := randomRows(rnd, n)
	for i, size := range []int{300, 2000, 70_000, 1<<20 + 5} {
		if j := 3*i + 1; j < len(rows) {
			rows[j].Value = make([]byte, size)
			rows[j].Value[size-1] = byte(i + 1)
		}
	}
	return rows
}

// TestAddFromPairsRows builds trees with AddFrom, which hashes rows two at a
// time and holds an odd one until flush, from sources that reuse their
// buffers, for counts around the batch size, and compares each with a tree
// whose rows were added one at a time.
func TestAddFromPairsRows(t *testing.T) {
	full := token.Murmur3{}.Range()
	for _, n := range []int{0, 1, 2, 3, 4, 5, 255, 256, 257, 511, 512, 513, 1001} {
		rows := rowsWithBigOnes(rand.New(rand.NewPCG(31, uint64(n))), n)
		want, err := build(t, newBudget(), rows, full, 8, 1).Root()
		if err != nil {
			t.Fatal(err)
		}
		tr, err := New(Options{Depth: 8, Budget: newBudget()})
		if err != nil {
			t.Fatal(err)
		}
		added, err := tr.AddFrom(context.Background(), &reusingSource{rows: rows})
		if err != nil || added != int64(n) || tr.Rows() != int64(n) {
			t.Fatalf("%d rows: AddFrom added %d (tree counts %d), %v", n, added, tr.Rows(), err)
		}
		if err := tr.Hash(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got, _ := tr.Root(); got != want {
			t.Fatalf("%d rows: AddFrom root %x, one at a time %x", n, got[:8], want[:8])
		}
		tr.Close()
		for _, workers := range []int{1, 3} {
			tr, err := New(Options{Depth: 8, Budget: newBudget()})
			if err != nil {
				t.Fatal(err)
			}
			added, err := tr.Load(context.Background(), &reusingSource{rows: rows}, workers)
			if err != nil || added != int64(n) {
				t.Fatalf("%d rows, %d workers: Load added %d, %v", n, workers, added, err)
			}
			if err := tr.Hash(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got, _ := tr.Root(); got != want {
				t.Fatalf("%d rows, %d workers: Load root %x, one at a time %x", n, workers, got[:8], want[:8])
			}
			tr.Close()
		}
	}
}

// TestHasherDigest2 checks Digest2 against Digest and against crypto/sha256
// of the encoding, on rows of many sizes, paired every way.
func TestHasherDigest2(t *testing.T) {
	rows := rowsWithBigOnes(rand.New(rand.NewPCG(33, 34)), 40)
	var h, h2 Hasher
	for i := range rows {
		for j := range rows {
			da, db := h2.Digest2(&rows[i], &rows[j])
			if wa := sha256.Sum256(AppendEncoding(nil, &rows[i])); da != wa || h.Digest(&rows[i]) != wa {
				t.Fatalf("rows %d, %d: first digest %x, want %x", i, j, da[:8], wa[:8])
			}
			if wb := sha256.Sum256(AppendEncoding(nil, &rows[j])); db != wb {
				t.Fatalf("rows %d, %d: second digest %x, want %x", i, j, db[:8], wb[:8])
			}
			if cap(h2.buf) > 1<<20 || cap(h2.buf2) > 1<<20 {
				t.Fatalf("a Hasher kept a buffer of %d and %d bytes", cap(h2.buf), cap(h2.buf2))
			}
		}
	}
	a, b := rowDigests(&rows[0], &rows[5])
	if a != RowDigest(&rows[0]) || b != RowDigest(&rows[5]) {
		t.Fatal("rowDigests disagrees with RowDigest")
	}
}

func TestHasherDigest2NoAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("instrumented builds allocate")
	}
	rows := randomRows(rand.New(rand.NewPCG(35, 36)), 2)
	var h Hasher
	h.Digest2(&rows[0], &rows[1])
	if a := testing.AllocsPerRun(100, func() { h.Digest2(&rows[0], &rows[1]) }); a != 0 {
		t.Errorf("Hasher.Digest2: %v allocations per call", a)
	}
	if a := testing.AllocsPerRun(100, func() { rowDigests(&rows[0], &rows[1]) }); a != 0 {
		t.Errorf("rowDigests: %v allocations per call", a)
	}
}
