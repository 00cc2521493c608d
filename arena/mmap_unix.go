//go:build unix && !linux

package arena

import (
	"os"

	"golang.org/x/sys/unix"
)

// osMap maps n bytes of anonymous, private, zeroed memory. MAP_NORESERVE is
// left out: outside Linux it is ignored or absent, so it would only suggest
// a guarantee that does not hold.
func osMap(n int) ([]byte, error) {
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
}

func osUnmap(b []byte) error { return unix.Munmap(b) }

// osAdviseHuge does nothing here: transparent huge pages are a Linux notion.
func osAdviseHuge([]byte) error { return nil }

// osMapFile maps n bytes of f at off, shared with the file.
func osMapFile(f *os.File, off int64, n int, writable bool) ([]byte, error) {
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
	}
	return unix.Mmap(int(f.Fd()), off, n, prot, unix.MAP_SHARED)
}

func osSync(b []byte) error { return unix.Msync(b, unix.MS_SYNC) }
