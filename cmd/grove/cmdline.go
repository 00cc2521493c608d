package main

import (
	"encoding/json"
	"flag"
	"io"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/internal/cli"
)

// defaultBudget bounds the trees one command maps: sixteen depth-20 trees.
const defaultBudget = "1GiB"

// cmdline is the preamble every command shares: its flag set, with
// --budget when the command maps trees, parsed with the positional
// arguments checked, and the trees it names opened under the budget.
type cmdline struct {
	*flag.FlagSet
	budgetFlag *cli.Budget
}

func newCmdline(name string) *cmdline {
	return &cmdline{FlagSet: cli.NewFlagSet(name)}
}

// withBudget adds --budget.
func (c *cmdline) withBudget() *cmdline {
	c.budgetFlag = cli.AddBudget(c.FlagSet, defaultBudget, "memory for trees, outside the Go heap (a `SIZE`: 64MiB, 2GiB)")
	return c
}

// depthFlag adds --depth, auto by default, from 0: the engine builds a
// one-leaf tree.
func (c *cmdline) depthFlag() *cli.Depth {
	return cli.AddDepth(c.FlagSet, 0)
}

// parse parses args, flags anywhere among exactly n positional arguments,
// which it returns.
func (c *cmdline) parse(args []string, n int) ([]string, error) {
	return cli.Parse(c.FlagSet, args, n)
}

// budget returns --budget's budget. Commands ask for it after checking
// their other flags, so that a mistyped flag is reported first.
func (c *cmdline) budget() (*arena.Budget, error) {
	return c.budgetFlag.Get()
}

// openTrees opens the tree files at paths under --budget, and returns a
// function that closes them all.
func (c *cmdline) openTrees(paths ...string) ([]*engine.View, func(), error) {
	b, err := c.budget()
	if err != nil {
		return nil, nil, err
	}
	var trees []*engine.View
	closeAll := func() {
		for _, t := range trees {
			t.Close()
		}
	}
	for _, p := range paths {
		t, err := engine.Open(p, b)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		trees = append(trees, t)
	}
	return trees, closeAll, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
