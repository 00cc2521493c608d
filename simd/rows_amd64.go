//go:build !purego

package simd

import (
	minio "github.com/minio/sha256-simd"
)

// rowsFast says whether Sum256 uses minio/sha256-simd: only where its SHA-NI
// kernel runs (the same test minio makes in its cpuid_other.go, plus the
// GROVESIMD override), because elsewhere its Sum256 falls back to a pure-Go
// block function that is far slower than crypto/sha256. Set once at
// initialisation, never changed.
var rowsFast = hasSHANI

const rowsFastName = "minio/sha256-simd (sha-ni)"

// sum256Fast is Sum256 on minio/sha256-simd.
func sum256Fast(b []byte) [32]byte { return minio.Sum256(b) }
