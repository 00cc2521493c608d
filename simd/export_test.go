package simd

import "crypto/sha256"

// kernel is one HashPairs implementation, callable directly so that tests
// and benchmarks cover every path this build can run on this CPU in a single
// run, whatever HashPairs dispatches to.
type kernel struct {
	name string
	fn   func(dst, src []byte)
}

// kernels lists the generic kernel and, where this build and CPU have it,
// the gohashtree kernel.
func kernels() []kernel {
	ks := []kernel{{"generic", hashPairsGeneric}}
	if fastOK {
		ks = append(ks, kernel{"gohashtree", hashPairsFast})
	}
	return ks
}

// rowKernel is one Sum256 implementation.
type rowKernel struct {
	name string
	fn   func(b []byte) [32]byte
}

// rowKernels lists the Sum256 implementations this build can run here.
func rowKernels() []rowKernel {
	ks := []rowKernel{{"crypto", sha256.Sum256}}
	if rowsFast {
		ks = append(ks, rowKernel{"minio", sum256Fast})
	}
	return append(ks, rowKernel{"Sum256", Sum256})
}

// usesRowsFast reports which implementation Sum256 dispatches to.
func usesRowsFast() bool { return rowsFast }

// usesFast reports which kernel HashPairs dispatches to.
func usesFast() bool { return fastOK }
