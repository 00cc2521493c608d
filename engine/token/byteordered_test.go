package token

import (
	"bytes"
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestByteOrderedValues(t *testing.T) {
	var p ByteOrdered
	for _, c := range []struct {
		key  string
		want Token
	}{
		// The all-zero prefix is clamped into the ring.
		{"", math.MinInt64 + 1},
		{"\x00", math.MinInt64 + 1},
		{"\x00\x00\x00\x00\x00\x00\x00\x00", math.MinInt64 + 1},
		{"\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff", math.MinInt64 + 1},
		{"\x00\x00\x00\x00\x00\x00\x00\x01", math.MinInt64 + 1},
		{"\x00\x00\x00\x00\x00\x00\x00\x02", math.MinInt64 + 2},
		{"\x01", math.MinInt64 + 1<<56},
		{"\x7f\xff\xff\xff\xff\xff\xff\xff", -1},
		{"\x80", 0},
		{"\x80\x00\x00\x00\x00\x00\x00\x01", 1},
		{"a", 'a'<<56 - 1<<63},
		{"ab", 'a'<<56 | 'b'<<48 - 1<<63},
		{"\xff\xff\xff\xff\xff\xff\xff\xff", math.MaxInt64},
		{"\xff\xff\xff\xff\xff\xff\xff\xff\x00", math.MaxInt64},
		// Keys sharing their first 8 bytes share a token.
		{"abcdefgh", 0x6162636465666768 - 1<<63},
		{"abcdefghZZZ", 0x6162636465666768 - 1<<63},
	} {
		got := p.Token([]byte(c.key))
		if got != c.want {
			t.Errorf("Token(%x) = %d, want %d", c.key, got, c.want)
		}
		if !p.Range().Contains(got) {
			t.Errorf("Token(%x) = %d outside the ring", c.key, got)
		}
	}
}

func pad8(k []byte) []byte {
	var p [8]byte
	copy(p[:], k)
	return p[:]
}

// TestByteOrderedOrder checks, on random keys with many shared prefixes,
// that token order is byte order of the zero-padded 8-byte prefix, except
// that the clamped bottom (prefixes 00..00 and 00..01) is one token.
func TestByteOrderedOrder(t *testing.T) {
	var p ByteOrdered
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte{0x00, 0x01, 0x7f, 0x80, 0x81, 0xfe, 0xff}
	keys := make([][]byte, 3000)
	for i := range keys {
		k := make([]byte, rng.IntN(13))
		for j := range k {
			if rng.IntN(2) == 0 {
				k[j] = alphabet[rng.IntN(len(alphabet))]
			} else {
				k[j] = byte(rng.Uint32())
			}
		}
		keys[i] = k
	}
	bottom := []byte{0, 0, 0, 0, 0, 0, 0, 1}
	for i := 0; i < 20000; i++ {
		a, b := keys[rng.IntN(len(keys))], keys[rng.IntN(len(keys))]
		ta, tb := p.Token(a), p.Token(b)
		pa, pb := pad8(a), pad8(b)
		want := bytes.Compare(pa, pb)
		if bytes.Compare(pa, bottom) <= 0 && bytes.Compare(pb, bottom) <= 0 {
			want = 0
		}
		if got := cmp.Compare(ta, tb); got != want {
			t.Fatalf("keys %x, %x: token order %d, prefix order %d", a, b, got, want)
		}
	}
	// Sorting by bytes sorts by token (not strictly).
	slices.SortFunc(keys, bytes.Compare)
	for i := 1; i < len(keys); i++ {
		if p.Token(keys[i-1]) > p.Token(keys[i]) {
			t.Fatalf("keys %x < %x but tokens %d > %d", keys[i-1], keys[i], p.Token(keys[i-1]), p.Token(keys[i]))
		}
	}
}

func TestByteOrderedAllocs(t *testing.T) {
	var p Partitioner = ByteOrdered{}
	short, long := []byte("abc"), []byte("abcdefghijkl")
	if a := testing.AllocsPerRun(1000, func() { _ = p.Token(short); _ = p.Token(long) }); a != 0 {
		t.Fatalf("ByteOrdered.Token allocates %v times", a)
	}
}
