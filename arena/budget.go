package arena

import (
	"fmt"
	"os"
	"sync"

	"github.com/antientropy/grove/internal/invariants"
)

// Budget bounds the bytes that Regions may hold, shared by as many trees as
// the caller likes. It is safe for concurrent use. Budgets are plain values
// with no process-wide state, so tests and tenants can each have their own.
type Budget struct {
	mu    sync.Mutex
	limit int64
	used  int64
	peak  int64
	// page is the size mappings are rounded to and charged in: the OS's,
	// or a larger power of two a test asks for (NewBudgetPages).
	page int
}

// NewBudget returns a Budget of limit bytes, charged in the OS's pages. A
// limit of zero or less is a budget with no capacity, rather than a panic,
// so that a misconfigured limit surfaces as an ErrBudgetExceeded that names
// it at the first reservation.
func NewBudget(limit int64) *Budget {
	return &Budget{limit: max(limit, 0), page: os.Getpagesize()}
}

// NewBudgetPages returns a Budget whose mappings are rounded to, and file
// mappings aligned on, pages of page bytes — a power of two no smaller than
// the OS's page. Mapping code that is correct on this machine's pages is then
// also tested against the 16 KiB and 64 KiB pages of other kernels (Apple
// silicon, some arm64 Linux). A page that is not such a power of two wraps
// ErrInvalidSize.
func NewBudgetPages(limit int64, page int) (*Budget, error) {
	if osPage := os.Getpagesize(); page < osPage || page&(page-1) != 0 {
		return nil, fmt.Errorf("%w: page size %d (want a power of two of at least %d)", ErrInvalidSize, page, osPage)
	}
	return &Budget{limit: max(limit, 0), page: page}, nil
}

// PageSize is the size Map and MapFile round mappings to and charge in.
func (b *Budget) PageSize() int {
	if b.page == 0 { // a Budget not made by NewBudget
		return os.Getpagesize()
	}
	return b.page
}

// Reserve charges n bytes to b, all or nothing. When n does not fit, b is
// unchanged and the error wraps ErrBudgetExceeded and states the bytes asked,
// the bytes left and the limit, because "out of budget" alone does not tell
// an operator whether to raise the limit or shrink the tree. A negative n
// wraps ErrInvalidSize; zero always succeeds.
func (b *Budget) Reserve(n int64) error {
	if n < 0 {
		return fmt.Errorf("%w: reserve %d B", ErrInvalidSize, n)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	left := b.limit - b.used
	if n > left { // compared this way round so used+n cannot overflow
		return fmt.Errorf("%w: asked %s (%d B), %s (%d B) left of %s",
			ErrBudgetExceeded, FormatBytes(n), n, FormatBytes(left), left, FormatBytes(b.limit))
	}
	b.used += n
	b.peak = max(b.peak, b.used)
	return nil
}

// Release returns n bytes reserved earlier. Releasing more than is in use is
// a programming error (a double release or a mismatched size); Used is
// clamped at zero rather than going negative, so that one bug cannot inflate
// the capacity everyone else sees — and in builds with the invariants tag it
// panics, so tests find the bug. Non-positive n does nothing.
func (b *Budget) Release(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	over := n > b.used
	used := b.used
	b.used = max(b.used-n, 0)
	b.mu.Unlock()
	if invariants.Enabled && over {
		panic(fmt.Sprintf("arena: Release(%d) with only %d in use: a double release or a mismatched size", n, used))
	}
}

// Used reports the bytes currently reserved.
func (b *Budget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Peak reports the most bytes ever reserved at once, which is what a limit
// has to be sized for.
func (b *Budget) Peak() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak
}

// Limit reports the capacity given to NewBudget, with negative limits
// reported as zero.
func (b *Budget) Limit() int64 { return b.limit }

// Available reports the bytes a Reserve could still obtain. Under concurrent
// use it is only a snapshot: call Reserve to actually claim them.
func (b *Budget) Available() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limit - b.used
}

// String summarises b for logs and the CLI, e.g.
// "used 12.0 MiB / limit 64.0 MiB (peak 20.0 MiB)".
func (b *Budget) String() string {
	b.mu.Lock()
	used, limit, peak := b.used, b.limit, b.peak
	b.mu.Unlock()
	return fmt.Sprintf("used %s / limit %s (peak %s)", FormatBytes(used), FormatBytes(limit), FormatBytes(peak))
}
