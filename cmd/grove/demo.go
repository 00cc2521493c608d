package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
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

func runDemo(args []string, stdout io.Writer) (int, error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	n := fs.Int("rows", 1_000_000, "rows per node")
	budget := budgetFlag(fs)
	if _, err := parse(fs, args, 0); err != nil {
		return 0, err
	}
	if *n < 100 {
		return 0, fmt.Errorf("--rows %d: want at least 100", *n)
	}
	b, err := budget()
	if err != nil {
		return 0, err
	}
	ctx := context.Background()
	plan := newDemoPlan(*n)
	names := []string{"primary", "replica 1", "replica 2", "replica 3"}
	depth, err := engine.ChooseDepth(int64(*n), b.Available()/int64(len(names)), nil)
	if err != nil {
		return 0, err
	}

	fmt.Fprintf(stdout, "grove demo: a primary and three replicas, %d rows each, one silent divergence per replica\n", *n)
	fmt.Fprintf(stdout, "machine: %s/%s, %d CPUs; hashing: %s\n\n", runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), simd.Features())
	fmt.Fprintf(stdout, "%-36s %10s %16s %14s\n", "step", "time", "trees off-heap", "Go heap")
	step := func(name string, d time.Duration) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(stdout, "%-36s %10s %16s %14s\n", name, roundDuration(d), arena.FormatBytes(b.Used()), arena.FormatBytes(int64(ms.HeapAlloc)))
	}

	trees := make([]*engine.Tree, len(names))
	shipAll := make([]int64, len(names))
	defer func() {
		for _, t := range trees {
			if t != nil {
				t.Close()
			}
		}
	}()
	for i, name := range names {
		start := time.Now()
		t, err := engine.New(engine.Options{Depth: depth, Budget: b})
		if err != nil {
			return 0, err
		}
		trees[i] = t
		src := &demoRows{plan: plan, replica: i}
		if _, err := t.Load(ctx, src, 0); err != nil {
			return 0, err
		}
		if err := t.Hash(ctx); err != nil {
			return 0, err
		}
		shipAll[i] = src.bytes
		step(fmt.Sprintf("build %s tree (depth %d)", name, depth), time.Since(start))
	}

	type found struct {
		res  *engine.DiffResult
		keys *engine.KeyDiff
	}
	results := make([]found, len(names))
	for i := 1; i < len(names); i++ {
		start := time.Now()
		res, err := engine.Diff(ctx, trees[0], trees[i])
		if err != nil {
			return 0, err
		}
		step(fmt.Sprintf("diff primary vs %s", names[i]), time.Since(start))
		start = time.Now()
		kd, err := engine.CompareKeys(ctx, trees[0].Partitioner(), res.Ranges,
			&demoRows{plan: plan}, &demoRows{plan: plan, replica: i})
		if err != nil {
			return 0, err
		}
		step(fmt.Sprintf("find the keys in %s", names[i]), time.Since(start))
		results[i] = found{res, kd}
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
		r := results[i]
		got := [3][]string{keyStrings(r.keys.OnlyInA), keyStrings(r.keys.OnlyInB), keyStrings(r.keys.Different)}
		match := true
		for j := range got {
			match = match && slices.Equal(got[j], want[i][j])
		}
		ok = ok && match
		verdict := "found exactly the planted row"
		if !match {
			verdict = "DID NOT find the planted row"
		}
		fmt.Fprintf(stdout, "%s %s %s: %s\n", names[i], planted[i], demoKey(map[int]int{replicaDel: plan.deleted, replicaMiss: plan.missed, replicaBad: plan.corrupted}[i]), verdict)
		fmt.Fprintf(stdout, "  only on primary %v, only on %s %v, different %v\n", got[0], names[i], got[1], got[2])
		hashes := int64(r.res.NodesCompared) * engine.NodeSize
		rows := int64(r.keys.A.Rows+r.keys.B.Rows)*engine.NodeSize + r.keys.A.KeyBytes + r.keys.B.KeyBytes
		total := hashes + rows
		nrows := r.keys.A.Rows + r.keys.B.Rows
		fmt.Fprintf(stdout, "  %d of %d leaves differ; exchanged %s (%d hashes on the path + keys and digests of the %d %s in the differing leaves)\n",
			r.res.DifferingLeaves, 1<<r.res.Depth, arena.FormatBytes(total), r.res.NodesCompared, nrows, plural(nrows, "row", "rows"))
		fmt.Fprintf(stdout, "  instead of %s to ship every row (%.0f× less), or %s to ship the whole tree\n",
			arena.FormatBytes(shipAll[i]), float64(shipAll[i])/float64(total), arena.FormatBytes(trees[i].Bytes()))
	}
	if !ok {
		return 0, fmt.Errorf("the demo did not find exactly the planted divergence")
	}
	fmt.Fprintln(stdout, "\nrepair needs exactly these 3 rows, not the leaf ranges around them.")
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

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
