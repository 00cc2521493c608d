package arena

import "errors"

// Sentinel errors. Every error arena returns wraps exactly one of these with
// %w, so callers branch with errors.Is and still get a message that says what
// was asked for.
var (
	// ErrBudgetExceeded means a reservation did not fit in what was left of a
	// Budget. Nothing was reserved and nothing was mapped.
	ErrBudgetExceeded = errors.New("arena: budget exceeded")

	// ErrMap means the operating system refused to map or unmap memory. The
	// OS error is wrapped as well, so errors.Is(err, syscall.ENOMEM) works.
	ErrMap = errors.New("arena: mapping failed")

	// ErrInvalidSize means a size was negative, zero where that makes no
	// sense, too large to represent, or text that is not a size.
	ErrInvalidSize = errors.New("arena: invalid size")

	// ErrNilBudget means Map was called without a Budget. Every mapping must
	// be charged somewhere, so there is no unbudgeted mode.
	ErrNilBudget = errors.New("arena: nil budget")
)
