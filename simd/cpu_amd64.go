//go:build !purego

package simd

import "github.com/klauspost/cpuid/v2"

// detect mirrors gohashtree v0.0.4-beta's hash_amd64.go and the dispatch at
// the top of its _hash in hash_amd64.s: the assembly runs when any of these
// feature sets is present and tries them in this order.
func detect() (ok bool, name string) {
	switch {
	case cpuid.CPU.Supports(cpuid.SHA, cpuid.AVX):
		return true, "sha-ni (gohashtree)"
	case cpuid.CPU.Supports(cpuid.AVX512F, cpuid.AVX512VL):
		return true, "avx-512 (gohashtree)"
	case cpuid.CPU.Supports(cpuid.AVX2, cpuid.BMI2):
		return true, "avx2 (gohashtree)"
	}
	return false, "generic (crypto/sha256; no SHA-NI, AVX-512 or AVX2)"
}
