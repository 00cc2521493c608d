// Package atomicfile replaces a file so that a reader, or a crash, sees the
// old file or the new one, never half of one: the new bytes go to a
// temporary file beside the target, are fsynced, renamed over it, and the
// directory is fsynced.
//
// Temporary files are named ".NAME.grove-tmp-RANDOM" (docs/FORMAT.md), so a
// person can tell what left them. A process killed mid-write leaves one
// behind; the next Create for the same target removes it, but only once it
// is sure no live writer holds it: a writer keeps an exclusive lock on its
// temporary file (flock on Unix) from creation to rename, and a stale file is
// one whose lock can be taken. Where there is no such lock, only temporary
// files older than a day are removed.
package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// tempInfix marks grove's temporary files: ".NAME" + tempInfix + random hex.
const tempInfix = ".grove-tmp-"

// staleAge is how old a temporary file must be before it is removed on a
// system without file locks.
const staleAge = 24 * time.Hour

// File is a temporary file that replaces its target on Commit. Write to it
// (it is an *os.File), then Commit or Abort; after either, it is closed.
type File struct {
	*os.File
	target string
	done   bool
}

// Create removes stale temporary files of path, then creates a new one
// beside it, locked for as long as it lives. The new file takes path's
// permission bits if path exists, else perm less the umask.
func Create(path string, perm fs.FileMode) (*File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if base == "" {
		return nil, fmt.Errorf("%s: not a file name", path)
	}
	if _, err := CleanStale(path); err != nil {
		return nil, err
	}
	keep := fs.FileMode(0)
	if st, err := os.Stat(path); err == nil {
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%s: exists and is not a regular file (%s)", path, st.Mode().Type())
		}
		keep = st.Mode().Perm()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		name := filepath.Join(dir, "."+base+tempInfix+randomHex())
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) && attempt < 10 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: creating a temporary file beside it: %w", path, unwrapPath(err))
		}
		// Another run's CleanStale may have taken the file between its
		// creation and this lock: lockWriter then says so, and a new name
		// is tried.
		ok, err := lockWriter(f)
		if err != nil {
			f.Close()
			os.Remove(name)
			return nil, fmt.Errorf("%s: locking %s: %w", path, name, err)
		}
		if !ok {
			f.Close()
			continue
		}
		if keep != 0 {
			if err := f.Chmod(keep); err != nil {
				f.Close()
				os.Remove(name)
				return nil, fmt.Errorf("%s: %w", path, err)
			}
		}
		return &File{File: f, target: path}, nil
	}
}

// HandOff releases the file's writer lock for a caller that takes its own
// exclusive lock on it at once — engine.OpenWritable's, which a second lock
// from this one would refuse — and which then keeps CleanStale away as this
// one did. In the moment between, another process's CleanStale may remove
// the file; the caller's open or Commit then fails, and the target is left
// as it was.
func (f *File) HandOff() error { return unlockWriter(f.File) }

// Target returns the path the file replaces on Commit.
func (f *File) Target() string { return f.target }

// Commit fsyncs the file, closes it, renames it over its target and fsyncs
// the directory.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("%s: already committed or aborted", f.target)
	}
	f.done = true
	name := f.Name()
	if err := f.Sync(); err != nil {
		f.File.Close()
		os.Remove(name)
		return fmt.Errorf("%s: %w", f.target, err)
	}
	// Renaming before the close keeps the lock until the name is gone, so
	// no CleanStale can mistake a finished file for a stale one.
	if err := os.Rename(name, f.target); err != nil {
		f.File.Close()
		os.Remove(name)
		return fmt.Errorf("%s: %w", f.target, unwrapPath(err))
	}
	if err := f.File.Close(); err != nil {
		return fmt.Errorf("%s: %w", f.target, err)
	}
	return SyncDir(filepath.Dir(f.target))
}

// CommitNew is Commit for a target that must not exist: it links the file
// to its target, which fails with an error wrapping fs.ErrExist if the target
// exists (a rename would replace it), then removes the temporary name. On a
// file system without hard links it checks for the target, then renames.
func (f *File) CommitNew() error {
	if f.done {
		return fmt.Errorf("%s: already committed or aborted", f.target)
	}
	if err := f.Sync(); err != nil {
		f.Abort()
		return fmt.Errorf("%s: %w", f.target, err)
	}
	switch err := os.Link(f.Name(), f.target); {
	case err == nil:
		f.Abort() // the temporary name only
		return SyncDir(filepath.Dir(f.target))
	case errors.Is(err, fs.ErrExist):
		f.Abort()
		return fmt.Errorf("%s: %w", f.target, fs.ErrExist)
	}
	if _, err := os.Lstat(f.target); err == nil {
		f.Abort()
		return fmt.Errorf("%s: %w", f.target, fs.ErrExist)
	}
	return f.Commit()
}

// Abort closes and removes the file, leaving the target as it was. It may
// be deferred: after Commit it does nothing.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	name := f.Name()
	os.Remove(name)
	f.File.Close()
}

// Write replaces path with what write writes, as Create and Commit do.
func Write(path string, perm fs.FileMode, write func(f *os.File) error) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := write(f.File); err != nil {
		return err
	}
	return f.Commit()
}

// CleanStale removes the temporary files a killed writer left beside path
// and returns their names. Files a live writer holds are left alone.
func CleanStale(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // nothing to clean; Create reports the directory
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	prefix := "." + base + tempInfix
	var removed []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), prefix) || !e.Type().IsRegular() {
			continue
		}
		name := filepath.Join(dir, e.Name())
		ok, err := removeIfStale(name)
		if err != nil {
			return removed, fmt.Errorf("%s: removing stale %s: %w", path, name, err)
		}
		if ok {
			removed = append(removed, name)
		}
	}
	return removed, nil
}

// IsTemp reports whether name (a base name) is one of grove's temporary
// files.
func IsTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, tempInfix)
}

// SyncDir fsyncs a directory, so a rename in it survives a crash.
func SyncDir(dir string) error {
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

func randomHex() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// unwrapPath drops an os error's own path, the temporary name, so messages
// name the file the caller asked for.
func unwrapPath(err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &le):
		return le.Err
	}
	return err
}
