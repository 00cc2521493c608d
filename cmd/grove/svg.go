package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/internal/atomicfile"
	"github.com/antientropy/grove/viz"
)

// diffSide is what the picture shows of a compared tree, live or frozen.
type diffSide interface {
	Range() token.Range
	Bytes() int64
	Rows() int64
}

// writeDiffSVG draws what Diff found between trees a and b (named nameA and
// nameB in the picture) as an SVG ring at path. Like every file the command
// writes, it goes to a temporary name beside path, is fsynced and renamed,
// so path is either the whole picture or untouched, never half of one.
func writeDiffSVG(path string, nameA, nameB string, a, b diffSide, res *engine.DiffResult) error {
	ring := viz.Ring{
		// Diff refuses trees whose ranges differ, so a's range is both.
		Range:           a.Range(),
		Depth:           res.Depth,
		Differ:          res.Ranges,
		DifferingLeaves: res.DifferingLeaves,
		NodesCompared:   res.NodesCompared,
		A:               viz.Side{Name: nameA, Bytes: a.Bytes(), Rows: a.Rows(), RowsKnown: true},
		B:               viz.Side{Name: nameB, Bytes: b.Bytes(), Rows: b.Rows(), RowsKnown: true},
	}
	err := atomicfile.Write(path, 0o644, func(f *os.File) error {
		w := bufio.NewWriter(f)
		if err := viz.RingSVG(w, ring); err != nil {
			return err
		}
		return w.Flush()
	})
	if err != nil {
		return svgError(path, err)
	}
	return nil
}

// svgError names the picture the user asked for, not the temporary file
// an error from the os package names.
func svgError(path string, err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		err = pe.Err
	case errors.As(err, &le):
		err = le.Err
	}
	return fmt.Errorf("svg %s: %w", path, err)
}
