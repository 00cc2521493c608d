// Package invariants turns programming errors that grove otherwise survives
// quietly — a budget released twice, a region closed twice or read after
// Close — into panics, in builds with the "invariants" tag (as Pebble's
// internal/invariants does). CI runs the core's tests with it:
//
//	go test -tags invariants ./...
//
// Without the tag Enabled is a false constant and every check compiles
// away; the code then clamps or ignores as its documentation says, so that
// one caller's bug cannot take a node down.
package invariants
