//go:build purego || !amd64

package simd

// Row digests use crypto/sha256 here. On arm64 both it and
// minio/sha256-simd use the ARMv8 SHA2 instructions and the difference has
// not been measured, so the standard library wins by default; under purego
// and on other architectures minio would run pure Go.
const (
	rowsFast     = false
	rowsFastName = ""
)

// sum256Fast exists so that code and tests compile on every build; rowsFast
// is false here, so nothing calls it.
func sum256Fast(b []byte) [32]byte {
	panic("simd: no fast row digest in this build")
}
