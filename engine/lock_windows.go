//go:build windows

package engine

import (
	"os"

	"golang.org/x/sys/windows"
)

// lockWriter takes an exclusive, non-blocking lock on the whole of a tree
// file opened writable.
func lockWriter(f *os.File) error {
	var ol windows.Overlapped
	return windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, ^uint32(0), ^uint32(0), &ol)
}
