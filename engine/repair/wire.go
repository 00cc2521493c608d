package repair

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"google.golang.org/protobuf/proto"

	"github.com/antientropy/grove/engine"
)

// Protocol constants. Changing any of them changes the protocol: bump
// ProtocolVersion.
const (
	// ProtocolVersion is sent in Params.protocol; peers must agree.
	ProtocolVersion = 4
	// FingerprintBytes is the width of a node or row fingerprint on the wire.
	FingerprintBytes = 4
	// SaltBytes is the size of the fingerprint key the initiator picks.
	SaltBytes = 32
	// MaxBandLevels bounds the levels one band may span.
	MaxBandLevels = 8
	// MaxSessionDepth is the deepest level a session descends to. Trees
	// deeper than this meet at it, by subtree sums, as any two trees of
	// different depths meet at the shallower: it bounds every frontier, and
	// so every message of the descent, to 2^20 nodes.
	MaxSessionDepth = 20
	// MaxLeafLevels bounds how far below the meeting depth a session
	// descends inside dense leaves, by equal token-width sub-buckets of a
	// leaf's span: 2^24 buckets a leaf is far more than any leaf's rows
	// need, and node numbers stay well inside 64 bits (maxLevel).
	MaxLeafLevels = 24
	// MaxProbeLevels bounds the levels one probe may span: a descendant's
	// weight j+1 must stay well inside the 32 bits of a weight, so that a
	// node hiding more than one difference passes for one hiding a single
	// difference with probability at most 2^levels / 2^32.
	MaxProbeLevels = 24
	// MaxKeyBytes is engine.MaxKeyBytes: a row whose key is longer is never
	// moved by a session; it is reported in Result.Refused instead.
	MaxKeyBytes = engine.MaxKeyBytes
	// DefaultMaxMessageBytes is the default bound on one message.
	DefaultMaxMessageBytes = 64 << 20
	// CommitBytes is how many bytes of rows an initiator pushes before it
	// commits them as one batch: a repair larger than this is applied on the
	// responder in several atomic batches, each whole.
	CommitBytes = 64 << 20
)

// fpKey keys the session's fingerprints: a node's fingerprint is
// Σ k_i·lane_i mod 2^32 over the four 64-bit lanes of its sum. That is linear,
// so the fingerprint of a node is the sum of its children's — a band can
// leave out one child per parent and the receiver derives it — and for two
// different sums it collides with probability about 2^-32 over the random key.
// A fresh key per session makes a collision that hid a difference once
// unlikely to hide it again.
type fpKey [4]uint64

func parseSalt(b []byte) (fpKey, error) {
	var k fpKey
	if len(b) != SaltBytes {
		return k, fmt.Errorf("%w: salt is %d bytes, want %d", ErrBadMessage, len(b), SaltBytes)
	}
	for i := range k {
		k[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return k, nil
}

func (k *fpKey) of(d *engine.Digest) uint32 {
	return uint32(k[0]*binary.LittleEndian.Uint64(d[0:]) +
		k[1]*binary.LittleEndian.Uint64(d[8:]) +
		k[2]*binary.LittleEndian.Uint64(d[16:]) +
		k[3]*binary.LittleEndian.Uint64(d[24:]))
}

// maxLevel is the deepest level a session of meeting depth depth may
// descend to: the levels below depth are virtual, sub-buckets of the leaves
// that both sides compute by scanning rows. token.Range.Leaf works up to
// depth 62.
func maxLevel(depth int) int { return min(depth+MaxLeafLevels, 62) }

// checkOf is what a side keeps of a virtual node's sum to check that the
// rows it scans later still add up to it (ErrChanged otherwise): one lane
// of the sum, so that a band's pending nodes cost 8 bytes each, not 32. It
// guards against writes that raced the snapshot, not against a peer, and a
// changed row changes the lane but with probability 2^-64.
func checkOf(d *engine.Digest) uint64 { return binary.LittleEndian.Uint64(d[:8]) }

func parseDigest(b []byte, what string) (engine.Digest, error) {
	var d engine.Digest
	if len(b) != len(d) {
		return d, fmt.Errorf("%w: %s is %d bytes, want %d", ErrBadMessage, what, len(b), len(d))
	}
	copy(d[:], b)
	return d, nil
}

// bitmap is a set over positions 0..n-1, least significant bit first, as
// the differ and missing fields carry it.
func newBitmap(n int) []byte { return make([]byte, (n+7)/8) }

func setBit(b []byte, i int)      { b[i>>3] |= 1 << (i & 7) }
func hasBit(b []byte, i int) bool { return b[i>>3]&(1<<(i&7)) != 0 }

// checkBitmap checks that b is exactly a bitmap over n positions with no bit
// set past n, and returns how many bits are set.
func checkBitmap(b []byte, n int, what string) (int, error) {
	if len(b) != (n+7)/8 {
		return 0, fmt.Errorf("%w: %s is %d bytes, want %d for %d positions", ErrBadMessage, what, len(b), (n+7)/8, n)
	}
	if n%8 != 0 && b[len(b)-1]>>(n%8) != 0 {
		return 0, fmt.Errorf("%w: %s has bits set past position %d", ErrBadMessage, what, n)
	}
	set := 0
	for _, x := range b {
		set += bits.OnesCount8(x)
	}
	return set, nil
}

// locate finds, from a probed node's weights and fingerprints, the one
// descendant among 2^levels that differs, assuming only one does. With
// D_j the difference of descendant j's fingerprints (theirs − ours), the
// node's difference is s = Σ D_j and the weights' dw = Σ (j+1)·D_j mod 2^32;
// if a single j differs, dw = (j+1)·s, and j+1 follows by dividing by s,
// an odd number times 2^e: j+1 is then known modulo 2^(32−e), and accepted
// only when that leaves exactly one candidate in 1..2^levels. Several
// differing descendants give a quotient that lands in that range with
// probability about 2^levels / 2^32; such a wrong answer only sends the
// session to reconcile a node that may not differ, and the final sum check
// catches the difference it missed.
func locate(dw, s uint32, levels int) (uint64, bool) {
	if s == 0 {
		return 0, false
	}
	e := bits.TrailingZeros32(s)
	if dw&(1<<e-1) != 0 || 32-e <= levels {
		return 0, false
	}
	odd := s >> e
	// The inverse of an odd number modulo 2^32, by Newton's iteration: each
	// step doubles the bits that are right, from 3 (odd·odd ≡ 1 mod 8).
	inv := odd
	for range 4 {
		inv *= 2 - odd*inv
	}
	x := (dw >> e) * inv
	if e > 0 {
		x &= 1<<(32-e) - 1
	}
	if x == 0 || uint64(x) > 1<<levels {
		return 0, false
	}
	return uint64(x) - 1, true
}

// putIndexes packs values of width bits each, least significant bit first.
func putIndexes(values []uint64, width int) []byte {
	b := make([]byte, (len(values)*width+7)/8)
	for i, v := range values {
		for k := range width {
			if v>>k&1 != 0 {
				setBit(b, i*width+k)
			}
		}
	}
	return b
}

// parseIndexes unpacks n values of width bits each, checking that b holds
// exactly that many bits with zero padding.
func parseIndexes(b []byte, n, width int, what string) ([]uint64, error) {
	if _, err := checkBitmap(b, n*width, what); err != nil {
		return nil, err
	}
	out := make([]uint64, n)
	for i := range out {
		for k := range width {
			if hasBit(b, i*width+k) {
				out[i] |= 1 << k
			}
		}
	}
	return out, nil
}

func putFP(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
func fpAt(b []byte, i int) uint32     { return binary.LittleEndian.Uint32(b[4*i:]) }

// MessageBytes is what one protocol message counts for in every byte figure
// grove reports — Stats, both roles' metrics and rpc.Stats: its encoded
// size, before any transport's framing. Each counter takes the figure from
// here, so one session reads the same bytes wherever it is measured, and a
// message is sized once per counter that sees it.
func MessageBytes(m proto.Message) int64 { return int64(proto.Size(m)) }
