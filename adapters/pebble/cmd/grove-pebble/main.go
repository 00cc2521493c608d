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
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/internal/cliout"
	"github.com/antientropy/grove/internal/memlimit"

	grovepebble "github.com/antientropy/grove/adapters/pebble"
)

// exit statuses.
const (
	exitOK        = 0
	exitDifferent = 1
	exitError     = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is one subcommand: it writes its output to stdout and returns an
// exit status, or an error (status 2).
type command struct {
	name, usage, summary string
	run                  func(ctx context.Context, args []string, stdout io.Writer) (int, error)
}

func commands() []command {
	return []command{
		{"load", "load --db DIR --rows ROWS.jsonl [--batch-rows N]",
			"check every row, then write them into the database through the write path, creating it if absent (- reads stdin)", runLoad},
		{"serve", "serve --db DIR --listen HOST:PORT [--create] [--depth N|auto] [--budget SIZE] [--idle-timeout 2m] [--tls-cert F --tls-key F --tls-ca F] [--max-message 64MiB]",
			"serve the database to repair sessions (Connect/gRPC over HTTP/2) until SIGINT/SIGTERM", runServe},
		{"sync", "sync --db DIR --peer URL [--create] [--repair] [--json] [--timeout 30s] [--depth N|auto] [TLS flags]",
			"list the keys only here, only there (only at the peer) and different; with --repair, repair them on both sides; exit 0 in sync, 1 different", runSync},
		{"dump", "dump --db DIR", "print the database's rows as JSON Lines, in token order", runDump},
	}
}

// run is main without the process: tests call it directly. A failed write
// to stdout makes the run exit 2, whatever the command found: output cut
// short is never success.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	out := &cliout.Writer{W: stdout}
	code := dispatch(ctx, args, out, stderr)
	if out.Err() != nil {
		fmt.Fprintf(stderr, "grove-pebble: writing to standard output: %v\n", out.Err())
		return exitError
	}
	return code
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return exitError
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		code, err := c.run(ctx, args[1:], stdout)
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "usage: grove-pebble %s\n", c.usage)
			return exitOK
		}
		if err != nil {
			// One line, whatever the error: a wrapped error of several
			// lines (errors.Join, a storage engine's detail) would read as
			// several messages.
			fmt.Fprintf(stderr, "grove-pebble: %s: %s\n", c.name, strings.ReplaceAll(err.Error(), "\n", "; "))
			return exitError
		}
		return code
	}
	fmt.Fprintf(stderr, "grove-pebble: unknown command %q (run 'grove-pebble help')\n", args[0])
	return exitError
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "grove-pebble — a grove Merkle tree over a Pebble database, repaired against peers")
	fmt.Fprintln(w, "\nusage:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  grove-pebble %s\n      %s\n", c.usage, c.summary)
	}
	fmt.Fprintln(w, "\nonly load creates a database; serve and sync refuse a --db that is not one, unless --create")
	fmt.Fprintln(w, "exit status: 0 ok/in sync, 1 different (sync), 2 error")
}

// parse parses flags and refuses positional arguments: every input of these
// commands is named.
func parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (every input is a flag)", fs.Arg(0))
	}
	return nil
}

// nodeFlags are the flags that say which database to open and how.
type nodeFlags struct {
	db     *string
	depth  depthFlag
	budget *string
	// create is --create, or nil for a command without it.
	create *bool
	// fs is the flag set, to tell an explicit --budget from the default.
	fs *flag.FlagSet
}

func addNodeFlags(fs *flag.FlagSet) *nodeFlags {
	f := &nodeFlags{
		db:     fs.String("db", "", "the Pebble database directory (required)"),
		depth:  depthFlag{engine.AutoDepth},
		budget: fs.String("budget", "1GiB", "memory for the tree and the snapshots repair sessions take"),
		create: fs.Bool("create", false, "create an empty database if --db does not exist or is an empty directory"),
		fs:     fs,
	}
	fs.Var(&f.depth, "depth", "tree depth 1..32, or auto")
	return f
}

// open opens the database, building its tree with the validation scan.
func (f *nodeFlags) open(ctx context.Context) (*grovepebble.Node, error) {
	if *f.db == "" {
		return nil, errors.New("--db is required")
	}
	limit, err := arena.ParseBytes(*f.budget)
	if err != nil {
		return nil, fmt.Errorf("--budget: %w", err)
	}
	// Under ulimit -v: the default shrinks to fit, an explicit one that
	// cannot is refused (as grove's commands do).
	explicit := false
	if f.fs != nil {
		f.fs.Visit(func(fl *flag.Flag) { explicit = explicit || fl.Name == "budget" })
	}
	if limit, err = memlimit.Fit(limit, explicit, "--budget "+*f.budget); err != nil {
		return nil, err
	}
	create := f.create != nil && *f.create
	node, err := grovepebble.Open(ctx, *f.db, grovepebble.Options{Depth: f.depth.depth, Budget: arena.NewBudget(limit), Create: create})
	if errors.Is(err, grovepebble.ErrNotExist) {
		hint := "; run 'grove-pebble load --db " + *f.db + " --rows ROWS.jsonl' to create it"
		if f.create != nil {
			hint += ", or pass --create"
		}
		return nil, fmt.Errorf("%w%s", err, hint)
	}
	return node, err
}

// depthFlag is --depth: a number or "auto".
type depthFlag struct{ depth int }

func (d *depthFlag) String() string {
	if d.depth == engine.AutoDepth {
		return "auto"
	}
	return strconv.Itoa(d.depth)
}

func (d *depthFlag) Set(s string) error {
	if s == "auto" {
		d.depth = engine.AutoDepth
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > engine.MaxDepth {
		return fmt.Errorf("want 1..%d or auto", engine.MaxDepth)
	}
	d.depth = n
	return nil
}
