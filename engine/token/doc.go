// Package token maps partition keys to positions on a token ring and does the
// exact integer arithmetic that splits a token range into leaves.
//
// A [Token] is a signed 64-bit ring position, as Apache Cassandra's LongToken.
// A [Partitioner] turns a key into a token: [Murmur3] is Cassandra's default
// Murmur3Partitioner, byte for byte; [ByteOrdered] keeps the byte order of
// keys. Partitioners are identified in files by [Partitioner.Name] and
// [Partitioner.ID]; [ByName] and [ByID] look them up again.
//
// A [Range] is (Lo, Hi] as in Cassandra. A tree covers one non-wrapping range
// and splits it into 2^depth leaves whose bounds are computed exactly in 128
// bits, so leaves of a deeper tree fold exactly into the leaves of a
// shallower one. [Range.LeafOf] finds the leaf of a token without allocating.
package token
