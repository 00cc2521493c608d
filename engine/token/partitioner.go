package token

import (
	"fmt"
	"math"
)

// Token is a position on the ring: a signed 64-bit value, as Cassandra's
// LongToken. Tokens order as int64 values.
type Token = int64

// Partitioner maps a partition key to its token.
//
// Implementations are stateless values, safe for concurrent use, and their
// Token method does not allocate.
type Partitioner interface {
	// Name is a stable identifier stored in tree files, e.g. "murmur3".
	Name() string
	// ID is a stable small id for the binary file format.
	ID() uint8
	// Token returns the token of key. It does not retain or modify key.
	Token(key []byte) Token
	// Range is the full ring: every token Token returns lies inside it.
	Range() Range
}

// Stable partitioner ids, stored in tree files. Never renumber them.
const (
	murmur3ID     uint8 = 1
	byteOrderedID uint8 = 2
)

// Stable partitioner names, stored in tree files. Never rename them.
const (
	murmur3Name     = "murmur3"
	byteOrderedName = "bytes"
)

// fullRing is (MinInt64, MaxInt64]: every int64 but MinInt64, which both
// partitioners of this package never return.
var fullRing = Range{Lo: math.MinInt64, Hi: math.MaxInt64}

// ByID returns the partitioner whose [Partitioner.ID] is id, or an error
// wrapping [ErrUnknownPartitioner].
func ByID(id uint8) (Partitioner, error) {
	switch id {
	case murmur3ID:
		return Murmur3{}, nil
	case byteOrderedID:
		return ByteOrdered{}, nil
	}
	return nil, fmt.Errorf("%w: id %d", ErrUnknownPartitioner, id)
}

// ByName returns the partitioner whose [Partitioner.Name] is name (exact,
// case-sensitive), or an error wrapping [ErrUnknownPartitioner].
func ByName(name string) (Partitioner, error) {
	switch name {
	case murmur3Name:
		return Murmur3{}, nil
	case byteOrderedName:
		return ByteOrdered{}, nil
	}
	return nil, fmt.Errorf("%w: name %q", ErrUnknownPartitioner, name)
}
