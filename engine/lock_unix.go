//go:build unix

package engine

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lockWriter takes an exclusive, non-blocking flock on a tree file opened
// writable. flock locks belong to the open file, so a second OpenWritable in
// the same process is refused as one in another process is.
func lockWriter(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
