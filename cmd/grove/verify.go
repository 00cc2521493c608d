package main

import (
	"context"
	"fmt"
)

func runVerify(args []string, e *env) (int, error) {
	stdout := e.stdout
	c := newCmdline("verify").withBudget()
	pos, err := c.parse(args, 1)
	if err != nil {
		return 0, err
	}
	trees, closeTrees, err := c.openTrees(pos[0])
	if err != nil {
		return 0, err
	}
	defer closeTrees()
	t := trees[0]
	if err := t.Verify(context.Background()); err != nil {
		return 0, err
	}
	root, _ := t.Root()
	fmt.Fprintf(stdout, "%s: ok: %d rows, depth %d, %s layout, root %x\n", pos[0], t.Rows(), t.Depth(), t.Layout().Name(), root)
	return exitOK, nil
}
