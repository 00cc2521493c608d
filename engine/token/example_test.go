package token_test

import (
	"fmt"
	"math"

	"github.com/antientropy/grove/engine/token"
)

func ExampleMurmur3() {
	// The partition key of CQL int 1 is its 4-byte big-endian encoding.
	key := []byte{0x00, 0x00, 0x00, 0x01}
	fmt.Println(token.Murmur3{}.Token(key))
	// Output: -4069959284402364209
}

func ExampleRange_LeafOf() {
	ring := token.Murmur3{}.Range()
	t := token.Murmur3{}.Token([]byte{0x00, 0x00, 0x00, 0x01})
	i := ring.LeafOf(t, 2)
	fmt.Println(ring.Width() == math.MaxUint64, i, ring.Leaf(i, 2))
	// Output: true 1 (-4611686018427387905, -1]
}
