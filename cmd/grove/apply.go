package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/jsonl"
	"github.com/antientropy/grove/internal/atomicfile"
)

// runApply updates a tree file with a changes file. It works on a copy of
// the tree beside it and renames the copy over the original only when every
// change applied and the result verifies, so a bad line — or a crash —
// leaves the original exactly as it was.
func runApply(args []string, e *env) (int, error) {
	stdout := e.stdout
	cl := newCmdline("apply").withBudget()
	in := cl.String("in", "", "changes, JSON Lines (`FILE`; docs/LIVE.md)")
	pos, err := cl.parse(args, 1)
	if err != nil {
		return 0, err
	}
	if *in == "" {
		return 0, errors.New("--in is required")
	}
	b, err := cl.budget()
	if err != nil {
		return 0, err
	}
	path := pos[0]
	ctx := context.Background()
	if same, err := sameFile(path, *in); err != nil {
		return 0, err
	} else if same {
		return 0, fmt.Errorf("--in %s is the tree itself (%s): refusing to read changes from the file being updated", *in, path)
	}

	// Refuse a damaged or dirty original before copying it.
	orig, err := engine.Open(path, b)
	if err != nil {
		return 0, err
	}
	err = orig.Verify(ctx)
	orig.Close()
	if err != nil {
		return 0, err
	}

	changes, err := os.Open(*in)
	if err != nil {
		return 0, err
	}
	defer changes.Close()

	// The copy is locked while it lives, so a later run can tell it from
	// one a killed apply left behind, which it removes.
	tmp, err := copyBeside(path)
	if err != nil {
		return 0, err
	}
	defer tmp.Abort()
	// The tree's own writer lock takes over from the copy's.
	if err := tmp.HandOff(); err != nil {
		return 0, err
	}
	t, err := engine.OpenWritable(tmp.Name(), b)
	if err != nil {
		return 0, err
	}
	defer t.Close()
	r := jsonl.NewReader(changes)
	var c jsonl.Change
	n := 0
	for {
		err := r.NextChange(&c)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("%s: %w", *in, err)
		}
		switch c.Op {
		case jsonl.OpPut, jsonl.OpDelete:
			err = t.Update(c.Old, &c.New)
		case jsonl.OpPurge:
			err = t.Update(c.Old, nil)
		}
		switch {
		case errors.Is(err, engine.ErrOutOfRange) || errors.Is(err, engine.ErrBadUpdate):
			return 0, fmt.Errorf("%s: line %d: %w", *in, r.Line(), err)
		case err != nil:
			// Not the line's fault: the budget, or writing the tree's
			// dirty flag, failed.
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		n++
	}
	if t.Rows() < 0 {
		return 0, fmt.Errorf("%s: the changes remove more rows than the tree holds (%d): an old row that was never added", *in, t.Rows())
	}
	if err := t.Hash(ctx); err != nil {
		return 0, err
	}
	if err := t.Checkpoint(); err != nil {
		return 0, err
	}
	root, _ := t.Root()
	rows := t.Rows()
	if err := t.Close(); err != nil {
		return 0, err
	}
	if err := tmp.Commit(); err != nil {
		return 0, err
	}
	fmt.Fprintf(stdout, "%s: %d changes applied, %d rows, root %x\n", path, n, rows, root)
	return exitOK, nil
}

// copyBeside copies path to a new temporary file beside it, fsynced.
func copyBeside(path string) (*atomicfile.File, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	dst, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Abort()
		return nil, err
	}
	if err := dst.Sync(); err != nil {
		dst.Abort()
		return nil, err
	}
	return dst, nil
}
