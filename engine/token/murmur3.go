package token

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// Murmur3 is Apache Cassandra's Murmur3Partitioner, byte for byte: the token
// of a key is the first 64 bits (h1) of Cassandra's MurmurHash3 x64_128 with
// seed 0, read as a signed int64, with math.MinInt64 normalised to
// math.MaxInt64.
//
// Cassandra's hash (org.apache.cassandra.utils.MurmurHash.hash3_x64_128)
// differs from the reference C MurmurHash3 in its tail: the 1..15 bytes after
// the last 16-byte block are each sign-extended from a Java byte before they
// are shifted and XORed in, so a tail byte >= 0x80 also flips every higher
// bit of its 64-bit word. Murmur3 reproduces that, so tokens equal the ones a
// Cassandra cluster shows for SELECT token(...). For example, the 4-byte key
// 00 00 00 01 (CQL int 1) has token -4069959284402364209.
//
// The one deliberate difference from Cassandra is the empty key. Cassandra's
// Murmur3Partitioner.getToken returns its MINIMUM token (math.MinInt64) for a
// zero-length key, a sentinel that lies outside every (lo, hi] range and is
// never the token of a stored partition (CQL rejects empty partition keys).
// Murmur3 hashes the empty key like any other, giving token 0, as ScyllaDB
// does (dht/murmur3_partitioner.cc), so that every key has a real token
// inside [Murmur3.Range]. math.MinInt64 is never returned.
//
// Murmur3 is safe for concurrent use and Token does not allocate.
type Murmur3 struct{}

// Name returns "murmur3".
func (Murmur3) Name() string { return murmur3Name }

// ID returns 1.
func (Murmur3) ID() uint8 { return murmur3ID }

// Range returns the full Murmur3 ring (math.MinInt64, math.MaxInt64]. Since
// math.MinInt64 is never a token, it covers every token.
func (Murmur3) Range() Range { return fullRing }

// Token returns Cassandra's Murmur3 token of key. The empty key has token 0;
// see [Murmur3] for why.
func (Murmur3) Token(key []byte) Token {
	return normalize(murmur3H1(key))
}

// normalize is Murmur3Partitioner.normalize: math.MinInt64 is not a valid
// token (a range (MinInt64, x] must not contain any key), so it becomes
// math.MaxInt64.
func normalize(h int64) Token {
	if h == math.MinInt64 {
		return math.MaxInt64
	}
	return h
}

const (
	murmurC1 = 0x87c37b91114253d5
	murmurC2 = 0x4cf5ad432745937f
)

// murmur3H1 returns h1 (result[0]) of Cassandra's MurmurHash.hash3_x64_128
// over key with seed 0, before normalisation.
func murmur3H1(key []byte) int64 {
	var h1, h2 uint64
	n := len(key)
	b := key
	for len(b) >= 16 {
		// Body blocks: bytes taken unsigned, little-endian (getBlock).
		k1 := binary.LittleEndian.Uint64(b)
		k2 := binary.LittleEndian.Uint64(b[8:16])

		k1 *= murmurC1
		k1 = bits.RotateLeft64(k1, 31)
		k1 *= murmurC2
		h1 ^= k1
		h1 = bits.RotateLeft64(h1, 27)
		h1 += h2
		h1 = h1*5 + 0x52dce729

		k2 *= murmurC2
		k2 = bits.RotateLeft64(k2, 33)
		k2 *= murmurC1
		h2 ^= k2
		h2 = bits.RotateLeft64(h2, 31)
		h2 += h1
		h2 = h2*5 + 0x38495ab5

		b = b[16:]
	}

	// Tail: up to 15 bytes, each sign-extended (Cassandra's quirk).
	if t := len(b); t > 0 {
		s := n - t // first tail byte
		if t > 8 {
			k2 := signExtendTail(loadTail(key, s+8, n))
			k2 *= murmurC2
			k2 = bits.RotateLeft64(k2, 33)
			k2 *= murmurC1
			h2 ^= k2
		}
		k1 := signExtendTail(loadTail(key, s, s+min(t, 8)))
		k1 *= murmurC1
		k1 = bits.RotateLeft64(k1, 31)
		k1 *= murmurC2
		h1 ^= k1
	}

	h1 ^= uint64(n)
	h2 ^= uint64(n)
	h1 += h2
	h2 += h1
	h1 = fmix64(h1)
	h2 = fmix64(h2)
	h1 += h2
	return int64(h1)
}

// loadTail returns key[s:e], 1 to 8 bytes, as a little-endian word with
// the missing high bytes zero.
func loadTail(key []byte, s, e int) uint64 {
	if e >= 8 {
		// One 8-byte load ending at e, shifted down to drop the bytes
		// before s.
		return binary.LittleEndian.Uint64(key[e-8:e]) >> (8 * uint((8-(e-s))&7))
	}
	var v uint64
	for i := e - 1; i >= s; i-- {
		v = v<<8 | uint64(key[i])
	}
	return v
}

// signExtendTail turns the little-endian word v of up to 8 tail bytes
// (missing high bytes zero) into what Cassandra's tail switch computes:
// the XOR of every byte sign-extended to 64 bits and shifted into place. A
// byte >= 0x80 at position i inverts every byte above i, so the result is v
// XOR a mask whose byte j is 0xff when an odd number of the bytes below j
// have their high bit set.
func signExtendTail(v uint64) uint64 {
	m := (v & 0x8080808080808080) >> 7 << 8 // bit 0 of byte i+1 marks a high byte i
	m ^= m << 8                             // prefix XOR over bytes
	m ^= m << 16
	m ^= m << 32
	return v ^ m*0xff // spread bit 0 of each byte to the whole byte
}

// fmix64 is MurmurHash3's 64-bit finaliser.
func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}
