//go:build unix

package atomicfile

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// lockWriter takes the writer's lock on its new temporary file, waiting if
// a CleanStale holds it, and reports whether the file is still there under
// its name: a cleaner that held the lock first has removed it.
func lockWriter(f *os.File) (bool, error) {
	if err := flock(f, unix.LOCK_EX); err != nil {
		return false, err
	}
	return sameFile(f)
}

// removeIfStale removes name if no writer holds its lock.
func removeIfStale(name string) (bool, error) {
	f, err := os.OpenFile(name, os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // its writer renamed or removed it meanwhile
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return false, nil // a live writer
		}
		return false, err
	}
	// Between the open and the lock its writer may have renamed it and a
	// new file taken the name; remove only the file that was locked.
	if same, err := sameFile(f); err != nil || !same {
		return false, err
	}
	if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	return true, nil
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// sameFile reports whether f is still the file its name points to.
func sameFile(f *os.File) (bool, error) {
	a, err := f.Stat()
	if err != nil {
		return false, err
	}
	b, err := os.Lstat(f.Name())
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(a, b), nil
}

func unlockWriter(f *os.File) error { return flock(f, unix.LOCK_UN) }
