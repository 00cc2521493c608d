package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/internal/cli"
	"github.com/antientropy/grove/internal/keytext"
	"github.com/antientropy/grove/metrics"
	"github.com/antientropy/grove/metrics/prom"
	"github.com/antientropy/grove/rpc"

	grovepebble "github.com/antientropy/grove/adapters/pebble"
)

func runServe(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	fs := cli.NewFlagSet("serve")
	nf := addNodeFlags(fs)
	tf := cli.AddNet(fs)
	listen := fs.String("listen", "127.0.0.1:7420", "address to listen on (`HOST:PORT`; port 0 picks one; the address is printed)")
	idle := fs.Duration("idle-timeout", 2*time.Minute, "end a session no call has touched for this long")
	scrubFlag := fs.String("scrub-rate", "auto", "scrub the node's rows in the background at `MB/s` (10^6 bytes a second), checking each range's tree against them; auto: a pass in 3 days, at least 1 MiB/s; off: none")
	if err := cli.ParseNamed(fs, args); err != nil {
		return 0, err
	}
	scrubRate, err := parseScrubRate(*scrubFlag)
	if err != nil {
		return 0, err
	}
	if *idle <= 0 {
		// The responder would quietly take zero or less for its default of
		// 2m: whoever typed it meant something else, so say so.
		return 0, fmt.Errorf("--idle-timeout %v: want a positive duration", *idle)
	}
	limit, tlsConf, err := tf.Config(true)
	if err != nil {
		return 0, err
	}
	// The node calls its peers when asked to repair itself, with the
	// certificate it serves with.
	clientTLS, err := tf.TLSConfig(false)
	if err != nil {
		return 0, err
	}
	node, err := nf.open(ctx)
	if err != nil {
		return 0, err
	}
	defer node.Close()
	if scrubRate, err = startScrub(node, scrubRate); err != nil {
		return 0, err
	}
	set := metrics.New()
	set.AddBudget("trees", nf.opened)
	if nr := nf.placed; nr != nil {
		set.SetRanges(func() []metrics.RangeConsistency { return consistency(node, nr) })
	}
	opts := repair.ResponderOptions{IdleTimeout: *idle, MaxMessageBytes: limit, Metrics: set}
	// A line per repair, so an operator watching serve sees what changed.
	var logMu sync.Mutex
	opts.OnCommit = func(ctx context.Context, applied int) error {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintf(stdout, "%s repair: %d rows written, %d rows held\n", time.Now().UTC().Format(time.RFC3339), applied, node.Rows())
		return nil
	}
	// A node of many ranges answers a peer node's node session (one over
	// every range they share) and per-range sessions, each range through
	// its own responder, on the same port.
	var peer interface {
		repair.Peer
		Shutdown()
	}
	mux := http.NewServeMux()
	many := node.Replicas() != nil
	if many {
		router, err := grovepebble.NewRouter(node, opts)
		if err != nil {
			return 0, err
		}
		mux.Handle(rpc.NewNodeHandler(router, rpc.HandlerOptions{MaxMessageBytes: limit}))
		peer = router
	} else {
		peer = repair.NewResponder(node, opts)
	}
	defer peer.Shutdown()
	mux.Handle(rpc.NewHandler(peer, rpc.HandlerOptions{MaxMessageBytes: limit}))
	// The coordinator's writes, on the same port, through the write path.
	mux.Handle(rpc.NewRowHandler(rowStore{node}, rpc.HandlerOptions{MaxMessageBytes: limit}))
	// The operator's calls — repair this node — on the same port.
	if nr := nf.placed; nr != nil {
		clients, closeClients := peerClients(nr, rpc.ClientOptions{TLS: clientTLS, MaxMessageBytes: limit})
		defer closeClients()
		mux.Handle(rpc.NewAdminHandler(&nodeAdmin{node: node, nr: nr, clients: clients, limit: limit}, 0))
	}
	// Prometheus metrics, on the same port: budget, sessions, and how long
	// since each range was last consistent with its peers.
	reg := prometheus.NewRegistry()
	reg.MustRegister(prom.NewCollector(set), collectors.NewGoCollector())
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return 0, err
	}
	srv := rpc.NewServer(mux, tlsConf)
	scheme := "http"
	if tlsConf != nil {
		scheme = "https"
	}
	if many {
		s := node.OpenStats()
		fmt.Fprintf(stdout, "serving %d rows in %d ranges on %s://%s\n", node.Rows(), len(node.Ranges()), scheme, ln.Addr())
		fmt.Fprintf(stdout, "open: %d rows read, %d trees reused, %d recovered, %d built, %d dropped\n", s.RowsScanned, s.Reused, s.Recovered, s.Built, s.Dropped)
	} else {
		fmt.Fprintf(stdout, "serving %d rows (depth %d) on %s://%s\n", node.Rows(), node.Depth(), scheme, ln.Addr())
		fmt.Fprintln(stdout, node.ScanStats())
	}
	if scrubRate > 0 {
		fmt.Fprintf(stdout, "background scrub at %.1f MB/s\n", scrubRate/1e6)
	}
	// Whoever started serve waits for the first line to learn the address.
	if f, ok := stdout.(interface{ Sync() error }); ok {
		f.Sync()
	}
	if err := rpc.ServeUntil(ctx, srv, ln, 5*time.Second); err != nil {
		return 0, err
	}
	peer.Shutdown()
	if err := node.Close(); err != nil {
		return 0, err
	}
	return exitOK, nil
}

func runSync(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	fs := cli.NewFlagSet("sync")
	nf := addNodeFlags(fs)
	tf := cli.AddNet(fs)
	peerURL := fs.String("peer", "", "the peer's `URL`, http://HOST:PORT or https://HOST:PORT (required); with --ring, a node ID of the ring (default: every peer of every range)")
	doRepair := fs.Bool("repair", false, "make both sides converge: each gets the rows it lacks or holds older versions of")
	asJSON := fs.Bool("json", false, "print JSON")
	timeout := fs.Duration("timeout", 30*time.Second, "deadline for the whole session, and so for every call in it")
	if err := cli.ParseNamed(fs, args); err != nil {
		return 0, err
	}
	if nf.ring.set() {
		return syncRanges(ctx, stdout, nf, tf, *peerURL, *doRepair, *asJSON, *timeout)
	}
	if *peerURL == "" {
		return 0, errors.New("--peer is required")
	}
	if *timeout <= 0 {
		return 0, fmt.Errorf("--timeout %v: want a positive duration", *timeout)
	}
	limit, tlsConf, err := tf.Config(false)
	if err != nil {
		return 0, err
	}
	client, err := rpc.NewClient(*peerURL, rpc.ClientOptions{TLS: tlsConf, MaxMessageBytes: limit, CallTimeout: *timeout})
	if err != nil {
		return 0, err
	}
	defer client.CloseIdle()
	node, err := nf.open(ctx)
	if err != nil {
		return 0, err
	}
	defer node.Close()
	sctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := repair.Sync(sctx, node, client, repair.Options{Repair: *doRepair, MaxMessageBytes: limit})
	if err != nil {
		return 0, err
	}
	if err := node.Close(); err != nil {
		return 0, err
	}
	if *asJSON {
		out := res.Report(*doRepair) // the shape `grove sync --json` prints
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return 0, err
		}
	} else {
		if res.InSync {
			fmt.Fprintln(stdout, "identical")
		}
		for _, l := range []struct {
			name string
			keys []engine.Key
		}{{"only here", res.OnlyHere}, {"only there", res.OnlyThere}, {"different", res.Different}} {
			for _, k := range l.keys {
				fmt.Fprintf(stdout, "%-11s %s (token %d)\n", l.name+":", keytext.Quote(k.Key), k.Token)
			}
		}
		fmt.Fprintf(stdout, "%d bytes sent, %d received (%d and %d of them rows), %d round trips\n",
			res.BytesSent, res.BytesReceived, res.RowBytesSent, res.RowBytesReceived, res.RoundTrips)
		if *doRepair && !res.InSync {
			fmt.Fprintf(stdout, "repaired: %d rows sent to the peer (%d written there), %d written here\n",
				res.Pushed, res.PeerApplied, res.Applied)
		}
	}
	if res.InSync {
		return exitOK, nil
	}
	return exitDifferent, nil
}
