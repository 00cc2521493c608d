//go:build unix && !linux

package arena

import "golang.org/x/sys/unix"

// osMap maps n bytes of anonymous, private, zeroed memory. MAP_NORESERVE is
// left out: outside Linux it is ignored or absent, so it would only suggest
// a guarantee that does not hold.
func osMap(n int) ([]byte, error) {
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
}

func osUnmap(b []byte) error { return unix.Munmap(b) }

// osAdviseHuge does nothing here: transparent huge pages are a Linux notion.
func osAdviseHuge([]byte) error { return nil }
