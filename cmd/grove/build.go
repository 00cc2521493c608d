package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/layout"
)

func runBuild(args []string, e *env) (int, error) {
	stdout := e.stdout
	c := newCmdline("build").withBudget()
	in := c.String("in", "", "rows, JSON Lines (`FILE`)")
	out := c.String("out", "", "tree `FILE` to write")
	depth := c.depthFlag()
	layoutName := c.String("layout", "bfs", "node `LAYOUT`: bfs (breadth-first) or blocked (7-level subtrees per 4 KiB page)")
	if _, err := c.parse(args, 0); err != nil {
		return 0, err
	}
	l, ok := layout.ByName(*layoutName)
	if !ok {
		return 0, fmt.Errorf("--layout %q: want bfs or blocked", *layoutName)
	}
	if *in == "" || *out == "" {
		return 0, errors.New("--in and --out are required")
	}
	if err := checkOutput("--out", *out, map[string]string{"--in": *in}); err != nil {
		return 0, err
	}
	b, err := c.budget()
	if err != nil {
		return 0, err
	}
	t, err := buildTree(context.Background(), e, *in, depth.Depth, l, b)
	if err != nil {
		return 0, err
	}
	defer t.Close()
	if err := t.Save(*out); err != nil {
		return 0, err
	}
	root, _ := t.Root()
	fmt.Fprintf(stdout, "%s: %d rows, depth %d, %s, root %x\n", *out, t.Rows(), t.Depth(), arena.FormatBytes(t.Bytes()), root)
	return exitOK, nil
}
