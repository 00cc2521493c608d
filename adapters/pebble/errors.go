package grovepebble

import "errors"

// Sentinel errors. Errors from this package wrap one of them (or a sentinel
// of the engine, token, arena or Pebble packages) with the details;
// callers test them with errors.Is.
var (
	// ErrClosed is returned by every method of a Node after Close.
	ErrClosed = errors.New("grovepebble: node closed")
	// ErrCorrupt means a stored row or metadata record that does not decode,
	// or a row stored under a token that is not its key's (the error names
	// the key), or a Pebble file that fails its checksums or does not parse
	// (the error names the file — the sstable, or else the database
	// directory — and also matches pebble.ErrCorruption).
	ErrCorrupt = errors.New("grovepebble: corrupt record")
	// ErrChecksum means a stored row whose checksum does not match its
	// bytes, or that has none where every row was written with one: bytes
	// changed on disk, or written around the node. Such a row is never
	// served, hashed or sent to a peer: reads skip it, and the next scrub
	// moves it aside (ScrubReport.Quarantined) for a repair to replace.
	// Errors that match it match ErrCorrupt too.
	ErrChecksum = errors.New("grovepebble: row fails its checksum")
	// ErrNotExist means Open found no database: the path does not exist or
	// is an empty directory. Options.Create makes a new node there.
	ErrNotExist = errors.New("grovepebble: no database")
	// ErrNotNode means the path holds something that is not a grove node:
	// a file, a directory that is not a Pebble database, or a Pebble
	// database another application wrote (keys but no grove format
	// record). Open refuses it even with Options.Create, and writes nothing
	// into it.
	ErrNotNode = errors.New("grovepebble: not a grove node")
	// ErrLocked means the database is open already: in another process, or
	// in another Node of this one (Pebble locks its directory).
	ErrLocked = errors.New("grovepebble: database in use")
	// ErrFatal means Pebble hit an error it cannot continue from (a failed
	// WAL or MANIFEST write, a broken invariant) inside a call of the Node.
	// The Node then refuses every call; Close releases the tree but leaves
	// the Pebble database as it stopped, so the directory stays locked
	// until the process exits.
	ErrFatal = errors.New("grovepebble: pebble failed fatally")
	// ErrIncompatible means a database written with another layout version
	// or partitioner than the Node was opened with.
	ErrIncompatible = errors.New("grovepebble: database incompatible with the options")
	// ErrOutOfRange means a row whose token lies outside the Node's range:
	// a write of one is refused, and a stored one fails Open.
	ErrOutOfRange = errors.New("grovepebble: token outside the node's range")
	// ErrKeyTooLarge means a row key longer than engine.MaxKeyBytes: a row
	// the repair protocol could never carry is not stored.
	ErrKeyTooLarge = errors.New("grovepebble: key too large")
	// ErrInconsistent means the tree could not be updated after a batch
	// committed, so tree and data may disagree; the Node refuses further
	// writes and views until it is reopened (which rebuilds the tree).
	ErrInconsistent = errors.New("grovepebble: tree and data may disagree; reopen the node")
	// ErrOptions means Options that contradict each other.
	ErrOptions = errors.New("grovepebble: invalid options")
	// ErrManyRanges means a call on a Node of many ranges that only a
	// node of one range answers (its Root, Sum or View): each range is a
	// replica of its own, from Replicas or Replica.
	ErrManyRanges = errors.New("grovepebble: node holds many ranges; use its per-range replicas")
	// ErrNoSuchRange means Replica was asked for a range the Node does not
	// hold.
	ErrNoSuchRange = errors.New("grovepebble: no such range on this node")
)
