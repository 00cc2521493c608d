package grovepebble

import "errors"

// Sentinel errors. Errors from this package wrap one of them (or a sentinel
// of the engine, token, arena or Pebble packages) with the details;
// callers test them with errors.Is.
var (
	// ErrClosed is returned by every method of a Node after Close.
	ErrClosed = errors.New("grovepebble: node closed")
	// ErrCorrupt means a stored row or metadata record that does not decode,
	// or a row stored under a token that is not its key's. The error names
	// the key.
	ErrCorrupt = errors.New("grovepebble: corrupt record")
	// ErrIncompatible means a database written with another layout version
	// or partitioner than the Node was opened with.
	ErrIncompatible = errors.New("grovepebble: database incompatible with the options")
	// ErrOutOfRange means a row whose token lies outside the Node's range:
	// a write of one is refused, and a stored one fails Open.
	ErrOutOfRange = errors.New("grovepebble: token outside the node's range")
	// ErrKeyTooLarge means a row key longer than repair.MaxKeyBytes: a row
	// the repair protocol could never carry is not stored.
	ErrKeyTooLarge = errors.New("grovepebble: key too large")
	// ErrInconsistent means the tree could not be updated after a batch
	// committed, so tree and data may disagree; the Node refuses further
	// writes and views until it is reopened (which rebuilds the tree).
	ErrInconsistent = errors.New("grovepebble: tree and data may disagree; reopen the node")
)
