//go:build purego || !amd64

package simd

// The two-stream kernels are amd64 assembly; elsewhere Sum256x2 hashes its
// two messages one after the other and HashPairs uses gohashtree or
// crypto/sha256.
const (
	x2OK   = false
	x2Name = ""
)

// sum256x2Fast and hashPairsX2 exist so that code and tests compile on every
// build; x2OK is false here, so nothing calls them, and if something did it
// would still get the right digests.
func sum256x2Fast(a, b []byte) (da, db [32]byte) { return Sum256(a), Sum256(b) }

func hashPairsX2(dst, src []byte) { hashPairsGeneric(dst, src) }

// pairsUseX2 is false: HashPairs has no two-stream kernel here.
const pairsUseX2 = false
