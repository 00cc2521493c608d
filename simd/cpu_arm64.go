//go:build !purego

package simd

import "github.com/klauspost/cpuid/v2"

// detect mirrors gohashtree v0.0.4-beta's hash_arm64.go and hash_arm64.s:
// its assembly always runs on arm64, using the ARMv8 SHA2 instructions when
// present and NEON (part of every arm64 CPU Go supports) otherwise.
func detect() (ok bool, name string) {
	if cpuid.CPU.Supports(cpuid.SHA2) {
		return true, "sha2 (gohashtree)"
	}
	return true, "neon (gohashtree)"
}
