package coord

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/engine/token"
)

// slowRange makes every whole-range session of one range time out, as a
// range too divergent to repair within RangeTimeout does, while its
// subtree sessions go through — unless stuck, when they time out too, or
// unless the part is deeper than fitsAt (0: any part fits), when it times
// out as well.
type slowRange struct {
	SubtreeSyncer
	slow   token.Range
	stuck  bool
	fitsAt int

	mu       sync.Mutex
	whole    int              // whole-range attempts of slow
	byLevel  map[int]int      // subtree sessions, by level
	repaired map[string]int   // subtree sessions that moved rows, by peer
	parts    map[string][]int // levels of the parts that went through, by peer
}

func newSlowRange(s SubtreeSyncer, slow token.Range) *slowRange {
	return &slowRange{SubtreeSyncer: s, slow: slow, byLevel: map[int]int{}, repaired: map[string]int{}, parts: map[string][]int{}}
}

var errTimedOut = fmt.Errorf("session: %w", context.DeadlineExceeded)

func (s *slowRange) Sync(ctx context.Context, peer string, ranges []token.Range) ([]Outcome, repair.Stats, error) {
	var rest []token.Range
	for _, r := range ranges {
		if r != s.slow {
			rest = append(rest, r)
		}
	}
	byRange := map[token.Range]Outcome{}
	var cost repair.Stats
	if len(rest) > 0 {
		outs, c, err := s.SubtreeSyncer.Sync(ctx, peer, rest)
		if err != nil {
			return nil, c, err
		}
		cost = c
		for _, o := range outs {
			byRange[o.Range] = o
		}
	}
	out := make([]Outcome, len(ranges))
	for i, r := range ranges {
		if r == s.slow {
			s.mu.Lock()
			s.whole++
			s.mu.Unlock()
			out[i] = Outcome{Range: r, Err: errTimedOut}
			continue
		}
		out[i] = byRange[r]
	}
	return out, cost, nil
}

func (s *slowRange) SyncSubtree(ctx context.Context, peer string, r token.Range, sub repair.Subtree) (*repair.Result, repair.Stats, error) {
	s.mu.Lock()
	s.byLevel[sub.Level]++
	s.mu.Unlock()
	if r == s.slow && (s.stuck || s.fitsAt != 0 && sub.Level < s.fitsAt) {
		return nil, repair.Stats{}, errTimedOut
	}
	res, cost, err := s.SubtreeSyncer.SyncSubtree(ctx, peer, r, sub)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && res.Converged {
		s.parts[peer] = append(s.parts[peer], sub.Level)
		if !res.InSync {
			s.repaired[peer]++
		}
	}
	return res, cost, err
}

// peersOf returns the peers node id shares range r with.
func (c *cluster) peersOf(t *testing.T, id string, r token.Range) []string {
	for _, rr := range c.ranges(t, id) {
		if rr.Range == r {
			return rr.Peers
		}
	}
	t.Fatalf("node %s holds no range %v", id, r)
	return nil
}

// TestSplitTimedOutRange: a range whose whole-range sessions time out is
// split into subtree sessions after two timeouts; its parts repair it —
// every replica ends with the rows Cassandra's rule picks — its match is
// recorded, and the report says it was split. A part that times out too is
// split again.
func TestSplitTimedOutRange(t *testing.T) {
	for _, sy := range syncers {
		for _, fitsAt := range []int{0, 3} {
			t.Run(fmt.Sprintf("%s, parts fit at level %d", sy.name, max(fitsAt, 1)), func(t *testing.T) {
				ctx := context.Background()
				c := newCluster(t, 5, 3000, 11)
				slow := c.ranges(t, "n1")[0].Range
				s := newSlowRange(sy.make(c, "n1", nil).(SubtreeSyncer), slow)
				s.fitsAt = fitsAt
				// One peer at a time: two peers' sessions on the slow range
				// at once may cut each other short (ErrChanged), and a retry
				// would add a session to the counts below.
				rep, err := Run(ctx, c.ranges(t, "n1"), s, c.nodes["n1"].rec, Options{PeersParallel: 1})
				if err != nil || rep.RangesFailed != 0 {
					t.Fatalf("%+v, %v", rep, err)
				}
				peers := c.peersOf(t, "n1", slow)
				if s.whole != 2*len(peers) {
					t.Errorf("%d whole-range attempts of the slow range, want 2 with each of its %d peers", s.whole, len(peers))
				}
				for _, p := range peers {
					if _, ok := c.nodes["n1"].rec.Matched(slow, p); !ok {
						t.Errorf("the split range's match with %s was not recorded", p)
					}
					if s.repaired[p] == 0 {
						t.Errorf("no subtree session with %s moved a row: the split repaired nothing", p)
					}
					// The parts cover the range exactly: their shares add up
					// to one.
					share := 0.0
					for _, l := range s.parts[p] {
						share += 1 / float64(uint64(1)<<l)
					}
					if share != 1 {
						t.Errorf("the parts with %s that went through cover %v of the range, want all of it", p, share)
					}
				}
				for _, pr := range rep.Peers {
					want := 0
					for _, p := range peers {
						if p == pr.ID {
							want = 1
						}
					}
					if pr.RangesSplit != want {
						t.Errorf("peer %s: %d ranges split, want %d", pr.ID, pr.RangesSplit, want)
					}
					if want == 1 && pr.SubtreeSessions == 0 {
						t.Errorf("peer %s: no subtree session counted", pr.ID)
					}
				}
				if fitsAt == 3 && (s.byLevel[1] != 2*len(peers) || s.byLevel[2] != 4*len(peers) || s.byLevel[3] != 8*len(peers) || s.byLevel[4] != 0) {
					t.Errorf("subtree sessions by level %v, want each part split down to level 3", s.byLevel)
				}
				// The other nodes' runs repair what n1 does not share; then
				// every replica holds the rows the rule picks.
				for _, n := range c.ring.Nodes() {
					if n.ID == "n1" {
						continue
					}
					if rep, err := Run(ctx, c.ranges(t, n.ID), sy.make(c, n.ID, nil), c.nodes[n.ID].rec, Options{}); err != nil || rep.RangesFailed != 0 {
						t.Fatalf("node %s: %+v, %v", n.ID, rep, err)
					}
				}
				c.checkConverged(t)
			})
		}
	}
}

// TestSplitGivesUp: a range whose every part keeps timing out is split
// down to MaxSplitLevel, where its parts are tried Attempts times, and then
// fails: no match recorded, the run left open, the timeout reported.
func TestSplitGivesUp(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, 4, 1000, 12)
	slow := c.ranges(t, "n1")[0].Range
	s := newSlowRange(c.syncer("n1", nil), slow)
	s.stuck = true
	rep, err := Run(ctx, c.ranges(t, "n1"), s, c.nodes["n1"].rec, Options{MaxSplitLevel: 3})
	if err != nil {
		t.Fatal(err)
	}
	peers := c.peersOf(t, "n1", slow)
	if rep.RangesFailed != len(peers) {
		t.Fatalf("%d ranges failed, want the slow one with each of its %d peers", rep.RangesFailed, len(peers))
	}
	// Levels 1 and 2 split on their first timeout; level 3's 8 parts are
	// each tried 3 times.
	want := map[int]int{1: 2 * len(peers), 2: 4 * len(peers), 3: 8 * 3 * len(peers)}
	for l, n := range want {
		if s.byLevel[l] != n {
			t.Errorf("%d subtree sessions at level %d, want %d", s.byLevel[l], l, n)
		}
	}
	if s.byLevel[4] != 0 {
		t.Errorf("%d subtree sessions past MaxSplitLevel", s.byLevel[4])
	}
	for _, pr := range rep.Peers {
		split := false
		for _, p := range peers {
			split = split || p == pr.ID
		}
		if !split {
			continue
		}
		if pr.RangesSplit != 1 || pr.RangesFailed != 1 || pr.SubtreeSessions != 2+4+24 {
			t.Errorf("peer %s: %d split, %d failed, %d subtree sessions; want 1, 1, 30", pr.ID, pr.RangesSplit, pr.RangesFailed, pr.SubtreeSessions)
		}
		if !strings.Contains(pr.Error, context.DeadlineExceeded.Error()) || !strings.Contains(pr.Error, "split") {
			t.Errorf("peer %s: error %q, want the split's timeout", pr.ID, pr.Error)
		}
		if _, ok := c.nodes["n1"].rec.Matched(slow, pr.ID); ok {
			t.Errorf("a range that failed split was recorded as matching %s", pr.ID)
		}
	}
	if _, resumed, _ := c.nodes["n1"].rec.BeginRun(time.Now()); !resumed {
		t.Error("a run with a failed range was closed")
	}
}

// TestNoSplitWithoutSubtrees: a Syncer that cannot run subtree sessions
// keeps the old behaviour: the range is tried Attempts times and fails.
func TestNoSplitWithoutSubtrees(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, 4, 1000, 13)
	slow := c.ranges(t, "n1")[0].Range
	s := newSlowRange(c.syncer("n1", nil), slow)
	plain := syncerFunc(s.Sync) // hides SyncSubtree
	rep, err := Run(ctx, c.ranges(t, "n1"), plain, &MemRecord{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	peers := c.peersOf(t, "n1", slow)
	if rep.RangesFailed != len(peers) || s.whole != 3*len(peers) || len(s.byLevel) != 0 {
		t.Fatalf("%d failed, %d whole attempts, subtree sessions %v; want %d failed after 3 attempts each, none split", rep.RangesFailed, s.whole, s.byLevel, len(peers))
	}
	for _, pr := range rep.Peers {
		if pr.RangesSplit != 0 {
			t.Errorf("peer %s: %d ranges split by a Syncer without subtrees", pr.ID, pr.RangesSplit)
		}
	}
	if !errors.Is(errTimedOut, context.DeadlineExceeded) {
		t.Fatal("the test's timeout is no deadline error")
	}
}

// nodeOnly answers node sessions only.
type nodeOnly struct{ repair.NodePeer }

// TestThrottledSubtree: a throttled node peer runs a split range's subtree
// sessions too, when it answers per-range sessions, and says it cannot
// (errors.ErrUnsupported) when it answers node sessions only.
func TestThrottledSubtree(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, 3, 1000, 14)
	r := c.ranges(t, "n1")[0]
	p := PerPeer{
		Local: func(r token.Range) (repair.Replica, error) { return c.nodes["n1"].reps[r], nil },
		Peer: func(id string) (repair.NodePeer, []token.Range, error) {
			return Throttle(c.nodes[id].whole, 1<<30), nil, nil
		},
	}
	for _, half := range (repair.Subtree{}).Halves() {
		res, _, err := p.SyncSubtree(ctx, r.Peers[0], r.Range, half)
		if err != nil || !res.Converged {
			t.Fatalf("subtree %v through the throttle: %+v, %v", half, res, err)
		}
	}
	if res, _, err := p.SyncSubtree(ctx, r.Peers[0], r.Range, repair.Subtree{}); err != nil || !res.InSync {
		t.Fatalf("after both halves: %+v, %v", res, err)
	}
	p.Peer = func(id string) (repair.NodePeer, []token.Range, error) {
		return Throttle(nodeOnly{c.nodes[id].whole}, 1<<30), nil, nil
	}
	if _, _, err := p.SyncSubtree(ctx, r.Peers[0], r.Range, repair.Subtree{Level: 1}); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("a peer of node sessions only: %v, want errors.ErrUnsupported", err)
	}
}
