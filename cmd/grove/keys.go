package main

import (
	"context"
	"fmt"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/repair"
)

type keysJSON struct {
	Identical bool               `json:"identical"`
	OnlyInA   []repair.ReportKey `json:"only_in_a"`
	OnlyInB   []repair.ReportKey `json:"only_in_b"`
	Different []repair.ReportKey `json:"different"`
}

func runKeys(args []string, e *env) (int, error) {
	stdout := e.stdout
	c := newCmdline("keys").withBudget()
	asJSON := c.Bool("json", false, "print JSON")
	depth := c.depthFlag()
	pos, err := c.parse(args, 2)
	if err != nil {
		return 0, err
	}
	b, err := c.budget()
	if err != nil {
		return 0, err
	}
	ctx := context.Background()
	kd, err := keysOf(ctx, e, pos[0], pos[1], depth.Depth, b)
	if err != nil {
		return 0, err
	}
	if *asJSON {
		out := keysJSON{Identical: kd.Identical(), OnlyInA: repair.ReportKeys(kd.OnlyHere), OnlyInB: repair.ReportKeys(kd.OnlyThere), Different: repair.ReportKeys(kd.Different)}
		if err := writeJSON(stdout, out); err != nil {
			return 0, err
		}
	} else if kd.Identical() {
		fmt.Fprintln(stdout, "identical")
	} else {
		printKeys(stdout, [2]string{"only in A", "only in B"}, kd.OnlyHere, kd.OnlyThere, kd.Different)
	}
	if kd.Identical() {
		return exitOK, nil
	}
	return exitDifferent, nil
}

// keysOf builds trees from two row files at the same depth, diffs them, and
// compares rows only inside the differing ranges.
func keysOf(ctx context.Context, e *env, pathA, pathB string, depth int, b *arena.Budget) (*engine.KeyDiff, error) {
	if depth == engine.AutoDepth {
		// Both trees at one depth, sized for the larger side.
		na, err := countLines(pathA)
		if err != nil {
			return nil, err
		}
		nb, err := countLines(pathB)
		if err != nil {
			return nil, err
		}
		// Two trees share the budget, so each may take half.
		d, err := engine.ChooseDepth(max(na, nb), b.Available()/2, nil)
		if err != nil {
			return nil, err
		}
		depth = d
	}
	ta, err := buildTree(ctx, e, pathA, depth, nil, b)
	if err != nil {
		return nil, err
	}
	defer ta.Close()
	tb, err := buildTree(ctx, e, pathB, depth, nil, b)
	if err != nil {
		return nil, err
	}
	defer tb.Close()
	res, err := engine.Diff(ctx, ta, tb)
	if err != nil {
		return nil, err
	}
	if res.Identical() {
		return &engine.KeyDiff{}, nil
	}
	ra, err := openRows(pathA)
	if err != nil {
		return nil, err
	}
	defer ra.Close()
	rb, err := openRows(pathB)
	if err != nil {
		return nil, err
	}
	defer rb.Close()
	return engine.CompareKeys(ctx, ta.Partitioner(), res.Ranges, ra, rb)
}
