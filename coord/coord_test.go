package coord

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/engine/rowstore"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/ring"
	"github.com/antientropy/grove/ring/ringtest"
)

// node is one node of a test cluster: a replica per range it holds, each
// answering sessions through its own responder.
type node struct {
	id    string
	reps  map[token.Range]*rowstore.Replica
	resp  map[token.Range]*repair.Responder
	whole *repair.NodeResponder // every range, for node sessions
	rec   *MemRecord
}

// cluster is the nodes of a ring, each holding its ranges' rows with
// planted divergences, and the rows Cassandra's rule picks for each key.
type cluster struct {
	ring  *ring.Ring
	nodes map[string]*node
	want  map[string]engine.Row
}

// newCluster loads rows keys into every replica of their range, then
// plants divergences: a write one replica missed, a value one replica
// holds with other bytes at the same timestamp, a delete one missed, and a
// row only one replica has.
func newCluster(t *testing.T, nodes int, keys int, seed uint64) *cluster {
	t.Helper()
	ctx := context.Background()
	rg := ringtest.Random(t, nodes, 4, 3, seed)
	c := &cluster{ring: rg, nodes: map[string]*node{}, want: map[string]engine.Row{}}
	rows := map[string][]engine.Row{} // node id → rows
	rnd := rand.New(rand.NewPCG(seed, 1))
	for i := range keys {
		k := fmt.Appendf(nil, "key-%d", i)
		tok := token.Murmur3{}.Token(k)
		var replicas []string
		for _, r := range rg.Ranges() {
			if r.Range.Contains(tok) {
				replicas = r.Replicas
			}
		}
		row := engine.Row{Key: k, Value: fmt.Appendf(nil, "v%d", i), TS: 10}
		versions := map[string]engine.Row{}
		for _, id := range replicas {
			versions[id] = row
		}
		victim := replicas[rnd.IntN(len(replicas))]
		switch rnd.IntN(10) {
		case 0: // a write the victim missed: it keeps an older version
			versions[victim] = engine.Row{Key: k, Value: []byte("old"), TS: 5}
		case 1: // the same timestamp, other bytes
			versions[victim] = engine.Row{Key: k, Value: fmt.Appendf(nil, "w%d", i), TS: 10}
		case 2: // a delete the victim missed
			for id := range versions {
				if id != victim {
					versions[id] = engine.Row{Key: k, Value: row.Value, TS: 11, Deleted: true}
				}
			}
		case 3: // a row only the victim holds
			for id := range versions {
				if id != victim {
					delete(versions, id)
				}
			}
		}
		var best *engine.Row
		for id, v := range versions {
			rows[id] = append(rows[id], v)
			if best == nil || engine.Supersedes(&v, best) {
				best = &v
			}
		}
		c.want[string(k)] = *best
	}
	budget := arena.NewBudget(256 << 20)
	for _, n := range rg.Nodes() {
		nd := &node{id: n.ID, reps: map[token.Range]*rowstore.Replica{}, resp: map[token.Range]*repair.Responder{}, rec: &MemRecord{}}
		mine, err := rg.RangesOf(n.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range mine {
			// A store per range: a rowstore tree is built from all its
			// store's rows.
			var in []engine.Row
			for _, row := range rows[n.ID] {
				if r.Range.Contains(token.Murmur3{}.Token(row.Key)) {
					in = append(in, row)
				}
			}
			store := rowstore.New(token.Murmur3{})
			if _, err := store.Apply(ctx, in, nil); err != nil {
				t.Fatal(err)
			}
			tree, err := rowstore.BuildTree(ctx, store, engine.Options{Range: r.Range, Depth: 8, Budget: budget})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tree.Close() })
			rep := rowstore.NewReplica(store, tree)
			nd.reps[r.Range] = rep
			nd.resp[r.Range] = repair.NewResponder(rep, repair.ResponderOptions{})
		}
		var all []repair.Replica
		for _, r := range mine {
			all = append(all, nd.reps[r.Range])
		}
		var err2 error
		if nd.whole, err2 = repair.NewNodeResponder(all, repair.ResponderOptions{}); err2 != nil {
			t.Fatal(err2)
		}
		c.nodes[n.ID] = nd
	}
	return c
}

// ranges returns node id's ranges with their peers.
func (c *cluster) ranges(t *testing.T, id string) []ring.Replica {
	reps, err := c.ring.RangesOf(id)
	if err != nil {
		panic(err) // the test's own ring: every id is in it
	}
	return reps
}

// syncers are the two ways of reconciling a peer's ranges, over the
// cluster's in-process responders, with down naming nodes that cannot be
// reached.
var syncers = []struct {
	name string
	make func(c *cluster, id string, down map[string]bool) Syncer
}{
	{"session per range", func(c *cluster, id string, down map[string]bool) Syncer { return c.syncer(id, down) }},
	{"node session per peer", func(c *cluster, id string, down map[string]bool) Syncer { return c.nodeSyncer(id, down) }},
}

// nodeSyncer is a PerPeer over the cluster's node responders.
func (c *cluster) nodeSyncer(id string, down map[string]bool) PerPeer {
	return PerPeer{
		Local: func(r token.Range) (repair.Replica, error) { return c.nodes[id].reps[r], nil },
		Peer: func(peer string) (repair.NodePeer, []token.Range, error) {
			if down[peer] {
				return nil, nil, fmt.Errorf("node %s: %w", peer, errDown)
			}
			return c.nodes[peer].whole, ring.TokenRanges(c.ranges(nil, peer)), nil
		},
	}
}

// syncer is a PerRange over the cluster's in-process responders.
func (c *cluster) syncer(id string, down map[string]bool) PerRange {
	return PerRange{
		Local: func(r token.Range) (repair.Replica, error) { return c.nodes[id].reps[r], nil },
		Peer: func(peer string, r token.Range) (repair.Peer, error) {
			if down[peer] {
				return nil, fmt.Errorf("node %s: %w", peer, errDown)
			}
			return c.nodes[peer].resp[r], nil
		},
	}
}

// checkConverged checks every replica of every range holds exactly the
// rows Cassandra's rule picks for the range's keys.
func (c *cluster) checkConverged(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, n := range c.nodes {
		for r, rep := range n.reps {
			seen := 0
			rep.Store().Scan(ctx, r, func(row *engine.Row) error {
				seen++
				w, ok := c.want[string(row.Key)]
				if !ok || !bytes.Equal(w.Value, row.Value) || w.TS != row.TS || w.Deleted != row.Deleted {
					t.Errorf("node %s, range %v: key %s is %+v, want %+v", n.id, r, row.Key, *row, w)
				}
				return nil
			})
			want := 0
			for k := range c.want {
				if r.Contains(token.Murmur3{}.Token([]byte(k))) {
					want++
				}
			}
			if seen != want {
				t.Errorf("node %s, range %v: %d rows, want %d", n.id, r, seen, want)
			}
		}
	}
}

// TestRunConvergesTheCluster: a repair run on every node leaves every
// replica with the rows Cassandra's rule picks, a second round finds
// everything in sync, and the reports count what was found.
func TestRunConvergesTheCluster(t *testing.T) {
	for _, sy := range syncers {
		t.Run(sy.name, func(t *testing.T) { testConverges(t, sy.make) })
	}
}

func testConverges(t *testing.T, mk func(*cluster, string, map[string]bool) Syncer) {
	ctx := context.Background()
	c := newCluster(t, 5, 3000, 7)
	found := 0
	for _, n := range c.ring.Nodes() {
		rep, err := Run(ctx, c.ranges(t, n.ID), mk(c, n.ID, nil), c.nodes[n.ID].rec, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.RangesFailed != 0 {
			t.Fatalf("node %s: %+v", n.ID, rep)
		}
		for _, p := range rep.Peers {
			found += len(p.OnlyHere) + len(p.OnlyThere) + len(p.Different)
		}
	}
	if found == 0 {
		t.Fatal("the first round found no difference: nothing was planted")
	}
	c.checkConverged(t)
	for _, n := range c.ring.Nodes() {
		rep, err := Run(ctx, c.ranges(t, n.ID), mk(c, n.ID, nil), c.nodes[n.ID].rec, Options{})
		if err != nil || rep.Differences() || rep.RangesFailed != 0 || rep.Resumed {
			t.Fatalf("second round, node %s: %+v, %v; want all in sync", n.ID, rep, err)
		}
		for _, p := range rep.Peers {
			want := p.Ranges // a session per range: one round trip each
			if _, ok := mk(c, n.ID, nil).(PerPeer); ok {
				want = 1 // one node session for all of them
			}
			if p.RoundTrips != want {
				t.Errorf("second round, node %s with %s: %d round trips for %d ranges in sync, want %d", n.ID, p.ID, p.RoundTrips, p.Ranges, want)
			}
		}
	}
}

// TestRunPeerDown: a node that cannot be reached fails its ranges alone;
// the others are repaired, the run stays open, and the next run, with the
// node back, redoes only the failed ranges.
func TestRunPeerDown(t *testing.T) {
	for _, sy := range syncers {
		t.Run(sy.name, func(t *testing.T) { testPeerDown(t, sy.make) })
	}
}

func testPeerDown(t *testing.T, mk func(*cluster, string, map[string]bool) Syncer) {
	ctx := context.Background()
	c := newCluster(t, 4, 2000, 8)
	ranges := c.ranges(t, "n1")
	rep, err := Run(ctx, ranges, mk(c, "n1", map[string]bool{"n2": true}), c.nodes["n1"].rec, Options{Transient: transient})
	if err != nil {
		t.Fatal(err)
	}
	shared := 0
	for _, r := range ranges {
		for _, p := range r.Peers {
			if p == "n2" {
				shared++
			}
		}
	}
	if rep.RangesFailed != shared || shared == 0 || rep.RangesRepaired == 0 {
		t.Fatalf("n2 down: %d failed, %d repaired; want the %d shared with n2 failed, the rest repaired", rep.RangesFailed, rep.RangesRepaired, shared)
	}
	for _, p := range rep.Peers {
		if (p.ID == "n2") != (p.Error != "") {
			t.Errorf("peer %s: error %q", p.ID, p.Error)
		}
	}
	rep, err = Run(ctx, ranges, mk(c, "n1", nil), c.nodes["n1"].rec, Options{})
	if err != nil || rep.RangesFailed != 0 || !rep.Resumed {
		t.Fatalf("n2 back: %+v, %v; want a resumed run without failures", rep, err)
	}
	for _, p := range rep.Peers {
		if p.ID != "n2" && p.RangesSkipped != p.Ranges {
			t.Errorf("resumed run redid %d of %d ranges with %s, repaired before", p.Ranges-p.RangesSkipped, p.Ranges, p.ID)
		}
		if p.ID == "n2" && p.RangesSkipped != 0 {
			t.Errorf("resumed run skipped %d ranges with n2, which failed", p.RangesSkipped)
		}
	}
	if _, resumed, _ := c.nodes["n1"].rec.BeginRun(time.Now()); resumed {
		t.Error("a run without failures was left open")
	}
}

// flaky fails each range's first attempt with ErrChanged, as a session
// does when a write lands under it.
type flaky struct {
	Syncer
	mu    sync.Mutex
	tried map[token.Range]bool
}

func (f *flaky) Sync(ctx context.Context, peer string, ranges []token.Range) ([]Outcome, repair.Stats, error) {
	out, cost, err := f.Syncer.Sync(ctx, peer, ranges)
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range out {
		if !f.tried[out[i].Range] {
			f.tried[out[i].Range] = true
			out[i] = Outcome{Range: out[i].Range, Err: fmt.Errorf("session: %w", repair.ErrChanged)}
		}
	}
	return out, cost, err
}

// TestRunRetries: a session cut short by a write is retried, and a
// session that fails for good is not.
func TestRunRetries(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, 4, 1000, 9)
	ranges := c.ranges(t, "n1")
	rep, err := Run(ctx, ranges, &flaky{Syncer: c.syncer("n1", nil), tried: map[token.Range]bool{}}, c.nodes["n1"].rec, Options{})
	if err != nil || rep.RangesFailed != 0 {
		t.Fatalf("with every first attempt changed under it: %+v, %v", rep, err)
	}
	bad := PerRange{
		Local: func(r token.Range) (repair.Replica, error) { return c.nodes["n1"].reps[r], nil },
		Peer: func(string, token.Range) (repair.Peer, error) {
			return nil, fmt.Errorf("peer holds another ring: %w", repair.ErrIncompatible)
		},
	}
	// Run works on peers in parallel: the count is shared.
	var calls atomic.Int32
	counting := syncerFunc(func(ctx context.Context, peer string, rs []token.Range) ([]Outcome, repair.Stats, error) {
		calls.Add(1)
		return bad.Sync(ctx, peer, rs)
	})
	rep, err = Run(ctx, ranges, counting, &MemRecord{}, Options{})
	if err != nil || rep.RangesRepaired != 0 || rep.RangesFailed == 0 {
		t.Fatalf("an incompatible peer: %+v, %v", rep, err)
	}
	if int(calls.Load()) != len(rep.Peers) {
		t.Fatalf("an incompatible peer was tried %d times for %d peers; want once each", calls.Load(), len(rep.Peers))
	}
	for _, p := range rep.Peers {
		if !strings.Contains(p.Error, repair.ErrIncompatible.Error()) {
			t.Errorf("peer %s: error %q, want the incompatibility named", p.ID, p.Error)
		}
	}
}

// errDown is a test cluster's unreachable node, a transient failure.
var errDown = errors.New("connection refused")

func transient(err error) bool { return errors.Is(err, errDown) }

type syncerFunc func(context.Context, string, []token.Range) ([]Outcome, repair.Stats, error)

func (f syncerFunc) Sync(ctx context.Context, peer string, rs []token.Range) ([]Outcome, repair.Stats, error) {
	return f(ctx, peer, rs)
}
