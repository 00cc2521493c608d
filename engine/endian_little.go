//go:build 386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm

package engine

// littleEndian lets addLanes use a plain atomic add: the machine's word order
// is the file format's lane order.
const littleEndian = true
