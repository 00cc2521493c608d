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
	layoutVersion = 2

	rowPrefix = 0x01

	tokenBytes  = 8
	keyHeader   = 1 + tokenBytes // prefix and token before the row key
	valueHeader = 1 + 8          // flags and timestamp before the value

	flagTombstone = 0x01
	// flagBorn says a uvarint generation of birth follows the timestamp
	// (layout 2).
	flagBorn = 0x02
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
// and value, with no generation: how a value is compared, and how rows
// written before layout 2 are stored.
func appendValue(dst []byte, r *engine.Row) []byte {
	return appendValueBorn(dst, r, 0, false)
}

// appendValueBorn appends the stored encoding of r, carrying born — the
// forest generation of the first write of its key — when hasBorn.
func appendValueBorn(dst []byte, r *engine.Row, born uint64, hasBorn bool) []byte {
	var flags byte
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
	return append(dst, r.Value...)
}

// decodeValue fills r's TS, Deleted and Value from a stored value; r.Value
// aliases v.
func decodeValue(v []byte, r *engine.Row) error {
	_, _, err := decodeValueBorn(v, r)
	return err
}

// decodeValueBorn is decodeValue that also returns the value's generation
// of birth, and whether it has one (a value written before layout 2 has
// none: its key is older than any generation).
func decodeValueBorn(v []byte, r *engine.Row) (born uint64, hasBorn bool, err error) {
	if len(v) < valueHeader {
		return 0, false, fmt.Errorf("%w: value of %d bytes, want at least %d", ErrCorrupt, len(v), valueHeader)
	}
	if v[0]&^(flagTombstone|flagBorn) != 0 {
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
	r.Value = rest
	return born, hasBorn, nil
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
