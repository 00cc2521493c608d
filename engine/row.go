package engine

import (
	"bytes"
	"encoding/binary"

	"github.com/antientropy/grove/simd"
)

// Row is one stored row as the tree sees it: a key, a value, the write
// timestamp (microseconds, as Cassandra's) and whether it is a tombstone.
// The engine never keeps a Row: its slices only need to stay valid for the
// call they are passed to.
type Row struct {
	Key     []byte
	Value   []byte
	TS      int64
	Deleted bool
}

// MaxKeyBytes bounds a row key wherever grove takes rows in: the row
// readers refuse a longer key on the line that holds it, stores refuse to
// write one, and the repair protocol never moves one (Cassandra's own limit
// on a partition key is 64 KiB). One definition, so that a row a node
// accepted can always be repaired.
const MaxKeyBytes = 64 << 10

// Digest is the SHA-256 of a row's encoding, or a node of the tree.
type Digest [32]byte

// rowEncodingVersion is the first byte of every row encoding. It changes
// whenever the encoding does, so digests from two encodings never collide by
// accident.
const rowEncodingVersion = 1

// rowHeaderLen is the encoding's overhead beyond key and value bytes.
const rowHeaderLen = 1 + 4 + 8 + 8 + 1

// EncodedLen is the length of r's encoding (docs/FORMAT.md).
func EncodedLen(r *Row) int { return rowHeaderLen + len(r.Key) + len(r.Value) }

// AppendEncoding appends r's unambiguous encoding to dst (docs/FORMAT.md):
//
//	version u8 = 1 | key length u32 LE | key | value length u64 LE | value |
//	ts i64 LE | flags u8 (bit 0: tombstone)
//
// Both lengths come before their bytes, so no two different rows encode to
// the same bytes.
func AppendEncoding(dst []byte, r *Row) []byte {
	dst = append(dst, rowEncodingVersion)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(r.Key)))
	dst = append(dst, r.Key...)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(len(r.Value)))
	dst = append(dst, r.Value...)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(r.TS))
	var flags byte
	if r.Deleted {
		flags |= 1
	}
	return append(dst, flags)
}

// RowDigest returns SHA-256 of r's encoding. It encodes into a stack buffer,
// so it allocates nothing unless the row's encoding exceeds 256 bytes.
func RowDigest(r *Row) Digest {
	var stack [256]byte
	return simd.Sum256(AppendEncoding(stack[:0], r))
}

// rowDigests returns the digests of two rows at once: simd.Sum256x2 hashes
// two messages in about the time of one, so a caller holding two rows
// should hash them together. Stack buffers, as in RowDigest.
func rowDigests(a, b *Row) (Digest, Digest) {
	var sa, sb [256]byte
	return simd.Sum256x2(AppendEncoding(sa[:0], a), AppendEncoding(sb[:0], b))
}

// Hasher computes row digests reusing its encoding buffers, so that a
// worker hashing millions of rows allocates nothing per row, whatever their
// size. A Hasher is not safe for concurrent use: give each goroutine its
// own. The zero value is ready.
type Hasher struct {
	buf, buf2 []byte
}

// Digest returns SHA-256 of r's encoding.
func (h *Hasher) Digest(r *Row) Digest {
	h.buf = AppendEncoding(scratch(h.buf), r)
	d := simd.Sum256(h.buf)
	h.buf = trim(h.buf)
	return d
}

// Digest2 returns the digests of a and b, the same as two calls to Digest
// but faster: the two rows' SHA-256 rounds run interleaved (simd.Sum256x2),
// so a caller with many rows to hash should hand them over two at a time.
func (h *Hasher) Digest2(a, b *Row) (Digest, Digest) {
	h.buf = AppendEncoding(scratch(h.buf), a)
	h.buf2 = AppendEncoding(scratch(h.buf2), b)
	da, db := simd.Sum256x2(h.buf, h.buf2)
	h.buf, h.buf2 = trim(h.buf), trim(h.buf2)
	return da, db
}

// scratch returns buf emptied, or a new buffer sized for typical rows.
func scratch(buf []byte) []byte {
	if buf == nil {
		return make([]byte, 0, 256)
	}
	return buf[:0]
}

// trim drops a buffer that one huge row grew, so that it does not stay
// pinned for the rest of a build.
func trim(buf []byte) []byte {
	if cap(buf) > 1<<20 {
		return nil
	}
	return buf
}

// Supersedes reports whether row a wins over row b, two versions of one key,
// by Apache Cassandra's reconciliation rule: the newer write timestamp wins;
// on equal timestamps a tombstone wins over a live value; then the greater
// value bytes win. It is a strict order on versions, so two replicas that
// resolve the same pair independently keep the same row. Identical versions
// supersede neither way.
func Supersedes(a, b *Row) bool {
	if a.TS != b.TS {
		return a.TS > b.TS
	}
	if a.Deleted != b.Deleted {
		return a.Deleted
	}
	return bytes.Compare(a.Value, b.Value) > 0
}
