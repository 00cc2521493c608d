package fuzz

import "encoding/binary"

// input hands out the fuzzer's bytes a few at a time. Once they run out
// every read returns zero, so any input decodes to something.
type input struct{ b []byte }

func (in *input) empty() bool { return len(in.b) == 0 }

func (in *input) byte() byte {
	if len(in.b) == 0 {
		return 0
	}
	c := in.b[0]
	in.b = in.b[1:]
	return c
}

func (in *input) u16() uint16 { return uint16(in.byte()) | uint16(in.byte())<<8 }

func (in *input) u64() uint64 {
	var buf [8]byte
	n := copy(buf[:], in.b)
	in.b = in.b[n:]
	return binary.LittleEndian.Uint64(buf[:])
}

// bytes returns up to n bytes.
func (in *input) bytes(n int) []byte {
	n = min(n, len(in.b))
	out := in.b[:n:n]
	in.b = in.b[n:]
	return out
}
