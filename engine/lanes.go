package engine

import (
	"encoding/binary"
	"math/bits"
	"sync/atomic"
	"unsafe"
)

// A leaf is the multiset sum of its rows' digests: four little-endian uint64
// lanes added lane-wise mod 2^64 (DESIGN.md). Addition commutes, so rows can
// be added from any number of goroutines in any order; each lane is updated
// with an atomic add, so two goroutines adding to the same leaf never lose
// one another's row.

// lanes reads a digest as its four lanes.
func lanes(d *Digest) [4]uint64 {
	return [4]uint64{
		binary.LittleEndian.Uint64(d[0:]),
		binary.LittleEndian.Uint64(d[8:]),
		binary.LittleEndian.Uint64(d[16:]),
		binary.LittleEndian.Uint64(d[24:]),
	}
}

// addLanes adds d (or subtracts it, when neg) to the 32-byte leaf at p,
// atomically per lane. p must be 8-byte aligned: leaves sit at multiples of
// 32 bytes from the start of a page-aligned mapping.
func addLanes(p unsafe.Pointer, d *Digest, neg bool) {
	l := lanes(d)
	for i := range l {
		v := l[i]
		if neg {
			v = -v
		}
		w := (*uint64)(unsafe.Add(p, 8*i))
		if littleEndian {
			atomic.AddUint64(w, v)
			continue
		}
		// On a big-endian machine the stored bytes must still be the
		// little-endian lanes of the file format, so add through a CAS.
		for {
			old := atomic.LoadUint64(w)
			sum := bits.ReverseBytes64(bits.ReverseBytes64(old) + v)
			if atomic.CompareAndSwapUint64(w, old, sum) {
				break
			}
		}
	}
}

// sumLanes adds the 32-byte leaf src into acc lane-wise (no atomics: used on
// memory only one goroutine touches, as in folding).
func sumLanes(acc *[4]uint64, src []byte) {
	acc[0] += binary.LittleEndian.Uint64(src[0:])
	acc[1] += binary.LittleEndian.Uint64(src[8:])
	acc[2] += binary.LittleEndian.Uint64(src[16:])
	acc[3] += binary.LittleEndian.Uint64(src[24:])
}

// putLanes writes acc as a 32-byte leaf.
func putLanes(dst []byte, acc *[4]uint64) {
	binary.LittleEndian.PutUint64(dst[0:], acc[0])
	binary.LittleEndian.PutUint64(dst[8:], acc[1])
	binary.LittleEndian.PutUint64(dst[16:], acc[2])
	binary.LittleEndian.PutUint64(dst[24:], acc[3])
}
