//go:build unix || windows

package flock

import (
	"os"
	"path/filepath"
	"testing"
)

// TestTryLock: a second open of a locked file cannot lock it, in this
// process, until the first is closed.
func TestTryLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	a, b := open(), open()
	defer b.Close()
	if err := TryLock(a); err != nil {
		t.Fatal(err)
	}
	if err := TryLock(b); err == nil {
		t.Fatal("a second open locked a locked file")
	}
	a.Close()
	if err := TryLock(b); err != nil {
		t.Fatalf("after the holder closed: %v", err)
	}
}
