package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
)

// TestProgressOffTerminal checks no bar is drawn on a pipe, on a buffer, or
// under --quiet: a bar on a pipe would corrupt what a script reads.
func TestProgressOffTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, e := range []*env{
		{stderr: w},
		{stderr: &bytes.Buffer{}},
		{stderr: w, quiet: true},
	} {
		p := e.progress(100, "work", false)
		if p.bar != nil {
			t.Fatalf("a bar on %T (quiet %v)", e.stderr, e.quiet)
		}
		p.Add(10) // no-ops, no panics
		p.Set("stage", 5, 10)
		src := strings.NewReader("x")
		if p.reader(src) != io.Reader(src) {
			t.Fatal("reads are wrapped although no bar is drawn")
		}
		p.Done()
	}
	w.Close()
	if out, _ := io.ReadAll(r); len(out) != 0 {
		t.Fatalf("wrote %q to a pipe", out)
	}
}
