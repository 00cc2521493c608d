package engine

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestWritableIsLocked: a tree file open writable cannot be opened writable
// again until it is closed (flock belongs to the open file, so a second
// Tree in this process is refused as another process would be); read-only
// opens are not blocked.
func TestWritableIsLocked(t *testing.T) {
	if runtime.GOOS == "plan9" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("no file locks")
	}
	b := newBudget()
	src, err := New(Options{Depth: 6, Budget: b})
	if err != nil {
		t.Fatal(err)
	}
	src.Hash(context.Background())
	path := filepath.Join(t.TempDir(), "t.tree")
	if err := src.Save(path); err != nil {
		t.Fatal(err)
	}
	src.Close()

	w, err := OpenWritable(path, b)
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenWritable(path, b)
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second writable open: %v, want ErrInUse naming %s", err, path)
	}
	ro, err := Open(path, b)
	if err != nil {
		t.Fatalf("read-only open beside a writer: %v", err)
	}
	ro.Close()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2, err := OpenWritable(path, b)
	if err != nil {
		t.Fatalf("writable open after the first closed: %v", err)
	}
	w2.Close()
	if b.Used() != 0 {
		t.Fatalf("%d bytes still charged after a refused open", b.Used())
	}
}
