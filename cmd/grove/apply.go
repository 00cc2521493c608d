package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/jsonl"
)

// runApply updates a tree file with a changes file. It works on a copy of
// the tree beside it and renames the copy over the original only when every
// change applied and the result verifies, so a bad line — or a crash —
// leaves the original exactly as it was.
func runApply(args []string, e *env) (int, error) {
	stdout := e.stdout
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	in := fs.String("in", "", "changes, JSON Lines (docs/LIVE.md)")
	budget := budgetFlag(fs)
	pos, err := parse(fs, args, 1)
	if err != nil {
		return 0, err
	}
	if *in == "" {
		return 0, errors.New("--in is required")
	}
	b, err := budget()
	if err != nil {
		return 0, err
	}
	path := pos[0]
	ctx := context.Background()

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

	tmp, err := copyBeside(path)
	if err != nil {
		return 0, err
	}
	done := false
	defer func() {
		if !done {
			os.Remove(tmp)
		}
	}()
	t, err := engine.OpenWritable(tmp, b)
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
		if err != nil {
			return 0, fmt.Errorf("%s: line %d: %w", *in, r.Line(), err)
		}
		n++
	}
	if t.Rows() < 0 {
		return 0, fmt.Errorf("%s: the changes remove more rows than the tree holds (%d): an old row that was never added", *in, t.Rows())
	}
	if err := t.Hash(ctx); err != nil {
		return 0, err
	}
	if err := t.Sync(); err != nil {
		return 0, err
	}
	root, _ := t.Root()
	rows := t.Rows()
	if err := t.Close(); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, err
	}
	done = true
	if err := syncDirOf(path); err != nil {
		return 0, err
	}
	fmt.Fprintf(stdout, "%s: %d changes applied, %d rows, root %x\n", path, n, rows, root)
	return exitOK, nil
}

// copyBeside copies path to a new temporary file in the same directory,
// fsynced, and returns its name.
func copyBeside(path string) (string, error) {
	src, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer src.Close()
	dst, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".apply-*")
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		os.Remove(dst.Name())
		return "", err
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		os.Remove(dst.Name())
		return "", err
	}
	return dst.Name(), dst.Close()
}

func syncDirOf(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
