//go:build !unix && !windows

package engine

import "os"

// lockWriter cannot lock where the OS offers no file locks (Plan 9, wasm).
func lockWriter(*os.File) error { return nil }
