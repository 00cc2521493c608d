package repair_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"

	// Dot-imported, as in repair_test.go.
	. "github.com/antientropy/grove/engine/repair"
)

// inSubtree keeps the rows under subtree s of the whole Murmur3 range.
func inSubtree(rows []engine.Row, s Subtree, in bool) []engine.Row {
	span := s.Tokens(token.Murmur3{}.Range())
	var out []engine.Row
	for _, r := range rows {
		if span.Contains(token.Murmur3{}.Token(r.Key)) == in {
			out = append(out, r)
		}
	}
	return out
}

// afterSubtree is what a replica holding rows must hold after a subtree
// session with a peer holding peer repaired s: the merge of both sides'
// rows under s, its own rows elsewhere, untouched.
func afterSubtree(rows, peer []engine.Row, s Subtree) map[string]engine.Row {
	_, _, _, merged := expected(inSubtree(rows, s, true), inSubtree(peer, s, true))
	for _, r := range inSubtree(rows, s, false) {
		merged[string(r.Key)] = r
	}
	return merged
}

// TestSubtreeMatchesBruteForce runs subtree sessions over several shapes of
// divergence and checks, against a brute-force comparison of the rows under
// the subtree, the keys found, and after the repair that both sides hold
// the merge under the subtree and their own rows, untouched, elsewhere.
func TestSubtreeMatchesBruteForce(t *testing.T) {
	cases := []struct {
		name           string
		rows, diverge  int
		depthA, depthB int
		sub            Subtree
	}{
		{"half", 3000, 40, 10, 10, Subtree{Level: 1, Index: 1}},
		{"an eighth", 3000, 60, 10, 10, Subtree{Level: 3, Index: 5}},
		{"depths differ", 3000, 60, 12, 7, Subtree{Level: 2, Index: 2}},
		{"a leaf", 3000, 200, 6, 6, Subtree{Level: 6, Index: 17}},
		{"a leaf of the shallower", 3000, 200, 9, 4, Subtree{Level: 4, Index: 9}},
		{"dense leaves", 20_000, 30, 3, 3, Subtree{Level: 2, Index: 3}},
		{"wholly different", 2000, 2000, 5, 5, Subtree{Level: 1, Index: 0}},
		{"whole range", 2000, 20, 8, 8, Subtree{}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			rnd := rand.New(rand.NewPCG(uint64(i), 314))
			a, b := diverge(rnd, baseRows(rnd, tc.rows), tc.diverge)
			onlyA, onlyB, diff, _ := expected(inSubtree(a, tc.sub, true), inSubtree(b, tc.sub, true))
			if len(onlyA)+len(onlyB)+len(diff) == 0 {
				t.Fatal("no difference under the subtree: the case tests nothing")
			}
			ra, rb := newReplica(t, a, tc.depthA), newReplica(t, b, tc.depthB)
			resp := NewResponder(rb, ResponderOptions{})
			res, err := Sync(ctx, ra, resp, Options{Repair: true, Subtree: tc.sub})
			if err != nil {
				t.Fatal(err)
			}
			if got := keyStrings(res.OnlyHere); !slices.Equal(got, onlyA) {
				t.Fatalf("only here: got %q, want %q", got, onlyA)
			}
			if got := keyStrings(res.OnlyThere); !slices.Equal(got, onlyB) {
				t.Fatalf("only there: got %q, want %q", got, onlyB)
			}
			if got := keyStrings(res.Different); !slices.Equal(got, diff) {
				t.Fatalf("different: got %q, want %q", got, diff)
			}
			if !res.Converged || res.InSync {
				t.Fatalf("converged %v, in sync %v", res.Converged, res.InSync)
			}
			if n := resp.Sessions(); n != 0 {
				t.Fatalf("%d sessions left open", n)
			}
			checkHolds(t, ra, afterSubtree(a, b, tc.sub), tc.depthA)
			checkHolds(t, rb, afterSubtree(b, a, tc.sub), tc.depthB)
			again, err := Sync(ctx, ra, resp, Options{Subtree: tc.sub})
			if err != nil || !again.InSync || again.RoundTrips != 1 {
				t.Fatalf("the subtree after its repair: in sync %v in %d round trips, %v", again.InSync, again.RoundTrips, err)
			}
		})
	}
}

// TestSubtreeHalvesEqualWhole: the two halves of a range, each repaired by
// its own subtree session, leave both replicas as one whole-range repair
// does, and a whole-range session then finds them in sync.
func TestSubtreeHalvesEqualWhole(t *testing.T) {
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(5, 6))
	a, b := diverge(rnd, baseRows(rnd, 4000), 150)
	_, _, _, merged := expected(a, b)
	ra, rb := newReplica(t, a, 10), newReplica(t, b, 9)
	resp := NewResponder(rb, ResponderOptions{})
	found := 0
	for _, half := range (Subtree{}).Halves() {
		res, err := Sync(ctx, ra, resp, Options{Repair: true, Subtree: half})
		if err != nil || !res.Converged {
			t.Fatalf("half %v: converged %v, %v", half, res.Converged, err)
		}
		found += len(res.OnlyHere) + len(res.OnlyThere) + len(res.Different)
	}
	onlyA, onlyB, diff, _ := expected(a, b)
	if want := len(onlyA) + len(onlyB) + len(diff); found != want {
		t.Fatalf("the halves found %d keys, the whole range holds %d", found, want)
	}
	checkHolds(t, ra, merged, 10)
	checkHolds(t, rb, merged, 9)
	res, err := Sync(ctx, ra, resp, Options{})
	if err != nil || !res.InSync {
		t.Fatalf("whole range after both halves: in sync %v, %v", res.InSync, err)
	}
}

// TestSubtreeCost: a subtree that agrees costs one round trip as a whole
// range does, even while the rest of the range differs and its rows stay
// untouched; one differing key under a subtree costs about what it costs a
// whole-range session.
func TestSubtreeCost(t *testing.T) {
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(7, 8))
	base := baseRows(rnd, 100_000)
	b := slices.Clone(base)
	// One differing key, under the second half of the range.
	var k int
	for k = range b {
		if (Subtree{Level: 1, Index: 1}).Tokens(token.Murmur3{}.Range()).Contains(token.Murmur3{}.Token(b[k].Key)) {
			break
		}
	}
	b[k].Value = []byte("corrupted")
	ra, rb := newReplica(t, base, 20), newReplica(t, b, 20)
	resp := NewResponder(rb, ResponderOptions{})

	whole, err := Sync(ctx, ra, resp, Options{Subtree: Subtree{}})
	if err != nil || len(whole.Different) != 1 {
		t.Fatalf("whole range: %d keys, %v", len(whole.Different), err)
	}
	same, err := Sync(ctx, ra, resp, Options{Repair: true, Subtree: Subtree{Level: 1, Index: 0}})
	if err != nil || !same.InSync || same.RoundTrips != 1 {
		t.Fatalf("identical half: in sync %v in %d round trips, %v", same.InSync, same.RoundTrips, err)
	}
	deep, err := Sync(ctx, ra, resp, Options{Subtree: Subtree{Level: 7, Index: 3}})
	if err != nil || !deep.InSync || deep.RoundTrips != 1 {
		t.Fatalf("identical subtree at level 7: in sync %v in %d round trips, %v", deep.InSync, deep.RoundTrips, err)
	}
	one, err := Sync(ctx, ra, resp, Options{Repair: true, Subtree: Subtree{Level: 1, Index: 1}})
	if err != nil || len(one.Different) != 1 || !one.Converged {
		t.Fatalf("differing half: %d keys, converged %v, %v", len(one.Different), one.Converged, err)
	}
	t.Logf("identical subtree 1/0: %d B, %d round trip; 7/3: %d B; one differing key of 100k under 1/1 at depth 20: %d B, %d round trips (whole range, keys only: %d B, %d round trips)",
		same.BytesSent+same.BytesReceived, same.RoundTrips, deep.BytesSent+deep.BytesReceived,
		one.BytesSent+one.BytesReceived, one.RoundTrips, whole.BytesSent+whole.BytesReceived, whole.RoundTrips)
	if n := one.BytesSent + one.BytesReceived; n > 8000 {
		t.Errorf("one differing key under a subtree: %d bytes, over 8 KB", n)
	}
	if !slices.EqualFunc(rowsOf(t, ra), rowsOf(t, rb), func(x, y engine.Row) bool { return engine.RowDigest(&x) == engine.RowDigest(&y) }) {
		t.Fatal("replicas differ after the repair of the half holding the difference")
	}
	if n := resp.Sessions(); n != 0 {
		t.Fatalf("%d sessions left open", n)
	}
	// Whole-range sessions are untouched by the subtree fields, which are
	// not sent at their zero values: an identical range costs what it did.
	inSync, err := Sync(ctx, ra, resp, Options{})
	if err != nil || !inSync.InSync || inSync.RoundTrips != 1 {
		t.Fatalf("whole range after the repair: in sync %v in %d round trips, %v", inSync.InSync, inSync.RoundTrips, err)
	}
	w, s := inSync.BytesSent+inSync.BytesReceived, same.BytesSent+same.BytesReceived
	t.Logf("identical whole range: %d B", w)
	if w != 168 {
		t.Errorf("identical whole range: %d B, want 168 as under protocol 3", w)
	}
	if s > w+8 {
		t.Errorf("identical subtree: %d B, whole range %d B; want the subtree fields' few bytes more", s, w)
	}
}

// TestSubtreeRefused: subtree fields that name no node, or one below the
// meeting depth, are refused at Hello with the sentinel that says so, on
// either side; a subtree session's responder refuses pushed rows outside
// the subtree's differing nodes.
func TestSubtreeRefused(t *testing.T) {
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(9, 10))
	base := baseRows(rnd, 2000)
	other := slices.Clone(base)
	for i := range other {
		other[i].Value = fmt.Appendf(nil, "changed-%d", i)
	}
	a, b := newReplica(t, base, 6), newReplica(t, other, 5)
	r := NewResponder(b, ResponderOptions{})
	hello := func(level uint32, index uint64) (*grovev1.HelloResponse, error) {
		view, release, err := a.View(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		var sum [1]engine.Digest
		if level <= 6 && index < 1<<level {
			if err := view.Sums(ctx, int(level), int(index), sum[:]); err != nil {
				t.Fatal(err)
			}
		}
		return r.Hello(ctx, &grovev1.HelloRequest{Params: ParamsOf(a.Shape()), Sum: sum[0][:], Salt: make([]byte, SaltBytes), Levels: 2, SubtreeLevel: level, SubtreeIndex: index})
	}
	for _, tc := range []struct {
		name  string
		level uint32
		index uint64
		want  error
	}{
		{"index past the level's nodes", 3, 8, ErrBadMessage},
		{"index at level 0", 0, 1, ErrBadMessage},
		{"level past any session's depth", MaxSessionDepth + 1, 0, ErrBadMessage},
		{"level far past", 1 << 31, 0, ErrBadMessage},
		{"below the responder's depth", 6, 0, ErrIncompatible},
	} {
		if _, err := hello(tc.level, tc.index); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if r.Sessions() != 0 {
		t.Fatalf("%d sessions open after refused hellos", r.Sessions())
	}
	if _, err := Sync(ctx, a, r, Options{Subtree: Subtree{Level: 7}}); !errors.Is(err, ErrIncompatible) {
		t.Errorf("a subtree below the initiator's depth: %v, want ErrIncompatible", err)
	}
	if _, err := Sync(ctx, a, r, Options{Subtree: Subtree{Level: 2, Index: 4}}); !errors.Is(err, ErrIncompatible) {
		t.Errorf("an initiator's subtree index past its level: %v, want ErrIncompatible", err)
	}
	if _, err := Sync(ctx, a, r, Options{Subtree: Subtree{Level: 6}}); !errors.Is(err, ErrIncompatible) {
		t.Errorf("a subtree below the responder's depth: %v, want ErrIncompatible", err)
	}

	// A session over leaf 9 at the meeting depth 5: its one node is the
	// frontier, reconciled straight away.
	sub := Subtree{Level: 5, Index: 9}
	resp, err := hello(5, 9)
	if err != nil || len(resp.GetSession()) == 0 || resp.GetBand() != nil {
		t.Fatalf("hello over a leaf: %v, %v", resp, err)
	}
	id := resp.GetSession()
	if _, err := r.Reconcile(ctx, &grovev1.ReconcileRequest{Session: id, Differ: []byte{1}, Counts: []uint32{0}}); err != nil {
		t.Fatal(err)
	}
	inside, outside := inSubtree(base, sub, true), inSubtree(base, sub, false)
	push := func(row engine.Row) error {
		_, err := r.Push(ctx, &grovev1.PushRequest{Session: id, Rows: []*grovev1.Row{{Key: row.Key, Value: row.Value, Ts: row.TS + 1}}})
		return err
	}
	if err := push(inside[0]); err != nil {
		t.Fatalf("a row under the subtree: %v", err)
	}
	before := rowsOf(t, b)
	if err := push(outside[0]); !errors.Is(err, ErrBadMessage) {
		t.Fatalf("a row outside the subtree: %v, want ErrBadMessage", err)
	}
	if r.Sessions() != 0 {
		t.Fatal("the session survived a row pushed outside its subtree")
	}
	after := rowsOf(t, b)
	if !slices.EqualFunc(before, after, func(x, y engine.Row) bool { return engine.RowDigest(&x) == engine.RowDigest(&y) }) {
		t.Fatal("a refused push changed rows")
	}
}

// TestSubtreeBandOutside: a band that a responder answers for a subtree
// session is checked against the subtree's node, as the first band of a
// whole range is against the root: a lying peer whose band starts
// anywhere else fails the session with ErrBadMessage.
func TestSubtreeBandOutside(t *testing.T) {
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(11, 12))
	a, b := diverge(rnd, baseRows(rnd, 2000), 50)
	ra, rb := newReplica(t, a, 8), newReplica(t, b, 8)
	for name, corrupt := range map[string]func(*grovev1.HelloResponse){
		"band from the root":   func(m *grovev1.HelloResponse) { m.Band.Level = 2; m.Band.Values = make([]byte, 3*FingerprintBytes) },
		"band too deep":        func(m *grovev1.HelloResponse) { m.Band.Level = 9 },
		"no band":              func(m *grovev1.HelloResponse) { m.Band = nil },
		"band values too long": func(m *grovev1.HelloResponse) { m.Band.Values = append(m.Band.Values, 0, 0, 0, 0) },
	} {
		peer := &helloLiar{Responder: NewResponder(rb, ResponderOptions{}), corrupt: corrupt}
		_, err := Sync(ctx, ra, peer, Options{Repair: true, Subtree: Subtree{Level: 3, Index: 6}, FirstLevels: 2})
		if !errors.Is(err, ErrBadMessage) {
			t.Errorf("%s: %v, want ErrBadMessage", name, err)
		}
		if n := peer.Sessions(); n != 0 {
			t.Errorf("%s: %d sessions left open", name, n)
		}
	}
	checkHolds(t, ra, maps.Collect(func(yield func(string, engine.Row) bool) {
		for _, r := range a {
			if !yield(string(r.Key), r) {
				return
			}
		}
	}), 8)
}

// helloLiar rewrites a responder's Hello answers.
type helloLiar struct {
	*Responder
	corrupt func(*grovev1.HelloResponse)
}

func (h *helloLiar) Hello(ctx context.Context, r *grovev1.HelloRequest) (*grovev1.HelloResponse, error) {
	m, err := h.Responder.Hello(ctx, r)
	if err == nil && len(m.GetSession()) != 0 {
		h.corrupt(m)
	}
	return m, err
}

// TestSubtreeOverRPC: the subtree fields cross the wire, and a subtree
// session over Connect repairs its half of the range and nothing else.
func TestSubtreeOverRPC(t *testing.T) {
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(13, 14))
	a, b := diverge(rnd, baseRows(rnd, 3000), 80)
	ra, rb := newReplica(t, a, 9), newReplica(t, b, 9)
	url, _ := serve(t, NewResponder(rb, ResponderOptions{}), 1<<20)
	c := client(t, url, 1<<20)
	sub := Subtree{Level: 1, Index: 0}
	res, err := Sync(ctx, ra, c, Options{Repair: true, Subtree: sub})
	if err != nil || !res.Converged {
		t.Fatalf("converged %v, %v", res.Converged, err)
	}
	checkHolds(t, ra, afterSubtree(a, b, sub), 9)
	checkHolds(t, rb, afterSubtree(b, a, sub), 9)
	sum, _ := ra.Sum(ctx)
	if _, err := c.Hello(ctx, &grovev1.HelloRequest{Params: ParamsOf(ra.Shape()), Sum: sum[:], Salt: make([]byte, SaltBytes), Levels: 1, SubtreeLevel: 3, SubtreeIndex: 9}); !errors.Is(err, ErrBadMessage) {
		t.Fatalf("a subtree index past its level over the wire: %v, want ErrBadMessage", err)
	}
}
