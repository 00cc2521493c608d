// Command grove builds Merkle trees over rows, compares them, and finds the
// exact keys in which two replicas differ. Run `grove help` for the commands.
//
// Exit status: 0 success (and "identical" for diff and keys), 1 "different"
// for diff and keys, 2 any error, with a message on stderr starting "grove:".
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// exit statuses.
const (
	exitOK        = 0
	exitDifferent = 1
	exitError     = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// command is one subcommand: it writes its output to stdout and returns an
// exit status, or an error (status 2).
type command struct {
	name, usage, summary string
	run                  func(args []string, stdout io.Writer) (int, error)
}

func commands() []command {
	return []command{
		{"build", "build --in ROWS --out TREE [--depth N|auto] [--layout bfs|blocked] [--budget SIZE]", "build a tree file from JSON Lines rows", runBuild},
		{"diff", "diff A B [--json] [--budget SIZE]", "compare two tree files; exit 0 identical, 1 different", runDiff},
		{"keys", "keys A_ROWS B_ROWS [--depth N|auto] [--json] [--budget SIZE]", "find the exact keys in which two row files differ", runKeys},
		{"token", "token [--hex] KEY", "print a key's Murmur3 token (Cassandra's)", runToken},
		{"inspect", "inspect TREE [--json]", "describe a tree file", runInspect},
		{"apply", "apply TREE --in CHANGES [--budget SIZE]", "update a tree file in place from JSON Lines changes (all or nothing)", runApply},
		{"verify", "verify TREE", "check every byte of a tree file; exit 0 good, 2 corrupt or dirty", runVerify},
		{"serve", "serve --rows ROWS --listen HOST:PORT [--depth N|auto] [--repair-out FILE] [--tls-cert F --tls-key F --tls-ca F]", "serve one replica to repair sessions (Connect/gRPC over HTTP/2)", runServe},
		{"sync", "sync --rows ROWS --peer URL [--depth N|auto] [--json] [--repair-out FILE] [--timeout 30s] [TLS flags]", "find (and with --repair-out repair) the keys in which this replica and a peer differ; exit 0 in sync, 1 different", runSync},
		{"demo", "demo [--rows N]", "find silent divergence among replicas, end to end", runDemo},
		{"bench", "bench [--json] [--quick]", "time grove against its baselines (pointer tree, gohashtree, compact range, crypto/sha256)", runBench},
	}
}

// run is main without the process: tests call it directly.
func run(args []string, stdout, stderr io.Writer) int {
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
		code, err := c.run(args[1:], stdout)
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "usage: grove %s\n", c.usage)
			return exitOK
		}
		if err != nil {
			fmt.Fprintf(stderr, "grove: %s: %v\n", c.name, err)
			return exitError
		}
		return code
	}
	fmt.Fprintf(stderr, "grove: unknown command %q (run 'grove help')\n", args[0])
	return exitError
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "grove — Merkle trees over token ranges, to find exactly where replicas differ")
	fmt.Fprintln(w, "\nusage:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  grove %-62s %s\n", c.usage, c.summary)
	}
	fmt.Fprintln(w, "\nexit status: 0 ok/identical, 1 different, 2 error")
}

// parse parses flags that may stand before, between or after the positional
// arguments (grove diff A B --json), and checks the positional count.
func parse(fs *flag.FlagSet, args []string, positional int) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos, rest []string
	for i, a := range args {
		if a == "--" { // everything after it is positional, even "-x"
			args, rest = args[:i], args[i+1:]
			break
		}
	}
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	pos = append(pos, rest...)
	if len(pos) != positional {
		return nil, fmt.Errorf("want %d argument(s), got %d: %q", positional, len(pos), pos)
	}
	return pos, nil
}
