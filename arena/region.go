package arena

import (
	"fmt"
	"math"
	"os"

	"github.com/antientropy/grove/internal/invariants"
)

// The mapping primitives are variables only so that tests can observe
// whether Map called them; nothing else assigns them.
var (
	mapMemory   = osMap
	unmapMemory = osUnmap
)

// Region is zeroed memory outside the Go heap, charged to a Budget until
// Close. It is not safe for concurrent use: the owner must make sure no
// goroutine still uses Bytes when it calls Close, since the memory is gone
// afterwards. Forgetting Close leaks both the memory and the reservation;
// there is deliberately no finalizer, because a slice from Bytes can outlive
// the Region and a finalizer would unmap memory still in use.
type Region struct {
	budget   *Budget
	mem      []byte // the whole page-rounded mapping, as the OS returned it
	size     int
	reserved int64
	file     bool // shared with a file: Sync flushes it, huge pages do not apply
	closed   bool // Close unmapped it (a zero Region was never mapped)
}

// Map reserves size bytes, rounded up to b's page size, against b and only
// then maps that much zeroed memory, so a request that does not fit never
// touches the OS. If mapping fails the reservation is released and the error
// wraps ErrMap, names the size and wraps the OS error. A nil b wraps
// ErrNilBudget; size <= 0, or too large to round up, wraps ErrInvalidSize.
func Map(b *Budget, size int) (*Region, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: map %d B", ErrNilBudget, size)
	}
	page := b.PageSize()
	if size <= 0 || size > math.MaxInt-(page-1) {
		return nil, fmt.Errorf("%w: map %d B", ErrInvalidSize, size)
	}
	rounded := (size + page - 1) / page * page
	if err := b.Reserve(int64(rounded)); err != nil {
		return nil, err
	}
	mem, err := mapMemory(rounded)
	if err != nil {
		b.Release(int64(rounded))
		return nil, fmt.Errorf("%w: %s (%d B): %w", ErrMap, FormatBytes(int64(rounded)), rounded, err)
	}
	return &Region{budget: b, mem: mem, size: size, reserved: int64(rounded)}, nil
}

// MapFile maps size bytes of f, starting at offset (a multiple of b's page
// size; callers that need a file's middle map from 0 and slice), shared with the file: read-only, or read-write when writable, so
// that stores reach the file (see Sync). Like Map, it reserves the
// page-rounded size against b before mapping anything: a file is never a
// way around the budget. Nothing is read: pages come in as they are touched,
// so opening a large tree does not wait for the whole file.
//
// The caller checks the file is at least offset+size bytes long first, and
// must not let it be truncated while mapped: touching a page past the end of
// the file faults (SIGBUS), as with any mapped file (bbolt has the same
// rule).
func MapFile(b *Budget, f *os.File, offset int64, size int, writable bool) (*Region, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: map %d B of %s", ErrNilBudget, size, f.Name())
	}
	page := b.PageSize()
	if size <= 0 || size > math.MaxInt-(page-1) || offset < 0 || offset%int64(page) != 0 {
		return nil, fmt.Errorf("%w: map %d B at offset %d of %s", ErrInvalidSize, size, offset, f.Name())
	}
	rounded := (size + page - 1) / page * page
	if err := b.Reserve(int64(rounded)); err != nil {
		return nil, err
	}
	mem, err := osMapFile(f, offset, rounded, writable)
	if err != nil {
		b.Release(int64(rounded))
		return nil, fmt.Errorf("%w: %s (%d B) of %s: %w", ErrMap, FormatBytes(int64(rounded)), rounded, f.Name(), err)
	}
	return &Region{budget: b, mem: mem, size: size, reserved: int64(rounded), file: true}, nil
}

// Sync flushes a writable file mapping's stores to the file and waits for
// them (msync MS_SYNC). It does nothing for anonymous regions.
func (r *Region) Sync() error {
	if r.mem == nil || !r.file {
		return nil
	}
	if err := osSync(r.mem); err != nil {
		return fmt.Errorf("%w: msync %s: %w", ErrMap, FormatBytes(r.reserved), err)
	}
	return nil
}

// HugePageSize is the size of the huge pages AdviseHugePages asks for on
// x86-64 and most arm64 kernels; regions smaller than it are not advised.
const HugePageSize = 2 << 20

// AdviseHugePages asks the OS to back the region with transparent huge pages
// (Linux madvise MADV_HUGEPAGE; elsewhere it does nothing). A tree walked at
// random — leaves updated by random rows, paths read by a diff — touches a
// new 4 KiB page at nearly every step and misses the TLB; on 2 MiB pages a
// depth-20 tree is 32 TLB entries. The cost: with the kernel's THP defrag
// set to "madvise", the first touch of an advised page may wait for memory
// compaction, so a latency-critical caller may prefer not to advise.
// Regions under HugePageSize are left alone. It is advice: the kernel may
// ignore it, and a failure changes nothing but speed.
func (r *Region) AdviseHugePages() error {
	if r.mem == nil || r.file || len(r.mem) < HugePageSize {
		return nil
	}
	if err := osAdviseHuge(r.mem); err != nil {
		return fmt.Errorf("%w: madvise huge pages on %s: %w", ErrMap, FormatBytes(int64(len(r.mem))), err)
	}
	return nil
}

// Bytes returns the region's memory: len and cap are the requested size, so
// an append cannot spill into the page-rounding slack. It returns nil after
// Close (in builds with the invariants tag it panics). The slice must not
// be used after Close; keep it no longer than the call that needs it.
func (r *Region) Bytes() []byte {
	if r.mem == nil {
		if invariants.Enabled {
			panic("arena: Bytes of a closed Region")
		}
		return nil
	}
	return r.mem[:r.size:r.size]
}

// Len reports the requested size, or 0 after Close so that it always equals
// len(r.Bytes()).
func (r *Region) Len() int {
	if r.mem == nil {
		return 0
	}
	return r.size
}

// Reserved reports the bytes charged to the budget, which is the requested
// size rounded up to the page size, or 0 after Close.
func (r *Region) Reserved() int64 {
	if r.mem == nil {
		return 0
	}
	return r.reserved
}

// Close unmaps the memory and returns its reservation to the budget. Calling
// it again does nothing and returns nil, so owners can Close from both an
// error path and a deferred cleanup (in builds with the invariants tag it
// panics: grove's own code closes each region once). If the OS refuses to unmap, the error
// wraps ErrMap and the region stays open (and charged), because the memory
// is in fact still mapped.
func (r *Region) Close() error {
	if r.mem == nil {
		if invariants.Enabled && r.closed {
			panic("arena: Region closed twice")
		}
		return nil
	}
	if err := unmapMemory(r.mem); err != nil {
		return fmt.Errorf("%w: unmap %s (%d B): %w", ErrMap, FormatBytes(r.reserved), r.reserved, err)
	}
	r.mem = nil
	r.closed = true
	r.budget.Release(r.reserved)
	return nil
}
