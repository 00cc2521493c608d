package grovepebble

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/forest"
)

// testRanges are eight of the sixteen equal slices of the Murmur3 ring —
// every other one — so that half the keys belong to no range of the node.
func testRanges() []token.Range {
	full := token.Murmur3{}.Range()
	var rs []token.Range
	for i := 0; i < 16; i += 2 {
		rs = append(rs, full.Leaf(i, 4))
	}
	return rs
}

// inRanges reports, independently of the Node, whether tok is in one of rs.
func inRanges(rs []token.Range, tok token.Token) bool {
	for _, r := range rs {
		if r.Contains(tok) {
			return true
		}
	}
	return false
}

// rangeKeys returns n keys whose tokens lie in rs (in == true) or in none
// of them (in == false), from "prefix-0" on.
func rangeKeys(rs []token.Range, prefix string, n int, in bool) [][]byte {
	var out [][]byte
	for i := 0; len(out) < n; i++ {
		k := []byte(prefix + "-" + strconv.Itoa(i))
		if inRanges(rs, token.Murmur3{}.Token(k)) == in {
			out = append(out, k)
		}
	}
	return out
}

// loadRows writes rows with keys, in batches of 500, through Apply.
func loadRows(t testing.TB, n *Node, keys [][]byte, ts int64) {
	t.Helper()
	for i := 0; i < len(keys); i += 500 {
		var batch []engine.Row
		for _, k := range keys[i:min(i+500, len(keys))] {
			batch = append(batch, engine.Row{Key: k, Value: []byte("v" + string(k)), TS: ts})
		}
		if _, err := n.Apply(context.Background(), batch); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
}

// checkTrees checks that every range's live tree equals a tree of the same
// shape rebuilt from the rows stored in that range, read straight from
// Pebble, that the node's ranges are exactly rs, and that no stored row
// lies outside them.
func checkTrees(t testing.TB, n *Node, rs []token.Range) {
	t.Helper()
	checkTreesKeeping(t, n, rs, nil)
}

// checkTreesKeeping is checkTrees for a node that also keeps rows in the
// spans of kept, which it no longer replicates.
func checkTreesKeeping(t testing.TB, n *Node, rs, kept []token.Range) {
	t.Helper()
	reps := n.Replicas()
	if len(reps) != len(rs) {
		t.Fatalf("%d replicas, want %d", len(reps), len(rs))
	}
	stored := dbRows(t, n)
	for _, s := range stored {
		if !inRanges(rs, s.Token) && !inRanges(kept, s.Token) {
			t.Fatalf("stored row %v is in none of the node's ranges, nor in a span it kept", s)
		}
	}
	for i, rep := range reps {
		if rep.Range() != rs[i] {
			t.Fatalf("replica %d has range %v, want %v", i, rep.Range(), rs[i])
		}
		tr, err := engine.New(engine.Options{Partitioner: token.Murmur3{}, Range: rs[i], Depth: rep.Depth(), Budget: arena.NewBudget(64 << 20)})
		if err != nil {
			t.Fatal(err)
		}
		var rows int64
		for _, s := range stored {
			if rs[i].Contains(s.Token) {
				if err := tr.Add(&s.Row); err != nil {
					t.Fatal(err)
				}
				rows++
			}
		}
		if err := tr.Hash(context.Background()); err != nil {
			t.Fatal(err)
		}
		want, err := tr.Root()
		tr.Close()
		if err != nil {
			t.Fatal(err)
		}
		got, err := rep.Root(context.Background())
		if err != nil {
			t.Fatalf("range %v: Root: %v", rs[i], err)
		}
		if got != want {
			t.Errorf("range %v: live root %x, rebuilt from the data %x", rs[i], got[:8], want[:8])
		}
		if rep.Rows() != rows {
			t.Errorf("range %v: tree counts %d rows, the data holds %d", rs[i], rep.Rows(), rows)
		}
	}
}

func TestManyRangesCleanRestart(t *testing.T) {
	dir := t.TempDir()
	rs := testRanges()
	opts := Options{Ranges: rs}
	n := openNode(t, dir, created(opts))
	if s := n.OpenStats(); s.Built != len(rs) || s.RowsScanned != 0 {
		t.Fatalf("new node: OpenStats %+v, want %d built and no rows read", s, len(rs))
	}
	keys := rangeKeys(rs, "k", 6000, true)
	loadRows(t, n, keys, 1)
	// Overwrites, tombstones and a losing write, as a live node sees.
	for i, k := range keys[:300] {
		var err error
		switch i % 3 {
		case 0:
			err = n.Put(context.Background(), k, []byte("new"), 2)
		case 1:
			err = n.Delete(context.Background(), k, 2)
		case 2:
			err = n.Put(context.Background(), k, []byte("old"), 0)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	checkTrees(t, n, rs)
	if n.Rows() != int64(len(keys)) {
		t.Fatalf("Rows = %d, want %d", n.Rows(), len(keys))
	}
	n = reopen(t, n, dir, opts)
	s := n.OpenStats()
	if s.RowsScanned != 0 || s.Reused != len(rs) || s.Recovered != 0 || s.Built != 0 {
		t.Fatalf("after a clean Close: OpenStats %+v, want %d reused and no rows read", s, len(rs))
	}
	if marks, err := n.readMarks(); err != nil || len(marks) != 0 {
		t.Fatalf("after a clean Close: %d marks left (%v), want none", len(marks), err)
	}
	checkTrees(t, n, rs)
	if n.Rows() != int64(len(keys)) {
		t.Fatalf("Rows after reopen = %d, want %d", n.Rows(), len(keys))
	}
	// A node of many ranges answers sessions per range only.
	if _, err := n.Root(context.Background()); !errors.Is(err, ErrManyRanges) {
		t.Fatalf("Node.Root: %v, want ErrManyRanges", err)
	}
	if _, err := n.Replica(token.Range{Lo: 1, Hi: 2}); !errors.Is(err, ErrNoSuchRange) {
		t.Fatalf("Replica of a foreign range: %v, want ErrNoSuchRange", err)
	}
}

func TestManyRangesForeignRowRefused(t *testing.T) {
	dir := t.TempDir()
	rs := testRanges()
	n := openNode(t, dir, created(Options{Ranges: rs}))
	loadRows(t, n, rangeKeys(rs, "k", 100, true), 1)
	before := dbRows(t, n)
	marksBefore, err := n.readMarks()
	if err != nil {
		t.Fatal(err)
	}
	foreign := rangeKeys(rs, "f", 1, false)[0]
	var batch, first []engine.Row
	for _, k := range rangeKeys(rs, "ok", 50, true) {
		batch = append(batch, engine.Row{Key: k, Value: []byte("x"), TS: 5})
	}
	for _, k := range rangeKeys(rs[:1], "ok", 10, true) {
		first = append(first, engine.Row{Key: k, Value: []byte("x"), TS: 5})
	}
	batch = append(batch, engine.Row{Key: foreign, Value: []byte("x"), TS: 5})
	first = append(first, engine.Row{Key: foreign, Value: []byte("x"), TS: 5})
	cases := []struct {
		name  string
		write func() error
	}{
		{"Apply", func() error { _, err := n.Apply(context.Background(), batch); return err }},
		{"Put", func() error { err := n.Put(context.Background(), foreign, []byte("x"), 5); return err }},
		{"Delete", func() error { err := n.Delete(context.Background(), foreign, 5); return err }},
		{"RangeReplica.Apply", func() error {
			_, err := n.Replicas()[0].Apply(context.Background(), first)
			return err
		}},
	}
	for _, c := range cases {
		err := c.write()
		if !errors.Is(err, ErrOutOfRange) || !strings.Contains(err.Error(), string(foreign)) {
			t.Errorf("%s with a foreign row: %v, want ErrOutOfRange naming %q", c.name, err, foreign)
		}
	}
	if after := dbRows(t, n); !equalRows(before, after) {
		t.Fatalf("a refused write changed the data: %s", diffRows(before, after))
	}
	if marks, err := n.readMarks(); err != nil || len(marks) != len(marksBefore) {
		t.Fatalf("a refused write changed the marks: %d before, %d after (%v)", len(marksBefore), len(marks), err)
	}
	checkTrees(t, n, rs)
}

func TestManyRangesOptions(t *testing.T) {
	dir := t.TempDir()
	rs := testRanges()
	_, err := Open(context.Background(), dir, Options{Create: true, Ranges: rs, Range: rs[0]})
	if !errors.Is(err, ErrOptions) {
		t.Fatalf("Range and Ranges: %v, want ErrOptions", err)
	}
	_, err = Open(context.Background(), dir, Options{Create: true, Ranges: []token.Range{rs[1], rs[0]}})
	if !errors.Is(err, ErrOptions) {
		t.Fatalf("unordered Ranges: %v, want ErrOptions", err)
	}
	// A database holding a row outside the ranges is refused at Open.
	n := openNode(t, dir, created(Options{}))
	foreign := rangeKeys(rs, "f", 1, false)[0]
	if err := n.Put(context.Background(), foreign, []byte("x"), 1); err != nil {
		t.Fatal(err)
	}
	n.Close()
	_, err = Open(context.Background(), dir, Options{Ranges: rs})
	if !errors.Is(err, ErrOutOfRange) || !strings.Contains(err.Error(), string(foreign)) || !strings.Contains(err.Error(), "in none of the node's 8 ranges") {
		t.Fatalf("Open over a foreign row: %v, want ErrOutOfRange naming %q", err, foreign)
	}
}

// crashEnv names the directory the crash helper writes to; crashSeed seeds
// its writes.
const (
	crashEnv  = "GROVEPEBBLE_CRASH_DIR"
	crashSeed = "GROVEPEBBLE_CRASH_SEED"
)

// TestManyRangesCrashHelper is the process TestManyRangesCrash kills: it
// opens the node, says "ready", and writes batches until it is killed.
func TestManyRangesCrashHelper(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("run by TestManyRangesCrash")
	}
	seed, _ := strconv.ParseUint(os.Getenv(crashSeed), 10, 64)
	rs := testRanges()
	n, err := Open(context.Background(), dir, Options{Ranges: rs, Checkpoints: forest.CheckpointPolicy{Writes: 1500}})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	rng := rand.New(rand.NewPCG(seed, 1))
	keys := rangeKeys(rs, "k", 20000, true)
	fresh := rangeKeys(rs, fmt.Sprintf("c%d", seed), 20000, true)
	for i := 0; ; i++ {
		var batch []engine.Row
		for range 20 {
			switch rng.IntN(3) {
			case 0:
				batch = append(batch, engine.Row{Key: keys[rng.IntN(len(keys))], Value: []byte("over"), TS: int64(10 + i)})
			case 1:
				batch = append(batch, engine.Row{Key: keys[rng.IntN(len(keys))], TS: int64(10 + i), Deleted: true})
			case 2:
				batch = append(batch, engine.Row{Key: fresh[rng.IntN(len(fresh))], Value: []byte("new"), TS: int64(10 + i)})
			}
		}
		if _, err := n.Apply(context.Background(), batch); err != nil {
			fmt.Println("apply:", err)
			os.Exit(1)
		}
	}
}

func TestManyRangesCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes")
	}
	dir := t.TempDir()
	rs := testRanges()
	n := openNode(t, dir, created(Options{Ranges: rs}))
	loadRows(t, n, rangeKeys(rs, "k", 20000, true), 1)
	// The trees were planned for an empty node: one leaf each.
	moved, err := n.Rebalance(context.Background())
	if err != nil || len(moved) != len(rs) {
		t.Fatalf("Rebalance after the load: moved %d trees (%v), want %d", len(moved), err, len(rs))
	}
	checkTrees(t, n, rs)
	t.Logf("depth after the load: %d", n.Depth())
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	deadline := time.Now().Add(25 * time.Second)
	recovered := 0
	for trial := 0; trial < 5 && time.Now().Before(deadline); trial++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestManyRangesCrashHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir, crashSeed+"="+strconv.Itoa(trial))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || strings.TrimSpace(line) != "ready" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("trial %d: helper said %q (%v), want ready", trial, line, err)
		}
		wait := time.Duration(100+rng.IntN(900)) * time.Millisecond
		time.Sleep(wait)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()

		start := time.Now()
		n, err := Open(context.Background(), dir, Options{Ranges: rs})
		if err != nil {
			t.Fatalf("trial %d: reopen after kill -9: %v", trial, err)
		}
		took := time.Since(start)
		s := n.OpenStats()
		rows := n.Rows()
		t.Logf("trial %d: killed after %v; reopen in %v: %d rows, %d read (%+v)", trial, wait, took.Round(time.Millisecond), rows, s.RowsScanned, s)
		if s.Recovered > 0 {
			recovered++
		}
		checkTrees(t, n, rs)
		if s.RowsScanned*4 > rows {
			t.Errorf("trial %d: recovery read %d rows of %d, more than a quarter", trial, s.RowsScanned, rows)
		}
		if marks, err := n.readMarks(); err != nil || len(marks) != 0 {
			t.Errorf("trial %d: %d marks left after the recovering Open (%v)", trial, len(marks), err)
		}
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		if t.Failed() {
			return
		}
	}
	t.Logf("%d trials recovered trees from marks", recovered)
}

// TestManyRangesConcurrent: writers, views, sums and Rebalance at once
// (run under -race); at the end every tree equals its rebuild.
func TestManyRangesConcurrent(t *testing.T) {
	rs := testRanges()
	n := openNode(t, t.TempDir(), created(Options{Ranges: rs, Checkpoints: forest.CheckpointPolicy{Writes: 300}}))
	keys := rangeKeys(rs, "k", 3000, true)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 3))
			for i := range 60 {
				var batch []engine.Row
				for range 25 {
					batch = append(batch, engine.Row{Key: keys[rng.IntN(len(keys))], Value: []byte{byte(i)}, TS: int64(i), Deleted: rng.IntN(5) == 0})
				}
				if _, err := n.Apply(ctx, batch); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, r := range n.Replicas() {
				v, release, err := r.View(ctx)
				if err != nil {
					errs <- err
					return
				}
				release()
				_ = v
				if _, err := r.Sum(ctx); err != nil {
					errs <- err
					return
				}
				_ = r.Shape()
			}
		}
	}()
	for range 3 {
		if _, err := n.Rebalance(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkTrees(t, n, rs)
}

// TestOneRangeWriteRetiresForest: a node of many ranges opened as one
// range and written to leaves no stale trees behind: the next Open with
// Ranges rebuilds them from the rows. Opened as one range and only read,
// it keeps them.
func TestOneRangeWriteRetiresForest(t *testing.T) {
	dir := t.TempDir()
	rs := testRanges()
	opts := Options{Ranges: rs}
	n := openNode(t, dir, created(opts))
	keys := rangeKeys(rs, "k", 500, true)
	loadRows(t, n, keys, 1)
	n.Close()

	one := openNode(t, dir, Options{})
	if _, ok, err := one.Get(context.Background(), keys[0]); err != nil || !ok {
		t.Fatal(ok, err)
	}
	one.Close()
	n = openNode(t, dir, opts)
	if s := n.OpenStats(); s.Reused != len(rs) || s.RowsScanned != 0 {
		t.Fatalf("after a read-only open as one range: %+v, want every tree reused", s)
	}
	n.Close()

	one = openNode(t, dir, Options{})
	if err := one.Put(context.Background(), keys[1], []byte("written as one range"), 5); err != nil {
		t.Fatal(err)
	}
	one.Close()
	n = openNode(t, dir, opts)
	if s := n.OpenStats(); s.Built != len(rs) || s.Reused != 0 {
		t.Fatalf("after a write as one range: %+v, want every tree built again", s)
	}
	checkTrees(t, n, rs)
}

// TestPlannedTreesKeepTheirDepth: a node whose trees were planned for the
// rows about to arrive (Options.RangeRows) keeps their depths while the
// rows come in, checkpoint after checkpoint, instead of folding them to
// the few rows held so far and rebuilding them from their rows as they
// fill; the trees still equal rebuilds.
func TestPlannedTreesKeepTheirDepth(t *testing.T) {
	rs := testRanges()
	const perRange = 20_000
	n := openNode(t, t.TempDir(), created(Options{Ranges: rs, RangeRows: func(token.Range) int64 { return perRange },
		Checkpoints: forest.CheckpointPolicy{Writes: 500}}))
	depths := map[token.Range]int{}
	for _, r := range n.Replicas() {
		depths[r.Range()] = r.Depth()
	}
	keys := rangeKeys(rs, "k", 4000, true)
	ctx := context.Background()
	for i := 0; i < len(keys); i += 100 {
		var batch []engine.Row
		for _, k := range keys[i:min(i+100, len(keys))] {
			batch = append(batch, engine.Row{Key: k, Value: []byte("v"), TS: 1})
		}
		if _, err := n.Apply(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range n.Replicas() {
		if r.Depth() != depths[r.Range()] {
			t.Errorf("range %v planned at depth %d for %d rows is at depth %d holding %d", r.Range(), depths[r.Range()], perRange, r.Depth(), r.Rows())
		}
	}
	checkTrees(t, n, rs)
}
