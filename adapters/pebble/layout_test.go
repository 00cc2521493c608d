package grovepebble

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"slices"
	"testing"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
)

// Composite keys sort as (token, key) does: signed token order is byte
// order, and a key's bytes order rows of one token.
func TestRowKeyOrder(t *testing.T) {
	ordered := []struct {
		tok token.Token
		key string
	}{
		{math.MinInt64 + 1, ""},
		{math.MinInt64 + 1, "a"},
		{-1 << 40, "z"},
		{-1, ""},
		{-1, "\xff"},
		{0, ""},
		{0, "a"},
		{0, "a\x00"},
		{0, "b"},
		{1, ""},
		{1 << 40, "a"},
		{math.MaxInt64, "a"},
	}
	for i := 1; i < len(ordered); i++ {
		a := appendRowKey(nil, ordered[i-1].tok, []byte(ordered[i-1].key))
		b := appendRowKey(nil, ordered[i].tok, []byte(ordered[i].key))
		if bytes.Compare(a, b) >= 0 {
			t.Errorf("key %v sorts at or after %v: %x >= %x", ordered[i-1], ordered[i], a, b)
		}
	}
	// compareRowKeys, which batches and rounds sort by, orders every pair
	// as their composite keys' bytes do.
	for _, a := range ordered {
		for _, b := range ordered {
			ak, bk := appendRowKey(nil, a.tok, []byte(a.key)), appendRowKey(nil, b.tok, []byte(b.key))
			if got, want := compareRowKeys(a.tok, ak, b.tok, bk), bytes.Compare(ak, bk); got != want {
				t.Errorf("compareRowKeys(%v, %v) = %d, bytes.Compare %d", a, b, got, want)
			}
		}
	}
	for _, o := range ordered {
		ck := appendRowKey(nil, o.tok, []byte(o.key))
		tok, k, err := splitRowKey(ck)
		if err != nil || tok != o.tok || string(k) != o.key {
			t.Errorf("splitRowKey(appendRowKey(%d, %q)) = %d, %q, %v", o.tok, o.key, tok, k, err)
		}
	}
}

// The layout is byte for byte what doc.go says.
func TestLayoutBytes(t *testing.T) {
	ck := appendRowKey(nil, -2, []byte("k"))
	if want := []byte{0x01, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 'k'}; !bytes.Equal(ck, want) {
		t.Errorf("key of token -2, %q = % x, want % x", "k", ck, want)
	}
	v := appendValue(nil, &engine.Row{Value: []byte("v"), TS: 0x0102030405060708, Deleted: true})
	if want := []byte{0x01, 1, 2, 3, 4, 5, 6, 7, 8, 'v'}; !bytes.Equal(v, want) {
		t.Errorf("value = % x, want % x", v, want)
	}
	// Layout 3: flags with bit 2, the timestamp, the generation of birth
	// (300, a two-byte uvarint), the value, then the CRC-32C of the
	// composite key and every byte before it.
	v = appendStored(nil, ck, &engine.Row{Value: []byte("v"), TS: 0x0102030405060708, Deleted: true}, 300, true)
	body := []byte{0x07, 1, 2, 3, 4, 5, 6, 7, 8, 0xac, 0x02, 'v'}
	sum := crc32.Checksum(slices.Concat(ck, body), crc32.MakeTable(crc32.Castagnoli))
	if want := slices.Concat(body, binary.BigEndian.AppendUint32(nil, sum)); !bytes.Equal(v, want) {
		t.Errorf("stored value = % x, want % x", v, want)
	}
}

// Every change of one byte of a stored row — its key or its value — and
// every cut fails its checksum or its decoding: never a row served as
// another.
func TestChecksumCatchesEveryByte(t *testing.T) {
	p := token.Murmur3{}
	key := []byte("some key")
	ck := appendRowKey(nil, p.Token(key), key)
	for _, born := range []bool{false, true} {
		v := appendStored(nil, ck, &engine.Row{Key: key, Value: []byte("a value of some length"), TS: 99}, 12, born)
		var r engine.Row
		if _, err := decodeRow(p, ck, v, &r, true); err != nil || string(r.Value) != "a value of some length" || r.TS != 99 {
			t.Fatalf("decodeRow of a sound row = %+v, %v", r, err)
		}
		for i := range len(ck) + len(v) {
			for _, flip := range []byte{0x01, 0x80, 0xff} {
				k2, v2 := slices.Clone(ck), slices.Clone(v)
				if i < len(ck) {
					k2[i] ^= flip
				} else {
					v2[i-len(ck)] ^= flip
				}
				if _, err := decodeRow(p, k2, v2, &r, true); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("born %v, byte %d ^ %#x: decodeRow = %+v, %v; want ErrCorrupt", born, i, flip, r, err)
				}
			}
		}
		for cut := range len(v) {
			if _, err := decodeRow(p, ck, v[:cut], &r, true); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("born %v, cut at %d: decodeRow = %+v, %v; want ErrCorrupt", born, cut, r, err)
			}
		}
	}
}

// rangeBounds holds exactly the tokens of (Lo, Hi].
func TestRangeBounds(t *testing.T) {
	for _, r := range []token.Range{
		{Lo: -10, Hi: 10},
		{Lo: math.MinInt64, Hi: math.MaxInt64},
		{Lo: 5, Hi: math.MaxInt64},
		{Lo: math.MinInt64, Hi: -5},
		{Lo: math.MaxInt64 - 1, Hi: math.MaxInt64},
	} {
		lower, upper := rangeBounds(r)
		in := func(tok token.Token, key string) bool {
			ck := appendRowKey(nil, tok, []byte(key))
			return bytes.Compare(ck, lower) >= 0 && bytes.Compare(ck, upper) < 0
		}
		for _, tok := range []token.Token{r.Lo, r.Lo + 1, r.Hi - 1, r.Hi, r.Hi + 1, math.MinInt64 + 1, 0, math.MaxInt64} {
			if r.Hi == math.MaxInt64 && tok == r.Hi+1 {
				continue // overflow: no such token
			}
			for _, key := range []string{"", "k", "\xff\xff"} {
				if got, want := in(tok, key), r.Contains(tok); got != want {
					t.Errorf("%v: token %d key %q inside bounds = %v, want %v", r, tok, key, got, want)
				}
			}
		}
	}
}

// A record that does not decode is ErrCorrupt, never a panic or a wrong row;
// a checksum that does not match, or is missing where every row has one,
// is ErrChecksum too.
func TestDecodeRejects(t *testing.T) {
	p := token.Murmur3{}
	good := appendRowKey(nil, p.Token([]byte("k")), []byte("k"))
	row := &engine.Row{Value: []byte("v"), TS: 7}
	val := appendValue(nil, row)
	sum := appendStored(nil, good, row, 0, false)
	for _, c := range []struct {
		name     string
		ck, v    []byte
		strict   bool
		wantOK   bool
		checksum bool
	}{
		{"good", good, sum, true, true, false},
		{"good without a checksum, not strict", good, val, false, true, false},
		{"without a checksum, strict", good, val, true, false, true},
		{"a value changed under its checksum", good, append(slices.Clone(sum[:len(sum)-1]), 'w'), false, false, true},
		{"a checksum under another key", appendRowKey(nil, p.Token([]byte("k")), []byte("k")), appendStored(nil, appendRowKey(nil, 1, []byte("k")), row, 0, false), false, false, true},
		{"a checksum cut short", good, sum[:valueHeader+2], false, false, false},
		{"empty value", good, nil, false, false, false},
		{"value shorter than its header", good, val[:valueHeader-1], false, false, false},
		{"reserved flag bit", good, append([]byte{0x08}, val[1:]...), false, false, false},
		{"generation of birth cut short", good, append(append([]byte{flagBorn}, val[1:valueHeader]...), 0x80), false, false, false},
		{"key shorter than its header", good[:keyHeader-1], val, false, false, false},
		// 0x00 is the metadata keys' prefix (doc.go; metaFormat, metaRows).
		{"metadata prefix", append([]byte{0x00}, good[1:]...), val, false, false, false},
		{"token not the key's", appendRowKey(nil, p.Token([]byte("k"))+1, []byte("k")), val, false, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r engine.Row
			_, err := decodeRow(p, c.ck, c.v, &r, c.strict)
			if c.wantOK {
				if err != nil || string(r.Key) != "k" || string(r.Value) != "v" || r.TS != 7 || r.Deleted {
					t.Fatalf("decodeRow = %+v, %v", r, err)
				}
				return
			}
			if !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrChecksum) != c.checksum {
				t.Fatalf("decodeRow err = %v, want ErrCorrupt, ErrChecksum %v", err, c.checksum)
			}
		})
	}
}

// FuzzStoredValue: whatever the bytes under whatever key, decoding never
// panics; a value it accepts as checksummed is exactly the encoding of the
// row it decodes to, so no two byte strings pass as one row.
func FuzzStoredValue(f *testing.F) {
	p := token.Murmur3{}
	ck := appendRowKey(nil, p.Token([]byte("k")), []byte("k"))
	f.Add(ck, appendStored(nil, ck, &engine.Row{Value: []byte("v"), TS: 7}, 3, true), true)
	f.Add(ck, appendValue(nil, &engine.Row{Value: []byte("v"), TS: 7, Deleted: true}), false)
	f.Add([]byte{rowPrefix}, []byte{flagSum, 0, 0}, true)
	f.Fuzz(func(t *testing.T, ck, v []byte, strict bool) {
		var r engine.Row
		born, hasBorn, err := decodeValueBorn(ck, v, &r, strict)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not match ErrCorrupt", err)
			}
			return
		}
		if len(v) > 0 && v[0]&flagSum != 0 {
			if again := appendStored(nil, ck, &r, born, hasBorn); !bytes.Equal(again, v) {
				t.Fatalf("accepted % x, which re-encodes as % x", v, again)
			}
		} else if strict {
			t.Fatalf("strict decode accepted % x without a checksum", v)
		}
	})
}
