package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/internal/cli"
	"github.com/antientropy/grove/internal/keytext"
	"github.com/antientropy/grove/ring"

	grovepebble "github.com/antientropy/grove/adapters/pebble"
)

// ringFlags are --ring and --node: a node of the ring, whose ranges the
// database holds. Without them a command serves one range, the whole ring.
type ringFlags struct {
	path, node *string
}

func addRingFlags(fs *flag.FlagSet) *ringFlags {
	return &ringFlags{
		path: fs.String("ring", "", "the ring description `RING.json`; with --node, the database holds that node's ranges"),
		node: fs.String("node", "", "the node `ID` in --ring whose ranges the database holds"),
	}
}

// set reports whether --ring or --node was given.
func (f *ringFlags) set() bool { return f != nil && (*f.path != "" || *f.node != "") }

// errManyRangesNet is serve's and sync's answer to --ring for now: a
// session repairs one range, and routing sessions to ranges is not built.
var errManyRangesNet = errors.New("--ring and --node: serving or syncing a node of many ranges is not supported yet (load, dump, inspect and verify take them)")

// nodeRing is a node's place in a ring: the ring and its ranges there.
type nodeRing struct {
	ring     *ring.Ring
	id       string
	replicas []ring.Replica
}

// load reads the ring, or returns nil without --ring and --node.
func (f *ringFlags) load() (*nodeRing, error) {
	if f == nil || (*f.path == "" && *f.node == "") {
		return nil, nil
	}
	if *f.path == "" || *f.node == "" {
		return nil, errors.New("--ring and --node go together")
	}
	r, err := ring.Load(*f.path)
	if err != nil {
		return nil, err
	}
	reps, err := r.RangesOf(*f.node)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", *f.path, err)
	}
	if len(reps) == 0 {
		return nil, fmt.Errorf("%s: node %q replicates no range", *f.path, *f.node)
	}
	return &nodeRing{ring: r, id: *f.node, replicas: reps}, nil
}

// ranges returns the node's ranges, in token order.
func (nr *nodeRing) ranges() []token.Range {
	out := make([]token.Range, len(nr.replicas))
	for i, r := range nr.replicas {
		out[i] = r.Range
	}
	return out
}

// holds reports whether tok is in one of the node's ranges.
func (nr *nodeRing) holds(tok token.Token) bool {
	for _, r := range nr.replicas {
		if r.Range.Contains(tok) {
			return true
		}
	}
	return false
}

// peers returns the other replicas of range r.
func (nr *nodeRing) peers(r token.Range) []string {
	for _, rep := range nr.replicas {
		if rep.Range == r {
			return rep.Peers
		}
	}
	return nil
}

// options makes o the options of the node's ranges.
func (nr *nodeRing) options(o grovepebble.Options) grovepebble.Options {
	o.Ranges = nr.ranges()
	o.Partitioner = nr.ring.Partitioner()
	return o
}

// rangeDetail is one range in inspect's JSON.
type rangeDetail struct {
	Lo    string   `json:"lo"`
	Hi    string   `json:"hi"`
	Depth int      `json:"depth"`
	Rows  int64    `json:"rows"`
	Peers []string `json:"peers"`
}

// inspectReport is inspect's JSON.
type inspectReport struct {
	Ranges            int           `json:"ranges"`
	Rows              int64         `json:"rows"`
	RowsScannedAtOpen int64         `json:"rows_scanned_at_open"`
	BudgetBytes       int64         `json:"budget_bytes"`
	TreeBytes         int64         `json:"tree_bytes"`
	RangesDetail      []rangeDetail `json:"ranges_detail"`
}

// openRanges opens the database as the node of --ring and --node, which
// are required.
func openRanges(ctx context.Context, nf *nodeFlags) (*grovepebble.Node, *nodeRing, *arena.Budget, error) {
	nr, err := nf.ring.load()
	if err != nil {
		return nil, nil, nil, err
	}
	if nr == nil {
		return nil, nil, nil, errors.New("--ring and --node are required")
	}
	budget, err := nf.getBudget()
	if err != nil {
		return nil, nil, nil, err
	}
	node, err := nf.openWith(ctx, nr.options(grovepebble.Options{Budget: budget}))
	return node, nr, budget, err
}

func runInspect(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	fs := cli.NewFlagSet("inspect")
	nf := &nodeFlags{
		db:       fs.String("db", "", "the Pebble database directory `DIR` (required)"),
		budget:   cli.AddBudget(fs, "1GiB", "memory for the trees (a `SIZE`: 64MiB, 2GiB)"),
		ring:     addRingFlags(fs),
		scanRate: addScanRate(fs),
	}
	asJSON := fs.Bool("json", false, "print JSON")
	if err := cli.ParseNamed(fs, args); err != nil {
		return 0, err
	}
	node, nr, budget, err := openRanges(ctx, nf)
	if err != nil {
		return 0, err
	}
	defer node.Close()
	rep := inspectReport{
		Ranges:            len(nr.replicas),
		Rows:              node.Rows(),
		RowsScannedAtOpen: node.OpenStats().RowsScanned,
		BudgetBytes:       budget.Limit(),
	}
	for _, r := range node.Replicas() {
		d := r.Depth()
		rep.TreeBytes += engine.LiveBytes(nil, d, int64(budget.PageSize()))
		peers := nr.peers(r.Range())
		if peers == nil {
			peers = []string{}
		}
		rep.RangesDetail = append(rep.RangesDetail, rangeDetail{
			Lo: strconv.FormatInt(r.Range().Lo, 10), Hi: strconv.FormatInt(r.Range().Hi, 10),
			Depth: d, Rows: r.Rows(), Peers: peers,
		})
	}
	if err := node.Close(); err != nil {
		return 0, err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return exitOK, enc.Encode(rep)
	}
	s := node.OpenStats()
	fmt.Fprintf(stdout, "node %s: %d ranges, %d rows; open read %d rows (%d trees reused, %d recovered, %d built, %d dropped)\n",
		nr.id, rep.Ranges, rep.Rows, rep.RowsScannedAtOpen, s.Reused, s.Recovered, s.Built, s.Dropped)
	fmt.Fprintf(stdout, "trees: %s of a %s budget\n", arena.FormatBytes(rep.TreeBytes), arena.FormatBytes(rep.BudgetBytes))
	for _, d := range rep.RangesDetail {
		fmt.Fprintf(stdout, "(%s, %s] depth %d, %d rows, peers %v\n", d.Lo, d.Hi, d.Depth, d.Rows, d.Peers)
	}
	return exitOK, nil
}

func runVerify(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	fs := cli.NewFlagSet("verify")
	nf := &nodeFlags{
		db:       fs.String("db", "", "the Pebble database directory `DIR` (required)"),
		budget:   cli.AddBudget(fs, "1GiB", "memory for the trees and one rebuilt tree at a time (a `SIZE`: 64MiB, 2GiB)"),
		ring:     addRingFlags(fs),
		scanRate: addScanRate(fs),
	}
	if err := cli.ParseNamed(fs, args); err != nil {
		return 0, err
	}
	node, _, budget, err := openRanges(ctx, nf)
	if err != nil {
		return 0, err
	}
	defer node.Close()
	var rows int64
	reps := node.Replicas()
	for _, r := range reps {
		n, err := verifyRange(ctx, r, budget)
		if err != nil {
			return 0, err
		}
		rows += n
	}
	if err := node.Close(); err != nil {
		return 0, err
	}
	fmt.Fprintf(stdout, "verified %d ranges: every tree equals a rebuild from its %d rows\n", len(reps), rows)
	return exitOK, nil
}

// errMismatch is verify's finding: a persisted tree that is not its data's.
var errMismatch = errors.New("tree does not match the data")

// verifyRange rebuilds r's tree from a full scan of its rows, at its depth,
// and compares the two roots and row counts. It returns the rows read.
func verifyRange(ctx context.Context, r *grovepebble.RangeReplica, budget *arena.Budget) (int64, error) {
	t, err := engine.New(engine.Options{Partitioner: r.Shape().Partitioner, Range: r.Range(), Depth: r.Depth(), Budget: budget})
	if err != nil {
		return 0, fmt.Errorf("range %v: %w", r.Range(), err)
	}
	defer t.Close()
	var n int64
	if err := r.Scan(ctx, r.Range(), func(row *engine.Row) error { n++; return t.Add(row) }); err != nil {
		return n, fmt.Errorf("range %v: %w", r.Range(), err)
	}
	if err := t.Hash(ctx); err != nil {
		return n, err
	}
	want, err := t.Root()
	if err != nil {
		return n, err
	}
	got, err := r.Root(ctx)
	if err != nil {
		return n, fmt.Errorf("range %v: %w", r.Range(), err)
	}
	if got != want || r.Rows() != n {
		return n, fmt.Errorf("range %v: %w: the tree holds %d rows, root %x…; a full scan read %d rows, root %x…",
			r.Range(), errMismatch, r.Rows(), got[:8], n, want[:8])
	}
	return n, nil
}

// checkInRanges refuses, naming its line, a row in none of the node's
// ranges.
func (nr *nodeRing) checkInRanges(line int, key []byte) error {
	if nr == nil {
		return nil
	}
	if tok := nr.ring.Partitioner().Token(key); !nr.holds(tok) {
		return fmt.Errorf("line %d: %w: key %s has token %d, in none of node %q's %d ranges", line, grovepebble.ErrOutOfRange, keytext.Quote(key), tok, nr.id, len(nr.replicas))
	}
	return nil
}
