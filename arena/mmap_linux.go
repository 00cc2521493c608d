package arena

import "golang.org/x/sys/unix"

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
