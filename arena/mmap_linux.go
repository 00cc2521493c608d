package arena

import (
	"os"

	"golang.org/x/sys/unix"
)

// osMap maps n bytes of anonymous, private, zeroed memory. MAP_NORESERVE
// leaves admission to the Budget instead of the kernel's overcommit
// heuristic, which would otherwise count untouched tree pages against swap.
//
// Huge pages are a separate, explicit step (Region.AdviseHugePages).
func osMap(n int) ([]byte, error) {
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
}

func osUnmap(b []byte) error { return unix.Munmap(b) }

// osAdviseHuge asks for transparent huge pages on b. With THP in "madvise"
// mode (the common default) only advised regions get them.
func osAdviseHuge(b []byte) error { return unix.Madvise(b, unix.MADV_HUGEPAGE) }

// osMapFile maps n bytes of f at off, shared with the file.
func osMapFile(f *os.File, off int64, n int, writable bool) ([]byte, error) {
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
	}
	return unix.Mmap(int(f.Fd()), off, n, prot, unix.MAP_SHARED)
}

func osSync(b []byte) error { return unix.Msync(b, unix.MS_SYNC) }
