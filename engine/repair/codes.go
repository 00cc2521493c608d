package repair

import "errors"

// codes names each sentinel on the wire. The names are part of the protocol:
// never change one, only add.
var codes = []struct {
	name string
	err  error
}{
	{"incompatible", ErrIncompatible},
	{"bad_message", ErrBadMessage},
	{"unknown_session", ErrUnknownSession},
	{"changed", ErrChanged},
	{"busy", ErrBusy},
	{"not_converged", ErrNotConverged},
	{"limit", ErrLimit},
}

// Code returns the wire name of the sentinel err wraps, or "" for any other
// error. A transport sends it beside the error's text.
func Code(err error) string {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return ""
}

// FromCode returns the sentinel a wire name stands for, or nil for an unknown
// or empty name.
func FromCode(name string) error {
	for _, c := range codes {
		if c.name == name {
			return c.err
		}
	}
	return nil
}
