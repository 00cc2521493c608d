package repair_test

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/rowstore"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/metrics"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"

	// Dot-imported: these tests were written inside the package, and moved
	// out only because their replicas come from package rowstore, which
	// imports this one.
	. "github.com/antientropy/grove/engine/repair"
)

type sliceSource struct {
	rows []engine.Row
	i    int
}

func (s *sliceSource) NextRow(r *engine.Row) error {
	if s.i == len(s.rows) {
		return io.EOF
	}
	*r = s.rows[s.i]
	s.i++
	return nil
}

func newReplica(t testing.TB, rows []engine.Row, depth int) *rowstore.Replica {
	t.Helper()
	ctx := context.Background()
	st, err := rowstore.Load(ctx, token.Murmur3{}, &sliceSource{rows: rows})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := rowstore.BuildTree(ctx, st, engine.Options{Depth: depth, Budget: arena.NewBudget(4 << 30)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tree.Close() })
	return rowstore.NewReplica(st, tree)
}

// rowsOf returns every row of a replica, in order.
func rowsOf(t testing.TB, r *rowstore.Replica) []engine.Row {
	t.Helper()
	var out []engine.Row
	err := r.Store().All(context.Background(), func(row *engine.Row) error {
		out = append(out, *cloneRow(row))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// expected computes, by brute force over two row sets with one row per key,
// the keys a session must report and the rows both sides must hold after a
// repair.
func expected(a, b []engine.Row) (onlyA, onlyB, diff []string, merged map[string]engine.Row) {
	ma, mb := map[string]engine.Row{}, map[string]engine.Row{}
	for _, r := range a {
		ma[string(r.Key)] = r
	}
	for _, r := range b {
		mb[string(r.Key)] = r
	}
	merged = map[string]engine.Row{}
	for k, ra := range ma {
		rb, ok := mb[k]
		switch {
		case !ok:
			onlyA = append(onlyA, k)
			merged[k] = ra
		case engine.RowDigest(&ra) != engine.RowDigest(&rb):
			diff = append(diff, k)
			if engine.Supersedes(&ra, &rb) {
				merged[k] = ra
			} else {
				merged[k] = rb
			}
		default:
			merged[k] = ra
		}
	}
	for k, rb := range mb {
		if _, ok := ma[k]; !ok {
			onlyB = append(onlyB, k)
			merged[k] = rb
		}
	}
	slices.Sort(onlyA)
	slices.Sort(onlyB)
	slices.Sort(diff)
	return onlyA, onlyB, diff, merged
}

func keyStrings(ks []engine.Key) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = string(k.Key)
	}
	slices.Sort(out)
	return out
}

// diverge returns a copy of base as replica A and B, with n random
// divergences of every kind the issue names: missed writes, missed deletes,
// corrupted values, and ties broken by the tombstone and value rules.
func diverge(rnd *rand.Rand, base []engine.Row, n int) (a, b []engine.Row) {
	a, b = slices.Clone(base), slices.Clone(base)
	for range n {
		side := &a
		if rnd.IntN(2) == 0 {
			side = &b
		}
		s := *side
		switch i := rnd.IntN(len(s)); rnd.IntN(6) {
		case 0: // a missed write: one side never got the row
			*side = slices.Delete(s, i, i+1)
		case 1: // a newer write one side missed
			s[i].Value = fmt.Appendf(nil, "new-%d", rnd.Uint32())
			s[i].TS += 1 + rnd.Int64N(1000)
		case 2: // a missed delete
			s[i].Deleted, s[i].Value = true, nil
			s[i].TS++
		case 3: // a corrupted value, same timestamp: greater bytes win
			s[i].Value = append(slices.Clone(s[i].Value), 'x')
		case 4: // a tombstone at the same timestamp as the live value
			s[i].Deleted = true
		case 5: // a row only this side wrote
			*side = append(s, engine.Row{Key: fmt.Appendf(nil, "extra-%d", rnd.Uint64()), Value: []byte("v"), TS: rnd.Int64N(1 << 50)})
		}
	}
	return a, b
}

func baseRows(rnd *rand.Rand, n int) []engine.Row {
	rows := make([]engine.Row, n)
	for i := range rows {
		rows[i] = engine.Row{
			Key:   fmt.Appendf(nil, "key-%d", i),
			Value: fmt.Appendf(nil, "value-%d-%d", i, rnd.Uint32()),
			TS:    1_700_000_000_000_000 + rnd.Int64N(1_000_000),
		}
	}
	return rows
}

// TestSyncMatchesBruteForce runs sessions over many shapes of divergence and
// checks the keys against a brute-force comparison of the rows, then repairs
// and checks both sides hold exactly the rows the repair rule picks, with
// trees equal to a rebuild from those rows.
func TestSyncMatchesBruteForce(t *testing.T) {
	cases := []struct {
		name           string
		rows, diverge  int
		depthA, depthB int
		keysOnly       bool
		// inLeaves: the leaves are dense and the differences few, so the
		// session must reconcile below the leaves, in sub-buckets.
		inLeaves bool
	}{
		{"identical", 2000, 0, 10, 10, false, false},
		{"one row", 2000, 1, 10, 10, false, false},
		{"a few", 3000, 7, 12, 12, false, false},
		{"dense", 2000, 400, 8, 8, false, false},
		{"deeper initiator", 3000, 20, 14, 9, false, false},
		{"deeper responder", 3000, 20, 7, 13, false, false},
		{"depth zero", 500, 10, 0, 5, false, false},
		{"deeper than a session", 1500, 5, 22, 21, false, false},
		{"keys only", 3000, 30, 11, 11, true, false},
		{"empty responder", 300, 0, 8, 8, false, false},
		{"dense leaves", 20_000, 12, 3, 3, false, true},
		{"dense, depth 1", 30_000, 5, 1, 1, false, true},
		{"dense, depths differ", 20_000, 9, 6, 2, false, true},
		{"dense, depth zero", 10_000, 4, 0, 0, false, true},
		{"dense, keys only", 20_000, 15, 5, 5, true, true},
		{"dense, many", 20_000, 600, 4, 4, false, false},
		{"dense, 100k rows", 100_000, 6, 7, 7, false, true},
		{"dense, wholly different", 3_000, 3_000, 2, 2, false, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			rnd := rand.New(rand.NewPCG(uint64(i), 99))
			base := baseRows(rnd, tc.rows)
			a, b := diverge(rnd, base, tc.diverge)
			if tc.name == "empty responder" {
				b = nil
			}
			onlyA, onlyB, diff, merged := expected(a, b)
			for _, repair := range []bool{false, true} {
				if repair && tc.keysOnly {
					continue
				}
				ra, rb := newReplica(t, a, tc.depthA), newReplica(t, b, tc.depthB)
				resp := NewResponder(rb, ResponderOptions{})
				res, err := Sync(ctx, ra, resp, Options{Repair: repair, KeysOnly: tc.keysOnly})
				if err != nil {
					t.Fatalf("repair=%v: %v", repair, err)
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
				if res.InSync != (len(onlyA)+len(onlyB)+len(diff) == 0) {
					t.Fatalf("InSync = %v with %d differing keys", res.InSync, len(onlyA)+len(onlyB)+len(diff))
				}
				if tc.inLeaves && res.Level <= res.Depth {
					t.Fatalf("reconciled at level %d, depth %d: want below the dense leaves", res.Level, res.Depth)
				}
				if res.InSync && res.RoundTrips != 1 {
					t.Fatalf("identical replicas took %d round trips, want 1", res.RoundTrips)
				}
				if n := resp.Sessions(); n != 0 {
					t.Fatalf("%d sessions left open on the responder", n)
				}
				if !repair {
					continue
				}
				if !res.Converged {
					t.Fatal("not converged")
				}
				checkHolds(t, ra, merged, tc.depthA)
				checkHolds(t, rb, merged, tc.depthB)
				again, err := Sync(ctx, ra, resp, Options{})
				if err != nil || !again.InSync {
					t.Fatalf("after the repair: in sync %v, %v", again.InSync, err)
				}
			}
		})
	}
}

// checkHolds checks a replica holds exactly want and its tree equals a tree
// rebuilt from want.
func checkHolds(t *testing.T, r *rowstore.Replica, want map[string]engine.Row, depth int) {
	t.Helper()
	got := rowsOf(t, r)
	if len(got) != len(want) {
		t.Fatalf("replica holds %d rows, want %d", len(got), len(want))
	}
	rebuilt := make([]engine.Row, 0, len(want))
	for _, row := range got {
		w, ok := want[string(row.Key)]
		if !ok || engine.RowDigest(&w) != engine.RowDigest(&row) {
			t.Fatalf("replica holds %q = %+v, want %+v", row.Key, row, w)
		}
		rebuilt = append(rebuilt, w)
	}
	fresh := newReplica(t, rebuilt, depth)
	a, err := r.Tree().Root()
	if err != nil {
		t.Fatal(err)
	}
	b, err := fresh.Tree().Root()
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatalf("live tree root %x, rebuilt %x", a[:4], b[:4])
	}
}

// TestOneKeyCost checks the bound for one differing key at depth 20:
// at most 8 KB both ways and ⌈depth ÷ levels per round trip⌉ + 3 round trips.
func TestOneKeyCost(t *testing.T) {
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(1, 2))
	base := baseRows(rnd, 100_000)
	b := slices.Clone(base)
	b[rnd.IntN(len(b))].Value = []byte("corrupted")
	ra, rb := newReplica(t, base, 20), newReplica(t, b, 20)
	res, err := Sync(ctx, ra, NewResponder(rb, ResponderOptions{}), Options{Repair: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Different) != 1 || !res.Converged {
		t.Fatalf("different %d, converged %v", len(res.Different), res.Converged)
	}
	total := res.BytesSent + res.BytesReceived
	maxLevels := 0
	for _, b := range res.Bands {
		maxLevels = max(maxLevels, b.Levels)
	}
	bound := (20+maxLevels-1)/maxLevels + 3
	t.Logf("1 key of 100k at depth 20: %d bytes (%d sent, %d received), %d round trips, bands %+v", total, res.BytesSent, res.BytesReceived, res.RoundTrips, res.Bands)
	if total > 8000 {
		t.Errorf("%d bytes, over 8 KB", total)
	}
	if res.RoundTrips > bound {
		t.Errorf("%d round trips, over ⌈20/%d⌉+3 = %d", res.RoundTrips, maxLevels, bound)
	}
}

// TestIncompatible checks peers that differ in range or partitioner are
// refused at the handshake, whichever side notices.
func TestIncompatible(t *testing.T) {
	ctx := context.Background()
	rows := baseRows(rand.New(rand.NewPCG(3, 4)), 100)
	ra := newReplica(t, rows, 8)
	tree, err := engine.New(engine.Options{Depth: 8, Range: token.Range{Lo: -1 << 62, Hi: 1 << 62}, Budget: arena.NewBudget(1 << 30)})
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	if err := tree.Hash(ctx); err != nil {
		t.Fatal(err)
	}
	other := rowstore.NewReplica(rowstore.New(token.Murmur3{}), tree)
	_, err = Sync(ctx, ra, NewResponder(other, ResponderOptions{}), Options{})
	if !errors.Is(err, ErrIncompatible) {
		t.Fatalf("different ranges: %v, want ErrIncompatible", err)
	}
}

// racingReplica writes a row into a differing leaf after the view is taken,
// as a node's write path would during a session: right after the view, or
// (afterScans > 0) just before its afterScans-th scan, between two bands of
// the descent inside a dense leaf.
type racingReplica struct {
	*rowstore.Replica
	write      *engine.Row
	afterScans int
	scans      int
}

func (r *racingReplica) race(ctx context.Context) error {
	if r.write == nil {
		return nil
	}
	_, err := r.Replica.Apply(ctx, []engine.Row{*r.write})
	r.write = nil
	return err
}

func (r *racingReplica) View(ctx context.Context) (*engine.LeafView, func(), error) {
	v, release, err := r.Replica.View(ctx)
	if err == nil && r.afterScans == 0 {
		if err := r.race(ctx); err != nil {
			release()
			return nil, nil, err
		}
	}
	return v, release, err
}

func (r *racingReplica) Scan(ctx context.Context, rng token.Range, fn func(*engine.Row) error) error {
	if r.scans++; r.scans == r.afterScans {
		if err := r.race(ctx); err != nil {
			return err
		}
	}
	return r.Replica.Scan(ctx, rng, fn)
}

// TestChangedUnderSession checks a write that lands in a reconciled leaf
// after the snapshot ends the session with ErrChanged, applies nothing on
// either side, and that a retry succeeds: in a sparse leaf, in a dense one
// whose first scan sees it, and in a dense one between two bands of
// sub-buckets, where the scan is checked against the sums of the band
// before, not the view.
func TestChangedUnderSession(t *testing.T) {
	for _, tc := range []struct {
		name        string
		rows, depth int
		afterScans  int
	}{
		{"sparse", 5000, 12, 0},
		{"dense", 20_000, 3, 0},
		{"dense, between bands", 20_000, 3, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			rnd := rand.New(rand.NewPCG(5, 6))
			base := baseRows(rnd, tc.rows)
			a := slices.Clone(base)
			a[42].Value, a[42].TS = []byte("newer"), a[42].TS+10
			ra, rb := newReplica(t, a, tc.depth), newReplica(t, base, tc.depth)
			// The racing write touches the same key on the responder: its
			// leaf is the one being reconciled.
			w := base[42]
			w.Value, w.TS = []byte("racing"), w.TS+5
			racing := &racingReplica{Replica: rb, write: &w, afterScans: tc.afterScans}
			beforeA, beforeB := rowsOf(t, ra), rowsOf(t, rb)
			beforeB[slices.IndexFunc(beforeB, func(r engine.Row) bool { return bytes.Equal(r.Key, w.Key) })] = w
			resp := NewResponder(racing, ResponderOptions{})
			_, err := Sync(ctx, ra, resp, Options{Repair: true})
			if !errors.Is(err, ErrChanged) {
				t.Fatalf("got %v, want ErrChanged", err)
			}
			if racing.write != nil {
				t.Fatal("the racing write never happened")
			}
			t.Log(err)
			if !slices.EqualFunc(rowsOf(t, ra), beforeA, rowEqual) || !slices.EqualFunc(rowsOf(t, rb), beforeB, rowEqual) {
				t.Fatal("rows changed by a failed session")
			}
			if resp.Sessions() != 0 {
				t.Fatal("failed session left open")
			}
			res, err := Sync(ctx, ra, resp, Options{Repair: true})
			if err != nil || !res.Converged || len(res.Different) != 1 {
				t.Fatalf("retry: %v, %+v", err, res)
			}
		})
	}
}

func rowEqual(a, b engine.Row) bool { return engine.RowDigest(&a) == engine.RowDigest(&b) }

// TestCollisionCaught forces fingerprint collisions in the first session —
// a salt under which a fingerprint keeps one bit of each sum, so half of all
// differences hide — and checks the end-of-session check notices, a second
// session with a fresh salt runs, and the keys come out exact.
func TestCollisionCaught(t *testing.T) {
	rnd := rand.New(rand.NewPCG(31, 32))
	base := baseRows(rnd, 3000)
	a, b := diverge(rnd, base, 60)
	onlyA, onlyB, diff, _ := expected(a, b)
	weak := make([]byte, SaltBytes)
	binary.LittleEndian.PutUint64(weak, 1<<31) // fp = lane0 bit 0, shifted
	salts := io.MultiReader(bytes.NewReader(weak), crand.Reader)
	res, err := Sync(context.Background(), newReplica(t, a, 10), NewResponder(newReplica(t, b, 10), ResponderOptions{}), Options{Rand: salts})
	if err != nil {
		t.Fatal(err)
	}
	if res.Passes != 2 {
		t.Fatalf("%d passes, want 2: the weak first salt should have hidden differences", res.Passes)
	}
	if !slices.Equal(keyStrings(res.OnlyHere), onlyA) || !slices.Equal(keyStrings(res.OnlyThere), onlyB) || !slices.Equal(keyStrings(res.Different), diff) {
		t.Fatal("keys differ from brute force after the retry")
	}
}

// countingPeer counts the calls of each kind a session makes.
type countingPeer struct {
	*Responder
	commits, pushes int
}

func (p *countingPeer) Commit(ctx context.Context, r *grovev1.CommitRequest) (*grovev1.CommitResponse, error) {
	p.commits++
	return p.Responder.Commit(ctx, r)
}

func (p *countingPeer) Push(ctx context.Context, r *grovev1.PushRequest) (*grovev1.PushResponse, error) {
	p.pushes++
	return p.Responder.Push(ctx, r)
}

// TestLargeRepairInBatches repairs an empty peer from a full replica with
// small messages and small commits: the rows go in many pushes, are applied
// in several atomic batches, and both sides converge.
func TestLargeRepairInBatches(t *testing.T) {
	rows := baseRows(rand.New(rand.NewPCG(41, 42)), 5000)
	a, b := newReplica(t, rows, 12), newReplica(t, nil, 12)
	peer := &countingPeer{Responder: NewResponder(b, ResponderOptions{MaxMessageBytes: 128 << 10})}
	res, err := Sync(context.Background(), a, peer, Options{Repair: true, MaxMessageBytes: 128 << 10, CommitBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Converged || len(res.OnlyHere) != len(rows) || res.PeerApplied != len(rows) {
		t.Fatalf("converged %v, %d keys only here, %d applied by the peer; want %d", res.Converged, len(res.OnlyHere), res.PeerApplied, len(rows))
	}
	if peer.commits < 3 || peer.pushes < peer.commits {
		t.Fatalf("%d commits and %d pushes: want the rows in several batches", peer.commits, peer.pushes)
	}
	if !slices.EqualFunc(rowsOf(t, a), rowsOf(t, b), rowEqual) {
		t.Fatal("rows differ after the repair")
	}
	t.Logf("%d rows in %d pushes and %d commits, %d round trips, %d bytes", len(rows), peer.pushes, peer.commits, res.RoundTrips, res.BytesSent+res.BytesReceived)
}

// TestMetricsBothSides checks each side counts the session and the same
// bytes the session reports, from its own point of view, and a failure.
func TestMetricsBothSides(t *testing.T) {
	rnd := rand.New(rand.NewPCG(51, 52))
	a, b := diverge(rnd, baseRows(rnd, 2000), 10)
	mi, mr := metrics.New(), metrics.New()
	resp := NewResponder(newReplica(t, b, 10), ResponderOptions{Metrics: mr})
	ra := newReplica(t, a, 10)
	res, err := Sync(context.Background(), ra, resp, Options{Repair: true, Metrics: mi})
	if err != nil {
		t.Fatal(err)
	}
	want := metrics.Sessions{Started: 1, BytesSent: res.BytesSent, BytesReceived: res.BytesReceived, RoundTrips: int64(res.RoundTrips)}
	if got := mi.Values().Initiator; got != want {
		t.Fatalf("initiator %+v, want %+v", got, want)
	}
	mirror := metrics.Sessions{Started: 1, BytesSent: res.BytesReceived, BytesReceived: res.BytesSent, RoundTrips: int64(res.RoundTrips)}
	if got := mr.Values().Responder; got != mirror {
		t.Fatalf("responder %+v, want %+v", got, mirror)
	}
	// A session the responder refuses counts as failed on both sides.
	bad := ParamsOf(ra.Shape())
	bad.Protocol++
	if _, err := resp.Hello(context.Background(), &grovev1.HelloRequest{Params: bad}); !errors.Is(err, ErrIncompatible) {
		t.Fatal(err)
	}
	if got := mr.Values().Responder; got.Started != 2 || got.Failed != 1 || got.Open != 0 {
		t.Fatalf("after a refused hello: %+v", got)
	}
}

// TestProgress checks a session reports each stage, in order, ending each
// at its total.
func TestProgress(t *testing.T) {
	rnd := rand.New(rand.NewPCG(61, 62))
	a, b := diverge(rnd, baseRows(rnd, 3000), 40)
	var got []Progress
	_, err := Sync(context.Background(), newReplica(t, a, 12), NewResponder(newReplica(t, b, 12), ResponderOptions{}),
		Options{Repair: true, Progress: func(p Progress) { got = append(got, p) }})
	if err != nil {
		t.Fatal(err)
	}
	stages := []string{"descending", "reconciling", "repairing"}
	last := map[string]Progress{}
	order := []string{}
	for i, p := range got {
		if p.Done > p.Total || (i > 0 && p.Stage == got[i-1].Stage && p.Done < got[i-1].Done) {
			t.Fatalf("progress went backwards or past its total: %+v", got)
		}
		if len(order) == 0 || order[len(order)-1] != p.Stage {
			order = append(order, p.Stage)
		}
		last[p.Stage] = p
	}
	if !slices.Equal(order, stages) {
		t.Fatalf("stages %v, want %v", order, stages)
	}
	for _, s := range stages {
		if p := last[s]; p.Done != p.Total {
			t.Fatalf("%s ended at %d of %d", s, p.Done, p.Total)
		}
	}
}

// TestConcurrentSessions runs repairs from three replicas against one
// responder at once. Sessions whose leaves another session's commit changed
// end with ErrChanged (or, if the commit raced the final check,
// ErrNotConverged); retried, all converge, and every replica then holds the
// same rows as the responder.
func TestConcurrentSessions(t *testing.T) {
	rnd := rand.New(rand.NewPCG(71, 72))
	base := baseRows(rnd, 4000)
	b := newReplica(t, base, 12)
	resp := NewResponder(b, ResponderOptions{})
	var initiators []*rowstore.Replica
	for range 3 {
		a, _ := diverge(rnd, base, 30)
		initiators = append(initiators, newReplica(t, a, 12))
	}
	errs := make(chan error, len(initiators))
	for _, a := range initiators {
		go func() {
			for attempt := 0; ; attempt++ {
				_, err := Sync(context.Background(), a, resp, Options{Repair: true})
				if err == nil || attempt == 20 || !(errors.Is(err, ErrChanged) || errors.Is(err, ErrNotConverged) || errors.Is(err, ErrBusy)) {
					errs <- err
					return
				}
			}
		}()
	}
	for range initiators {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Later repairs may have brought B rows an earlier initiator lacks: one
	// more round makes everyone equal.
	for _, a := range initiators {
		if _, err := Sync(context.Background(), a, resp, Options{Repair: true}); err != nil {
			t.Fatal(err)
		}
	}
	want := rowsOf(t, b)
	for i, a := range initiators {
		if !slices.EqualFunc(rowsOf(t, a), want, rowEqual) {
			t.Fatalf("initiator %d differs from the responder after the repairs", i)
		}
	}
	if resp.Sessions() != 0 {
		t.Fatalf("%d sessions left open", resp.Sessions())
	}
}

// TestWholeReplicaInParts: a replica missing every row of the range — a
// node replaced with an empty disk, on either side of the session — is
// repaired in parts when the differing rows outgrow what the initiator may
// hold, and both replicas then hold the same rows; a keys-only session,
// which applies nothing, fails with ErrLimit instead of growing without
// bound.
func TestWholeReplicaInParts(t *testing.T) {
	rows := baseRows(rand.New(rand.NewPCG(81, 82)), 3000)
	for _, tc := range []struct {
		name       string
		here, peer []engine.Row
	}{
		{"empty initiator", nil, rows},
		{"empty responder", rows, nil},
		{"each missing half", rows[:1500], rows[1500:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newReplica(t, tc.here, 10), newReplica(t, tc.peer, 10)
			// Small messages too: a round's answer is bounded by them.
			resp := NewResponder(b, ResponderOptions{MaxMessageBytes: 64 << 10})
			res, err := Sync(context.Background(), a, resp, Options{Repair: true, MaxHeldBytes: 32 << 10, MaxMessageBytes: 64 << 10})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Converged || res.Parts < 2 || len(res.OnlyHere)+len(res.OnlyThere) != len(rows) {
				t.Fatalf("converged %v in %d parts, %d + %d keys found; want %d keys in several parts",
					res.Converged, res.Parts, len(res.OnlyHere), len(res.OnlyThere), len(rows))
			}
			if got, want := rowsOf(t, a), rowsOf(t, b); len(got) != len(rows) || !slices.EqualFunc(got, want, rowEqual) {
				t.Fatalf("after the repair: %d rows here, %d there, want %d on both, equal", len(got), len(want), len(rows))
			}
			if resp.Sessions() != 0 {
				t.Fatalf("%d sessions left open", resp.Sessions())
			}
		})
	}
	a, b := newReplica(t, nil, 10), newReplica(t, rows, 10)
	_, err := Sync(context.Background(), a, NewResponder(b, ResponderOptions{}), Options{MaxHeldBytes: 32 << 10})
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("listing the keys of a whole replica held in 32 KiB: %v, want ErrLimit", err)
	}
	if n := len(rowsOf(t, a)); n != 0 {
		t.Fatalf("%d rows applied by a session that lists keys", n)
	}
}

// cloneRow copies a row out of a Scan callback, whose *Row is valid only
// during the call.
func cloneRow(r *engine.Row) *engine.Row {
	c := *r
	c.Key = append([]byte(nil), r.Key...)
	c.Value = append([]byte(nil), r.Value...)
	return &c
}
