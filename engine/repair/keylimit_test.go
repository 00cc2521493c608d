package repair_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/rowstore"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"

	// Dot-imported, as in repair_test.go.
	. "github.com/antientropy/grove/engine/repair"
)

// TestOversizedKeyFailsAlone: a row whose key is over MaxKeyBytes, on
// either side, is reported (among the keys, and in Refused) but never moved,
// and every other differing row is still repaired. A keys-only session
// reports it like any other key.
func TestOversizedKeyFailsAlone(t *testing.T) {
	huge := engine.Row{Key: bytes.Repeat([]byte("h"), MaxKeyBytes+1), Value: []byte("v"), TS: 7}
	base := []engine.Row{
		{Key: []byte("a"), Value: []byte("1"), TS: 1},
		{Key: []byte("b"), Value: []byte("2"), TS: 1},
		{Key: []byte("c"), Value: []byte("3"), TS: 1},
	}
	only := func(rs ...engine.Row) []engine.Row { return append(slices.Clone(base), rs...) }
	newer := engine.Row{Key: []byte("b"), Value: []byte("22"), TS: 2}
	extra := engine.Row{Key: []byte("d"), Value: []byte("4"), TS: 1}
	tests := []struct {
		name       string
		here, peer []engine.Row
	}{
		// The peer holds the huge row: it must not be applied here.
		{"at the peer", only(extra), append(only(huge), newer)},
		// This side holds it: it must not be pushed.
		{"here", append(only(huge), newer), only(extra)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, keysOnly := range []bool{true, false} {
				a, b := newReplica(t, tc.here, 8), newReplica(t, tc.peer, 8)
				res, err := Sync(context.Background(), a, NewResponder(b, ResponderOptions{}), Options{Repair: !keysOnly, KeysOnly: keysOnly})
				if err != nil {
					t.Fatalf("keysOnly=%v: %v", keysOnly, err)
				}
				all := slices.Concat(res.OnlyHere, res.OnlyThere, res.Different)
				if !slices.ContainsFunc(all, func(k engine.Key) bool { return bytes.Equal(k.Key, huge.Key) }) {
					t.Fatalf("keysOnly=%v: the huge key is not reported", keysOnly)
				}
				if keysOnly {
					if len(res.Refused) != 0 {
						t.Fatalf("a keys-only session refused %d keys", len(res.Refused))
					}
					continue
				}
				if len(res.Refused) != 1 || !bytes.Equal(res.Refused[0].Key, huge.Key) || res.Converged {
					t.Fatalf("Refused = %d keys, Converged = %v; want the huge key, not converged", len(res.Refused), res.Converged)
				}
				// Every other row converged, by Cassandra's rule; the huge
				// row stayed where it was.
				want := only(newer, extra)
				want = slices.DeleteFunc(want, func(r engine.Row) bool { return bytes.Equal(r.Key, []byte("b")) && r.TS == 1 })
				for _, side := range []struct {
					name    string
					r       *rowstore.Replica
					hasHuge bool
				}{{"here", a, slices.ContainsFunc(tc.here, func(r engine.Row) bool { return len(r.Key) > MaxKeyBytes })}, {"peer", b, slices.ContainsFunc(tc.peer, func(r engine.Row) bool { return len(r.Key) > MaxKeyBytes })}} {
					got := rowsOf(t, side.r)
					got = slices.DeleteFunc(got, func(r engine.Row) bool { return len(r.Key) > MaxKeyBytes })
					if !sameRowSet(got, want) {
						t.Fatalf("%s holds %v, want %v", side.name, keysOfRows(got), keysOfRows(want))
					}
					if _, ok := side.r.Store().Get(huge.Key); ok != side.hasHuge {
						t.Fatalf("%s: holds the huge row = %v, want %v", side.name, ok, side.hasHuge)
					}
				}
			}
		})
	}
}

// TestResponderSkipsOversizedPushedRow: a pushed row over MaxKeyBytes is
// dropped alone; the rest of the commit applies and the session does not
// fail.
func TestResponderSkipsOversizedPushedRow(t *testing.T) {
	ctx := context.Background()
	r, id, b := openSession(t)
	leaves := descendToLeaves(t, r, id)
	if _, err := r.Reconcile(ctx, &grovev1.ReconcileRequest{Session: id, Differ: leaves}); err != nil {
		t.Fatal(err)
	}
	// A key in a differing leaf, for the row that must land.
	var key []byte
	shape := ShapeOf(r)
	for i := 0; ; i++ {
		key = []byte{'z', byte(i), byte(i >> 8)}
		leaf := shape.Range.LeafOf(shape.Partitioner.Token(key), 8)
		if leaves[leaf/8]&(1<<(leaf%8)) != 0 {
			break
		}
	}
	resp, err := r.Commit(ctx, &grovev1.CommitRequest{Session: id, Rows: []*grovev1.Row{
		{Key: make([]byte, MaxKeyBytes+1), Value: []byte("big"), Ts: 1},
		{Key: key, Value: []byte("lands"), Ts: 1},
	}})
	if err != nil {
		t.Fatalf("commit with one oversized row: %v", err)
	}
	if resp.GetApplied() != 1 {
		t.Fatalf("applied %d rows, want 1", resp.GetApplied())
	}
	if got, ok := b.Store().Get(key); !ok || string(got.Value) != "lands" {
		t.Fatal("the valid row did not land")
	}
	if _, ok := b.Store().Get(make([]byte, MaxKeyBytes+1)); ok {
		t.Fatal("the oversized row landed")
	}
}

func sameRowSet(a, b []engine.Row) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]engine.Digest{}
	for _, r := range a {
		m[string(r.Key)] = engine.RowDigest(&r)
	}
	for _, r := range b {
		if d, ok := m[string(r.Key)]; !ok || d != engine.RowDigest(&r) {
			return false
		}
	}
	return true
}

func keysOfRows(rs []engine.Row) []string {
	var out []string
	for _, r := range rs {
		out = append(out, string(r.Key[:min(len(r.Key), 8)]))
	}
	return out
}

// lossyReplica drops every row Apply is given: a write lost after the
// session, which the final sum check must catch.
type lossyReplica struct{ *rowstore.Replica }

func (lossyReplica) Apply(ctx context.Context, rows []engine.Row) (int, error) { return 0, nil }

// TestRefusedKeyKeepsTheSumCheck: with a refused key in the session, a
// repair whose other rows did not all land still fails ErrNotConverged: the
// check allows for exactly the refused rows' difference, nothing more.
func TestRefusedKeyKeepsTheSumCheck(t *testing.T) {
	huge := engine.Row{Key: bytes.Repeat([]byte("h"), MaxKeyBytes+1), Value: []byte("v"), TS: 7}
	here := []engine.Row{{Key: []byte("a"), Value: []byte("1"), TS: 1}}
	peer := []engine.Row{{Key: []byte("a"), Value: []byte("2"), TS: 2}, huge}
	a, b := newReplica(t, here, 8), newReplica(t, peer, 8)
	_, err := Sync(context.Background(), lossyReplica{a}, NewResponder(b, ResponderOptions{}), Options{Repair: true})
	if !errors.Is(err, ErrNotConverged) {
		t.Fatalf("got %v, want ErrNotConverged", err)
	}
}
