package grovepebble

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/internal/keytext"
)

// The storage layout; doc.go describes it byte by byte.
const (
	layoutVersion = 1

	rowPrefix = 0x01

	tokenBytes  = 8
	keyHeader   = 1 + tokenBytes // prefix and token before the row key
	valueHeader = 1 + 8          // flags and timestamp before the value

	flagTombstone = 0x01
)

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
// and value.
func appendValue(dst []byte, r *engine.Row) []byte {
	var flags byte
	if r.Deleted {
		flags |= flagTombstone
	}
	dst = append(dst, flags)
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.TS))
	return append(dst, r.Value...)
}

// decodeValue fills r's TS, Deleted and Value from a stored value; r.Value
// aliases v.
func decodeValue(v []byte, r *engine.Row) error {
	if len(v) < valueHeader {
		return fmt.Errorf("%w: value of %d bytes, want at least %d", ErrCorrupt, len(v), valueHeader)
	}
	if v[0]&^flagTombstone != 0 {
		return fmt.Errorf("%w: value flags %#02x has reserved bits set", ErrCorrupt, v[0])
	}
	r.Deleted = v[0]&flagTombstone != 0
	r.TS = int64(binary.BigEndian.Uint64(v[1:valueHeader]))
	r.Value = v[valueHeader:]
	return nil
}

// decodeRow fills r from a composite key and a stored value, checking that
// the stored token is p's token of the key; r's slices alias ck and v.
func decodeRow(p token.Partitioner, ck, v []byte, r *engine.Row) (token.Token, error) {
	tok, k, err := splitRowKey(ck)
	if err != nil {
		return 0, err
	}
	if want := p.Token(k); want != tok {
		return 0, fmt.Errorf("%w: key %s is stored under token %d, but its %s token is %d", ErrCorrupt, keyText(k), tok, p.Name(), want)
	}
	r.Key = k
	if err := decodeValue(v, r); err != nil {
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
