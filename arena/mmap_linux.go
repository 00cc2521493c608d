package arena

import "golang.org/x/sys/unix"

// osMap maps n bytes of anonymous, private, zeroed memory. MAP_NORESERVE
// leaves admission to the Budget instead of the kernel's overcommit
// heuristic, which would otherwise count untouched tree pages against swap.
//
// No madvise is applied. MADV_HUGEPAGE was considered for the TLB benefit on
// large trees, but with the default THP defrag setting it makes faults in
// advised regions stall on direct compaction, a latency risk a storage node
// should opt into rather than inherit.
func osMap(n int) ([]byte, error) {
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
}

func osUnmap(b []byte) error { return unix.Munmap(b) }
