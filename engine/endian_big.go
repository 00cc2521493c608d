//go:build !(386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm)

package engine

// littleEndian is false here, so addLanes byte-swaps each lane through a CAS.
const littleEndian = false
