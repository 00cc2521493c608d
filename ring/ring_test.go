package ring

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/antientropy/grove/engine/token"
)

// ringJSON writes a ring description: nodes n1..nN, each with its tokens.
func ringJSON(part string, rf int, tokens [][]int64) []byte {
	type node struct {
		ID      string   `json:"id"`
		Address string   `json:"address"`
		Tokens  []string `json:"tokens"`
	}
	f := struct {
		Partitioner string `json:"partitioner"`
		RF          int    `json:"replication_factor"`
		Nodes       []node `json:"nodes"`
	}{Partitioner: part, RF: rf}
	for i, ts := range tokens {
		n := node{ID: fmt.Sprintf("n%d", i+1), Address: fmt.Sprintf("http://127.0.0.1:%d", 7101+i)}
		for _, t := range ts {
			n.Tokens = append(n.Tokens, strconv.FormatInt(t, 10))
		}
		f.Nodes = append(f.Nodes, n)
	}
	b, err := json.Marshal(f)
	if err != nil {
		panic(err)
	}
	return b
}

// randomTokens gives nodes×per distinct random tokens, as vnodes would
// have.
func randomTokens(rnd *rand.Rand, nodes, per int) [][]int64 {
	seen := map[int64]bool{}
	out := make([][]int64, nodes)
	for i := range out {
		for len(out[i]) < per {
			t := int64(rnd.Uint64())
			if t == math.MinInt64 || seen[t] {
				continue
			}
			seen[t] = true
			out[i] = append(out[i], t)
		}
	}
	return out
}

// bruteReplicas is an independent SimpleStrategy: the replicas of token x
// are the first rf distinct owners among all ring tokens ordered by their
// clockwise distance from x (a token equal to x is at distance 0: it ends
// the range holding x). It sorts every token by modular distance rather
// than walking a sorted ring.
func bruteReplicas(tokens [][]int64, rf int, x int64) []string {
	type tk struct {
		dist uint64
		node int
	}
	var all []tk
	for n, ts := range tokens {
		for _, t := range ts {
			all = append(all, tk{uint64(t) - uint64(x), n})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].dist < all[j].dist })
	var ids []string
	for _, t := range all {
		id := fmt.Sprintf("n%d", t.node+1)
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
		if len(ids) == rf {
			break
		}
	}
	return ids
}

// TestPlacementMatchesBruteForce: a 6-node ring with 16 tokens a node and
// RF 3. Every node's ranges and peers are checked against bruteReplicas at
// each range's ends and at random tokens inside it, and every token of the
// ring lies in exactly RF nodes' ranges.
func TestPlacementMatchesBruteForce(t *testing.T) {
	for seed := range uint64(5) {
		rnd := rand.New(rand.NewPCG(seed, 1))
		tokens := randomTokens(rnd, 6, 16)
		r, err := Parse(ringJSON("murmur3", 3, tokens))
		if err != nil {
			t.Fatal(err)
		}
		byNode := map[string][]Replica{}
		for i := range 6 {
			id := fmt.Sprintf("n%d", i+1)
			if byNode[id], err = r.RangesOf(id); err != nil {
				t.Fatal(err)
			}
		}
		// Probe tokens: every range end, the token just past every ring
		// token, the ring's extremes, and random ones.
		var probes []int64
		for _, ts := range tokens {
			for _, tk := range ts {
				probes = append(probes, tk, tk+1)
			}
		}
		probes = append(probes, math.MinInt64+1, math.MaxInt64)
		for range 2000 {
			probes = append(probes, int64(rnd.Uint64())|1)
		}
		for _, x := range probes {
			if x == math.MinInt64 {
				continue
			}
			want := bruteReplicas(tokens, 3, x)
			var holders []string
			for id, reps := range byNode {
				for _, rep := range reps {
					if !rep.Range.Contains(x) {
						continue
					}
					holders = append(holders, id)
					wantPeers := slices.DeleteFunc(slices.Clone(want), func(s string) bool { return s == id })
					if !slices.Equal(rep.Peers, wantPeers) {
						t.Fatalf("seed %d: token %d in %s of node %s: peers %v, brute force %v", seed, x, rep.Range, id, rep.Peers, wantPeers)
					}
				}
			}
			slices.Sort(holders)
			sortedWant := slices.Sorted(slices.Values(want))
			if !slices.Equal(holders, sortedWant) {
				t.Fatalf("seed %d: token %d held by %v, brute force %v", seed, x, holders, sortedWant)
			}
		}
		// 96 tokens make 96 ranges, one of them split where it wraps.
		if n := len(r.Ranges()); n != 97 {
			t.Fatalf("seed %d: %d ranges, want 97", seed, n)
		}
	}
}

// TestRangesTileTheRing: the ring's ranges are in token order, each
// non-empty, each starting where the last ended, from the bottom of the
// partitioner's ring to its top, for rings with tokens at the extremes too.
func TestRangesTileTheRing(t *testing.T) {
	full := token.Murmur3{}.Range()
	for _, tc := range []struct {
		name   string
		tokens [][]int64
		ranges int
	}{
		{"one token", [][]int64{{0}}, 2},
		{"token at the top", [][]int64{{math.MaxInt64}, {0}}, 2},
		{"token at the bottom", [][]int64{{math.MinInt64}, {0}}, 2},
		{"both extremes", [][]int64{{math.MinInt64}, {math.MaxInt64}}, 1},
		{"three nodes", [][]int64{{-5, 100}, {7}, {math.MaxInt64 - 1}}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse(ringJSON("murmur3", 1, tc.tokens))
			if err != nil {
				t.Fatal(err)
			}
			rs := r.Ranges()
			if len(rs) != tc.ranges {
				t.Fatalf("%d ranges, want %d: %v", len(rs), tc.ranges, rs)
			}
			lo := full.Lo
			for _, rg := range rs {
				if rg.Range.Lo != lo || rg.Range.Valid() != nil {
					t.Fatalf("range %s after %d: %v", rg.Range, lo, rs)
				}
				lo = rg.Range.Hi
			}
			if lo != full.Hi {
				t.Fatalf("ranges end at %d, the ring at %d", lo, full.Hi)
			}
		})
	}
}

// TestBadRings: each bad description is ErrBadRing with a message naming
// what was wrong and where.
func TestBadRings(t *testing.T) {
	good := `{"partitioner": "murmur3", "replication_factor": 2, "nodes": [
		{"id": "n1", "address": "http://a", "tokens": ["-9100000000000000000", "17"]},
		{"id": "n2", "address": "http://b", "tokens": ["5"]}]}`
	if _, err := Parse([]byte(good)); err != nil {
		t.Fatalf("the good ring: %v", err)
	}
	for _, tc := range []struct{ name, ring, says string }{
		{"not JSON", `{"partitioner": `, "not a ring description"},
		{"unknown field", strings.Replace(good, `"replication_factor"`, `"replication"`, 1), `unknown field "replication"`},
		{"two values", good + good, "more than one JSON value"},
		{"unknown partitioner", strings.Replace(good, "murmur3", "random", 1), `partitioner "random"`},
		{"RF above the nodes", strings.Replace(good, `"replication_factor": 2`, `"replication_factor": 3`, 1), "replication_factor 3: want 1..2"},
		{"RF zero", strings.Replace(good, `"replication_factor": 2`, `"replication_factor": 0`, 1), "replication_factor 0"},
		{"duplicate node id", strings.Replace(good, `"id": "n2"`, `"id": "n1"`, 1), `node "n1" appears twice`},
		{"duplicate token across nodes", strings.Replace(good, `"tokens": ["5"]`, `"tokens": ["17"]`, 1), `token 17 belongs to both node "n1" and node "n2"`},
		{"duplicate token in a node", strings.Replace(good, `"tokens": ["5"]`, `"tokens": ["5", "5"]`, 1), `node "n2" gives token 5 twice`},
		{"token not a number", strings.Replace(good, `"5"`, `"five"`, 1), `node "n2", token 1: "five" is not a decimal int64`},
		{"token above int64", strings.Replace(good, `"5"`, `"9223372036854775808"`, 1), `"9223372036854775808" is not a decimal int64`},
		{"token as a JSON number", strings.Replace(good, `"5"`, `5`, 1), `node "n2", token 1: 5 is not a string`},
		{"no tokens", strings.Replace(good, `"tokens": ["5"]`, `"tokens": []`, 1), `node "n2": no tokens`},
		{"no id", strings.Replace(good, `"id": "n2", `, ``, 1), "node 2: no id"},
		{"no address", strings.Replace(good, `"address": "http://b", `, ``, 1), `node "n2": no address`},
		{"no nodes", `{"partitioner": "murmur3", "replication_factor": 1, "nodes": []}`, "no nodes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse([]byte(tc.ring))
			if !errors.Is(err, ErrBadRing) {
				t.Fatalf("Parse: %v, %v; want ErrBadRing", r, err)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("error %q does not say %q", err, tc.says)
			}
		})
	}
}

func TestRangesOfUnknownNode(t *testing.T) {
	r, err := Parse(ringJSON("murmur3", 1, [][]int64{{1}, {2}}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.RangesOf("n9"); !errors.Is(err, ErrUnknownNode) || !strings.Contains(err.Error(), `"n1", "n2"`) {
		t.Fatalf("RangesOf(n9): %v", err)
	}
}
