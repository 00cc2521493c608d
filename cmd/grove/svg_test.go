package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
)

// diffTrees builds two depth-20 trees of n rows, B with the rows whose index
// is in changed given another value, and diffs them.
func diffTrees(t *testing.T, n int, changed ...int) (*engine.Tree, *engine.Tree, *engine.DiffResult) {
	t.Helper()
	ctx := context.Background()
	budget := arena.NewBudget(1 << 28)
	var trees [2]*engine.Tree
	for side := range trees {
		tr, err := engine.New(engine.Options{Depth: 20, Budget: budget})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		for i := range n {
			v := "v"
			if side == 1 && slices.Contains(changed, i) {
				v = "changed"
			}
			if err := tr.Add(&engine.Row{Key: fmt.Appendf(nil, "user:%d", i), Value: []byte(v), TS: 1000}); err != nil {
				t.Fatal(err)
			}
		}
		if err := tr.Hash(ctx); err != nil {
			t.Fatal(err)
		}
		trees[side] = tr
	}
	res, err := engine.Diff(ctx, trees[0], trees[1])
	if err != nil {
		t.Fatal(err)
	}
	return trees[0], trees[1], res
}

// svgSummary reads an SVG strictly as XML and returns how many differing
// ranges its wedges hold and all the text it shows.
func svgSummary(t *testing.T, data []byte) (ranges int, text string) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var b strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			for _, a := range tok.Attr {
				if a.Name.Local == "data-ranges" {
					n, err := strconv.Atoi(a.Value)
					if err != nil {
						t.Fatalf("data-ranges %q: %v", a.Value, err)
					}
					ranges += n
				}
			}
		case xml.CharData:
			b.Write(tok)
			b.WriteByte('\n')
		}
	}
	return ranges, b.String()
}

func TestWriteDiffSVG(t *testing.T) {
	const hostile = `a&b<"c">.tree`
	for _, tc := range []struct {
		name    string
		changed []int
		want    []string // text the picture must show
	}{
		{"seven differing rows", []int{1, 200, 400, 800, 1600, 2400, 2999}, []string{hostile, "7 leaves in 7 ranges", "3,000 rows", "64.0 MiB", "different"}},
		{"identical", nil, []string{hostile, "0 leaves in 0 ranges", "identical"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b, res := diffTrees(t, 3000, tc.changed...)
			if res.DifferingLeaves != len(tc.changed) {
				t.Fatalf("diff found %d differing leaves, want %d", res.DifferingLeaves, len(tc.changed))
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "out.svg")
			if err := writeDiffSVG(path, hostile, "b.tree", a, b, res); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			ranges, text := svgSummary(t, data)
			if ranges != len(res.Ranges) {
				t.Errorf("wedges hold %d ranges, want the diff's %d", ranges, len(res.Ranges))
			}
			for _, s := range tc.want {
				if !strings.Contains(text, s) {
					t.Errorf("picture does not show %q; it shows:\n%s", s, text)
				}
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o644 {
				t.Errorf("mode %v, want 0644", st.Mode().Perm())
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("directory holds %d files, want only out.svg: %v", len(entries), entries)
			}
		})
	}
}

// TestWriteDiffSVGFails checks that a picture that cannot be written leaves
// nothing behind: no temporary file, and no file at the path.
func TestWriteDiffSVGFails(t *testing.T) {
	a, b, res := diffTrees(t, 100, 5)
	for _, tc := range []struct {
		name  string
		setUp func(dir string) string // returns the path to write
	}{
		{"path is a directory", func(dir string) string {
			p := filepath.Join(dir, "taken.svg")
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{"directory missing", func(dir string) string { return filepath.Join(dir, "no", "such", "out.svg") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := tc.setUp(dir)
			before, _ := os.ReadDir(dir)
			err := writeDiffSVG(path, "a", "b", a, b, res)
			if err == nil {
				t.Fatal("writeDiffSVG succeeded")
			}
			// The message names the file asked for, not the temporary one.
			if msg := err.Error(); !strings.Contains(msg, path) || strings.Contains(msg, "tmp-") {
				t.Errorf("error %q should name %s and no temporary file", msg, path)
			}
			after, _ := os.ReadDir(dir)
			if len(after) != len(before) {
				t.Errorf("directory had %v, now %v: a failed write left a file", before, after)
			}
			if st, err := os.Stat(path); err == nil && !st.IsDir() {
				t.Errorf("%s exists after a failed write", path)
			}
		})
	}
}
