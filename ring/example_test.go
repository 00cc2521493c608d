package ring_test

import (
	"fmt"
	"strings"

	"github.com/antientropy/grove/ring"
)

// Which ranges a node replicates, and with whom. n2 owns (-100, 0] and
// holds the range before it in the ring, which wraps past the top: (200,
// -100] becomes two grove ranges.
func Example() {
	r, err := ring.Read(strings.NewReader(`{"partitioner": "murmur3", "replication_factor": 2, "nodes": [
		{"id": "n1", "address": "http://127.0.0.1:7101", "tokens": ["-100", "100"]},
		{"id": "n2", "address": "http://127.0.0.1:7102", "tokens": ["0"]},
		{"id": "n3", "address": "http://127.0.0.1:7103", "tokens": ["200"]}]}`))
	if err != nil {
		panic(err)
	}
	ranges, _ := r.RangesOf("n2")
	for _, rg := range ranges {
		fmt.Println(rg.Range, "with", rg.Peers)
	}
	// Output:
	// (-9223372036854775808, -100] with [n1]
	// (-100, 0] with [n1]
	// (200, 9223372036854775807] with [n1]
}
