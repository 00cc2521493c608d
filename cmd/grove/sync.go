package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"expvar"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/engine/rowstore"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/internal/atomicfile"
	"github.com/antientropy/grove/internal/cli"
	"github.com/antientropy/grove/internal/cliout"
	"github.com/antientropy/grove/internal/keytext"
	"github.com/antientropy/grove/metrics"
	"github.com/antientropy/grove/metrics/prom"
	"github.com/antientropy/grove/rpc"
)

// replicaFlags are the flags serve and sync share: the replica's rows and
// tree, and the transport's security and limits.
type replicaFlags struct {
	rows      *string
	depth     *cli.Depth
	budget    *cli.Budget
	repairOut *string
	net       *cli.Net
	// metrics counts the replica's trees and sessions; serve exports it.
	metrics *metrics.Set
}

func addReplicaFlags(fs *flag.FlagSet) *replicaFlags {
	return &replicaFlags{
		rows:      fs.String("rows", "", "this replica's rows, JSON Lines (`FILE`, required)"),
		depth:     cli.AddDepth(fs, 0),
		budget:    cli.AddBudget(fs, defaultBudget, "memory for trees, outside the Go heap (a `SIZE`: 64MiB, 2GiB)"),
		repairOut: fs.String("repair-out", "", "after each repair, write this replica's rows to `FILE` (atomically)"),
		net:       cli.AddNet(fs),
		metrics:   metrics.New(),
	}
}

// loadReplica reads the rows file into a store (several rows for one key
// reconcile as a storage engine's compaction would: the newest wins) and
// builds its tree.
func (f *replicaFlags) loadReplica(ctx context.Context, e *env) (*rowstore.Replica, func(), error) {
	if *f.rows == "" {
		return nil, nil, errors.New("--rows is required")
	}
	budget, err := f.budget.Get()
	if err != nil {
		return nil, nil, err
	}
	f.metrics.AddBudget("trees", budget)
	src, bar, err := openRowsShown(*f.rows, e, "loading "+filepath.Base(*f.rows))
	if err != nil {
		return nil, nil, err
	}
	defer src.Close()
	defer bar.Done()
	store, err := rowstore.Load(ctx, token.Murmur3{}, src)
	if err != nil {
		return nil, nil, err
	}
	depth := f.depth.Depth
	if depth == engine.AutoDepth {
		// Leave room in the budget for the snapshots sessions take.
		if depth, err = engine.ChooseDepth(int64(store.Len()), budget.Available()/4, nil); err != nil {
			return nil, nil, err
		}
	}
	tree, err := rowstore.BuildTree(ctx, store, engine.Options{Depth: depth, Budget: budget, Observer: f.metrics})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", *f.rows, err)
	}
	return rowstore.NewReplica(store, tree), func() { tree.Close() }, nil
}

// replicaEnv is what serve and sync set up alike: a context cancelled by
// SIGINT or SIGTERM, the message limit, the TLS configuration, and the
// replica loaded from --rows.
type replicaEnv struct {
	ctx     context.Context
	limit   int
	tls     *tls.Config
	replica *rowstore.Replica
	close   func()
}

func (f *replicaFlags) setUp(e *env, server bool) (*replicaEnv, error) {
	limit, err := f.net.MessageLimit()
	if err != nil {
		return nil, err
	}
	// Before any session: a repair whose record cannot be written must not
	// start. --repair-out may name --rows: that is an update in place, and
	// atomic.
	if *f.repairOut != "" {
		ins := map[string]string{"--tls-cert": *f.net.Cert, "--tls-key": *f.net.Key, "--tls-ca": *f.net.CA}
		if err := checkOutput("--repair-out", *f.repairOut, ins); err != nil {
			return nil, err
		}
	}
	tlsConf, err := f.net.TLSConfig(server)
	if err != nil {
		return nil, err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	replica, closeTree, err := f.loadReplica(ctx, e)
	if err != nil {
		stop()
		return nil, err
	}
	return &replicaEnv{ctx: ctx, limit: limit, tls: tlsConf, replica: replica, close: func() { closeTree(); stop() }}, nil
}

// saveRows writes the replica's rows to path: to a temporary file beside
// it, fsynced, renamed, the directory fsynced, so path holds the old rows or
// the new, never half of them.
func saveRows(ctx context.Context, path string, store *rowstore.Store) error {
	return atomicfile.Write(path, 0o644, func(f *os.File) error {
		w := bufio.NewWriterSize(f, 1<<20)
		if err := store.WriteJSONL(ctx, w); err != nil {
			return err
		}
		return w.Flush()
	})
}

func runServe(args []string, e *env) (int, error) {
	stdout := e.stdout
	c := newCmdline("serve")
	rf := addReplicaFlags(c.FlagSet)
	listen := c.String("listen", "127.0.0.1:7420", "address to listen on (`HOST:PORT`; port 0 picks one; the address is printed)")
	idle := c.Duration("idle-timeout", 2*time.Minute, "end a session no call has touched for this long")
	if _, err := c.parse(args, 0); err != nil {
		return 0, err
	}
	if *idle <= 0 {
		return 0, fmt.Errorf("--idle-timeout %v: want a positive duration", *idle)
	}
	env, err := rf.setUp(e, true)
	if err != nil {
		return 0, err
	}
	defer env.close()
	ctx, limit, tlsConf, replica := env.ctx, env.limit, env.tls, env.replica
	opts := repair.ResponderOptions{IdleTimeout: *idle, MaxMessageBytes: limit}
	// A line per repair, so an operator watching serve sees what changed,
	// and one per repair that could not be saved, saying why.
	var logMu sync.Mutex
	logf := func(format string, a ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintf(stdout, "%s %s\n", time.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, a...))
	}
	var served repair.Replica = replica
	if *rf.repairOut != "" {
		served = &savingReplica{Replica: replica, out: *rf.repairOut, logf: logf}
	}
	opts.OnCommit = func(ctx context.Context, applied int) error {
		msg := fmt.Sprintf("repair: %d rows written, %d rows held", applied, replica.Store().Len())
		if out := *rf.repairOut; out != "" {
			msg += "; rows saved to " + out
		}
		logf("%s", msg)
		return nil
	}
	opts.Metrics = rf.metrics
	responder := repair.NewResponder(served, opts)
	defer responder.Shutdown()
	mux := http.NewServeMux()
	mux.Handle(rpc.NewHandler(responder, rpc.HandlerOptions{MaxMessageBytes: limit}))
	// The node's metrics beside the service: expvar's JSON, and Prometheus.
	// expvar's names are process-wide: a second serve in one process (as in
	// tests) keeps the first's publication.
	if err := rf.metrics.Publish("grove"); err != nil && !errors.Is(err, metrics.ErrPublished) {
		return 0, err
	}
	mux.Handle("/debug/vars", expvar.Handler())
	reg := prometheus.NewRegistry()
	reg.MustRegister(prom.NewCollector(rf.metrics), collectors.NewGoCollector())
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
	fmt.Fprintf(stdout, "serving %d rows (depth %d) on %s://%s\n", replica.Store().Len(), replica.Tree().Depth(), scheme, ln.Addr())
	// serve runs until stopped: a stdout that cannot take this line must
	// end it now, not when it is stopped.
	if out, ok := e.stdout.(*cliout.Writer); ok {
		out.Sync()
		if err := out.Err(); err != nil {
			ln.Close()
			return 0, err // run reports it
		}
	}
	if err := rpc.ServeUntil(ctx, srv, ln, 5*time.Second); err != nil {
		return 0, err
	}
	return exitOK, nil
}

func runSync(args []string, e *env) (int, error) {
	stdout := e.stdout
	c := newCmdline("sync")
	rf := addReplicaFlags(c.FlagSet)
	peerURL := c.String("peer", "", "the peer's `URL`, http://HOST:PORT or https://HOST:PORT (required)")
	asJSON := c.Bool("json", false, "print JSON")
	timeout := c.Duration("timeout", 30*time.Second, "deadline for the whole session, and so for every call in it")
	if _, err := c.parse(args, 0); err != nil {
		return 0, err
	}
	if *peerURL == "" {
		return 0, errors.New("--peer is required")
	}
	if *timeout <= 0 {
		return 0, fmt.Errorf("--timeout %v: want a positive duration", *timeout)
	}
	env, err := rf.setUp(e, false)
	if err != nil {
		return 0, err
	}
	defer env.close()
	ctx, limit, replica := env.ctx, env.limit, env.replica
	client, err := rpc.NewClient(*peerURL, rpc.ClientOptions{TLS: env.tls, MaxMessageBytes: limit, CallTimeout: *timeout})
	if err != nil {
		return 0, err
	}
	defer client.CloseIdle()
	sctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	bar := e.progress(-1, "syncing", false)
	res, err := repair.Sync(sctx, replica, client, repair.Options{
		Repair: *rf.repairOut != "", MaxMessageBytes: limit,
		Progress: func(p repair.Progress) { bar.Set(p.Stage, p.Done, p.Total) },
	})
	bar.Done()
	if err != nil {
		return 0, err
	}
	if *rf.repairOut != "" {
		if err := saveRows(ctx, *rf.repairOut, replica.Store()); err != nil {
			return 0, fmt.Errorf("--repair-out %s: %w", *rf.repairOut, err)
		}
	}
	if *asJSON {
		out := res.Report(*rf.repairOut != "")
		if err := writeJSON(stdout, out); err != nil {
			return 0, err
		}
	} else {
		if res.InSync {
			fmt.Fprintln(stdout, "identical")
		}
		printKeys(stdout, [2]string{"only here", "only there"}, res.OnlyHere, res.OnlyThere, res.Different)
		fmt.Fprintf(stdout, "%d bytes sent, %d received (%d and %d of them rows), %d round trips\n",
			res.BytesSent, res.BytesReceived, res.RowBytesSent, res.RowBytesReceived, res.RoundTrips)
		if *rf.repairOut != "" && !res.InSync {
			fmt.Fprintf(stdout, "repaired: %d rows sent to the peer (%d written there), %d written here; rows in %s\n",
				res.Pushed, res.PeerApplied, res.Applied, *rf.repairOut)
		}
	}
	if n := len(res.Refused); n > 0 {
		// Every other row was repaired; these could not be, so the run is
		// not a success.
		for _, k := range res.Refused {
			fmt.Fprintf(e.stderr, "grove: sync: refused %s…: a key of %d bytes, over the limit of %d\n", keytext.Quote(k.Key[:min(len(k.Key), 32)]), len(k.Key), engine.MaxKeyBytes)
		}
		return 0, fmt.Errorf("%d rows not repaired: keys over %d bytes (engine.MaxKeyBytes); the other differences were repaired", n, engine.MaxKeyBytes)
	}
	if res.InSync {
		return exitOK, nil
	}
	return exitDifferent, nil
}

// printKeys prints differing keys for people. `grove keys` compares two
// files, A and B; `grove sync` compares this replica with a peer, so it says
// "only here" and "only there", as grove-pebble sync does.
func printKeys(w io.Writer, names [2]string, onlyA, onlyB, different []engine.Key) {
	for _, l := range []struct {
		name string
		keys []engine.Key
	}{{names[0], onlyA}, {names[1], onlyB}, {"different", different}} {
		for _, k := range l.keys {
			fmt.Fprintf(w, "%-10s %s (token %d)\n", l.name+":", keytext.Quote(k.Key), k.Token)
		}
	}
}
