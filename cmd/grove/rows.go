package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/jsonl"
	"github.com/antientropy/grove/layout"
)

// rowFile reads a JSON Lines rows file as an engine.RowSource, naming the
// file in its errors.
type rowFile struct {
	path string
	f    *os.File
	r    *jsonl.Reader
}

func openRows(path string) (*rowFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return &rowFile{path: path, f: f, r: jsonl.NewReader(f)}, nil
}

func (rf *rowFile) NextRow(r *engine.Row) error {
	err := rf.r.NextRow(r)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w", rf.path, err)
	}
	return err
}

func (rf *rowFile) Close() error { return rf.f.Close() }

// countLines counts the non-blank lines of a file, to size a tree with
// --depth auto before reading the rows.
func countLines(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var n int64
	sc := bufio.NewReaderSize(f, 1<<16)
	blank := true
	for {
		b, err := sc.ReadByte()
		if err != nil {
			if !blank {
				n++
			}
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			return 0, err
		}
		switch b {
		case '\n':
			if !blank {
				n++
			}
			blank = true
		case ' ', '\t', '\r':
		default:
			blank = false
		}
	}
}

// buildTree builds and hashes a tree from a rows file.
func buildTree(ctx context.Context, e *env, path string, depth int, l layout.Layout, budget *arena.Budget) (*engine.Tree, error) {
	opts := engine.Options{Depth: depth, Layout: l, Budget: budget}
	if depth == engine.AutoDepth {
		n, err := countLines(path)
		if err != nil {
			return nil, err
		}
		opts.ExpectedRows = n
	}
	rows, bar, err := openRowsShown(path, e, "reading "+filepath.Base(path))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	defer bar.Done()
	t, err := engine.New(opts)
	if err != nil {
		return nil, err
	}
	if _, err := t.Load(ctx, rows, 0); err != nil {
		t.Close()
		return nil, err
	}
	if err := t.Hash(ctx); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}
