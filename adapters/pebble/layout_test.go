package grovepebble

import (
	"bytes"
	"errors"
	"math"
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

// A record that does not decode is ErrCorrupt, never a panic or a wrong row.
func TestDecodeRejects(t *testing.T) {
	p := token.Murmur3{}
	good := appendRowKey(nil, p.Token([]byte("k")), []byte("k"))
	val := appendValue(nil, &engine.Row{Value: []byte("v"), TS: 7})
	for _, c := range []struct {
		name   string
		ck, v  []byte
		wantOK bool
	}{
		{"good", good, val, true},
		{"empty value", good, nil, false},
		{"value shorter than its header", good, val[:valueHeader-1], false},
		{"reserved flag bit", good, append([]byte{0x04}, val[1:]...), false},
		{"generation of birth cut short", good, append(append([]byte{flagBorn}, val[1:valueHeader]...), 0x80), false},
		{"key shorter than its header", good[:keyHeader-1], val, false},
		// 0x00 is the metadata keys' prefix (doc.go; metaFormat, metaRows).
		{"metadata prefix", append([]byte{0x00}, good[1:]...), val, false},
		{"token not the key's", appendRowKey(nil, p.Token([]byte("k"))+1, []byte("k")), val, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r engine.Row
			_, err := decodeRow(p, c.ck, c.v, &r)
			if c.wantOK {
				if err != nil || string(r.Key) != "k" || string(r.Value) != "v" || r.TS != 7 || r.Deleted {
					t.Fatalf("decodeRow = %+v, %v", r, err)
				}
				return
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeRow err = %v, want ErrCorrupt", err)
			}
		})
	}
}
