//go:build !unix

package atomicfile

import (
	"errors"
	"os"
	"time"
)

// syncDir does nothing: Windows cannot fsync a directory handle, and its
// file system makes a rename durable itself.
func syncDir(string) error { return nil }

// lockWriter takes no lock: without one, CleanStale removes only files
// older than staleAge, which no live writer keeps.
func lockWriter(f *os.File) (bool, error) { return true, nil }

// removeIfStale removes name if it is older than staleAge. Windows also
// refuses to remove a file another process holds open.
func removeIfStale(name string) (bool, error) {
	st, err := os.Stat(name)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if time.Since(st.ModTime()) < staleAge {
		return false, nil
	}
	if err := os.Remove(name); err != nil {
		return false, nil // held open elsewhere: not stale after all
	}
	return true, nil
}

func unlockWriter(*os.File) error { return nil }
