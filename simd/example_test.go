package simd_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/antientropy/grove/simd"
)

// Hash one level of a tree from the level below: four leaves make two
// parents, and the two parents make the root.
func ExampleHashPairs() {
	leaves := make([]byte, 4*32) // four all-zero leaves, side by side
	parents := make([]byte, 2*32)
	if err := simd.HashPairs(parents, leaves); err != nil {
		fmt.Println(err)
		return
	}
	root := make([]byte, 32)
	if err := simd.HashPairs(root, parents); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(hex.EncodeToString(parents[:32]))
	fmt.Println(hex.EncodeToString(root))

	// A parent is SHA-256(left ‖ right): the same root from crypto/sha256.
	r := sha256.Sum256(parents)
	fmt.Println(hex.EncodeToString(r[:]))
	// Output:
	// f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b
	// db56114e00fdd4c1f85c892bf35ac9a89289aaecb1ebd0a96cde606a748b5d71
	// db56114e00fdd4c1f85c892bf35ac9a89289aaecb1ebd0a96cde606a748b5d71
}
