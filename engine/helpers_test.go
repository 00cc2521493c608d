package engine

import (
	"io"
	"unsafe"
)

var eof = io.EOF

func unsafePointer(p *[32]byte) unsafe.Pointer { return unsafe.Pointer(p) }
