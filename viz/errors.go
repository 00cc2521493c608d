package viz

import "errors"

// ErrBadRing means a Ring that cannot be drawn as given: a range that is
// empty, wraps, lies outside the ring or is out of order, or a negative
// count. Errors that wrap it name the offending field.
var ErrBadRing = errors.New("viz: bad ring")
