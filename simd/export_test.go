package simd

import "crypto/sha256"

// kernel is one HashPairs implementation, callable directly so that tests
// and benchmarks cover every path this build can run on this CPU in a single
// run, whatever HashPairs dispatches to.
type kernel struct {
	name string
	fn   func(dst, src []byte)
}

// kernels lists the generic kernel and, where this build and CPU have them,
// the gohashtree kernel and the two-stream SHA-NI kernel.
func kernels() []kernel {
	ks := []kernel{{"generic", hashPairsGeneric}}
	if fastOK {
		ks = append(ks, kernel{"gohashtree", hashPairsFast})
	}
	if x2OK {
		ks = append(ks, kernel{"x2", hashPairsX2})
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

// x2Kernel is one Sum256x2 implementation.
type x2Kernel struct {
	name string
	fn   func(a, b []byte) ([32]byte, [32]byte)
}

// x2Kernels lists the Sum256x2 implementations this build can run here:
// the two-stream kernel itself, whatever lengths it is given, and the
// exported function, which may hash the two one after the other.
func x2Kernels() []x2Kernel {
	var ks []x2Kernel
	if x2OK {
		ks = append(ks, x2Kernel{"x2", sum256x2Fast})
	}
	return append(ks, x2Kernel{"Sum256x2", Sum256x2})
}

// usesRowsFast reports which implementation Sum256 dispatches to.
func usesRowsFast() bool { return rowsFast }

// usesFast reports whether HashPairs dispatches to gohashtree.
func usesFast() bool { return fastOK && !pairsUseX2 }

// usesX2 reports whether Sum256x2 and HashPairs use the two-stream kernels.
func usesX2() (rows, pairs bool) { return x2OK, pairsUseX2 }
