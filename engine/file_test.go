package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
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
		{"flipped last node byte", func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }, ErrCorrupt},
		{"rows 2^62", func(b []byte) []byte { binary.LittleEndian.PutUint64(b[hdrRows:], 1<<62); rehdr(b); return b }, ErrCorrupt},
		{"negative rows", func(b []byte) []byte { binary.LittleEndian.PutUint64(b[hdrRows:], 1<<63); rehdr(b); return b }, ErrCorrupt},
		{"reversed range", func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[hdrLo:], 5)
			binary.LittleEndian.PutUint64(b[hdrHi:], 1<<63|5) // negative
			rehdr(b)
			return b
		}, ErrCorrupt},
		{"unknown flag", func(b []byte) []byte { b[hdrFlags] = 4; rehdr(b); return b }, ErrCorrupt},
		{"reserved byte", func(b []byte) []byte { b[hdrUsed+5] = 1; rehdr(b); return b }, ErrCorrupt},
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
			if err == nil {
				// Open reads only the header; damage in the nodes, or a
				// header root that does not match them, is Verify's to find.
				err = tr.Verify(context.Background())
				tr.Close()
			}
			if !errors.Is(err, tc.want) {
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

// TestWritableDirtyFlag: a writable tree marks its file dirty before its
// first change, Sync makes it clean and verifiable, and a tree closed
// without Sync is reported dirty by the next Open.
func TestWritableDirtyFlag(t *testing.T) {
	ctx := context.Background()
	rows := randomRows(rand.New(rand.NewPCG(51, 52)), 2000)
	budget := newBudget()
	full := token.Murmur3{}.Range()
	path := filepath.Join(t.TempDir(), "live.tree")
	if err := build(t, budget, rows[:1000], full, 8, 2).Save(path); err != nil {
		t.Fatal(err)
	}
	want := build(t, budget, rows, full, 8, 1)
	wantRoot, _ := want.Root()
	base := budget.Used() // the two built trees

	w, err := OpenWritable(path, budget)
	if err != nil {
		t.Fatal(err)
	}
	if w.FileDirty() {
		t.Fatal("a freshly saved file opens dirty")
	}
	if _, err := w.AddFrom(ctx, &sliceSource{rows: rows[1000:]}); err != nil {
		t.Fatal(err)
	}
	if !w.FileDirty() {
		t.Fatal("a changed writable tree is not dirty")
	}
	// What a crash now would leave: the flag is already on disk.
	r, err := Open(path, budget)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Dirty() {
		t.Fatal("the dirty flag did not reach the file before the nodes changed")
	}
	if _, err := r.Root(); !errors.Is(err, ErrNotHashed) {
		t.Fatalf("root of a dirty file: %v, want ErrNotHashed", err)
	}
	if err := r.Verify(ctx); !errors.Is(err, ErrNotHashed) {
		t.Fatalf("Verify of a dirty file: %v, want ErrNotHashed", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close of a read-only file tree: %v", err)
	}
	if err := w.Checkpoint(); !errors.Is(err, ErrNotHashed) {
		t.Fatalf("Sync before Hash: %v", err)
	}
	if err := w.Hash(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if w.FileDirty() {
		t.Fatal("dirty after Sync")
	}
	w.Close()

	r, err = Open(path, budget)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Dirty() || r.Rows() != int64(len(rows)) {
		t.Fatalf("after Sync: dirty %v, rows %d", r.Dirty(), r.Rows())
	}
	if err := r.Verify(ctx); err != nil {
		t.Fatalf("Verify after Sync: %v", err)
	}
	if got, _ := r.Root(); got != wantRoot {
		t.Fatal("file updated in place differs from a tree built from all the rows")
	}
	// A read-only tree cannot be written: View has no method that writes
	// (TestViewsHaveNoWriters).

	// A writable tree closed without Sync stays dirty; Hash and Sync repair it.
	w, _ = OpenWritable(path, budget)
	w.Add(&Row{Key: []byte("late")})
	w.Close()
	w, err = OpenWritable(path, budget)
	if err != nil || !w.FileDirty() {
		t.Fatalf("reopened after an unsynced close: dirty %v, %v", w.FileDirty(), err)
	}
	if err := w.Hash(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if err := w.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if b := budget.Used(); b != base+r.region.Reserved() {
		t.Fatalf("budget holds %d, want %d: the two built trees and r", b, base+r.region.Reserved())
	}
}

// BenchmarkOpen: opening a depth-20 tree maps it and reads one page.
func BenchmarkOpen(b *testing.B) {
	budget := arena.NewBudget(1 << 30)
	tr, err := New(Options{Depth: 20, Budget: budget})
	if err != nil {
		b.Fatal(err)
	}
	tr.Hash(context.Background())
	path := filepath.Join(b.TempDir(), "big.tree")
	if err := tr.Save(path); err != nil {
		b.Fatal(err)
	}
	tr.Close()
	b.ResetTimer()
	for range b.N {
		t, err := Open(path, budget)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := t.Root(); err != nil {
			b.Fatal(err)
		}
		t.Close()
	}
}

// TestViewsHaveNoWriters: a read-only or frozen tree refuses every write by
// having no method that writes, where it once answered ErrReadOnly at run
// time.
func TestViewsHaveNoWriters(t *testing.T) {
	writers := []string{"Add", "AddDigest", "AddFrom", "Load", "Update", "UpdateDigest", "Hash", "Rehash", "Checkpoint"}
	for _, typ := range []reflect.Type{reflect.TypeFor[*View](), reflect.TypeFor[*LeafView]()} {
		for _, m := range writers {
			if _, ok := typ.MethodByName(m); ok {
				t.Errorf("%s has a method %s", typ, m)
			}
		}
	}
	// The live tree does have them: the list names real methods.
	for _, m := range writers {
		if _, ok := reflect.TypeFor[*Tree]().MethodByName(m); !ok {
			t.Errorf("*Tree has no method %s", m)
		}
	}
}

// TestSaveStaged: a staged save leaves the path as it was until Commit,
// which then holds the bytes Save writes, even though the tree was changed
// and closed after staging; Abort leaves the path untouched and no
// temporary file behind; an unhashed tree is refused.
func TestSaveStaged(t *testing.T) {
	rnd := rand.New(rand.NewPCG(23, 24))
	rng := testRanges[1]
	var rows []Row
	for _, r := range randomRows(rnd, 2000) {
		if rng.Contains(token.Murmur3{}.Token(r.Key)) {
			rows = append(rows, r)
		}
	}
	budget := newBudget()
	dir := t.TempDir()
	tr := build(t, budget, rows, rng, 8, 2)
	want := filepath.Join(dir, "saved.tree")
	if err := tr.Save(want); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "staged.tree")
	if err := os.WriteFile(path, []byte("before"), 0o644); err != nil {
		t.Fatal(err)
	}
	staged, err := tr.SaveStaged(path)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "before" {
		t.Fatal("the path changed before Commit")
	}
	// The tree moves on and closes; the staged bytes are those of the
	// moment of staging.
	if err := tr.Update(nil, &Row{Key: rows[0].Key, Value: []byte("later"), TS: rows[0].TS + 1}); err != nil {
		t.Fatal(err)
	}
	tr.Close()
	if err := staged.Commit(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	ref, _ := os.ReadFile(want)
	if !reflect.DeepEqual(got, ref) {
		t.Fatalf("committed file: %d bytes, unlike Save's %d", len(got), len(ref))
	}

	other := build(t, budget, rows[:10], rng, 8, 2)
	defer other.Close()
	staged, err = other.SaveStaged(path)
	if err != nil {
		t.Fatal(err)
	}
	staged.Abort()
	if got2, _ := os.ReadFile(path); !reflect.DeepEqual(got2, ref) {
		t.Fatal("Abort changed the path")
	}
	if names, _ := filepath.Glob(filepath.Join(dir, ".*")); len(names) != 0 {
		t.Fatalf("Abort left %v", names)
	}
	if err := other.Update(nil, &rows[20]); err != nil {
		t.Fatal(err)
	}
	if _, err := other.SaveStaged(path); !errors.Is(err, ErrNotHashed) {
		t.Fatalf("staging an unhashed tree: %v, want ErrNotHashed", err)
	}
}
