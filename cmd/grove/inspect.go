package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/antientropy/grove/arena"
)

type inspectJSON struct {
	Partitioner string    `json:"partitioner"`
	Range       jsonRange `json:"range"`
	Layout      string    `json:"layout"`
	Depth       int       `json:"depth"`
	Leaves      int       `json:"leaves"`
	Rows        int64     `json:"rows"`
	Bytes       int64     `json:"bytes"`
	Root        string    `json:"root"`
	Clean       bool      `json:"clean"`
}

func runInspect(args []string, e *env) (int, error) {
	stdout := e.stdout
	c := newCmdline("inspect").withBudget()
	asJSON := c.Bool("json", false, "print JSON")
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
	// A dirty file has no trustworthy root; inspect still describes it.
	root, _ := t.Root()
	r := t.Range()
	info := inspectJSON{
		Partitioner: t.Partitioner().Name(),
		Range:       jsonRange{strconv.FormatInt(r.Lo, 10), strconv.FormatInt(r.Hi, 10)},
		Layout:      t.Layout().Name(),
		Depth:       t.Depth(),
		Leaves:      t.Leaves(),
		Rows:        t.Rows(),
		Bytes:       t.Bytes(),
		Root:        hex.EncodeToString(root[:]),
		Clean:       !t.Dirty(),
	}
	if *asJSON {
		return exitOK, writeJSON(stdout, info)
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "partitioner  %s\n", info.Partitioner)
	fmt.Fprintf(&buf, "range        %s\n", r)
	fmt.Fprintf(&buf, "layout       %s\n", info.Layout)
	fmt.Fprintf(&buf, "depth        %d\n", info.Depth)
	fmt.Fprintf(&buf, "leaves       %d\n", info.Leaves)
	fmt.Fprintf(&buf, "rows         %d\n", info.Rows)
	fmt.Fprintf(&buf, "bytes        %d (%s)\n", info.Bytes, arena.FormatBytes(info.Bytes))
	fmt.Fprintf(&buf, "root         %s\n", info.Root)
	if info.Clean {
		fmt.Fprintf(&buf, "state        clean\n")
	} else {
		fmt.Fprintf(&buf, "state        DIRTY: left mid-update; root and checksums may be stale (rebuild, or run verify)\n")
	}
	_, err = stdout.Write(buf.Bytes())
	return exitOK, err
}
