package repair

import "errors"

// Sentinel errors. Errors from this package wrap one of them with %w, and a
// transport carries which one across the wire (see Code and FromCode), so a
// caller tests a remote failure with errors.Is just as a local one.
var (
	// ErrIncompatible: the peers' parameters (protocol, format, partitioner
	// or range) do not match.
	ErrIncompatible = errors.New("repair: incompatible peer")
	// ErrBadMessage: a message was malformed, out of order or broke a
	// protocol limit. The message names the field.
	ErrBadMessage = errors.New("repair: bad message")
	// ErrUnknownSession: the session was never opened, has ended, or expired
	// while idle.
	ErrUnknownSession = errors.New("repair: unknown session")
	// ErrChanged: a replica's rows changed under the session's snapshot in a
	// leaf being reconciled. Nothing was applied; a retry starts afresh.
	ErrChanged = errors.New("repair: replica changed during the session")
	// ErrBusy: the responder has as many sessions open as it allows, or its
	// memory budget cannot hold another snapshot.
	ErrBusy = errors.New("repair: responder busy")
	// ErrLimit: a message, a leaf's differing rows or the rows staged for a
	// commit would exceed a limit the protocol or the responder sets.
	ErrLimit = errors.New("repair: over a limit")
	// ErrNotConverged: after a repair the two sides' sums still differ.
	ErrNotConverged = errors.New("repair: replicas did not converge")
	// ErrPeerFailed: in a node session, the peer reported that one range's
	// call failed with an error that names none of these sentinels.
	ErrPeerFailed = errors.New("repair: peer failed")
)
