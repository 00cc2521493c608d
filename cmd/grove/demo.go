package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/coord"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/engine/rowstore"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/forest"
	"github.com/antientropy/grove/ring"
	"github.com/antientropy/grove/simd"
)

// The demo's cluster: six nodes of sixteen vnodes each, three replicas of
// every range, as a small Cassandra ring. Each node keeps its rows in an
// in-memory store standing in for its storage engine, and its live trees —
// one per range it replicates — in a forest on disk, under one budget.
const (
	demoNodes    = 6
	demoVnodes   = 16
	demoRF       = 3
	demoBaseTS   = 1_700_000_000_000_000 // µs
	demoRowBytes = 64                    // value bytes
)

// demoNode is one node of the demo ring.
type demoNode struct {
	id     string
	ranges []ring.Replica
	store  *rowstore.Store
	forest *forest.Forest
	reps   map[token.Range]*rowstore.Replica
	resp   *repair.NodeResponder
}

// open opens (or reopens) the node's forest and makes its replicas and
// responders from it.
func (n *demoNode) open(ctx context.Context, dir string, b *arena.Budget) error {
	f, err := forest.Open(ctx, filepath.Join(dir, n.id), forest.Options{Budget: b, Ranges: ring.TokenRanges(n.ranges), Store: n.store, Reserve: 1})
	if err != nil {
		return fmt.Errorf("node %s: %w", n.id, err)
	}
	n.forest = f
	n.reps = map[token.Range]*rowstore.Replica{}
	var all []repair.Replica
	for _, t := range f.Trees() {
		rep := rowstore.NewReplica(n.store, t.Live)
		n.reps[t.Range] = rep
		all = append(all, rep)
	}
	n.resp, err = repair.NewNodeResponder(all, repair.ResponderOptions{})
	return err
}

// close shuts the node's responders and checkpoints and closes its forest.
func (n *demoNode) close(ctx context.Context) error {
	if n.resp != nil {
		n.resp.Shutdown()
	}
	if n.forest == nil {
		return nil
	}
	_, err := n.forest.Close(ctx)
	n.forest = nil
	return err
}

// demoRing places six nodes of sixteen pseudo-random tokens, RF 3.
func demoRing() (*ring.Ring, error) {
	var b strings.Builder
	fmt.Fprintf(&b, `{"partitioner": "murmur3", "replication_factor": %d, "nodes": [`, demoRF)
	x := uint64(42)
	for n := range demoNodes {
		if n > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id": "n%d", "address": "in-process", "tokens": [`, n+1)
		for v := range demoVnodes {
			if v > 0 {
				b.WriteString(",")
			}
			x = splitmix(x)
			fmt.Fprintf(&b, "%q", strconv.FormatInt(int64(x), 10))
		}
		b.WriteString("]}")
	}
	b.WriteString("]}")
	return ring.Parse([]byte(b.String()))
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func demoKey(i int) []byte { return strconv.AppendInt([]byte("user:"), int64(10_000_000+i), 10) }

// demoValue is row i's value, version v: pseudo-random hex.
func demoValue(i, v int) []byte {
	out := make([]byte, 0, demoRowBytes)
	x := uint64(i)<<8 | uint64(v)
	for len(out) < demoRowBytes {
		x = splitmix(x)
		out = strconv.AppendUint(out, x, 16)
	}
	return out[:demoRowBytes]
}

// divergence is one kind of silent divergence the demo plants, and how
// often.
type divergence struct {
	name  string
	every int
}

var divergences = []divergence{
	{"a write one replica missed", 9_973},
	{"a delete one replica missed", 10_007},
	{"a value corrupted on one replica (same timestamp, one flipped bit)", 10_009},
	{"an older version kept by one replica", 10_037},
}

// demoRows returns the rows each node stores, with the divergences planted,
// the rows Cassandra's rule picks for each key, how many keys each node
// replicates, and how many divergences of each kind were planted.
func demoRows(rg *ring.Ring, n int) (rows map[string][]engine.Row, want map[string]engine.Row, keys, planted map[string]int) {
	rows, want, keys, planted = map[string][]engine.Row{}, make(map[string]engine.Row, n), map[string]int{}, map[string]int{}
	ranges := rg.Ranges()
	for i := range n {
		k := demoKey(i)
		tok := token.Murmur3{}.Token(k)
		at, _ := slices.BinarySearchFunc(ranges, tok, func(r ring.Range, t token.Token) int { return r.Range.Compare(t) })
		reps := ranges[at].Replicas
		for _, id := range reps {
			keys[id]++
		}
		row := engine.Row{Key: k, Value: demoValue(i, 0), TS: demoBaseTS + int64(i)}
		versions := make([]engine.Row, len(reps))
		for j := range reps {
			versions[j] = row
		}
		victim := int(splitmix(uint64(i)) % uint64(len(reps)))
		kind := -1
		for d, dv := range divergences {
			if i%dv.every == dv.every-1 {
				kind = d
			}
		}
		switch kind {
		case 0:
			versions[victim] = engine.Row{}
		case 1:
			for j := range versions {
				if j != victim {
					versions[j] = engine.Row{Key: k, Value: row.Value, TS: row.TS + 1_000_000, Deleted: true}
				}
			}
		case 2:
			bad := slices.Clone(row.Value)
			bad[17] ^= 0x20
			versions[victim] = engine.Row{Key: k, Value: bad, TS: row.TS}
		case 3:
			versions[victim] = engine.Row{Key: k, Value: demoValue(i, 1), TS: row.TS - 1_000_000}
		}
		if kind >= 0 {
			planted[divergences[kind].name]++
		}
		var best *engine.Row
		for j, v := range versions {
			if v.Key == nil {
				continue
			}
			rows[reps[j]] = append(rows[reps[j]], v)
			if best == nil || engine.Supersedes(&versions[j], best) {
				best = &versions[j]
			}
		}
		want[string(k)] = *best
	}
	return rows, want, keys, planted
}

// demoSyncer runs one node session per peer against the peers'
// in-process node responders.
func demoSyncer(nodes map[string]*demoNode, self *demoNode) coord.PerPeer {
	return coord.PerPeer{
		Local: func(r token.Range) (repair.Replica, error) { return self.reps[r], nil },
		Peer: func(id string) (repair.NodePeer, []token.Range, error) {
			return nodes[id].resp, ring.TokenRanges(nodes[id].ranges), nil
		},
	}
}

func runDemo(args []string, e *env) (int, error) {
	stdout := e.stdout
	c := newCmdline("demo").withBudget()
	n := c.Int("rows", 600_000, "rows in the cluster (`N`, at least 1000), each stored by three nodes")
	if _, err := c.parse(args, 0); err != nil {
		return 0, err
	}
	if *n < 1000 {
		return 0, fmt.Errorf("--rows %d: want at least 1000", *n)
	}
	b, err := c.budget()
	if err != nil {
		return 0, err
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "grove-demo-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	rg, err := demoRing()
	if err != nil {
		return 0, err
	}

	fmt.Fprintf(stdout, "grove demo: a ring of %d nodes, %d vnodes each, %d replicas of every range; %d rows, silent divergences planted\n",
		demoNodes, demoVnodes, demoRF, *n)
	fmt.Fprintf(stdout, "machine: %s/%s, %d CPUs; hashing: %s\n\n", runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), simd.Features())
	fmt.Fprintf(stdout, "each node keeps its rows in an in-memory store (on the Go heap, standing in for its storage engine)\n")
	fmt.Fprintf(stdout, "and one live tree per range it replicates, in files under one budget, outside the heap\n\n")
	fmt.Fprintf(stdout, "%-52s %10s %16s %14s\n", "step", "time", "trees off-heap", "Go heap")
	step := func(name string, d time.Duration) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(stdout, "%-52s %10s %16s %14s\n", name, roundDuration(d), arena.FormatBytes(b.Used()), arena.FormatBytes(int64(ms.HeapAlloc)))
	}

	start := time.Now()
	rows, want, keys, planted := demoRows(rg, *n)
	step("write the rows to their replicas", time.Since(start))
	nodes := map[string]*demoNode{}
	defer func() {
		for _, nd := range nodes {
			nd.close(ctx)
		}
	}()
	ids := make([]string, 0, demoNodes)
	for _, node := range rg.Nodes() {
		ids = append(ids, node.ID)
	}
	for _, id := range ids {
		start := time.Now()
		nd := &demoNode{id: id, store: rowstore.New(token.Murmur3{})}
		if nd.ranges, err = rg.RangesOf(id); err != nil {
			return 0, err
		}
		if _, err := nd.store.Apply(ctx, rows[id], nil); err != nil {
			return 0, err
		}
		delete(rows, id)
		if err := nd.open(ctx, dir, b); err != nil {
			return 0, err
		}
		nodes[id] = nd
		st := nd.forest.Stats()
		step(fmt.Sprintf("%s: build %d trees from %d rows", id, st.Built, st.RowsScanned), time.Since(start))
	}
	fmt.Fprintln(stdout)
	for _, d := range divergences {
		fmt.Fprintf(stdout, "planted: %4d × %s\n", planted[d.name], d.name)
	}
	fmt.Fprintln(stdout)

	// A restart: the trees were checkpointed at close, so the open maps
	// them and reads no rows.
	restarted := nodes[ids[3]]
	start = time.Now()
	if err := restarted.close(ctx); err != nil {
		return 0, err
	}
	if err := restarted.open(ctx, dir, b); err != nil {
		return 0, err
	}
	st := restarted.forest.Stats()
	step(fmt.Sprintf("restart %s: %d trees reopened, %d rows read", restarted.id, st.Reused, st.RowsScanned), time.Since(start))

	// Repair every node with every other replica of its ranges.
	var total struct {
		bytes        int64
		trips, found int
		sessions     int
	}
	depthOf := map[token.Range]int{}
	for _, nd := range nodes {
		for _, t := range nd.forest.Trees() {
			depthOf[t.Range] = max(depthOf[t.Range], t.Live.Depth())
		}
	}
	var cassTrees, cassStream int64
	rowBytes := int64(engine.EncodedLen(&engine.Row{Key: demoKey(0), Value: make([]byte, demoRowBytes)}))
	for _, id := range ids {
		nd := nodes[id]
		for _, r := range nd.ranges {
			// Cassandra: every replica of the range sends the repairing
			// node a whole tree (~36 B a leaf, at the depth grove chose).
			cassTrees += int64(demoRF) * 36 << depthOf[r.Range]
		}
		start := time.Now()
		rep, err := coord.Run(ctx, nd.ranges, demoSyncer(nodes, nd), &coord.MemRecord{}, coord.Options{})
		if err != nil {
			return 0, err
		}
		if rep.RangesFailed > 0 {
			return 0, fmt.Errorf("repair of %s: %d ranges failed", id, rep.RangesFailed)
		}
		var bytes int64
		var trips, found, differing int
		for _, p := range rep.Peers {
			bytes += p.BytesSent + p.BytesReceived
			trips += p.RoundTrips
			found += len(p.OnlyHere) + len(p.OnlyThere) + len(p.Different)
			differing += p.RangesDiffering
			total.sessions += p.Ranges
		}
		total.bytes, total.trips, total.found = total.bytes+bytes, total.trips+trips, total.found+found
		// Cassandra streams every row of a differing leaf — one row a
		// leaf here — both ways.
		cassStream += int64(found) * 2 * rowBytes
		step(fmt.Sprintf("repair %s: %d keys in %d differing ranges, %s", id, found, differing, arena.FormatBytes(bytes)), time.Since(start))
	}

	// Every replica now holds what Cassandra's rule picks, and every
	// (range, peer) pair is in sync.
	ok := true
	for _, id := range ids {
		nd := nodes[id]
		held := 0
		err := nd.store.All(ctx, func(r *engine.Row) error {
			held++
			w := want[string(r.Key)]
			if !slices.Equal(w.Value, r.Value) || w.TS != r.TS || w.Deleted != r.Deleted {
				ok = false
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
		ok = ok && held == keys[id]
	}
	start = time.Now()
	inSync := true
	var checkTrips int
	for _, id := range ids {
		nd := nodes[id]
		rep, err := coord.Run(ctx, nd.ranges, demoSyncer(nodes, nd), &coord.MemRecord{}, coord.Options{})
		if err != nil {
			return 0, err
		}
		inSync = inSync && !rep.Differences() && rep.RangesFailed == 0
		for _, p := range rep.Peers {
			checkTrips += p.RoundTrips
		}
	}
	step(fmt.Sprintf("check every node again: %d round trips", checkTrips), time.Since(start))

	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "grove:     %s in %d round trips (one node session per pair of nodes, over %d shared (range, peer) pairs), for %d differing keys\n",
		arena.FormatBytes(total.bytes), total.trips, total.sessions, total.found)
	fmt.Fprintf(stdout, "Cassandra: %s of Merkle trees (every replica's, for each range of each node) + ~%s streamed (the differing leaves, both ways): %.0f× grove\n",
		arena.FormatBytes(cassTrees), arena.FormatBytes(cassStream), float64(cassTrees+cassStream)/math.Max(1, float64(total.bytes)))
	if !ok || !inSync {
		return 0, fmt.Errorf("the demo did not converge: replicas match Cassandra's rule: %v, all in sync after: %v", ok, inSync)
	}
	fmt.Fprintln(stdout, "\nevery replica holds exactly the rows Cassandra's rule picks, and a second round finds every range in sync.")
	return exitOK, nil
}

// roundDuration keeps three significant digits or so: a diff takes
// microseconds, a build hundreds of milliseconds.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d < time.Millisecond:
		return d.Round(100 * time.Nanosecond)
	case d < time.Second:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

func keyStrings(keys []engine.Key) []string {
	var out []string
	for _, k := range keys {
		out = append(out, string(k.Key))
	}
	return out
}
