package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/antientropy/grove/coord"
	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/internal/cli"
	"github.com/antientropy/grove/internal/keytext"
	"github.com/antientropy/grove/ring"
	"github.com/antientropy/grove/rpc"

	grovepebble "github.com/antientropy/grove/adapters/pebble"
)

// repairFlags are the flags of repair that tune the run.
type repairFlags struct {
	peersParallel *int
	rangeTimeout  *time.Duration
	attempts      *int
	streamRate    *float64
}

// options checks the flags and returns them as coord.Options.
func (f repairFlags) options() (coord.Options, error) {
	switch {
	case *f.peersParallel < 1:
		return coord.Options{}, fmt.Errorf("--peers-parallel %d: want at least 1", *f.peersParallel)
	case *f.rangeTimeout <= 0:
		return coord.Options{}, fmt.Errorf("--range-timeout %v: want a positive duration", *f.rangeTimeout)
	case *f.attempts < 1:
		return coord.Options{}, fmt.Errorf("--attempts %d: want at least 1", *f.attempts)
	case !(*f.streamRate >= 0) || math.IsInf(*f.streamRate, 1):
		return coord.Options{}, fmt.Errorf("--stream-rate %v: want MB/s, 0 (unlimited) or more", *f.streamRate)
	}
	return coord.Options{PeersParallel: *f.peersParallel, RangeTimeout: *f.rangeTimeout, Attempts: *f.attempts}, nil
}

func runRepair(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	fs := cli.NewFlagSet("repair")
	nf := &nodeFlags{
		db:       fs.String("db", "", "the node's Pebble database `DIR`, opened here, for a node that is not running; without it the running node is asked, at its address in the ring"),
		budget:   cli.AddBudget(fs, "1GiB", "memory for the trees and the sessions' snapshots (a `SIZE`: 64MiB, 2GiB)"),
		ring:     addRingFlags(fs),
		scanRate: addScanRate(fs),
	}
	tf := cli.AddNet(fs)
	rf := repairFlags{
		peersParallel: fs.Int("peers-parallel", 2, "repair this many peers at once (`P`)"),
		rangeTimeout:  fs.Duration("range-timeout", time.Minute, "time allowed per range of a peer's attempt (a `DURATION`)"),
		attempts:      fs.Int("attempts", 3, "tries per range when a session is cut short (a write under it, a busy or unreachable peer, a timeout)"),
		streamRate:    fs.Float64("stream-rate", 0, "bound each peer's repair traffic to `MB/s` (10^6 bytes a second, both ways); 0 is unlimited"),
	}
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := cli.ParseNamed(fs, args); err != nil {
		return 0, err
	}
	opts, err := rf.options()
	if err != nil {
		return 0, err
	}
	nr, limit, tlsConf, err := ringAndNet(nf, tf)
	if err != nil {
		return 0, err
	}
	if *nf.db == "" {
		// The node is running: ask it, at its address in the ring.
		rep, err := askRepair(ctx, nr, opts, *rf.streamRate*1e6, rpc.ClientOptions{TLS: tlsConf, MaxMessageBytes: limit, CallTimeout: rpc.DefaultAdminCallTimeout})
		if err != nil {
			return 0, err
		}
		if err := printRepair(stdout, nr.id, rep, *asJSON); err != nil {
			return 0, err
		}
		return repairExit(rep), nil
	}
	node, err := nf.open(ctx)
	if err != nil {
		return 0, err
	}
	defer node.Close()
	clients, closeClients := peerClients(nr, rpc.ClientOptions{TLS: tlsConf, MaxMessageBytes: limit, CallTimeout: opts.RangeTimeout})
	defer closeClients()
	rep, err := repairNode(ctx, node, nr, clients, opts, limit, *rf.streamRate*1e6)
	if err != nil {
		return 0, err
	}
	if err := node.Close(); err != nil {
		return 0, err
	}
	if err := printRepair(stdout, nr.id, rep, *asJSON); err != nil {
		return 0, err
	}
	return repairExit(rep), nil
}

// ringAndNet loads --ring and --node, which are required, and the message
// limit and TLS configuration of a client's calls.
func ringAndNet(nf *nodeFlags, tf *cli.Net) (*nodeRing, int, *tls.Config, error) {
	nr, err := nf.ring.load()
	if err != nil {
		return nil, 0, nil, err
	}
	if nr == nil {
		return nil, 0, nil, errors.New("--ring and --node are required")
	}
	limit, tlsConf, err := tf.Config(false)
	return nr, limit, tlsConf, err
}

// askRepair asks the running node nr.id to repair itself, over its admin
// service, and returns the run's report.
func askRepair(ctx context.Context, nr *nodeRing, opts coord.Options, streamRate float64, copts rpc.ClientOptions) (*coord.Report, error) {
	var rep coord.Report
	err := askNode(ctx, nr, copts, &rep, func(ac *rpc.AdminClient) ([]byte, error) {
		return ac.Repair(ctx, rpc.RepairRequest{PeersParallel: opts.PeersParallel, RangeTimeout: opts.RangeTimeout, Attempts: opts.Attempts, StreamRate: streamRate})
	})
	return &rep, err
}

// askNode makes an admin call of the running node nr.id, at its address
// in the ring, and decodes the JSON report it answers into out.
func askNode(ctx context.Context, nr *nodeRing, copts rpc.ClientOptions, out any, call func(*rpc.AdminClient) ([]byte, error)) error {
	n, _ := nr.ring.Node(nr.id)
	ac, err := rpc.NewAdminClient(n.Address, copts)
	if err != nil {
		return err
	}
	defer ac.CloseIdle()
	raw, err := call(ac)
	if err != nil {
		return fmt.Errorf("node %s at %s: %w", nr.id, n.Address, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("node %s at %s answered a report that does not decode: %w", nr.id, n.Address, err)
	}
	return nil
}

// nodeAdmin is a served node's AdminService: one repair run at a time,
// with the node's own replicas and the ring's addresses.
type nodeAdmin struct {
	node    *grovepebble.Node
	nr      *nodeRing
	clients func(string) (*rpc.Client, error)
	limit   int
	running sync.Mutex
	// scrubbing is held by the scrub pass an operator asked for.
	scrubbing sync.Mutex
}

// Repair implements rpc.Admin.
func (a *nodeAdmin) Repair(ctx context.Context, req rpc.RepairRequest) ([]byte, error) {
	if !a.running.TryLock() {
		return nil, fmt.Errorf("%w: a repair of node %s is already running", repair.ErrBusy, a.nr.id)
	}
	defer a.running.Unlock()
	if !(req.StreamRate >= 0) || math.IsInf(req.StreamRate, 1) {
		return nil, fmt.Errorf("%w: stream rate %v bytes a second", repair.ErrBadMessage, req.StreamRate)
	}
	rep, err := repairNode(ctx, a.node, a.nr, a.clients, coord.Options{PeersParallel: req.PeersParallel, RangeTimeout: req.RangeTimeout, Attempts: req.Attempts}, a.limit, req.StreamRate)
	if err != nil {
		return nil, err
	}
	return json.Marshal(rep)
}

// repairExit is repair's exit status: 2 if a range failed, 1 if
// differences were found (and repaired), 0 if everything was in sync.
func repairExit(rep *coord.Report) int {
	switch {
	case rep.RangesFailed > 0:
		return exitError
	case rep.Differences():
		return exitDifferent
	}
	return exitOK
}

// peerClients returns a function giving the rpc client of a ring node,
// made on first use, and one that closes them all.
func peerClients(nr *nodeRing, opts rpc.ClientOptions) (func(id string) (*rpc.Client, error), func()) {
	var mu sync.Mutex
	made := map[string]*rpc.Client{}
	get := func(id string) (*rpc.Client, error) {
		mu.Lock()
		defer mu.Unlock()
		if c := made[id]; c != nil {
			return c, nil
		}
		n, ok := nr.ring.Node(id)
		if !ok {
			return nil, fmt.Errorf("node %q is not in the ring", id)
		}
		c, err := rpc.NewClient(n.Address, opts)
		if err != nil {
			return nil, err
		}
		made[id] = c
		return c, nil
	}
	closeAll := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range made {
			c.CloseIdle()
		}
	}
	return get, closeAll
}

// repairNode repairs every range of node with each of its peers.
func repairNode(ctx context.Context, node *grovepebble.Node, nr *nodeRing, clients func(string) (*rpc.Client, error), opts coord.Options, limit int, streamRate float64) (*coord.Report, error) {
	s := coord.PerPeer{
		Local: func(r token.Range) (repair.Replica, error) { return node.Replica(r) },
		Peer: func(id string) (repair.NodePeer, []token.Range, error) {
			c, err := clients(id)
			if err != nil {
				return nil, nil, err
			}
			theirs, err := nr.ring.RangesOf(id)
			if err != nil {
				return nil, nil, err
			}
			return coord.Throttle(c, streamRate), ring.TokenRanges(theirs), nil
		},
		Options: repair.NodeOptions{Options: repair.Options{MaxMessageBytes: limit}},
	}
	opts.Transient = func(err error) bool { return errors.Is(err, rpc.ErrTransport) }
	return coord.Run(ctx, nr.replicas, s, node, opts)
}

// printRepair prints the report: JSON, or a line per peer with its keys.
func printRepair(w io.Writer, id string, rep *coord.Report, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	if rep.Resumed {
		fmt.Fprintf(w, "node %s: resumed an interrupted run\n", id)
	}
	for _, p := range rep.Peers {
		split := ""
		if p.RangesSplit > 0 {
			split = fmt.Sprintf(", %d split into %d subtree sessions", p.RangesSplit, p.SubtreeSessions)
		}
		fmt.Fprintf(w, "with %s: %d ranges, %d differing, %d skipped, %d failed%s; %d only here, %d only there, %d different; %d B sent, %d B received, %d round trips\n",
			p.ID, p.Ranges, p.RangesDiffering, p.RangesSkipped, p.RangesFailed, split, len(p.OnlyHere), len(p.OnlyThere), len(p.Different), p.BytesSent, p.BytesReceived, p.RoundTrips)
		for _, l := range []struct {
			name string
			keys []repair.ReportKey
		}{{"only here", p.OnlyHere}, {"only there", p.OnlyThere}, {"different", p.Different}} {
			for _, k := range l.keys {
				fmt.Fprintf(w, "  %-11s %s\n", l.name+":", reportKeyText(k))
			}
		}
		if p.Error != "" {
			fmt.Fprintf(w, "  failed: %s\n", p.Error)
		}
	}
	_, err := fmt.Fprintf(w, "node %s: %d ranges repaired, %d failed\n", id, rep.RangesRepaired, rep.RangesFailed)
	return err
}

// reportKeyText is a report's key as the text output shows keys.
func reportKeyText(k repair.ReportKey) string {
	if k.Key != nil {
		return keytext.Quote([]byte(*k.Key))
	}
	return "0x" + *k.KeyHex
}
