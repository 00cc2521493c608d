package token

import "errors"

// ErrBadRange reports a range that is empty or wraps: this package needs
// Lo < Hi. Errors that wrap it name the offending bounds.
var ErrBadRange = errors.New("token: bad range")

// ErrUnknownPartitioner reports a partitioner id or name that this package
// does not know, e.g. one read from a file written by a newer version.
var ErrUnknownPartitioner = errors.New("token: unknown partitioner")
