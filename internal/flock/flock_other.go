//go:build !unix && !windows

package flock

import "os"

// TryLock cannot lock where the OS offers no file locks (Plan 9, wasm): it
// succeeds, and two writers are then the caller's to prevent.
func TryLock(*os.File) error { return nil }
