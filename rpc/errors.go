package rpc

import "errors"

// Sentinel errors. A Client's errors wrap exactly one of them, or one of
// package repair's sentinels, or context.DeadlineExceeded / context.Canceled,
// so callers branch with errors.Is and never on message text.
var (
	// ErrConfig: a URL, an option or a TLS file is unusable. The message
	// names the setting or file and what was wrong with it.
	ErrConfig = errors.New("rpc: bad configuration")
	// ErrTransport: the call did not complete: the peer could not be
	// reached, dropped the connection, or answered with something that is
	// not a well-formed response. Whether the peer acted on the request is
	// unknown.
	ErrTransport = errors.New("rpc: transport failure")
	// ErrRemote: the peer answered with an error that names none of package
	// repair's sentinels (a failure inside its handler, or a server that is
	// not grove's). The message carries the peer's status code and text.
	ErrRemote = errors.New("rpc: peer failed")
	// ErrTooLarge: a request or response exceeded a MaxMessageBytes limit,
	// the sender's or the receiver's. An initiator can retry with a smaller
	// batch.
	ErrTooLarge = errors.New("rpc: message larger than the limit")
)
