package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/bench"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/engine/rowstore"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/simd"
)

// The demo's cluster: a primary and three replicas of the same rows, each
// replica silently wrong in one row. Rows are generated on the fly from their
// index, so the demo keeps no copy of the data on the Go heap, just as a node
// scanning its own SSTables would not.
const (
	demoBaseTS  = 1_700_000_000_000_000 // µs
	replicaDel  = 1                     // missed one delete
	replicaMiss = 2                     // missed one write
	replicaBad  = 3                     // holds one corrupted value
)

// demoPlan names the planted rows for a cluster of n rows.
type demoPlan struct{ n, deleted, missed, corrupted int }

func newDemoPlan(n int) demoPlan {
	return demoPlan{n: n, deleted: n * 3 / 7, missed: n * 5 / 9, corrupted: n * 2 / 11}
}

// demoRows yields the rows of one node of the demo cluster.
type demoRows struct {
	plan    demoPlan
	replica int // 0 for the primary
	i       int
	bytes   int64 // encoded size of the rows yielded, to price shipping them all
	key     []byte
	value   [64]byte
}

func (d *demoRows) NextRow(r *engine.Row) error {
	for d.i < d.plan.n && d.replica == replicaMiss && d.i == d.plan.missed {
		d.i++ // the write replica 2 never received
	}
	if d.i == d.plan.n {
		return io.EOF
	}
	i := d.i
	d.i++
	d.key = strconv.AppendInt(append(d.key[:0], "user:"...), int64(10_000_000+i), 10)
	var seed [32]byte
	x := uint64(i)
	for j := 0; j < 32; j += 8 {
		x = splitmix(x)
		for b := range 8 {
			seed[j+b] = byte(x >> (8 * b))
		}
	}
	hex.Encode(d.value[:], seed[:])
	*r = engine.Row{Key: d.key, Value: d.value[:], TS: demoBaseTS + int64(i)*1000}
	switch {
	case i == d.plan.deleted && d.replica != replicaDel:
		// The delete everyone but replica 1 applied: a newer tombstone.
		*r = engine.Row{Key: d.key, TS: demoBaseTS + int64(d.plan.n)*1000, Deleted: true}
	case i == d.plan.corrupted && d.replica == replicaBad:
		d.value[17] ^= 0x20 // one flipped bit, same timestamp: invisible to last-write-wins
	}
	d.bytes += int64(engine.EncodedLen(r))
	return nil
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func demoKey(i int) string { return "user:" + strconv.Itoa(10_000_000+i) }

func runDemo(args []string, e *env) (int, error) {
	stdout := e.stdout
	c := newCmdline("demo").withBudget()
	n := c.Int("rows", 1_000_000, "rows per node (`N`, at least 100)")
	if _, err := c.parse(args, 0); err != nil {
		return 0, err
	}
	if *n < 100 {
		return 0, fmt.Errorf("--rows %d: want at least 100", *n)
	}
	b, err := c.budget()
	if err != nil {
		return 0, err
	}
	ctx := context.Background()
	plan := newDemoPlan(*n)
	names := []string{"primary", "replica 1", "replica 2", "replica 3"}
	// Each node keeps its tree and, during a session, a snapshot of it.
	depth, err := engine.ChooseDepth(int64(*n), b.Available()/int64(2*len(names)), nil)
	if err != nil {
		return 0, err
	}

	fmt.Fprintf(stdout, "grove demo: a primary and three replicas, %d rows each, one silent divergence per replica,\n", *n)
	fmt.Fprintf(stdout, "repaired over loopback by the repair protocol (Connect/gRPC, HTTP/2)\n")
	fmt.Fprintf(stdout, "machine: %s/%s, %d CPUs; hashing: %s\n\n", runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), simd.Features())
	fmt.Fprintf(stdout, "the Go heap holds the nodes' rows (an in-memory store standing in for each node's storage);\n")
	fmt.Fprintf(stdout, "trees and session snapshots live outside it, charged to the budget\n\n")
	fmt.Fprintf(stdout, "%-40s %10s %16s %14s\n", "step", "time", "trees off-heap", "Go heap")
	step := func(name string, d time.Duration) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(stdout, "%-40s %10s %16s %14s\n", name, roundDuration(d), arena.FormatBytes(b.Used()), arena.FormatBytes(int64(ms.HeapAlloc)))
	}

	nodes := make([]*rowstore.Replica, len(names))
	defer func() {
		for _, r := range nodes {
			if r != nil {
				r.Tree().Close()
			}
		}
	}()
	for i, name := range names {
		start := time.Now()
		store, err := rowstore.Load(ctx, token.Murmur3{}, &demoRows{plan: plan, replica: i})
		if err != nil {
			return 0, err
		}
		t, err := rowstore.BuildTree(ctx, store, engine.Options{Depth: depth, Budget: b})
		if err != nil {
			return 0, err
		}
		nodes[i] = rowstore.NewReplica(store, t)
		step(fmt.Sprintf("load %s, build its tree (depth %d)", name, depth), time.Since(start))
	}

	figures := make([]*bench.RepairFigures, len(names))
	for i := 1; i < len(names); i++ {
		start := time.Now()
		f, err := bench.SyncLoopback(ctx, nodes[0], nodes[i], repair.Options{Repair: true})
		if err != nil {
			return 0, fmt.Errorf("%s: %w", names[i], err)
		}
		figures[i] = f
		step("sync and repair primary ↔ "+names[i], time.Since(start))
	}

	fmt.Fprintln(stdout)
	want := map[int][3][]string{
		replicaDel:  {nil, nil, {demoKey(plan.deleted)}},
		replicaMiss: {{demoKey(plan.missed)}, nil, nil},
		replicaBad:  {nil, nil, {demoKey(plan.corrupted)}},
	}
	planted := map[int]string{
		replicaDel:  "missed the delete of",
		replicaMiss: "missed the write of",
		replicaBad:  "holds a corrupted value of",
	}
	ok := true
	for i := 1; i < len(names); i++ {
		f, r := figures[i], figures[i].Result
		got := [3][]string{keyStrings(r.OnlyHere), keyStrings(r.OnlyThere), keyStrings(r.Different)}
		match := r.Converged
		for j := range got {
			match = match && slices.Equal(got[j], want[i][j])
		}
		ok = ok && match
		verdict := "found exactly the planted row and repaired it"
		if !match {
			verdict = "DID NOT find and repair exactly the planted row"
		}
		fmt.Fprintf(stdout, "%s %s %s: %s\n", names[i], planted[i], demoKey(map[int]int{replicaDel: plan.deleted, replicaMiss: plan.missed, replicaBad: plan.corrupted}[i]), verdict)
		fmt.Fprintf(stdout, "  only on primary %v, only on %s %v, different %v; rows sent to %s %d, to primary %d\n",
			got[0], names[i], got[1], got[2], names[i], r.Pushed, r.Applied)
		fmt.Fprintf(stdout, "  grove:     %s in %d round trips (%s on the wire with HTTP/2 framing), %d B of it the differing rows themselves\n",
			arena.FormatBytes(f.BytesSent+f.BytesReceived), f.RoundTrips, arena.FormatBytes(f.WireBytes), f.RowBytes)
		fmt.Fprintf(stdout, "  Cassandra: %s to send a whole tree of depth %d, then %s streamed: every row of the differing leaf, both ways\n",
			arena.FormatBytes(f.CassandraTreeBytes), f.Depth, arena.FormatBytes(f.CassandraStreamBytes))
	}

	// Every node now holds the primary's rows: each check is one round trip.
	start := time.Now()
	for i := 1; i < len(names); i++ {
		f, err := bench.SyncLoopback(ctx, nodes[0], nodes[i], repair.Options{})
		if err != nil {
			return 0, err
		}
		if !f.Result.InSync || f.RoundTrips != 1 {
			ok = false
			fmt.Fprintf(stdout, "%s is NOT in sync after the repair\n", names[i])
		}
	}
	step("check all in sync (one round trip each)", time.Since(start))
	if !ok {
		return 0, fmt.Errorf("the demo did not find and repair exactly the planted divergence")
	}
	fmt.Fprintln(stdout, "\nall four nodes hold the same rows: three rows moved, not the leaf ranges around them, nor whole trees.")
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
