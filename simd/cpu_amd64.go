//go:build !purego

package simd

import (
	_ "unsafe" // go:linkname

	"github.com/klauspost/cpuid/v2"
)

// gohashtree v0.0.4-beta picks its kernel from these package variables,
// which it sets from cpuid at its own initialisation and has no API to
// change. A GROVESIMD override clears them (once, in detect, which runs
// during this package's initialisation, after gohashtree's and before
// anything can call it), so that its AVX-512 and AVX2 kernels can be
// tested on a CPU that has SHA-NI. If gohashtree renames them, the build
// fails to link rather than silently ignoring the override.
//
//go:linkname ghtSHANI github.com/prysmaticlabs/gohashtree.hasShani
var ghtSHANI bool

//go:linkname ghtAVX512 github.com/prysmaticlabs/gohashtree.hasAVX512
var ghtAVX512 bool

// hasSHANI says whether this package's own SHA-NI kernels (and minio's) may
// run: the CPU has the instructions and GROVESIMD does not say noshani.
var hasSHANI = cpuid.CPU.Supports(cpuid.SHA, cpuid.SSSE3, cpuid.SSE4) && !overrides.noSHANI

// detect mirrors gohashtree v0.0.4-beta's hash_amd64.go and the dispatch at
// the top of its _hash in hash_amd64.s: the assembly runs when any of these
// feature sets is present and tries them in this order.
func detect() (ok bool, name string) {
	if overrides.noSHANI {
		ghtSHANI = false
	}
	if overrides.noAVX512 {
		ghtAVX512 = false
	}
	switch {
	case ghtSHANI && cpuid.CPU.Supports(cpuid.SHA, cpuid.AVX):
		return true, "sha-ni (gohashtree)"
	case ghtAVX512 && cpuid.CPU.Supports(cpuid.AVX512F, cpuid.AVX512VL):
		return true, "avx-512 (gohashtree)"
	case cpuid.CPU.Supports(cpuid.AVX2, cpuid.BMI2):
		return true, "avx2 (gohashtree)"
	}
	return false, "generic (crypto/sha256; no SHA-NI, AVX-512 or AVX2)"
}
