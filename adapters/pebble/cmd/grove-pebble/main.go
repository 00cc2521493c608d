// Command grove-pebble keeps a grove Merkle tree over a Pebble database and
// repairs it against a peer: it loads rows into a database, serves it to
// repair sessions, syncs it with a peer, and dumps it. Run
// `grove-pebble help` for the commands.
//
// Exit status: 0 success (and "in sync" for sync), 1 differences found by
// sync, 2 any error, with a message on stderr starting "grove-pebble:".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/forest"
	"github.com/antientropy/grove/internal/cli"
	"github.com/antientropy/grove/internal/cliout"

	grovepebble "github.com/antientropy/grove/adapters/pebble"
)

// exit statuses: cli's, which grove shares.
const (
	exitOK        = cli.ExitOK
	exitDifferent = cli.ExitDifferent
	exitError     = cli.ExitError
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is what every command gets besides its arguments.
type env struct {
	// ctx ends at SIGINT or SIGTERM.
	ctx    context.Context
	stdout *cliout.Writer
	// stderr is for progress; nil discards it.
	stderr io.Writer
}

// runFunc is a command as its file writes it.
type runFunc func(ctx context.Context, args []string, stdout io.Writer) (int, error)

func (f runFunc) bind() func([]string, *env) (int, error) {
	return func(args []string, e *env) (int, error) { return f(e.ctx, args, e.stdout) }
}

func commands() []cli.Command[*env] {
	return []cli.Command[*env]{
		{Name: "load", Usage: "load --db DIR --rows ROWS.jsonl [--batch-rows N] [--ring RING.json --node ID [--checkpoint-rows N] [--checkpoint-interval D]] [--scan-rate MB/s]",
			Summary: "check every row, then write them into the database through the write path, creating it if absent (- reads stdin)", Run: runFunc(runLoad).bind()},
		{Name: "serve", Usage: "serve --db DIR --listen HOST:PORT [--create] [--depth N|auto] [--budget SIZE] [--idle-timeout 2m] [--tls-cert F --tls-key F --tls-ca F] [--max-message 64MiB] [--scan-rate MB/s] [--scrub-rate MB/s|auto|off] [--ring RING.json --node ID [--checkpoint-rows N] [--checkpoint-interval D]]",
			Summary: "serve the database to repair sessions (Connect/gRPC over HTTP/2) until SIGINT/SIGTERM", Run: runFunc(runServe).bind()},
		{Name: "sync", Usage: "sync --db DIR --peer URL [--create] [--repair] [--json] [--timeout 30s] [--depth N|auto] [--scan-rate MB/s] [TLS flags] [--ring RING.json --node ID, then --peer ID or none for every peer]",
			Summary: "list the keys only here, only there (only at the peer) and different; with --repair, repair them on both sides; exit 0 in sync, 1 different", Run: runFunc(runSync).bind()},
		{Name: "dump", Usage: "dump --db DIR [--ring RING.json --node ID] [--scan-rate MB/s]", Summary: "print the database's rows as JSON Lines, in token order", Run: runFunc(runDump).bind()},
		{Name: "inspect", Usage: "inspect --db DIR --ring RING.json --node ID [--json] [--budget SIZE] [--scan-rate MB/s]",
			Summary: "open the node's ranges and report them: rows, depths, peers, rows read at open, tree memory", Run: runFunc(runInspect).bind()},
		{Name: "verify", Usage: "verify --db DIR --ring RING.json --node ID [--budget SIZE] [--scan-rate MB/s]",
			Summary: "rebuild each range's tree from a full scan and compare it with the kept one; exit 2 naming the first that differs", Run: runFunc(runVerify).bind()},
		{Name: "repair", Usage: "repair --ring RING.json --node ID [--db DIR] [--json] [--peers-parallel P] [--range-timeout D] [--attempts N] [--stream-rate MB/s] [--budget SIZE] [TLS flags]",
			Summary: "repair every range of the node with every other replica of it, at the addresses the ring gives; exit 0 all in sync, 1 differences repaired, 2 a range failed", Run: runFunc(runRepair).bind()},
		{Name: "scrub", Usage: "scrub --ring RING.json --node ID [--db DIR] [--rate MB/s] [--budget SIZE] [TLS flags]",
			Summary: "read every range's rows again and set each leaf whose tree disagrees with them to what they say (bit rot, restored files, writes around grove), for the next repair to see; asks the running node at the ring's address, or with --db opens a stopped one; JSON report; exit 0 none found, 1 some corrected", Run: runFunc(runScrub).bind()},
		{Name: "cleanup", Usage: "cleanup --db DIR --ring RING.json --node ID [--budget SIZE]",
			Summary: "delete the rows of ranges the ring no longer gives the node, kept since it changed (as nodetool cleanup); reads no rows", Run: runFunc(runCleanup).bind()},
		{Name: "bench", Usage: "bench [--json] [--quick] [--dir DIR]",
			Summary: "measure the node against its floors on this machine (the validation scan against a bare Pebble iteration and bare hashing): one figure each, medians, in a temporary directory", Run: runBench},
	}
}

// program is grove-pebble's command table and help, for a run whose
// commands stop when ctx ends.
func program(ctx context.Context) *cli.Program[*env] {
	return &cli.Program[*env]{
		Name:     "grove-pebble",
		Title:    "grove-pebble — a grove Merkle tree over a Pebble database, repaired against peers",
		Commands: commands(),
		Footer: "\nonly load creates a database; serve and sync refuse a --db that is not one, unless --create\n" +
			"run 'grove-pebble COMMAND --help' for a command's flags and their defaults\n" +
			"exit status: 0 ok/in sync, 1 different (sync, repair) or corrected (scrub), 2 error\n",
		Env: func(args []string, stdout *cliout.Writer, stderr io.Writer) ([]string, *env, error) {
			return args, &env{ctx: ctx, stdout: stdout, stderr: stderr}, nil
		},
		OneLineErrors: true,
	}
}

// run is main without the process: tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return program(ctx).Run(args, stdout, stderr)
}

// nodeFlags are the flags that say which database to open and how.
type nodeFlags struct {
	db    *string
	depth *cli.Depth
	// budget is nil for a command without --budget.
	budget *cli.Budget
	// create is --create, or nil for a command without it.
	create *bool
	// ring is --ring and --node, or nil for a command without them.
	ring *ringFlags
	// scanRate is --scan-rate, or nil for a command without it.
	scanRate *float64
	// checkpoints are --checkpoint-rows and --checkpoint-interval, or nil
	// for a command without them.
	checkpoints *checkpointFlags
	// opened is the budget open gave the node, for its metrics; placed is
	// the node's place in the ring, nil for a node of one range.
	opened *arena.Budget
	placed *nodeRing
}

// checkpointFlags say, with --ring, how often a node's trees are
// checkpointed while it writes (forest.CheckpointPolicy).
type checkpointFlags struct {
	rows     *int64
	interval *time.Duration
}

func addCheckpointFlags(fs *flag.FlagSet, what string) *checkpointFlags {
	return &checkpointFlags{
		rows:     fs.Int64("checkpoint-rows", 100_000, "with --ring, checkpoint the trees after every `N` rows "+what+", bounding what a crash leaves to reread"),
		interval: fs.Duration("checkpoint-interval", time.Minute, "with --ring, checkpoint the trees once this long (a `DURATION`) has passed since the last, at the next write"),
	}
}

// policy is the checked flags as a forest.CheckpointPolicy.
func (f *checkpointFlags) policy() (forest.CheckpointPolicy, error) {
	if f == nil {
		return forest.CheckpointPolicy{}, nil
	}
	if *f.rows < 1 {
		return forest.CheckpointPolicy{}, fmt.Errorf("--checkpoint-rows %d: want at least 1", *f.rows)
	}
	if *f.interval <= 0 {
		return forest.CheckpointPolicy{}, fmt.Errorf("--checkpoint-interval %v: want a positive duration", *f.interval)
	}
	return forest.CheckpointPolicy{Writes: *f.rows, Interval: *f.interval}, nil
}

func addNodeFlags(fs *flag.FlagSet) *nodeFlags {
	return &nodeFlags{
		db: fs.String("db", "", "the Pebble database directory `DIR` (required)"),
		// grovepebble.Options reads depth 0 as auto, so a one-leaf tree
		// cannot be asked for: --depth 0 is refused, not quietly auto.
		depth:       cli.AddDepth(fs, 1),
		budget:      cli.AddBudget(fs, "1GiB", "memory for the tree and the snapshots repair sessions take (a `SIZE`: 64MiB, 2GiB)"),
		create:      fs.Bool("create", false, "create an empty database if --db does not exist or is an empty directory"),
		ring:        addRingFlags(fs),
		scanRate:    addScanRate(fs),
		checkpoints: addCheckpointFlags(fs, "written (by repairs)"),
	}
}

// addScanRate registers --scan-rate on fs.
func addScanRate(fs *flag.FlagSet) *float64 {
	return fs.Float64("scan-rate", 0, "throttle every scan of the database's rows to `MB/s` (10^6 bytes a second) of stored keys and values; 0 is unlimited")
}

// scanRate is --scan-rate in bytes a second, checked.
func scanRate(mbps *float64) (float64, error) {
	if mbps == nil {
		return 0, nil
	}
	if !(*mbps >= 0) || math.IsInf(*mbps, 1) {
		return 0, fmt.Errorf("--scan-rate %v: want MB/s, 0 (unlimited) or more", *mbps)
	}
	return *mbps * 1e6, nil
}

// dumpBudget is the budget of a command without --budget: dump, whose
// depth-1 tree needs next to nothing.
const dumpBudget = "64MiB"

// open opens the database: with --ring and --node as that node of many
// ranges, whose trees were kept; else as one range, building its tree with
// the validation scan.
func (f *nodeFlags) open(ctx context.Context) (*grovepebble.Node, error) {
	budget, err := f.getBudget()
	if err != nil {
		return nil, err
	}
	f.opened = budget
	opts := grovepebble.Options{Budget: budget}
	if f.depth != nil {
		opts.Depth = f.depth.Depth
	}
	nr, err := f.ring.load()
	if err != nil {
		return nil, err
	}
	f.placed = nr
	if nr != nil {
		opts = nr.options(opts)
		if opts.Checkpoints, err = f.checkpoints.policy(); err != nil {
			return nil, err
		}
	}
	return f.openWith(ctx, opts)
}

// getBudget is --budget, or dump's budget for a command without it.
func (f *nodeFlags) getBudget() (*arena.Budget, error) {
	if f.budget != nil {
		return f.budget.Get()
	}
	return cli.BudgetOf(dumpBudget, false)
}

// openWith opens --db with opts, and --create if the command has it.
func (f *nodeFlags) openWith(ctx context.Context, opts grovepebble.Options) (*grovepebble.Node, error) {
	if *f.db == "" {
		return nil, errors.New("--db is required")
	}
	opts.Create = f.create != nil && *f.create
	rate, err := scanRate(f.scanRate)
	if err != nil {
		return nil, err
	}
	opts.ScanRate = rate
	node, err := grovepebble.Open(ctx, *f.db, opts)
	if errors.Is(err, grovepebble.ErrNotExist) {
		hint := "; run 'grove-pebble load --db " + *f.db + " --rows ROWS.jsonl' to create it"
		if f.create != nil {
			hint += ", or pass --create"
		}
		return nil, fmt.Errorf("%w%s", err, hint)
	}
	return node, err
}
