package grovepebble

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/internal/keytext"
)

// The storage layout; doc.go describes it byte by byte.
const (
	layoutVersion = 3

	rowPrefix = 0x01

	tokenBytes  = 8
	keyHeader   = 1 + tokenBytes // prefix and token before the row key
	valueHeader = 1 + 8          // flags and timestamp before the value

	flagTombstone = 0x01
	// flagBorn says a uvarint generation of birth follows the timestamp
	// (layout 2).
	flagBorn = 0x02
	// flagSum says the value ends in a CRC-32C of the row (layout 3).
	flagSum  = 0x04
	sumBytes = 4

	// formatStrict, in the format record's third byte (layout 3), says
	// every row of the database was written with its checksum: a row
	// without one is damage. A database upgraded from layout 2 holds rows
	// without, and accepts them.
	formatStrict = 0x01
)

// castagnoli is the CRC-32C table: the polynomial SSE 4.2 and ARMv8
// compute in hardware, which hash/crc32 uses for it.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// metaFormat and metaRows are the metadata keys: prefix 0x00, then a
	// name. They are never written to, only copied into batches, so sharing
	// them is safe.
	metaFormat = []byte("\x00format")
	metaRows   = []byte("\x00rows")
)

// appendRowKey appends the composite key of a row with key k and token t.
func appendRowKey(dst []byte, t token.Token, k []byte) []byte {
	dst = append(dst, rowPrefix)
	dst = binary.BigEndian.AppendUint64(dst, uint64(t)^(1<<63))
	return append(dst, k...)
}

// compareRowKeys orders two rows' composite keys, given with their
// tokens, as bytes.Compare orders the keys: a composite key begins with
// its token in an order-preserving encoding, so only keys of one token
// need their bytes compared, and sorting a batch or a round costs a
// fraction of comparing every pair's bytes.
func compareRowKeys(at token.Token, a []byte, bt token.Token, b []byte) int {
	if c := cmp.Compare(at, bt); c != 0 {
		return c
	}
	return bytes.Compare(a, b)
}

// tokenBound returns the smallest composite key of token t: the inclusive
// lower bound of a scan from t on.
func tokenBound(t token.Token) []byte {
	return appendRowKey(make([]byte, 0, keyHeader), t, nil)
}

// rangeBounds returns the composite-key bounds [lower, upper) that hold
// exactly the rows whose tokens lie in r = (Lo, Hi].
func rangeBounds(r token.Range) (lower, upper []byte) {
	// Lo < Hi, so Lo+1 does not overflow.
	lower = tokenBound(r.Lo + 1)
	if r.Hi == math.MaxInt64 {
		return lower, []byte{rowPrefix + 1} // the end of the row prefix
	}
	return lower, tokenBound(r.Hi + 1)
}

// splitRowKey returns the token and row key of a composite key.
func splitRowKey(ck []byte) (token.Token, []byte, error) {
	if len(ck) < keyHeader || ck[0] != rowPrefix {
		return 0, nil, fmt.Errorf("%w: key %s is not a row key (want prefix 0x01 and an 8-byte token)", ErrCorrupt, keyText(ck))
	}
	return token.Token(binary.BigEndian.Uint64(ck[1:keyHeader]) ^ (1 << 63)), ck[keyHeader:], nil
}

// appendValue appends the stored encoding of r's timestamp, tombstone flag
// and value, with no generation and no checksum: how a value is compared,
// and how rows written before layout 2 are stored.
func appendValue(dst []byte, r *engine.Row) []byte {
	return appendValueBorn(dst, r, 0, false)
}

// appendValueBorn appends the encoding of r without a checksum, carrying
// born — the forest generation of the first write of its key — when
// hasBorn: how layout 2 stored a row.
func appendValueBorn(dst []byte, r *engine.Row, born uint64, hasBorn bool) []byte {
	dst = appendHead(dst, r, born, hasBorn, 0)
	return append(dst, r.Value...)
}

// appendStored appends the value a node stores for r under composite key
// ck: appendValueBorn's, with the row's checksum after it (layout 3).
func appendStored(dst, ck []byte, r *engine.Row, born uint64, hasBorn bool) []byte {
	start := len(dst)
	dst = appendHead(dst, r, born, hasBorn, flagSum)
	dst = append(dst, r.Value...)
	return binary.BigEndian.AppendUint32(dst, rowSum(ck, dst[start:]))
}

// appendHead appends a value's flags, timestamp and generation of birth.
func appendHead(dst []byte, r *engine.Row, born uint64, hasBorn bool, flags byte) []byte {
	if r.Deleted {
		flags |= flagTombstone
	}
	if hasBorn {
		flags |= flagBorn
	}
	dst = append(dst, flags)
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.TS))
	if hasBorn {
		dst = binary.AppendUvarint(dst, born)
	}
	return dst
}

// rowSum is the checksum of a stored row: its composite key, then every
// byte of its stored value before the checksum (flags, timestamp,
// generation of birth, value). The key is in it so that a value moved
// under another key fails too.
func rowSum(ck, value []byte) uint32 {
	return crc32.Update(crc32.Update(0, castagnoli, ck), castagnoli, value)
}

// decodeValue fills r's TS, Deleted and Value from the value v stored
// under composite key ck, checking its checksum; r.Value aliases v. With
// strict, a value without a checksum fails as a damaged one does.
func decodeValue(ck, v []byte, r *engine.Row, strict bool) error {
	_, _, err := decodeValueBorn(ck, v, r, strict)
	return err
}

// decodeValueBorn is decodeValue that also returns the value's generation
// of birth, and whether it has one (a value written before layout 2 has
// none: its key is older than any generation). Every failure matches
// ErrCorrupt; a checksum that does not match, or is missing when strict,
// also ErrChecksum.
func decodeValueBorn(ck, v []byte, r *engine.Row, strict bool) (born uint64, hasBorn bool, err error) {
	if len(v) < valueHeader {
		return 0, false, fmt.Errorf("%w: value of %d bytes, want at least %d", ErrCorrupt, len(v), valueHeader)
	}
	if v[0]&^(flagTombstone|flagBorn|flagSum) != 0 {
		return 0, false, fmt.Errorf("%w: value flags %#02x has reserved bits set", ErrCorrupt, v[0])
	}
	r.Deleted = v[0]&flagTombstone != 0
	r.TS = int64(binary.BigEndian.Uint64(v[1:valueHeader]))
	rest := v[valueHeader:]
	if v[0]&flagBorn != 0 {
		b, n := binary.Uvarint(rest)
		if n <= 0 {
			return 0, false, fmt.Errorf("%w: value's generation of birth does not decode", ErrCorrupt)
		}
		born, hasBorn, rest = b, true, rest[n:]
	}
	switch {
	case v[0]&flagSum != 0:
		if len(rest) < sumBytes {
			return 0, false, fmt.Errorf("%w: value cut short in its checksum", ErrCorrupt)
		}
		body := v[:len(v)-sumBytes]
		want := binary.BigEndian.Uint32(v[len(body):])
		rest = rest[:len(rest)-sumBytes]
		if got := rowSum(ck, body); got != want {
			return 0, false, fmt.Errorf("%w: %w: stored %08x, the row's is %08x", ErrCorrupt, ErrChecksum, want, got)
		}
	case strict:
		return 0, false, fmt.Errorf("%w: %w: the value has none, and every row of this database was written with one", ErrCorrupt, ErrChecksum)
	}
	r.Value = rest
	return born, hasBorn, nil
}

// decodeRow fills r from a composite key and a stored value, checking that
// the stored token is p's token of the key and the row's checksum; r's
// slices alias ck and v.
func decodeRow(p token.Partitioner, ck, v []byte, r *engine.Row, strict bool) (token.Token, error) {
	tok, k, err := splitRowKey(ck)
	if err != nil {
		return 0, err
	}
	if want := p.Token(k); want != tok {
		return 0, fmt.Errorf("%w: key %s is stored under token %d, but its %s token is %d", ErrCorrupt, keyText(k), tok, p.Name(), want)
	}
	r.Key = k
	if err := decodeValue(ck, v, r, strict); err != nil {
		return 0, fmt.Errorf("key %s: %w", keyText(k), err)
	}
	return tok, nil
}

// keyText shows a key in an error message: quoted when it is UTF-8, else
// hex, and cut at 64 bytes, since a key may be binary and long.
func keyText(k []byte) string {
	const max = 64
	suffix := ""
	if len(k) > max {
		k, suffix = k[:max], fmt.Sprintf("… (%d bytes)", len(k))
	}
	return keytext.Quote(k) + suffix
}
