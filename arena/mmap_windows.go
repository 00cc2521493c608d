//go:build windows

package arena

import (
	"os"

	mmap "github.com/edsrzf/mmap-go"
)

// On Windows trees are mapped with edsrzf/mmap-go (VirtualAlloc-backed file
// mappings), so they stay outside the Go heap there too.

// osMap maps n bytes of anonymous, zeroed memory backed by the paging file.
func osMap(n int) ([]byte, error) {
	m, err := mmap.MapRegion(nil, n, mmap.RDWR, mmap.ANON, 0)
	if err != nil {
		return nil, err
	}
	return []byte(m), nil
}

func osUnmap(b []byte) error {
	m := mmap.MMap(b)
	return m.Unmap()
}

// osAdviseHuge does nothing here: Windows' large pages need a privilege and
// are not transparent.
func osAdviseHuge([]byte) error { return nil }

// osMapFile maps n bytes of f at off, shared with the file. Windows wants
// off to be a multiple of the allocation granularity (64 KiB); the engine
// maps tree files from offset 0.
func osMapFile(f *os.File, off int64, n int, writable bool) ([]byte, error) {
	prot := mmap.RDONLY
	if writable {
		prot = mmap.RDWR
	}
	m, err := mmap.MapRegion(f, n, prot, 0, off)
	if err != nil {
		return nil, err
	}
	return []byte(m), nil
}

func osSync(b []byte) error {
	m := mmap.MMap(b)
	return m.Flush()
}
