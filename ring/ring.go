// Package ring reads a cluster's ring description and places its token
// ranges on nodes as Cassandra's SimpleStrategy does: which ranges a node
// replicates, and which other nodes hold each of them. A storage node keeps
// one tree per range it replicates and repairs each with its peers.
//
// The ring description is JSON:
//
//	{"partitioner": "murmur3", "replication_factor": 3,
//	 "nodes": [{"id": "n1", "address": "http://127.0.0.1:7101", "tokens": ["-9100000000000000000", "17"]}]}
//
// Tokens are decimal int64 strings, so that no JSON reader rounds them. The
// range (previous token, t] belongs first to the node that owns t, then to
// the next replication_factor − 1 distinct nodes clockwise, wrapping at the
// end of the ring. The range that wraps past the top of the ring is two
// grove ranges, one at each end.
package ring

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"

	"github.com/antientropy/grove/engine/token"
)

// Node is one node of the ring.
type Node struct {
	// ID names the node; it is unique in the ring.
	ID string
	// Address is where the node serves repair sessions, a URL.
	Address string
	// Tokens are the node's positions on the ring, in ascending order.
	Tokens []token.Token
}

// Ring is a parsed, checked ring description. It is immutable and safe for
// concurrent use.
type Ring struct {
	partitioner token.Partitioner
	rf          int
	nodes       []Node
	byID        map[string]int
	// ranges are the ring's ranges in token order, each with its replicas.
	ranges []Range
}

// Range is one range of the ring and the nodes that replicate it.
type Range struct {
	// Range is the tokens it covers, (Lo, Hi].
	Range token.Range
	// Replicas are the IDs of the nodes that hold it: first the owner of
	// the token that ends it, then the others clockwise.
	Replicas []string
}

// Replica is a range a node replicates, seen from that node.
type Replica struct {
	// Range is the tokens it covers, (Lo, Hi].
	Range token.Range
	// Peers are the IDs of the other nodes that replicate it, in placement
	// order.
	Peers []string
}

// file is the JSON form of a ring description.
type file struct {
	Partitioner       string     `json:"partitioner"`
	ReplicationFactor int        `json:"replication_factor"`
	Nodes             []fileNode `json:"nodes"`
}

type fileNode struct {
	ID      string            `json:"id"`
	Address string            `json:"address"`
	Tokens  []json.RawMessage `json:"tokens"`
}

// Load reads and checks the ring description at path. Its errors name the
// file.
func Load(path string) (*Ring, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ring: %w", err)
	}
	r, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// Read reads and checks a ring description from rd.
func Read(rd io.Reader) (*Ring, error) {
	data, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("ring: %w", err)
	}
	return Parse(data)
}

// Parse checks a ring description and places its ranges. A description
// that is not valid JSON of the expected shape, names an unknown
// partitioner, repeats a node id or a token, gives a token that is not a
// decimal int64, or asks for more replicas than there are nodes gives an
// error wrapping ErrBadRing that says what was wrong and where.
func Parse(data []byte) (*Ring, error) {
	var f file
	dec := json.NewDecoder(bytes.NewReader(data))
	// A misspelt field would otherwise be ignored and its default used.
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, bad("not a ring description: %v", err)
	}
	if dec.More() {
		return nil, bad("more than one JSON value")
	}
	p, err := token.ByName(f.Partitioner)
	if err != nil {
		return nil, bad("partitioner %q: want %q or %q", f.Partitioner, token.Murmur3{}.Name(), token.ByteOrdered{}.Name())
	}
	if len(f.Nodes) == 0 {
		return nil, bad("no nodes")
	}
	r := &Ring{partitioner: p, rf: f.ReplicationFactor, byID: make(map[string]int, len(f.Nodes))}
	owner := map[token.Token]string{}
	full := p.Range()
	for i, fn := range f.Nodes {
		where := fmt.Sprintf("node %d", i+1)
		if fn.ID == "" {
			return nil, bad("%s: no id", where)
		}
		where = fmt.Sprintf("node %q", fn.ID)
		if _, dup := r.byID[fn.ID]; dup {
			return nil, bad("%s appears twice", where)
		}
		if fn.Address == "" {
			return nil, bad("%s: no address", where)
		}
		if len(fn.Tokens) == 0 {
			return nil, bad("%s: no tokens", where)
		}
		n := Node{ID: fn.ID, Address: fn.Address, Tokens: make([]token.Token, 0, len(fn.Tokens))}
		for j, raw := range fn.Tokens {
			t, err := parseToken(raw)
			if err != nil {
				return nil, bad("%s, token %d: %v", where, j+1, err)
			}
			if t < full.Lo || t > full.Hi {
				return nil, bad("%s, token %d: %d is outside the %s ring %s", where, j+1, t, p.Name(), full)
			}
			if other, dup := owner[t]; dup {
				if other == fn.ID {
					return nil, bad("%s gives token %d twice", where, t)
				}
				return nil, bad("token %d belongs to both node %q and node %q", t, other, fn.ID)
			}
			owner[t] = fn.ID
			n.Tokens = append(n.Tokens, t)
		}
		slices.Sort(n.Tokens)
		r.byID[fn.ID] = len(r.nodes)
		r.nodes = append(r.nodes, n)
	}
	if r.rf < 1 || r.rf > len(r.nodes) {
		return nil, bad("replication_factor %d: want 1..%d, the number of nodes", r.rf, len(r.nodes))
	}
	r.ranges = r.place()
	return r, nil
}

// parseToken reads one token: a JSON string holding a decimal int64.
func parseToken(raw json.RawMessage) (token.Token, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("%s is not a string: tokens are decimal int64 strings, such as \"-9100000000000000000\"", raw)
	}
	t, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a decimal int64", s)
	}
	return t, nil
}

func bad(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRing, fmt.Sprintf(format, a...))
}

// point is one token of the ring and the node that owns it.
type point struct {
	tok  token.Token
	node int
}

// place computes every range of the ring and its replicas, in token order.
func (r *Ring) place() []Range {
	var pts []point
	for i, n := range r.nodes {
		for _, t := range n.Tokens {
			pts = append(pts, point{t, i})
		}
	}
	slices.SortFunc(pts, func(a, b point) int { return cmp.Compare(a.tok, b.tok) })
	full := r.partitioner.Range()
	var out []Range
	// The first token's range wraps: (bottom, first token] here, and
	// (last token, top] at the end; either may be empty.
	first, last := pts[0], pts[len(pts)-1]
	wrap := r.replicas(pts, 0)
	if first.tok > full.Lo {
		out = append(out, Range{Range: token.Range{Lo: full.Lo, Hi: first.tok}, Replicas: wrap})
	}
	for i := 1; i < len(pts); i++ {
		out = append(out, Range{Range: token.Range{Lo: pts[i-1].tok, Hi: pts[i].tok}, Replicas: r.replicas(pts, i)})
	}
	if last.tok < full.Hi {
		out = append(out, Range{Range: token.Range{Lo: last.tok, Hi: full.Hi}, Replicas: slices.Clone(wrap)})
	}
	return out
}

// replicas walks the ring clockwise from point i and returns the first rf
// distinct nodes it meets.
func (r *Ring) replicas(pts []point, i int) []string {
	ids := make([]string, 0, r.rf)
	seen := make([]bool, len(r.nodes))
	for k := 0; len(ids) < r.rf; k++ {
		n := pts[(i+k)%len(pts)].node
		if !seen[n] {
			seen[n] = true
			ids = append(ids, r.nodes[n].ID)
		}
	}
	return ids
}

// Partitioner is the ring's partitioner.
func (r *Ring) Partitioner() token.Partitioner { return r.partitioner }

// ReplicationFactor is how many nodes hold each range.
func (r *Ring) ReplicationFactor() int { return r.rf }

// Nodes returns the ring's nodes, in the order the description lists them.
func (r *Ring) Nodes() []Node {
	out := make([]Node, len(r.nodes))
	for i, n := range r.nodes {
		out[i] = Node{ID: n.ID, Address: n.Address, Tokens: slices.Clone(n.Tokens)}
	}
	return out
}

// Node returns the node with the given id.
func (r *Ring) Node(id string) (Node, bool) {
	i, ok := r.byID[id]
	if !ok {
		return Node{}, false
	}
	n := r.nodes[i]
	return Node{ID: n.ID, Address: n.Address, Tokens: slices.Clone(n.Tokens)}, true
}

// Ranges returns every range of the ring with its replicas, in token order.
// Together they cover the partitioner's whole ring exactly once.
func (r *Ring) Ranges() []Range {
	out := make([]Range, len(r.ranges))
	for i, rg := range r.ranges {
		out[i] = Range{Range: rg.Range, Replicas: slices.Clone(rg.Replicas)}
	}
	return out
}

// RangesOf returns the ranges node id replicates, in token order, each with
// its peers. An id the ring does not name gives an error wrapping
// ErrUnknownNode.
func (r *Ring) RangesOf(id string) ([]Replica, error) {
	if _, ok := r.byID[id]; !ok {
		return nil, fmt.Errorf("%w: %q (the ring names %s)", ErrUnknownNode, id, r.idList())
	}
	var out []Replica
	for _, rg := range r.ranges {
		if !slices.Contains(rg.Replicas, id) {
			continue
		}
		peers := make([]string, 0, len(rg.Replicas)-1)
		for _, p := range rg.Replicas {
			if p != id {
				peers = append(peers, p)
			}
		}
		out = append(out, Replica{Range: rg.Range, Peers: peers})
	}
	return out, nil
}

// TokenRanges returns the ranges of reps, in their order: what a node
// opened on them (grovepebble.Options.Ranges) or a node session
// (repair.NodeOptions.PeerRanges) takes.
func TokenRanges(reps []Replica) []token.Range {
	out := make([]token.Range, len(reps))
	for i, r := range reps {
		out[i] = r.Range
	}
	return out
}

// idList names the ring's nodes for an error message.
func (r *Ring) idList() string {
	const most = 8
	var b bytes.Buffer
	for i, n := range r.nodes {
		if i == most {
			fmt.Fprintf(&b, ", … (%d in all)", len(r.nodes))
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(n.ID))
	}
	return b.String()
}

// Sentinel errors, for errors.Is.
var (
	// ErrBadRing means a ring description that cannot be used.
	ErrBadRing = errors.New("ring: bad ring description")
	// ErrUnknownNode means a node id the ring does not name.
	ErrUnknownNode = errors.New("ring: no such node")
)
