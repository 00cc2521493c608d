package repair_test

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/engine/rowstore"
	"github.com/antientropy/grove/engine/token"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"
	"github.com/antientropy/grove/rpc"
)

// splitRing cuts Murmur3's ring into k ranges of equal width, in token
// order: a ring both nodes of a test derive alike.
func splitRing(k int) []token.Range {
	w := uint64(math.MaxUint64) / uint64(k)
	rs := make([]token.Range, k)
	lo := int64(math.MinInt64)
	for i := range rs {
		hi := int64(uint64(lo) + w)
		if i == k-1 {
			hi = math.MaxInt64
		}
		rs[i] = token.Range{Lo: lo, Hi: hi}
		lo = hi
	}
	return rs
}

// node is a test node: one in-memory replica per range, in token order.
type node struct {
	ranges []token.Range
	reps   []*rowstore.Replica
}

// newNode builds a node of ranges rs holding rows, the tree of range i at
// depth(i) (engine.AutoDepth: from its row count).
func newNode(t testing.TB, budget *arena.Budget, rs []token.Range, rows []engine.Row, depth func(i int) int) *node {
	t.Helper()
	ctx := context.Background()
	buckets := make([][]engine.Row, len(rs))
	p := token.Murmur3{}
	for _, r := range rows {
		i, ok := slices.BinarySearchFunc(rs, p.Token(r.Key), token.Range.Compare)
		if !ok {
			t.Fatalf("key %q is in none of the %d ranges", r.Key, len(rs))
		}
		buckets[i] = append(buckets[i], r)
	}
	n := &node{ranges: rs}
	for i, b := range buckets {
		st, err := rowstore.Load(ctx, p, &sliceSource{rows: b})
		if err != nil {
			t.Fatal(err)
		}
		tree, err := rowstore.BuildTree(ctx, st, engine.Options{Range: rs[i], Depth: depth(i), ExpectedRows: int64(len(b)), Budget: budget})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tree.Close() })
		n.reps = append(n.reps, rowstore.NewReplica(st, tree))
	}
	return n
}

func (n *node) replicas() []repair.Replica {
	out := make([]repair.Replica, len(n.reps))
	for i, r := range n.reps {
		out[i] = r
	}
	return out
}

func (n *node) responder(t testing.TB, opts repair.ResponderOptions) *repair.NodeResponder {
	t.Helper()
	r, err := repair.NewNodeResponder(n.replicas(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Shutdown)
	return r
}

// rows returns every row of the node.
func (n *node) rows(t testing.TB) []engine.Row {
	var out []engine.Row
	for _, r := range n.reps {
		out = append(out, rowsOf(t, r)...)
	}
	return out
}

// merged is the oracle of a repair: both row sets merged by brute force,
// key by key, the version that supersedes the other kept
// (engine.Supersedes), sorted by key.
func merged(a, b []engine.Row) []engine.Row {
	byKey := func(x, y engine.Row) int { return bytes.Compare(x.Key, y.Key) }
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortFunc(a, byKey)
	slices.SortFunc(b, byKey)
	out := make([]engine.Row, 0, max(len(a), len(b)))
	for len(a) > 0 || len(b) > 0 {
		var c int
		switch {
		case len(a) == 0:
			c = 1
		case len(b) == 0:
			c = -1
		default:
			c = byKey(a[0], b[0])
		}
		switch {
		case c < 0:
			out, a = append(out, a[0]), a[1:]
		case c > 0:
			out, b = append(out, b[0]), b[1:]
		default:
			w := b[0]
			if engine.Supersedes(&a[0], &b[0]) {
				w = a[0]
			}
			out, a, b = append(out, w), a[1:], b[1:]
		}
	}
	return out
}

// checkNodeHolds checks that a node holds exactly want, sorted by key, and
// that every range's live tree equals one rebuilt from its rows.
func checkNodeHolds(t *testing.T, n *node, want []engine.Row) {
	t.Helper()
	got := n.rows(t)
	slices.SortFunc(got, func(x, y engine.Row) int { return bytes.Compare(x.Key, y.Key) })
	if len(got) != len(want) {
		t.Fatalf("node holds %d rows, want %d", len(got), len(want))
	}
	for i, row := range got {
		w := want[i]
		if !bytes.Equal(w.Key, row.Key) || !bytes.Equal(w.Value, row.Value) || w.TS != row.TS || w.Deleted != row.Deleted {
			t.Fatalf("node holds %q = %+v, want %+v", row.Key, row, w)
		}
	}
	ctx := context.Background()
	for i, r := range n.reps {
		fresh, err := rowstore.BuildTree(ctx, r.Store(), engine.Options{Range: n.ranges[i], Depth: r.Tree().Depth(), Budget: arena.NewBudget(1 << 30)})
		if err != nil {
			t.Fatal(err)
		}
		a, err := r.Tree().Root()
		if err == nil {
			var b engine.Digest
			b, err = fresh.Root()
			if err == nil && a != b {
				err = fmt.Errorf("live root %x, rebuilt %x", a[:4], b[:4])
			}
		}
		fresh.Close()
		if err != nil {
			t.Fatalf("range %v: %v", n.ranges[i], err)
		}
	}
}

// nodeRows makes n rows with distinct keys.
func nodeRows(rnd *rand.Rand, n int) []engine.Row {
	rows := make([]engine.Row, n)
	for i := range rows {
		rows[i] = engine.Row{Key: fmt.Appendf(nil, "key-%08d", i), Value: fmt.Appendf(nil, "v%d", rnd.Uint32()), TS: 1000}
	}
	return rows
}

func auto(int) int { return engine.AutoDepth }

// TestNodeInSync: two nodes sharing 512 ranges, all in sync, cost one round
// trip and at most 4 KB both ways — the target — and every range is
// reported in sync.
func TestNodeInSync(t *testing.T) {
	budget := arena.NewBudget(8 << 30)
	rows := nodeRows(rand.New(rand.NewPCG(1, 1)), 50_000)
	rs := splitRing(512)
	a := newNode(t, budget, rs, rows, auto)
	b := newNode(t, budget, rs, rows, auto)
	res, err := repair.SyncNode(context.Background(), a.replicas(), b.responder(t, repair.ResponderOptions{}), repair.NodeOptions{Options: repair.Options{Repair: true}})
	if err != nil {
		t.Fatal(err)
	}
	total := res.BytesSent + res.BytesReceived
	t.Logf("512 ranges in sync: %d round trips, %d bytes sent, %d received", res.RoundTrips, res.BytesSent, res.BytesReceived)
	if res.RoundTrips != 1 || total > 4096 || !res.InSync() || res.Passes != 1 {
		t.Fatalf("%d round trips, %d bytes, in sync %v, %d passes: want 1 round trip, at most 4096 bytes, in sync, 1 pass", res.RoundTrips, total, res.InSync(), res.Passes)
	}
	if len(res.Ranges) != 512 {
		t.Fatalf("%d ranges reported, want 512", len(res.Ranges))
	}
	for _, r := range res.Ranges {
		if !r.InSync || r.Err != nil {
			t.Fatalf("range %v: %+v", r.Range, r)
		}
	}
}

// TestNodeOneKey: one differing key among 2 M rows over 512 ranges (fewer
// under -short or the race detector) is found and repaired in at most 6
// round trips and 4 KB both ways.
func TestNodeOneKey(t *testing.T) {
	n := 2_000_000
	if testing.Short() || raceEnabled {
		n = 100_000
	}
	ctx := context.Background()
	budget := arena.NewBudget(16 << 30)
	rnd := rand.New(rand.NewPCG(2, 2))
	rowsA := nodeRows(rnd, n)
	rowsB := slices.Clone(rowsA)
	k := rnd.IntN(n)
	rowsB[k].Value, rowsB[k].TS = []byte("newer"), 2000
	rs := splitRing(512)
	a := newNode(t, budget, rs, rowsA, auto)
	b := newNode(t, budget, rs, rowsB, auto)
	res, err := repair.SyncNode(ctx, a.replicas(), b.responder(t, repair.ResponderOptions{}), repair.NodeOptions{Options: repair.Options{Repair: true}})
	if err != nil {
		t.Fatal(err)
	}
	total := res.BytesSent + res.BytesReceived
	t.Logf("one key among %d rows in 512 ranges: %d round trips, %d bytes sent, %d received", n, res.RoundTrips, res.BytesSent, res.BytesReceived)
	if res.Differing != 1 || res.RoundTrips > 6 || total > 4096 {
		t.Fatalf("%d ranges differ, %d round trips, %d bytes: want 1, at most 6, at most 4096", res.Differing, res.RoundTrips, total)
	}
	var different int
	for _, r := range res.Ranges {
		different += len(r.Different)
		if !r.Converged {
			t.Fatalf("range %v did not converge: %+v", r.Range, r.Result)
		}
	}
	if different != 1 {
		t.Fatalf("%d different keys reported, want 1", different)
	}
	want := merged(rowsA, rowsB)
	checkNodeHolds(t, a, want)
	checkNodeHolds(t, b, want)
}

// TestNodeSessions: ranges of different depths on each side, several of
// them differing, converge through one node session: both nodes then hold
// the brute-force merge (engine.Supersedes), and the session's round trips
// are those of its deepest range plus the first, not the sum over ranges.
func TestNodeSessions(t *testing.T) {
	type change struct {
		rng  int    // range whose rows change
		n    int    // how many of its rows
		kind string // "value" (B newer), "delete" (B's tombstone), "drop" (A lacks), "add" (B only)
	}
	cases := []struct {
		name           string
		ranges         int
		depthA, depthB func(i int) int
		changes        []change
		keysOnly       bool
	}{
		{
			name: "one range", ranges: 16,
			depthA: func(int) int { return 10 }, depthB: func(int) int { return 10 },
			changes: []change{{3, 5, "value"}},
		},
		{
			name: "depths 2 to 16", ranges: 8,
			depthA: func(i int) int { return 2 + 2*i }, depthB: func(i int) int { return 16 - 2*i },
			changes: []change{{0, 3, "value"}, {2, 1, "drop"}, {5, 40, "add"}, {7, 2, "delete"}},
		},
		{
			name: "every range", ranges: 32,
			depthA: func(i int) int { return 4 + i%12 }, depthB: auto,
			changes: func() []change {
				var cs []change
				for i := range 32 {
					cs = append(cs, change{i, 1 + i%4, []string{"value", "delete", "drop", "add"}[i%4]})
				}
				return cs
			}(),
		},
		{
			name: "keys only", ranges: 8,
			depthA: func(int) int { return 12 }, depthB: func(i int) int { return 6 + i },
			changes:  []change{{1, 2, "value"}, {6, 3, "add"}},
			keysOnly: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			budget := arena.NewBudget(8 << 30)
			rs := splitRing(tc.ranges)
			rowsA := nodeRows(rand.New(rand.NewPCG(3, uint64(tc.ranges))), 20_000)
			byRange := make([][]int, tc.ranges)
			for i, r := range rowsA {
				j, _ := slices.BinarySearchFunc(rs, token.Murmur3{}.Token(r.Key), token.Range.Compare)
				byRange[j] = append(byRange[j], i)
			}
			rowsB := slices.Clone(rowsA)
			var drop []int
			for c, ch := range tc.changes {
				for k := range ch.n {
					i := byRange[ch.rng][k]
					switch ch.kind {
					case "value":
						rowsB[i].Value, rowsB[i].TS = fmt.Appendf(nil, "newer-%d", k), 5000
					case "delete":
						rowsB[i].Value, rowsB[i].TS, rowsB[i].Deleted = nil, 5000, true
					case "drop":
						drop = append(drop, i)
					case "add":
						// A key of this range that A lacks.
						for x := 0; ; x++ {
							key := fmt.Appendf(nil, "extra-%d-%d-%d", c, k, x)
							if rs[ch.rng].Contains(token.Murmur3{}.Token(key)) {
								rowsB = append(rowsB, engine.Row{Key: key, Value: []byte("b"), TS: 7})
								break
							}
						}
					}
				}
			}
			slices.Sort(drop)
			for _, i := range slices.Backward(drop) {
				rowsA = slices.Delete(rowsA, i, i+1)
			}
			onlyA, onlyB, diff, _ := expected(rowsA, rowsB)
			want := merged(rowsA, rowsB)
			a := newNode(t, budget, rs, rowsA, tc.depthA)
			b := newNode(t, budget, rs, rowsB, tc.depthB)
			res, err := repair.SyncNode(ctx, a.replicas(), b.responder(t, repair.ResponderOptions{}),
				repair.NodeOptions{Options: repair.Options{Repair: !tc.keysOnly, KeysOnly: tc.keysOnly}})
			if err != nil {
				t.Fatal(err)
			}
			var gotA, gotB, gotDiff []engine.Key
			deepest, sum, differing := 0, 0, 0
			for _, r := range res.Ranges {
				gotA, gotB, gotDiff = append(gotA, r.OnlyHere...), append(gotB, r.OnlyThere...), append(gotDiff, r.Different...)
				if !r.InSync {
					differing++
					deepest = max(deepest, r.RoundTrips)
					sum += r.RoundTrips
				}
			}
			if !slices.Equal(keyStrings(gotA), onlyA) || !slices.Equal(keyStrings(gotB), onlyB) || !slices.Equal(keyStrings(gotDiff), diff) {
				t.Fatalf("found %d only here, %d only there, %d different; want %d, %d, %d", len(gotA), len(gotB), len(gotDiff), len(onlyA), len(onlyB), len(diff))
			}
			t.Logf("%d ranges differ: %d round trips (deepest range %d, all ranges %d), %d bytes",
				differing, res.RoundTrips, deepest, sum, res.BytesSent+res.BytesReceived)
			if res.Differing != differing || res.RoundTrips != 1+deepest {
				t.Fatalf("%d ranges differ, %d round trips; want %d and 1 + the deepest range's %d", res.Differing, res.RoundTrips, differing, deepest)
			}
			if tc.keysOnly {
				return
			}
			checkNodeHolds(t, a, want)
			checkNodeHolds(t, b, want)
			again, err := repair.SyncNode(ctx, a.replicas(), b.responder(t, repair.ResponderOptions{}), repair.NodeOptions{})
			if err != nil || !again.InSync() || again.RoundTrips != 1 {
				t.Fatalf("after the repair: in sync %v, %d round trips, %v", again.InSync(), again.RoundTrips, err)
			}
		})
	}
}

// TestNodeIncompatible: a peer whose ranges are not those the initiator
// expects — another ring, another partitioner — is refused at the first
// round trip with ErrIncompatible, before any range is compared.
func TestNodeIncompatible(t *testing.T) {
	budget := arena.NewBudget(4 << 30)
	rows := nodeRows(rand.New(rand.NewPCG(4, 4)), 2000)
	a := newNode(t, budget, splitRing(16), rows, auto)
	cases := []struct {
		name       string
		peer       func(t *testing.T) repair.NodePeer
		peerRanges []token.Range
	}{
		{"another ring", func(t *testing.T) repair.NodePeer {
			return newNode(t, budget, splitRing(17), rows, auto).responder(t, repair.ResponderOptions{})
		}, nil},
		{"one range fewer", func(t *testing.T) repair.NodePeer {
			n := newNode(t, budget, splitRing(16), rows, auto)
			n.reps, n.ranges = n.reps[1:], n.ranges[1:]
			return n.responder(t, repair.ResponderOptions{})
		}, nil},
		{"ring says otherwise", func(t *testing.T) repair.NodePeer {
			return newNode(t, budget, splitRing(16), rows, auto).responder(t, repair.ResponderOptions{})
		}, splitRing(16)[:8]},
		{"another partitioner", func(t *testing.T) repair.NodePeer {
			st := rowstore.New(token.ByteOrdered{})
			tree, err := rowstore.BuildTree(context.Background(), st, engine.Options{Partitioner: token.ByteOrdered{}, Depth: 4, Budget: budget})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tree.Close() })
			r, err := repair.NewNodeResponder([]repair.Replica{rowstore.NewReplica(st, tree)}, repair.ResponderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}, splitRing(16)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := repair.SyncNode(context.Background(), a.replicas(), tc.peer(t), repair.NodeOptions{PeerRanges: tc.peerRanges})
			if !errors.Is(err, repair.ErrIncompatible) {
				t.Fatalf("got %v, want ErrIncompatible", err)
			}
		})
	}
}

// TestNodeSubset: the initiator shares only some of the peer's ranges
// (PeerRanges, as a ring gives them): only those are compared and repaired.
func TestNodeSubset(t *testing.T) {
	ctx := context.Background()
	budget := arena.NewBudget(4 << 30)
	rs := splitRing(16)
	rowsB := nodeRows(rand.New(rand.NewPCG(5, 5)), 8000)
	rowsA := slices.Clone(rowsB)
	for i := range rowsA {
		rowsA[i].TS = 9000 // A wins every key it shares
	}
	b := newNode(t, budget, rs, rowsB, auto)
	full := newNode(t, budget, rs, rowsA, auto)
	// A holds the even ranges only.
	a := &node{}
	for i := 0; i < len(rs); i += 2 {
		a.ranges, a.reps = append(a.ranges, full.ranges[i]), append(a.reps, full.reps[i])
	}
	res, err := repair.SyncNode(ctx, a.replicas(), b.responder(t, repair.ResponderOptions{}), repair.NodeOptions{Options: repair.Options{Repair: true}, PeerRanges: rs})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Ranges) != 8 || res.Differing != 8 {
		t.Fatalf("%d ranges compared, %d differing; want 8 and 8", len(res.Ranges), res.Differing)
	}
	for i, r := range b.reps {
		for _, row := range rowsOf(t, r) {
			if want := int64(1000 + 8000*int64(1-i%2)); row.TS != want {
				t.Fatalf("range %d: row %q at %d, want %d", i, row.Key, row.TS, want)
			}
		}
	}
}

// zeroFirst reads as zeros for its first n bytes, then as crypto/rand: a
// first salt of zeros makes every fingerprint zero, so every range's
// fingerprints collide.
type zeroFirst struct{ n int }

func (z *zeroFirst) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return crand.Read(p)
	}
	k := min(len(p), z.n)
	clear(p[:k])
	z.n -= k
	return k, nil
}

// TestNodeCollision: with fingerprints that collide for every range (a
// zero salt), the first round finds no range differing, but the sum of the
// "equal" ranges disagrees, so a second round with a new salt runs and
// finds and repairs the difference. Without the check the difference would
// wait for the next run.
func TestNodeCollision(t *testing.T) {
	ctx := context.Background()
	budget := arena.NewBudget(4 << 30)
	rs := splitRing(32)
	rowsA := nodeRows(rand.New(rand.NewPCG(6, 6)), 5000)
	rowsB := slices.Clone(rowsA)
	rowsB[17].Value, rowsB[17].TS = []byte("newer"), 2000
	a := newNode(t, budget, rs, rowsA, auto)
	b := newNode(t, budget, rs, rowsB, auto)
	res, err := repair.SyncNode(ctx, a.replicas(), b.responder(t, repair.ResponderOptions{}),
		repair.NodeOptions{Options: repair.Options{Repair: true, Rand: &zeroFirst{n: repair.SaltBytes}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Passes != 2 || res.Differing != 1 {
		t.Fatalf("%d passes, %d ranges differing; want 2 and 1", res.Passes, res.Differing)
	}
	want := merged(rowsA, rowsB)
	checkNodeHolds(t, a, want)
	checkNodeHolds(t, b, want)

	// A Rand that only ever gives zeros never gets past the check.
	_, err = repair.SyncNode(ctx, a.replicas(), b.responder(t, repair.ResponderOptions{}),
		repair.NodeOptions{Options: repair.Options{Rand: &zeroFirst{n: math.MaxInt}}})
	if err != nil {
		t.Fatalf("in sync with zero salts: %v", err) // all equal: the sums agree
	}
}

// TestNodeDeferred: under a message limit too small for every range's
// answers at once, the responder defers calls and the initiator sends them
// again: more round trips, same outcome.
func TestNodeDeferred(t *testing.T) {
	ctx := context.Background()
	budget := arena.NewBudget(4 << 30)
	rs := splitRing(16)
	rowsA := nodeRows(rand.New(rand.NewPCG(7, 7)), 16_000)
	rowsB := slices.Clone(rowsA)
	for i := range rowsB {
		if i%10 == 0 {
			rowsB[i].Value, rowsB[i].TS = bytes.Repeat([]byte("x"), 100), 3000
		}
	}
	a := newNode(t, budget, rs, rowsA, auto)
	b := newNode(t, budget, rs, rowsB, auto)
	const limit = 64 << 10
	res, err := repair.SyncNode(ctx, a.replicas(), b.responder(t, repair.ResponderOptions{MaxMessageBytes: limit}),
		repair.NodeOptions{Options: repair.Options{Repair: true, MaxMessageBytes: limit}})
	if err != nil {
		t.Fatal(err)
	}
	deepest := 0
	for _, r := range res.Ranges {
		deepest = max(deepest, r.RoundTrips)
	}
	if res.RoundTrips <= 1+deepest {
		t.Fatalf("%d round trips for a deepest range of %d: the limit should have split batches", res.RoundTrips, deepest)
	}
	want := merged(rowsA, rowsB)
	checkNodeHolds(t, a, want)
	checkNodeHolds(t, b, want)
}

// TestNodeResponderRejects: every field of the node session's messages is
// checked; a bad one fails with the sentinel and names the field.
func TestNodeResponderRejects(t *testing.T) {
	ctx := context.Background()
	budget := arena.NewBudget(4 << 30)
	rs := splitRing(10)
	n := newNode(t, budget, rs, nodeRows(rand.New(rand.NewPCG(8, 8)), 1000), auto)
	r := n.responder(t, repair.ResponderOptions{})
	hash := repair.RangesHash(token.Murmur3{}, rs)
	good := func() *grovev1.RangesRequest {
		shared := repair.NewBitmap(10)
		for i := range 10 {
			repair.SetBit(shared, i)
		}
		return &grovev1.RangesRequest{Protocol: repair.ProtocolVersion, Format: engine.FormatVersion, Partitioner: uint32(token.Murmur3{}.ID()),
			Count: 10, RangesHash: hash[:], Shared: shared, Salt: make([]byte, repair.SaltBytes), Fingerprints: make([]byte, 40)}
	}
	if _, err := r.Ranges(ctx, good()); err != nil {
		t.Fatalf("a good request: %v", err)
	}
	ranges := []struct {
		name  string
		edit  func(*grovev1.RangesRequest)
		want  error
		field string
	}{
		{"protocol", func(q *grovev1.RangesRequest) { q.Protocol = 99 }, repair.ErrIncompatible, "protocol"},
		{"partitioner", func(q *grovev1.RangesRequest) { q.Partitioner = 2 }, repair.ErrIncompatible, "partitioner"},
		{"count", func(q *grovev1.RangesRequest) { q.Count = 11 }, repair.ErrIncompatible, "ranges"},
		{"hash", func(q *grovev1.RangesRequest) { q.RangesHash = bytes.Repeat([]byte{1}, 16) }, repair.ErrIncompatible, "ranges"},
		{"hash length", func(q *grovev1.RangesRequest) { q.RangesHash = hash[:8] }, repair.ErrBadMessage, "ranges_hash"},
		{"shared length", func(q *grovev1.RangesRequest) { q.Shared = q.Shared[:1] }, repair.ErrBadMessage, "ranges.shared"},
		{"shared padding", func(q *grovev1.RangesRequest) { q.Shared[1] |= 0x80 }, repair.ErrBadMessage, "ranges.shared"},
		{"shared none", func(q *grovev1.RangesRequest) { clear(q.Shared) }, repair.ErrBadMessage, "ranges.shared"},
		{"salt", func(q *grovev1.RangesRequest) { q.Salt = q.Salt[:5] }, repair.ErrBadMessage, "salt"},
		{"fingerprints", func(q *grovev1.RangesRequest) { q.Fingerprints = q.Fingerprints[:36] }, repair.ErrBadMessage, "ranges.fingerprints"},
	}
	for _, tc := range ranges {
		t.Run("ranges/"+tc.name, func(t *testing.T) {
			q := good()
			tc.edit(q)
			_, err := r.Ranges(ctx, q)
			if !errors.Is(err, tc.want) || !bytes.Contains([]byte(err.Error()), []byte(tc.field)) {
				t.Fatalf("got %v, want %v naming %s", err, tc.want, tc.field)
			}
		})
	}
	close := func(i uint32) *grovev1.RangeCall {
		return &grovev1.RangeCall{Range: i, Call: &grovev1.RangeCall_Close{Close: &grovev1.CloseRequest{}}}
	}
	batches := []struct {
		name  string
		calls []*grovev1.RangeCall
		field string
	}{
		{"empty", nil, "batch.calls"},
		{"unknown range", []*grovev1.RangeCall{close(10)}, "batch.calls[0].range"},
		{"twice", []*grovev1.RangeCall{close(3), close(3)}, "batch.calls[1].range"},
		{"no call", []*grovev1.RangeCall{{Range: 2}}, "batch.calls[0].call"},
		{"too many", slices.Repeat([]*grovev1.RangeCall{close(0)}, 11), "batch.calls"},
	}
	for _, tc := range batches {
		t.Run("batch/"+tc.name, func(t *testing.T) {
			_, err := r.Batch(ctx, &grovev1.BatchRequest{Calls: tc.calls})
			if !errors.Is(err, repair.ErrBadMessage) || !bytes.Contains([]byte(err.Error()), []byte(tc.field)) {
				t.Fatalf("got %v, want ErrBadMessage naming %s", err, tc.field)
			}
		})
	}
	// A call that fails alone is its own answer, with its sentinel's code.
	resp, err := r.Batch(ctx, &grovev1.BatchRequest{Calls: []*grovev1.RangeCall{close(4)}})
	if err != nil {
		t.Fatal(err)
	}
	if e := resp.GetAnswers()[0].GetError(); e.GetCode() != repair.Code(repair.ErrUnknownSession) {
		t.Fatalf("closing no session: answer %v, want code %q", resp.GetAnswers()[0], repair.Code(repair.ErrUnknownSession))
	}
}

// lyingPeer answers a node session's Batch with answers of the wrong kind
// or number.
type lyingPeer struct {
	repair.NodePeer
	edit func(*grovev1.BatchResponse)
}

func (l *lyingPeer) Batch(ctx context.Context, req *grovev1.BatchRequest) (*grovev1.BatchResponse, error) {
	resp, err := l.NodePeer.Batch(ctx, req)
	if err == nil {
		l.edit(resp)
	}
	return resp, err
}

// TestNodeLyingPeer: an answer a range's session cannot use fails that
// range's session with ErrBadMessage, and nothing is applied.
func TestNodeLyingPeer(t *testing.T) {
	ctx := context.Background()
	budget := arena.NewBudget(4 << 30)
	rs := splitRing(4)
	rowsA := nodeRows(rand.New(rand.NewPCG(9, 9)), 2000)
	rowsB := slices.Clone(rowsA)
	rowsB[0].TS = 5000
	cases := []struct {
		name string
		edit func(*grovev1.BatchResponse)
	}{
		{"wrong kind", func(r *grovev1.BatchResponse) {
			r.Answers[0] = &grovev1.RangeAnswer{Answer: &grovev1.RangeAnswer_Push{Push: &grovev1.PushResponse{}}}
		}},
		{"too few", func(r *grovev1.BatchResponse) { r.Answers = r.Answers[:0] }},
		{"all deferred", func(r *grovev1.BatchResponse) {
			r.Answers[0] = &grovev1.RangeAnswer{Answer: &grovev1.RangeAnswer_Deferred{Deferred: true}}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newNode(t, budget, rs, rowsA, auto)
			b := newNode(t, budget, rs, rowsB, auto)
			before := a.rows(t)
			res, err := repair.SyncNode(ctx, a.replicas(), &lyingPeer{NodePeer: b.responder(t, repair.ResponderOptions{}), edit: tc.edit}, repair.NodeOptions{Options: repair.Options{Repair: true}})
			if !errors.Is(err, repair.ErrBadMessage) || res == nil || res.Differing != 1 {
				t.Fatalf("got %v, want ErrBadMessage after finding one range differing", err)
			}
			if after := a.rows(t); !slices.EqualFunc(before, after, func(x, y engine.Row) bool { return engine.RowDigest(&x) == engine.RowDigest(&y) }) {
				t.Fatal("rows applied despite the failure")
			}
		})
	}
}

var _ io.Reader = (*zeroFirst)(nil)

// serveNode serves a node responder's both services on one loopback port,
// as grove-pebble serve does, and returns a client of it.
func serveNode(t testing.TB, nr *repair.NodeResponder) *rpc.Client {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(rpc.NewHandler(nr, rpc.HandlerOptions{}))
	mux.Handle(rpc.NewNodeHandler(nr, rpc.HandlerOptions{}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(mux, nil)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c, err := rpc.NewClient("http://"+ln.Addr().String(), rpc.ClientOptions{CallTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdle)
	return c
}

// TestNodeOverRPC runs node sessions over Connect/gRPC on loopback: the
// figures are those of the in-process sessions (message bytes do not depend
// on the transport), one HTTP call per round trip, the per-range service
// still answers on the same port, and a sentinel crosses the wire.
func TestNodeOverRPC(t *testing.T) {
	ctx := context.Background()
	budget := arena.NewBudget(8 << 30)
	rs := splitRing(512)
	rowsA := nodeRows(rand.New(rand.NewPCG(10, 10)), 100_000)
	rowsB := slices.Clone(rowsA)
	a := newNode(t, budget, rs, rowsA, auto)
	b := newNode(t, budget, rs, rowsB, auto)
	c := serveNode(t, b.responder(t, repair.ResponderOptions{}))

	res, err := repair.SyncNode(ctx, a.replicas(), c, repair.NodeOptions{Options: repair.Options{Repair: true}})
	if err != nil {
		t.Fatal(err)
	}
	if res.RoundTrips != 1 || res.BytesSent+res.BytesReceived > 4096 || c.Stats().Calls != 1 {
		t.Fatalf("in sync: %d round trips, %d bytes, %d calls; want 1, at most 4096, 1", res.RoundTrips, res.BytesSent+res.BytesReceived, c.Stats().Calls)
	}
	t.Logf("512 ranges in sync over rpc: %d protocol bytes, %d wire bytes", res.BytesSent+res.BytesReceived, c.Stats().WireBytesWritten+c.Stats().WireBytesRead)

	// One range's row differs on B: B's own per-range service finds it too.
	k := 4242
	newer := engine.Row{Key: rowsA[k].Key, Value: []byte("newer"), TS: 2000}
	j, _ := slices.BinarySearchFunc(rs, token.Murmur3{}.Token(newer.Key), token.Range.Compare)
	if _, err := b.reps[j].Apply(ctx, []engine.Row{newer}); err != nil {
		t.Fatal(err)
	}
	one, err := repair.Sync(ctx, a.reps[j], c, repair.Options{})
	if err != nil || len(one.Different) != 1 {
		t.Fatalf("per-range session on the same port: %v, %+v", err, one)
	}
	calls := c.Stats().Calls
	res, err = repair.SyncNode(ctx, a.replicas(), c, repair.NodeOptions{Options: repair.Options{Repair: true}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Differing != 1 || res.RoundTrips > 6 || res.BytesSent+res.BytesReceived > 4096 || c.Stats().Calls-calls != int64(res.RoundTrips) {
		t.Fatalf("one key: %d differing, %d round trips, %d bytes, %d calls", res.Differing, res.RoundTrips, res.BytesSent+res.BytesReceived, c.Stats().Calls-calls)
	}
	rowsB[k] = newer
	want := merged(rowsA, rowsB)
	checkNodeHolds(t, a, want)
	checkNodeHolds(t, b, want)

	other := newNode(t, budget, splitRing(256), rowsA[:1000], auto)
	if _, err := repair.SyncNode(ctx, other.replicas(), c, repair.NodeOptions{}); !errors.Is(err, repair.ErrIncompatible) {
		t.Fatalf("another ring over rpc: %v, want ErrIncompatible", err)
	}
}

// BenchmarkNodeSync measures node sessions over loopback Connect/gRPC
// between two nodes of 512 ranges: all in sync, and one differing key
// among 2 M rows (re-made before each iteration, outside the timer); and,
// for comparison, 512 per-range sessions of the nodes in sync. It
// reports round trips and protocol bytes (both ways) per session, which
// are deterministic, and the bytes on the wire.
func BenchmarkNodeSync(b *testing.B) {
	ctx := context.Background()
	budget := arena.NewBudget(16 << 30)
	rs := splitRing(512)
	rows := nodeRows(rand.New(rand.NewPCG(11, 11)), 2_000_000)
	na := newNode(b, budget, rs, rows, auto)
	nb := newNode(b, budget, rs, rows, auto)
	c := serveNode(b, nb.responder(b, repair.ResponderOptions{}))
	run := func(b *testing.B, diverge func(i int)) {
		var trips, bytes int64
		w0 := c.Stats()
		for i := range b.N {
			if diverge != nil {
				b.StopTimer()
				diverge(i)
				b.StartTimer()
			}
			res, err := repair.SyncNode(ctx, na.replicas(), c, repair.NodeOptions{Options: repair.Options{Repair: true}})
			if err != nil {
				b.Fatal(err)
			}
			if diverge != nil && res.Differing != 1 {
				b.Fatalf("iteration %d of %d: %d ranges differ, want 1", i, b.N, res.Differing)
			}
			trips += int64(res.RoundTrips)
			bytes += res.BytesSent + res.BytesReceived
		}
		w := c.Stats()
		b.ReportMetric(float64(trips)/float64(b.N), "round-trips/op")
		b.ReportMetric(float64(bytes)/float64(b.N), "protocol-B/op")
		b.ReportMetric(float64(w.WireBytesWritten+w.WireBytesRead-w0.WireBytesWritten-w0.WireBytesRead)/float64(b.N), "wire-B/op")
	}
	b.Run("512-in-sync", func(b *testing.B) { run(b, nil) })
	// The same, one per-range session per range (what sync --ring did
	// before node sessions), for comparison.
	b.Run("512-in-sync-per-range", func(b *testing.B) {
		var trips, bytes int64
		for range b.N {
			for _, r := range na.reps {
				res, err := repair.Sync(ctx, r, c, repair.Options{Repair: true})
				if err != nil || !res.InSync {
					b.Fatal(err)
				}
				trips += int64(res.RoundTrips)
				bytes += res.BytesSent + res.BytesReceived
			}
		}
		b.ReportMetric(float64(trips)/float64(b.N), "round-trips/op")
		b.ReportMetric(float64(bytes)/float64(b.N), "protocol-B/op")
	})
	// Outside b.Run's function, which runs once per b.N tried: every
	// iteration of every run must change a row anew.
	rnd := rand.New(rand.NewPCG(12, 12))
	ts := int64(10_000)
	b.Run("512-one-key-2M-rows", func(b *testing.B) {
		run(b, func(int) {
			k := rnd.IntN(len(rows))
			ts++
			row := engine.Row{Key: rows[k].Key, Value: fmt.Appendf(nil, "newer-%d", ts), TS: ts}
			j, _ := slices.BinarySearchFunc(rs, token.Murmur3{}.Token(row.Key), token.Range.Compare)
			if _, err := nb.reps[j].Apply(ctx, []engine.Row{row}); err != nil {
				b.Fatal(err)
			}
		})
	})
}
