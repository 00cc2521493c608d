// Command grove builds Merkle trees over rows, compares them, and finds the
// exact keys in which two replicas differ. Run `grove help` for the commands.
//
// Exit status: 0 success (and "identical" for diff and keys), 1 "different"
// for diff and keys, 2 any error, with a message on stderr starting "grove:".
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"

	"github.com/antientropy/grove/internal/cli"
	"github.com/antientropy/grove/internal/cliout"
)

// exit statuses: cli's, which grove-pebble shares.
const (
	exitOK        = cli.ExitOK
	exitDifferent = cli.ExitDifferent
	exitError     = cli.ExitError
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// program is grove's command table and help.
func program() *cli.Program[*env] {
	return &cli.Program[*env]{
		Name:        "grove",
		Title:       "grove — Merkle trees over token ranges, to find exactly where replicas differ",
		Commands:    commands(),
		UsageColumn: 62,
		Footer: "\nany command also takes --quiet (no progress bars), --cpuprofile FILE and --memprofile FILE\n" +
			"run 'grove COMMAND --help' for a command's flags and their defaults\n" +
			"\nexit status: 0 ok/identical, 1 different, 2 error\n",
		Env:   newEnv,
		Start: func(e *env) (func() error, error) { return startProfiles(e.globals) },
	}
}

func commands() []cli.Command[*env] {
	return []cli.Command[*env]{
		{Name: "build", Usage: "build --in ROWS --out TREE [--depth N|auto] [--layout bfs|blocked] [--budget SIZE]", Summary: "build a tree file from JSON Lines rows", Run: runBuild},
		{Name: "diff", Usage: "diff A B [--json] [--svg OUT.svg] [--budget SIZE]", Summary: "compare two tree files; exit 0 identical, 1 different", Run: runDiff},
		{Name: "keys", Usage: "keys A_ROWS B_ROWS [--depth N|auto] [--json] [--budget SIZE]", Summary: "find the exact keys in which two row files differ", Run: runKeys},
		{Name: "token", Usage: "token [--hex] KEY", Summary: "print a key's Murmur3 token (Cassandra's)", Run: runToken},
		{Name: "inspect", Usage: "inspect TREE [--json]", Summary: "describe a tree file", Run: runInspect},
		{Name: "apply", Usage: "apply TREE --in CHANGES [--budget SIZE]", Summary: "update a tree file in place from JSON Lines changes (all or nothing)", Run: runApply},
		{Name: "verify", Usage: "verify TREE", Summary: "check every byte of a tree file; exit 0 good, 2 corrupt or dirty", Run: runVerify},
		{Name: "serve", Usage: "serve --rows ROWS --listen HOST:PORT [--depth N|auto] [--repair-out FILE] [--tls-cert F --tls-key F --tls-ca F]", Summary: "serve one replica to repair sessions (Connect/gRPC over HTTP/2)", Run: runServe},
		{Name: "sync", Usage: "sync --rows ROWS --peer URL [--depth N|auto] [--json] [--repair-out FILE] [--timeout 30s] [TLS flags]", Summary: "find (and with --repair-out repair) the keys in which this replica and a peer differ; exit 0 in sync, 1 different", Run: runSync},
		{Name: "cert", Usage: certUsage, Summary: "make a CA, and node certificates it signs, for serve and sync's mutual TLS", Run: runCert},
		{Name: "demo", Usage: "demo [--rows N]", Summary: "find silent divergence among replicas, end to end", Run: runDemo},
		{Name: "bench", Usage: "bench [--json] [--quick]", Summary: "time grove against its baselines (pointer tree, gohashtree, compact range, crypto/sha256)", Run: runBench},
	}
}

// env is what every command gets besides its arguments: where to write,
// and the global options.
type env struct {
	stdout, stderr io.Writer
	// quiet silences progress bars; they are drawn only when stderr is a
	// terminal anyway.
	quiet bool
	// globals are the run's global options, for the profiles.
	globals globals
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

// run is main without the process: tests call it directly.
func run(args []string, stdout, stderr io.Writer) int {
	return program().Run(args, stdout, stderr)
}

// newEnv takes the global options out of args, wherever they stand.
func newEnv(args []string, stdout *cliout.Writer, stderr io.Writer) ([]string, *env, error) {
	args, g, err := takeGlobals(args)
	if err != nil {
		return nil, nil, err
	}
	if err := checkProfiles(g, args); err != nil {
		return nil, nil, err
	}
	return args, &env{stdout: stdout, stderr: stderr, quiet: g.quiet, globals: g}, nil
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
