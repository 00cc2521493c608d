//go:build purego || !(amd64 || arm64)

package simd

// Without assembly (the purego tag, or an architecture gohashtree has no
// kernel for, where it does not even compile) HashPairs always uses the
// crypto/sha256 loop.
const (
	fastOK   = false
	fastName = "generic (crypto/sha256; purego build or no gohashtree kernel for this GOARCH)"
)

// hashPairsFast exists so that code and tests compile on every build; fastOK
// is false here, so nothing calls it, and if something did it would still get
// the right digests.
func hashPairsFast(dst, src []byte) { hashPairsGeneric(dst, src) }
