// Package ringtest makes ring descriptions for tests: random vnode rings
// in which a node's tokens do not depend on how many nodes follow it, so
// that a ring of n+1 nodes is the ring of n with one node joined.
package ringtest

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/ring"
)

// JSON returns the description of a Murmur3 ring of nodes nodes, "n1"
// to "nN" at http://127.0.0.1:7101 on, each with tokens random tokens
// drawn from seed, and replication factor rf.
func JSON(nodes, tokens, rf int, seed uint64) []byte {
	rnd := rand.New(rand.NewPCG(seed, 9))
	var b strings.Builder
	fmt.Fprintf(&b, `{"partitioner": "murmur3", "replication_factor": %d, "nodes": [`, rf)
	for n := range nodes {
		if n > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id": "n%d", "address": "http://127.0.0.1:%d", "tokens": [`, n+1, 7101+n)
		for k := range tokens {
			if k > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "%q", strconv.FormatInt(int64(rnd.Uint64()>>1)-int64(rnd.Uint64()>>1), 10))
		}
		b.WriteString("]}")
	}
	b.WriteString("]}")
	return []byte(b.String())
}

// Random parses JSON(nodes, tokens, rf, seed), failing t if it does not.
func Random(t testing.TB, nodes, tokens, rf int, seed uint64) *ring.Ring {
	t.Helper()
	r, err := ring.Parse(JSON(nodes, tokens, rf, seed))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// RangesOf returns the ranges node id replicates in r, in token order.
func RangesOf(t testing.TB, r *ring.Ring, id string) []token.Range {
	t.Helper()
	reps, err := r.RangesOf(id)
	if err != nil {
		t.Fatal(err)
	}
	return ring.TokenRanges(reps)
}
