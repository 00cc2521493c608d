package main

import (
	"fmt"
	"io"
	"os"

	"github.com/antientropy/grove/internal/cli"

	"github.com/antientropy/grove/adapters/pebble/internal/nodebench"
)

// benchRows, if positive, replaces the size of bench's databases: tests
// set it to run a tiny one.
var benchRows int

// runBench measures the node against its floors (package nodebench) and
// prints the figures. Progress goes to stderr, so that --json's stdout is
// the report alone.
func runBench(args []string, e *env) (int, error) {
	ctx, stdout, stderr := e.ctx, e.stdout, e.stderr
	if stderr == nil {
		stderr = io.Discard
	}
	fs := cli.NewFlagSet("bench")
	asJSON := fs.Bool("json", false, `print the figures as JSON: {"figures": {"scan_vs_floor": ..., ...}}`)
	quick := fs.Bool("quick", false, "measure a small database a few times: seconds instead of minutes, noisier figures")
	dir := fs.String("dir", "", "make the temporary databases in `DIR` (default: the system's temporary directory); they are removed at the end")
	if err := cli.ParseNamed(fs, args); err != nil {
		return 0, err
	}
	if *dir != "" {
		if st, err := os.Stat(*dir); err != nil {
			return 0, fmt.Errorf("--dir: %w", err)
		} else if !st.IsDir() {
			return 0, fmt.Errorf("--dir %s: not a directory", *dir)
		}
	}
	rep, err := nodebench.Run(ctx, nodebench.Options{Quick: *quick, Rows: benchRows, Dir: *dir, Log: stderr})
	if err != nil {
		return 0, err
	}
	if *asJSON {
		return exitOK, rep.WriteJSON(stdout)
	}
	return exitOK, rep.WriteText(stdout)
}
