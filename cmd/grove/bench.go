package main

import (
	"context"
	"io"

	"github.com/antientropy/grove/bench"
)

// runBench times grove against its baselines on this machine and prints the
// comparison as a table, or as JSON with --json. A full run takes a minute or
// two; --quick runs the same measurements at small sizes in seconds.
func runBench(args []string, e *env) (int, error) {
	stdout := e.stdout
	c := newCmdline("bench")
	asJSON := c.Bool("json", false, "print the report as JSON")
	quick := c.Bool("quick", false, "small sizes (2^14 leaves, 100k rows): seconds instead of minutes")
	if _, err := c.parse(args, 0); err != nil {
		return 0, err
	}
	cfg := bench.Config{Quick: *quick}
	if !*asJSON {
		cfg.Progress = stdout // a full run is long: say what it is doing
	}
	rep, err := bench.Run(context.Background(), cfg)
	if err != nil {
		return 0, err
	}
	if *asJSON {
		return exitOK, writeJSON(stdout, rep)
	}
	if _, err := io.WriteString(stdout, "\n"); err != nil {
		return 0, err
	}
	return exitOK, rep.WriteTable(stdout)
}
