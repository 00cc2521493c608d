package repair_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/antientropy/grove/engine/rowstore"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"

	// Dot-imported, as in repair_test.go.
	. "github.com/antientropy/grove/engine/repair"
)

// openSession opens a session on a responder whose replica differs from
// ours in one row, with a first band of one level, as a hostile initiator
// would before misbehaving.
func openSession(t *testing.T) (*Responder, []byte, *rowstore.Replica) {
	t.Helper()
	rnd := rand.New(rand.NewPCG(21, 22))
	base := baseRows(rnd, 2000)
	other := slices.Clone(base)
	other[5].Value = []byte("x")
	a, b := newReplica(t, base, 8), newReplica(t, other, 8)
	r := NewResponder(b, ResponderOptions{})
	sum, _ := a.Sum(context.Background())
	hello, err := r.Hello(context.Background(), &grovev1.HelloRequest{
		Params: ParamsOf(a.Shape()), Sum: sum[:], Salt: make([]byte, SaltBytes), Levels: 1,
	})
	if err != nil || len(hello.GetSession()) == 0 || len(hello.GetBand().GetValues()) != FingerprintBytes {
		t.Fatalf("hello: %v %v", hello, err)
	}
	return r, hello.GetSession(), b
}

// TestResponderRefuses sends each kind of malformed or out-of-order request
// a hostile initiator could: each fails with the sentinel that names it,
// ends the session, and changes no row.
func TestResponderRefuses(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		call func(r *Responder, id []byte) error
		want error
	}{
		{"unknown session", func(r *Responder, id []byte) error {
			_, err := r.Descend(ctx, &grovev1.DescendRequest{Session: []byte("nope"), Differ: []byte{1}, Levels: 1})
			return err
		}, ErrUnknownSession},
		{"bitmap too long", func(r *Responder, id []byte) error {
			_, err := r.Descend(ctx, &grovev1.DescendRequest{Session: id, Differ: []byte{1, 0}, Levels: 1})
			return err
		}, ErrBadMessage},
		{"bitmap bits past its end", func(r *Responder, id []byte) error {
			_, err := r.Descend(ctx, &grovev1.DescendRequest{Session: id, Differ: []byte{0x05}, Levels: 1})
			return err
		}, ErrBadMessage},
		{"empty frontier", func(r *Responder, id []byte) error {
			_, err := r.Descend(ctx, &grovev1.DescendRequest{Session: id, Differ: []byte{0}, Levels: 1})
			return err
		}, ErrBadMessage},
		{"zero levels", func(r *Responder, id []byte) error {
			_, err := r.Descend(ctx, &grovev1.DescendRequest{Session: id, Differ: []byte{1}, Levels: 0})
			return err
		}, ErrBadMessage},
		{"past the deepest level", func(r *Responder, id []byte) error {
			// Below the leaves (depth 8) the session goes on into virtual
			// sub-buckets of them, down to MaxLeafLevels further and no
			// more: 1 → 9 → 17 → 25 → 32 is allowed, 33 is not.
			differ := []byte{1}
			for _, levels := range []uint32{8, 8, 8, 7} {
				resp, err := r.Descend(ctx, &grovev1.DescendRequest{Session: id, Differ: differ, Levels: levels})
				if err != nil {
					t.Fatalf("a band of %d levels: %v", levels, err)
				}
				if want := FingerprintBytes * ((1 << levels) - 1); len(resp.GetBand().GetValues()) != want {
					t.Fatalf("a band of %d levels holds %d bytes, want %d", levels, len(resp.GetBand().GetValues()), want)
				}
				differ = NewBitmap(1 << levels)
				SetBit(differ, 0)
			}
			if got := 8 + MaxLeafLevels; got != 32 {
				t.Fatalf("8 + MaxLeafLevels = %d; update this case", got)
			}
			_, err := r.Descend(ctx, &grovev1.DescendRequest{Session: id, Differ: differ, Levels: 1})
			return err
		}, ErrBadMessage},
		{"band over the message limit", func(r *Responder, id []byte) error {
			SetMaxMessageBytes(r, 1100)
			_, err := r.Descend(ctx, &grovev1.DescendRequest{Session: id, Differ: []byte{3}, Levels: 7})
			return err
		}, ErrLimit},
		{"reconcile before the leaves", func(r *Responder, id []byte) error {
			_, err := r.Reconcile(ctx, &grovev1.ReconcileRequest{Session: id, Differ: []byte{1}})
			return err
		}, ErrBadMessage},
		{"probe of zero levels", func(r *Responder, id []byte) error {
			_, err := r.Descend(ctx, &grovev1.DescendRequest{Session: id, Differ: []byte{1}, Levels: 0, Sparse: true})
			return err
		}, ErrBadMessage},
		{"probe past MaxProbeLevels", func(r *Responder, id []byte) error {
			_, err := r.Descend(ctx, &grovev1.DescendRequest{Session: id, Differ: []byte{1}, Levels: MaxProbeLevels + 1, Sparse: true})
			return err
		}, ErrBadMessage},
		{"probe above the leaves", func(r *Responder, id []byte) error {
			_, err := r.Descend(ctx, &grovev1.DescendRequest{Session: id, Differ: []byte{1}, Levels: 3, Sparse: true})
			return err
		}, ErrBadMessage},
		{"found after a band", func(r *Responder, id []byte) error {
			_, err := r.Descend(ctx, &grovev1.DescendRequest{Session: id, Differ: []byte{1}, Levels: 1, Found: []byte{1}})
			return err
		}, ErrBadMessage},
		{"found too short", func(r *Responder, id []byte) error {
			probe(t, r, id)
			_, err := r.Descend(ctx, &grovev1.DescendRequest{Session: id, Differ: []byte{1}, Levels: 1})
			return err
		}, ErrBadMessage},
		{"found padded with set bits", func(r *Responder, id []byte) error {
			probe(t, r, id)
			// One node located, 7 bits: the eighth must be zero.
			_, err := r.Descend(ctx, &grovev1.DescendRequest{Session: id, Differ: []byte{1}, Levels: 1, Found: []byte{0x80}})
			return err
		}, ErrBadMessage},
		{"descend after a probe under no node", func(r *Responder, id []byte) error {
			probe(t, r, id)
			_, err := r.Descend(ctx, &grovev1.DescendRequest{Session: id, Differ: []byte{0}, Levels: 1, Found: []byte{0, 0}})
			return err
		}, ErrBadMessage},
		{"band past the probes' level", func(r *Responder, id []byte) error {
			probe(t, r, id)
			_, err := r.Descend(ctx, &grovev1.DescendRequest{Session: id, Differ: []byte{1}, Levels: 8, Found: []byte{0}})
			return err
		}, ErrBadMessage},
		{"probes to two levels", func(r *Responder, id []byte) error {
			probe(t, r, id)
			_, err := r.Descend(ctx, &grovev1.DescendRequest{Session: id, Differ: []byte{1}, Levels: 8, Sparse: true, Found: []byte{0}})
			return err
		}, ErrBadMessage},
		{"reconcile of a node no probe located", func(r *Responder, id []byte) error {
			probe(t, r, id)
			_, err := r.Reconcile(ctx, &grovev1.ReconcileRequest{Session: id, Differ: []byte{1}, Found: []byte{0}})
			return err
		}, ErrBadMessage},
		{"reconcile after a probe, found twice", func(r *Responder, id []byte) error {
			probe(t, r, id)
			if _, err := r.Reconcile(ctx, &grovev1.ReconcileRequest{Session: id, Found: []byte{0, 0}}); err != nil {
				t.Fatal(err)
			}
			_, err := r.Reconcile(ctx, &grovev1.ReconcileRequest{Session: id, Found: []byte{0, 0}})
			return err
		}, ErrBadMessage},
		{"push before reconciling", func(r *Responder, id []byte) error {
			_, err := r.Push(ctx, &grovev1.PushRequest{Session: id, Rows: []*grovev1.Row{{Key: []byte("k")}}})
			return err
		}, ErrBadMessage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, id, b := openSession(t)
			before := rowsOf(t, b)
			err := tc.call(r, id)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !slices.EqualFunc(rowsOf(t, b), before, rowEqual) {
				t.Fatal("rows changed")
			}
			if tc.want != ErrUnknownSession && r.Sessions() != 0 {
				t.Fatal("the session survived a bad message")
			}
		})
	}
}

// probe asks an open session (first band of one level, depth 8) for the
// weights of both its level-1 nodes down to the leaves, 7 levels.
func probe(t *testing.T, r *Responder, id []byte) {
	t.Helper()
	resp, err := r.Descend(context.Background(), &grovev1.DescendRequest{Session: id, Differ: []byte{3}, Levels: 7, Sparse: true})
	if err != nil || len(resp.GetWeights()) != 2*FingerprintBytes || resp.GetBand() != nil {
		t.Fatalf("probe: %v, %v", resp, err)
	}
}

// descendToLeaves walks an open session (first band of one level, depth 8)
// to the leaves, marking every node, and returns the leaf bitmap.
func descendToLeaves(t *testing.T, r *Responder, id []byte) []byte {
	t.Helper()
	ctx := context.Background()
	differ := []byte{3}
	for level := 1; level < 8; level++ {
		if _, err := r.Descend(ctx, &grovev1.DescendRequest{Session: id, Differ: differ, Levels: 1}); err != nil {
			t.Fatal(err)
		}
		differ = NewBitmap(2 << level)
		for i := range 2 << level {
			SetBit(differ, i)
		}
	}
	return differ
}

// TestResponderRefusesRows checks the leaf-phase limits: counts that do not
// add up, fingerprints cut short, and pushed rows outside the differing
// leaves or with a digest (an oversized key fails alone: keylimit_test.go).
func TestResponderRefusesRows(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		call func(r *Responder, id []byte, leaves []byte) error
	}{
		{"counts exceed fingerprints", func(r *Responder, id, leaves []byte) error {
			_, err := r.Reconcile(ctx, &grovev1.ReconcileRequest{Session: id, Differ: leaves, Counts: []uint32{3}, Fingerprints: make([]byte, 8)})
			return err
		}},
		{"fingerprints cut short", func(r *Responder, id, leaves []byte) error {
			_, err := r.Reconcile(ctx, &grovev1.ReconcileRequest{Session: id, Differ: leaves, Counts: []uint32{1}, Fingerprints: make([]byte, 3)})
			return err
		}},
		{"more leaves than differ", func(r *Responder, id, leaves []byte) error {
			_, err := r.Reconcile(ctx, &grovev1.ReconcileRequest{Session: id, Differ: leaves, First: 250, Counts: make([]uint32, 10)})
			return err
		}},
		{"differ sent twice", func(r *Responder, id, leaves []byte) error {
			if _, err := r.Reconcile(ctx, &grovev1.ReconcileRequest{Session: id, Differ: leaves, Counts: []uint32{0}}); err != nil {
				return err
			}
			_, err := r.Reconcile(ctx, &grovev1.ReconcileRequest{Session: id, Differ: leaves, First: 1, Counts: []uint32{0}})
			return err
		}},
		{"pushed row with a digest", func(r *Responder, id, leaves []byte) error {
			r.Reconcile(ctx, &grovev1.ReconcileRequest{Session: id, Differ: leaves})
			_, err := r.Push(ctx, &grovev1.PushRequest{Session: id, Rows: []*grovev1.Row{{Key: []byte("k"), Digest: make([]byte, 32)}}})
			return err
		}},
		{"pushed row outside the differing leaves", func(r *Responder, id, leaves []byte) error {
			one := make([]byte, len(leaves))
			one[0] = 1 // only leaf 0 differs
			if _, err := r.Reconcile(ctx, &grovev1.ReconcileRequest{Session: id, Differ: one}); err != nil {
				return err
			}
			var key []byte
			for i := 0; ; i++ { // a key whose leaf is not 0
				key = []byte{byte(i), byte(i >> 8)}
				if ShapeOf(r).Range.LeafOf(ShapeOf(r).Partitioner.Token(key), 8) != 0 {
					break
				}
			}
			_, err := r.Commit(ctx, &grovev1.CommitRequest{Session: id, Rows: []*grovev1.Row{{Key: key, Value: []byte("evil"), Ts: 1 << 60}}})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, id, b := openSession(t)
			leaves := descendToLeaves(t, r, id)
			before := rowsOf(t, b)
			if err := tc.call(r, id, leaves); !errors.Is(err, ErrBadMessage) {
				t.Fatalf("got %v, want ErrBadMessage", err)
			}
			if !slices.EqualFunc(rowsOf(t, b), before, rowEqual) {
				t.Fatal("rows changed")
			}
			if r.Sessions() != 0 {
				t.Fatal("the session survived a bad message")
			}
		})
	}
}

// TestSessionExpires checks an idle session is ended by the idle timeout:
// an initiator that died pins a snapshot for no longer than that.
func TestSessionExpires(t *testing.T) {
	r, id, _ := openSession(t)
	SetIdleTimeout(r, time.Millisecond)
	// The timer armed at Hello runs the old timeout; a call re-arms it.
	if _, err := r.Descend(context.Background(), &grovev1.DescendRequest{Session: id, Differ: []byte{1}, Levels: 1}); err != nil {
		t.Fatal(err)
	}
	for i := 0; r.Sessions() != 0; i++ {
		if i == 500 {
			t.Fatal("idle session not expired")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, err := r.Descend(context.Background(), &grovev1.DescendRequest{Session: id, Differ: []byte{1}, Levels: 1})
	if !errors.Is(err, ErrUnknownSession) {
		t.Fatalf("call on an expired session: %v", err)
	}
}
