module github.com/antientropy/grove

go 1.26.0

require (
	github.com/klauspost/cpuid/v2 v2.4.2
	github.com/minio/sha256-simd v1.0.1
	github.com/prysmaticlabs/gohashtree v0.0.4-beta
	golang.org/x/sys v0.49.0
)

require (
	connectrpc.com/connect v1.21.1
	github.com/transparency-dev/merkle v0.0.2
	google.golang.org/protobuf v1.36.12
)
