package repair

import (
	"time"

	grovev1 "github.com/antientropy/grove/proto/grove/v1"
)

// Hooks for the tests of package repair_test. Those tests build their
// replicas with package rowstore, which imports this package, so they cannot
// live inside it; what they need of its internals is exported here, for
// tests only.

// ParamsOf lets a test play a hostile initiator's Hello.
func ParamsOf(s Shape) *grovev1.Params { return paramsOf(s) }

// NewBitmap lets a test build a differ bitmap as an initiator would.
func NewBitmap(n int) []byte { return newBitmap(n) }

// SetBit lets a test mark a node in a differ bitmap.
func SetBit(b []byte, i int) { setBit(b, i) }

// SetMaxMessageBytes lets a test shrink a running responder's message limit.
func SetMaxMessageBytes(r *Responder, n int) { r.opts.MaxMessageBytes = n }

// SetIdleTimeout lets a test shorten a running responder's idle timeout.
func SetIdleTimeout(r *Responder, d time.Duration) { r.opts.IdleTimeout = d }

// ShapeOf lets a test find keys in the leaves of a responder's replica.
func ShapeOf(r *Responder) Shape { return r.replica.Shape() }
