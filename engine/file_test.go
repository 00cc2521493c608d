package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/layout"
)

func TestSaveOpen(t *testing.T) {
	rnd := rand.New(rand.NewPCG(21, 22))
	rng := testRanges[1]
	var rows []Row
	for _, r := range randomRows(rnd, 3000) {
		if rng.Contains(token.Murmur3{}.Token(r.Key)) {
			rows = append(rows, r)
		}
	}
	budget := newBudget()
	tr := build(t, budget, rows, rng, 9, 2)
	for _, l := range []layout.Layout{layout.BFS{}, layout.Blocked{}} {
		blk, err := New(Options{Depth: 9, Range: rng, Layout: l, Budget: budget})
		if err != nil {
			t.Fatal(err)
		}
		defer blk.Close()
		blk.Load(context.Background(), &sliceSource{rows: rows}, 2)
		blk.Hash(context.Background())
		p := filepath.Join(t.TempDir(), l.Name()+".tree")
		if err := blk.Save(p); err != nil {
			t.Fatal(err)
		}
		back, err := Open(p, budget)
		if err != nil {
			t.Fatal(err)
		}
		x, _ := back.Root()
		y, _ := tr.Root()
		if back.Layout().Name() != l.Name() || x != y || back.Bytes() != LayoutBytes(l, 9) {
			t.Fatalf("%s: reopened as %s, root equal %v, %d bytes", l.Name(), back.Layout().Name(), x == y, back.Bytes())
		}
		back.Close()
	}
	path := filepath.Join(t.TempDir(), "a.tree")
	if err := tr.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := Open(path, budget)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if back.Depth() != 9 || back.Range() != rng || back.Rows() != int64(len(rows)) || back.Partitioner().Name() != "murmur3" {
		t.Fatalf("reopened: depth %d range %s rows %d partitioner %s", back.Depth(), back.Range(), back.Rows(), back.Partitioner().Name())
	}
	res, err := Diff(context.Background(), tr, back)
	if err != nil || !res.Identical() {
		t.Fatalf("reopened tree differs: %v %v", res, err)
	}
	// No temporary file is left beside the target.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries after Save, want 1", len(entries))
	}
}

// TestOpenCorrupt: a file that does not check out is refused with
// ErrCorrupt and nothing stays charged to the budget.
func TestOpenCorrupt(t *testing.T) {
	budget := newBudget()
	tr := build(t, budget, randomRows(rand.New(rand.NewPCG(23, 24)), 500), token.Murmur3{}.Range(), 6, 1)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tree")
	if err := tr.Save(good); err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	rehdr := func(b []byte) { // make the header checksum right again
		binary.LittleEndian.PutUint32(b[hdrCRC:], crc32c(b[:hdrCRC]))
	}
	tests := []struct {
		name   string
		mutate func([]byte) []byte
		want   error
	}{
		{"flipped node byte", func(b []byte) []byte { b[headerSize+100] ^= 1; return b }, ErrCorrupt},
		{"flipped header byte", func(b []byte) []byte { b[hdrRows] ^= 1; return b }, ErrCorrupt},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }, ErrCorrupt},
		{"longer", func(b []byte) []byte { return append(b, 0) }, ErrCorrupt},
		{"header only part", func(b []byte) []byte { return b[:100] }, ErrCorrupt},
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; rehdr(b); return b }, ErrCorrupt},
		{"depth 40", func(b []byte) []byte { b[hdrDepth] = 40; rehdr(b); return b }, ErrCorrupt},
		{"depth 20 claimed", func(b []byte) []byte { b[hdrDepth] = 20; rehdr(b); return b }, ErrCorrupt},
		{"unknown layout", func(b []byte) []byte { b[hdrLayout] = 99; rehdr(b); return b }, ErrCorrupt},
		{"unknown partitioner", func(b []byte) []byte { b[hdrPartitioner] = 99; rehdr(b); return b }, ErrCorrupt},
		{"empty range", func(b []byte) []byte { copy(b[hdrHi:], b[hdrLo:hdrLo+8]); rehdr(b); return b }, ErrCorrupt},
		{"root mismatch", func(b []byte) []byte { b[hdrRoot] ^= 1; rehdr(b); return b }, ErrCorrupt},
		{"future version", func(b []byte) []byte { b[hdrVersion] = 9; rehdr(b); return b }, ErrIncompatible},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "bad.tree")
			if err := os.WriteFile(p, tc.mutate(append([]byte(nil), orig...)), 0o644); err != nil {
				t.Fatal(err)
			}
			b := arena.NewBudget(1 << 30)
			tr, err := Open(p, b)
			if !errors.Is(err, tc.want) || tr != nil {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if b.Used() != 0 {
				t.Fatalf("refused file left %d bytes charged", b.Used())
			}
		})
	}
	// A file bigger than the budget is refused before it is read.
	if _, err := Open(good, arena.NewBudget(1024)); !errors.Is(err, arena.ErrBudgetExceeded) {
		t.Fatalf("tiny budget: %v", err)
	}
}
