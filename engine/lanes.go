package engine

import "encoding/binary"

// A leaf is the multiset sum of its rows' digests: four little-endian uint64
// lanes added lane-wise mod 2^64 (docs/FORMAT.md). Addition commutes, so rows can
// be added from any number of goroutines in any order. Writers serialise per
// band of leaves (Tree.bands), so a leaf is updated with plain loads and
// stores: the locked adds of an atomic scheme cost more than the hashing
// saved by sorted input, and each would wait out its own cache miss.

// leafBands is how many locks guard the leaves: enough that two workers
// rarely want the same one, few enough that a batch of random rows takes
// each lock about once.
const leafBands = 64

// addLeaf adds d to (or, when neg, subtracts it from) the 32-byte leaf.
// The caller holds the leaf's band lock.
func addLeaf(leaf []byte, d *Digest, neg bool) {
	_ = leaf[31]
	for i := 0; i < 32; i += 8 {
		v := binary.LittleEndian.Uint64(d[i:])
		if neg {
			v = -v
		}
		binary.LittleEndian.PutUint64(leaf[i:], binary.LittleEndian.Uint64(leaf[i:])+v)
	}
}

// Add adds o into d lane-wise (four little-endian uint64 lanes, mod 2^64):
// the leaf arithmetic, for callers that add or remove rows' digests outside a
// tree, as a repair session's final check does.
func (d *Digest) Add(o *Digest) { addLeaf(d[:], o, false) }

// Sub subtracts o from d lane-wise.
func (d *Digest) Sub(o *Digest) { addLeaf(d[:], o, true) }

// sumLanes adds the 32-byte leaf src into acc lane-wise.
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

// sumRun adds every 32-byte leaf of run into acc lane-wise.
func sumRun(acc *[4]uint64, run []byte) {
	for o := 0; o < len(run); o += NodeSize {
		sumLanes(acc, run[o:o+NodeSize])
	}
}
