package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/internal/cli"
	"github.com/antientropy/grove/internal/keytext"
	"github.com/antientropy/grove/ring"
	"github.com/antientropy/grove/rpc"

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

// nodeRing is a node's place in a ring: the ring and its ranges there.
type nodeRing struct {
	ring     *ring.Ring
	id       string
	replicas []ring.Replica
}

// load reads the ring, or returns nil without --ring and --node.
func (f *ringFlags) load() (*nodeRing, error) {
	if !f.set() {
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

// rangeOf returns the node's range that holds tok, or the zero range.
func (nr *nodeRing) rangeOf(tok token.Token) token.Range {
	i, ok := slices.BinarySearchFunc(nr.replicas, tok, func(r ring.Replica, t token.Token) int { return r.Range.Compare(t) })
	if !ok {
		return token.Range{}
	}
	return nr.replicas[i].Range
}

// holds reports whether tok is in one of the node's ranges: a binary
// search, as load asks it of every row.
func (nr *nodeRing) holds(tok token.Token) bool { return nr.rangeOf(tok) != token.Range{} }

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
	o.Ranges = ring.TokenRanges(nr.replicas)
	o.Partitioner = nr.ring.Partitioner()
	o.NodeID = nr.id
	return o
}

// rangeDetail is one range in inspect's JSON.
type rangeDetail struct {
	Lo    string   `json:"lo"`
	Hi    string   `json:"hi"`
	Depth int      `json:"depth"`
	Rows  int64    `json:"rows"`
	Peers []string `json:"peers"`
	// ConsistentAsOf is when all the range's replicas last matched this
	// one; null if some peer never did.
	ConsistentAsOf *time.Time `json:"consistent_as_of"`
	// LastScrub is when a scrub last checked the range's tree against the
	// rows on this node's disk; null if never.
	LastScrub *time.Time `json:"last_scrub"`
}

// spanDetail is a span of rows the node keeps but no longer replicates,
// with Pebble's estimate of its disk bytes.
type spanDetail struct {
	Lo    string `json:"lo"`
	Hi    string `json:"hi"`
	Bytes uint64 `json:"bytes"`
}

// inspectReport is inspect's JSON.
type inspectReport struct {
	Ranges            int           `json:"ranges"`
	Rows              int64         `json:"rows"`
	RowsScannedAtOpen int64         `json:"rows_scanned_at_open"`
	BudgetBytes       int64         `json:"budget_bytes"`
	TreeBytes         int64         `json:"tree_bytes"`
	RangesDetail      []rangeDetail `json:"ranges_detail"`
	// Unowned are the spans of rows kept since a ring change took their
	// ranges from the node, until cleanup deletes them.
	Unowned []spanDetail `json:"unowned"`
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
	asOf := consistency(node, nr)
	for i, r := range node.Replicas() {
		d := r.Depth()
		rep.TreeBytes += engine.LiveBytes(nil, d, int64(budget.PageSize()))
		peers := nr.peers(r.Range())
		if peers == nil {
			peers = []string{}
		}
		rep.RangesDetail = append(rep.RangesDetail, rangeDetail{
			Lo: strconv.FormatInt(r.Range().Lo, 10), Hi: strconv.FormatInt(r.Range().Hi, 10),
			Depth: d, Rows: r.Rows(), Peers: peers, ConsistentAsOf: asOf[i].AsOf, LastScrub: asOf[i].LastScrub,
		})
	}
	rep.Unowned = []spanDetail{}
	for _, u := range node.Unowned() {
		b, err := node.DiskBytes(u)
		if err != nil {
			return 0, err
		}
		rep.Unowned = append(rep.Unowned, spanDetail{Lo: strconv.FormatInt(u.Lo, 10), Hi: strconv.FormatInt(u.Hi, 10), Bytes: b})
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
		fmt.Fprintf(stdout, "(%s, %s] depth %d, %d rows, peers %v, %s, %s\n", d.Lo, d.Hi, d.Depth, d.Rows, d.Peers, asOfText(d.ConsistentAsOf), scrubText(d.LastScrub))
	}
	for _, u := range rep.Unowned {
		fmt.Fprintf(stdout, "(%s, %s] no longer the node's: ~%s kept until 'grove-pebble cleanup'\n", u.Lo, u.Hi, arena.FormatBytes(int64(u.Bytes)))
	}
	return exitOK, nil
}

func runCleanup(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	fs := cli.NewFlagSet("cleanup")
	nf := &nodeFlags{
		db:     fs.String("db", "", "the Pebble database directory `DIR` (required)"),
		budget: cli.AddBudget(fs, "1GiB", "memory for the trees (a `SIZE`: 64MiB, 2GiB)"),
		ring:   addRingFlags(fs),
	}
	if err := cli.ParseNamed(fs, args); err != nil {
		return 0, err
	}
	node, nr, _, err := openRanges(ctx, nf)
	if err != nil {
		return 0, err
	}
	defer node.Close()
	st, err := node.Cleanup(ctx)
	if err != nil {
		return 0, err
	}
	if err := node.Close(); err != nil {
		return 0, err
	}
	if len(st.Spans) == 0 {
		fmt.Fprintf(stdout, "node %s: nothing to clean up: every stored row is in one of its %d ranges\n", nr.id, len(nr.replicas))
		return exitOK, nil
	}
	fmt.Fprintf(stdout, "node %s: deleted the rows of %d spans it no longer replicates (~%s on disk, freed as Pebble compacts)\n",
		nr.id, len(st.Spans), arena.FormatBytes(int64(st.Bytes)))
	for _, s := range st.Spans {
		fmt.Fprintf(stdout, "  %v\n", s)
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

// rangeSync is one differing range of a node session in sync --ring
// --json.
type rangeSync struct {
	Lo     string        `json:"lo"`
	Hi     string        `json:"hi"`
	Peer   string        `json:"peer"`
	Report repair.Report `json:"report"`
}

// peerSync is one node session of sync --ring in --json: what it cost, and
// the ranges that differed (those in sync are counted, not listed).
type peerSync struct {
	Peer          string      `json:"peer"`
	Ranges        int         `json:"ranges"`
	Differing     int         `json:"differing"`
	Identical     bool        `json:"identical"`
	BytesSent     int64       `json:"bytes_sent"`
	BytesReceived int64       `json:"bytes_received"`
	RoundTrips    int         `json:"round_trips"`
	Passes        int         `json:"passes"`
	Sessions      []rangeSync `json:"sessions"`
}

// syncRanges is sync for a node of many ranges: one node session per peer
// (--peer, a node ID, or each of the node's peers), over every range the
// two share, against the address the ring gives that peer. The first
// round trip compares every shared range; only differing ones are
// descended, their calls batched (repair.SyncNode).
func syncRanges(ctx context.Context, stdout io.Writer, nf *nodeFlags, tf *cli.Net, peerID string, doRepair, asJSON bool, timeout time.Duration) (int, error) {
	if timeout <= 0 {
		return 0, fmt.Errorf("--timeout %v: want a positive duration", timeout)
	}
	nr, err := nf.ring.load()
	if err != nil {
		return 0, err
	}
	if peerID != "" {
		if _, ok := nr.ring.Node(peerID); !ok || peerID == nr.id {
			return 0, fmt.Errorf("--peer %q: with --ring, want the ID of another node of the ring", peerID)
		}
	}
	limit, tlsConf, err := tf.Config(false)
	if err != nil {
		return 0, err
	}
	// The peers, in the order the node's ranges first name them, each with
	// the ranges it shares with this node.
	var peers []string
	shared := map[string][]token.Range{}
	for _, rep := range nr.replicas {
		for _, p := range rep.Peers {
			if peerID == "" || p == peerID {
				if shared[p] == nil {
					peers = append(peers, p)
				}
				shared[p] = append(shared[p], rep.Range)
			}
		}
	}
	if len(peers) == 0 {
		return 0, fmt.Errorf("node %q shares no range with %q", nr.id, peerID)
	}
	clients, closeClients := peerClients(nr, rpc.ClientOptions{TLS: tlsConf, MaxMessageBytes: limit, CallTimeout: timeout})
	defer closeClients()
	for _, p := range peers {
		// Every peer's address is checked before the node opens.
		if _, err := clients(p); err != nil {
			return 0, fmt.Errorf("peer %s: %w", p, err)
		}
	}
	node, err := nf.open(ctx)
	if err != nil {
		return 0, err
	}
	defer node.Close()
	inSync := true
	var out []peerSync
	for _, p := range peers {
		var local []repair.Replica
		for _, r := range shared[p] {
			rep, err := node.Replica(r)
			if err != nil {
				return 0, err
			}
			local = append(local, rep)
		}
		theirs, err := nr.ring.RangesOf(p)
		if err != nil {
			return 0, err
		}
		sctx, cancel := context.WithTimeout(ctx, timeout)
		c, _ := clients(p) // made above
		res, err := repair.SyncNode(sctx, local, c, repair.NodeOptions{
			Options:    repair.Options{Repair: doRepair, MaxMessageBytes: limit},
			PeerRanges: ring.TokenRanges(theirs),
		})
		cancel()
		if err != nil {
			return 0, fmt.Errorf("with %s: %w", p, err)
		}
		inSync = inSync && res.InSync()
		ps := peerSync{Peer: p, Ranges: len(res.Ranges), Differing: res.Differing, Identical: res.InSync(),
			BytesSent: res.BytesSent, BytesReceived: res.BytesReceived, RoundTrips: res.RoundTrips, Passes: res.Passes, Sessions: []rangeSync{}}
		if !asJSON {
			fmt.Fprintf(stdout, "with %s: %d shared ranges, %d differ; %d bytes sent, %d received, %d round trips\n",
				p, ps.Ranges, ps.Differing, ps.BytesSent, ps.BytesReceived, ps.RoundTrips)
		}
		for _, rr := range res.Ranges {
			if rr.Err == nil && rr.Result != nil && (rr.InSync || rr.Converged) {
				// The two replicas of the range matched when the session ended.
				if err := node.RecordMatch(rr.Range, p, time.Now()); err != nil {
					return 0, err
				}
			}
			if rr.InSync {
				continue
			}
			if asJSON {
				ps.Sessions = append(ps.Sessions, rangeSync{Lo: strconv.FormatInt(rr.Range.Lo, 10), Hi: strconv.FormatInt(rr.Range.Hi, 10), Peer: p, Report: rr.Report(doRepair)})
				continue
			}
			fmt.Fprintf(stdout, "%v with %s: %d only here, %d only there, %d different\n", rr.Range, p, len(rr.OnlyHere), len(rr.OnlyThere), len(rr.Different))
			for _, l := range []struct {
				name string
				keys []engine.Key
			}{{"only here", rr.OnlyHere}, {"only there", rr.OnlyThere}, {"different", rr.Different}} {
				for _, k := range l.keys {
					fmt.Fprintf(stdout, "  %-11s %s (token %d)\n", l.name+":", keytext.Quote(k.Key), k.Token)
				}
			}
			if doRepair {
				fmt.Fprintf(stdout, "  repaired: %d rows sent to the peer (%d written there), %d written here\n", rr.Pushed, rr.PeerApplied, rr.Applied)
			}
		}
		out = append(out, ps)
	}
	if err := node.Close(); err != nil {
		return 0, err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return 0, err
		}
	}
	if inSync {
		return exitOK, nil
	}
	return exitDifferent, nil
}
