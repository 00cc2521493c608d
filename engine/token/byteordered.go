package token

import (
	"encoding/binary"
	"math"
)

// ByteOrdered is an order-preserving partitioner: the token of a key is its
// first 8 bytes read big-endian (a shorter key is padded with zero bytes on
// the right) with the sign bit flipped, so that unsigned byte order becomes
// signed token order.
//
// Consequences:
//   - Order is kept but not strictly: if bytes.Compare(a, b) < 0 then
//     Token(a) <= Token(b). Keys that share their first 8 bytes share a token,
//     and so does a key with the zero-padded form of a shorter one (e.g. "ab"
//     and "ab\x00").
//   - The all-zero prefix would give math.MinInt64, which lies outside the
//     ring (MinInt64, MaxInt64]. It is clamped to math.MinInt64+1, the first
//     token of the ring, so every key whose first 8 bytes are zero (the empty
//     key included) shares token MinInt64+1 with the keys whose prefix is
//     00 00 00 00 00 00 00 01. Order is still kept.
//
// This is not Cassandra's ByteOrderedPartitioner, whose tokens are the whole
// key as a byte string; it is a fixed-width order-preserving map for keys
// that are already well spread in their first bytes.
//
// ByteOrdered is safe for concurrent use and Token does not allocate.
type ByteOrdered struct{}

// Name returns "bytes".
func (ByteOrdered) Name() string { return byteOrderedName }

// ID returns 2.
func (ByteOrdered) ID() uint8 { return byteOrderedID }

// Range returns the full ring (math.MinInt64, math.MaxInt64].
func (ByteOrdered) Range() Range { return fullRing }

// Token returns the order-preserving token of key; see [ByteOrdered].
func (ByteOrdered) Token(key []byte) Token {
	var p uint64
	if len(key) >= 8 {
		p = binary.BigEndian.Uint64(key)
	} else {
		for i, c := range key {
			p |= uint64(c) << (56 - 8*uint(i&7))
		}
	}
	t := int64(p ^ (1 << 63))
	if t == math.MinInt64 {
		return math.MinInt64 + 1
	}
	return t
}
