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
	"runtime"
	"runtime/pprof"
	"strings"

	"github.com/antientropy/grove/internal/cliout"
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
	run                  func(args []string, e *env) (int, error)
}

func commands() []command {
	return []command{
		{"build", "build --in ROWS --out TREE [--depth N|auto] [--layout bfs|blocked] [--budget SIZE]", "build a tree file from JSON Lines rows", runBuild},
		{"diff", "diff A B [--json] [--svg OUT.svg] [--budget SIZE]", "compare two tree files; exit 0 identical, 1 different", runDiff},
		{"keys", "keys A_ROWS B_ROWS [--depth N|auto] [--json] [--budget SIZE]", "find the exact keys in which two row files differ", runKeys},
		{"token", "token [--hex] KEY", "print a key's Murmur3 token (Cassandra's)", runToken},
		{"inspect", "inspect TREE [--json]", "describe a tree file", runInspect},
		{"apply", "apply TREE --in CHANGES [--budget SIZE]", "update a tree file in place from JSON Lines changes (all or nothing)", runApply},
		{"verify", "verify TREE", "check every byte of a tree file; exit 0 good, 2 corrupt or dirty", runVerify},
		{"serve", "serve --rows ROWS --listen HOST:PORT [--depth N|auto] [--repair-out FILE] [--tls-cert F --tls-key F --tls-ca F]", "serve one replica to repair sessions (Connect/gRPC over HTTP/2)", runServe},
		{"sync", "sync --rows ROWS --peer URL [--depth N|auto] [--json] [--repair-out FILE] [--timeout 30s] [TLS flags]", "find (and with --repair-out repair) the keys in which this replica and a peer differ; exit 0 in sync, 1 different", runSync},
		{"cert", certUsage, "make a CA, and node certificates it signs, for serve and sync's mutual TLS", runCert},
		{"demo", "demo [--rows N]", "find silent divergence among replicas, end to end", runDemo},
		{"bench", "bench [--json] [--quick]", "time grove against its baselines (pointer tree, gohashtree, compact range, crypto/sha256)", runBench},
	}
}

// env is what every command gets besides its arguments: where to write,
// and the global options.
type env struct {
	stdout, stderr io.Writer
	// quiet silences progress bars; they are drawn only when stderr is a
	// terminal anyway.
	quiet bool
}

// globals are the options any command takes, anywhere on its command line.
type globals struct {
	cpuProfile, memProfile string
	quiet                  bool
}

// takeGlobals removes the global options from args (up to a "--").
func takeGlobals(args []string) ([]string, globals, error) {
	var g globals
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") {
			name = ""
		}
		switch name {
		case "quiet":
			if hasVal {
				return nil, g, fmt.Errorf("--quiet takes no value")
			}
			g.quiet = true
		case "cpuprofile", "memprofile":
			if !hasVal {
				if i+1 == len(args) {
					return nil, g, fmt.Errorf("--%s needs a file name", name)
				}
				i++
				val = args[i]
			}
			if name == "cpuprofile" {
				g.cpuProfile = val
			} else {
				g.memProfile = val
			}
		default:
			rest = append(rest, a)
		}
	}
	return rest, g, nil
}

// run is main without the process: tests call it directly. Whatever a
// command returns, a failed write to stdout makes the run exit 2: output cut
// short is never success.
func run(args []string, stdout, stderr io.Writer) int {
	out := &cliout.Writer{W: stdout}
	code := dispatch(args, out, stderr)
	if out.Err() != nil {
		fmt.Fprintf(stderr, "grove: writing to standard output: %v\n", out.Err())
		return exitError
	}
	return code
}

func dispatch(args []string, stdout *cliout.Writer, stderr io.Writer) int {
	args, g, err := takeGlobals(args)
	if err != nil {
		fmt.Fprintf(stderr, "grove: %v\n", err)
		return exitError
	}
	if err := checkProfiles(g, args); err != nil {
		fmt.Fprintf(stderr, "grove: %v\n", err)
		return exitError
	}
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
		stop, err := startProfiles(g)
		if err != nil {
			fmt.Fprintf(stderr, "grove: %s: %v\n", c.name, err)
			return exitError
		}
		code, err := c.run(args[1:], &env{stdout: stdout, stderr: stderr, quiet: g.quiet})
		if perr := stop(); perr != nil && err == nil {
			err = perr
		}
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

// startProfiles starts a CPU profile if asked and returns a function that
// stops it and writes the heap profile if asked. The heap profile shows only
// the Go heap: trees live in mmap'd memory outside it (README, "Profiling").
func startProfiles(g globals) (stop func() error, err error) {
	var cpu *os.File
	if g.cpuProfile != "" {
		if cpu, err = os.Create(g.cpuProfile); err != nil {
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			cpu.Close()
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
	}
	return func() error {
		if cpu != nil {
			pprof.StopCPUProfile()
			if err := cpu.Close(); err != nil {
				return fmt.Errorf("--cpuprofile: %w", err)
			}
		}
		if g.memProfile == "" {
			return nil
		}
		f, err := os.Create(g.memProfile)
		if err != nil {
			return fmt.Errorf("--memprofile: %w", err)
		}
		runtime.GC() // the profile then shows live objects as of now
		if err := pprof.WriteHeapProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("--memprofile: %w", err)
		}
		return f.Close()
	}, nil
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "grove — Merkle trees over token ranges, to find exactly where replicas differ")
	fmt.Fprintln(w, "\nusage:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  grove %-62s %s\n", c.usage, c.summary)
	}
	fmt.Fprintln(w, "\nany command also takes --quiet (no progress bars), --cpuprofile FILE and --memprofile FILE")
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
