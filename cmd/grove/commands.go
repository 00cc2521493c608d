package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/jsonl"
	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/internal/memlimit"
	"github.com/antientropy/grove/layout"
)

// defaultBudget bounds the trees one command maps: sixteen depth-20 trees.
const defaultBudget = "1GiB"

// depthFlag holds --depth: a number or "auto".
type depthFlag struct{ depth int }

func (d *depthFlag) String() string {
	if d.depth == engine.AutoDepth {
		return "auto"
	}
	return strconv.Itoa(d.depth)
}

func (d *depthFlag) Set(s string) error {
	if s == "auto" {
		d.depth = engine.AutoDepth
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > engine.MaxDepth {
		return fmt.Errorf("depth %q: want 0..%d or auto", s, engine.MaxDepth)
	}
	d.depth = n
	return nil
}

// budgetFlag registers --budget and returns a function that parses it.
// Under an address-space limit (ulimit -v) the budget must fit in what the
// limit leaves: the default shrinks to it, and a --budget larger than it is
// refused, rather than a mapping or the runtime failing later.
func budgetFlag(fs *flag.FlagSet) func() (*arena.Budget, error) {
	s := fs.String("budget", defaultBudget, "memory for trees, outside the Go heap (e.g. 64MiB, 2GiB)")
	return func() (*arena.Budget, error) {
		n, err := arena.ParseBytes(*s)
		if err != nil {
			return nil, fmt.Errorf("--budget: %w", err)
		}
		explicit := false
		fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "budget" })
		if n, err = memlimit.Fit(n, explicit, "--budget "+*s); err != nil {
			return nil, err
		}
		return arena.NewBudget(n), nil
	}
}

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

func runBuild(args []string, e *env) (int, error) {
	stdout := e.stdout
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	in := fs.String("in", "", "rows, JSON Lines")
	out := fs.String("out", "", "tree file to write")
	depth := depthFlag{engine.AutoDepth}
	fs.Var(&depth, "depth", "tree depth 0..32, or auto")
	layoutName := fs.String("layout", "bfs", "node layout: bfs (breadth-first) or blocked (7-level subtrees per 4 KiB page)")
	budget := budgetFlag(fs)
	if _, err := parse(fs, args, 0); err != nil {
		return 0, err
	}
	l, ok := layout.ByName(*layoutName)
	if !ok {
		return 0, fmt.Errorf("--layout %q: want bfs or blocked", *layoutName)
	}
	if *in == "" || *out == "" {
		return 0, errors.New("--in and --out are required")
	}
	if err := checkOutput("--out", *out, map[string]string{"--in": *in}); err != nil {
		return 0, err
	}
	b, err := budget()
	if err != nil {
		return 0, err
	}
	t, err := buildTree(context.Background(), e, *in, depth.depth, l, b)
	if err != nil {
		return 0, err
	}
	defer t.Close()
	if err := t.Save(*out); err != nil {
		return 0, err
	}
	root, _ := t.Root()
	fmt.Fprintf(stdout, "%s: %d rows, depth %d, %s, root %x\n", *out, t.Rows(), t.Depth(), arena.FormatBytes(t.Bytes()), root)
	return exitOK, nil
}

type jsonRange struct {
	Lo string `json:"lo"`
	Hi string `json:"hi"`
}

type diffJSON struct {
	Identical       bool        `json:"identical"`
	Depth           int         `json:"depth"`
	DifferingLeaves int         `json:"differing_leaves"`
	Ranges          []jsonRange `json:"ranges"`
}

func runDiff(args []string, e *env) (int, error) {
	stdout := e.stdout
	fs := flag.NewFlagSet("diff", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	svgOut := fs.String("svg", "", "also draw the token ring with the differing ranges to this SVG file")
	budget := budgetFlag(fs)
	pos, err := parse(fs, args, 2)
	if err != nil {
		return 0, err
	}
	if *svgOut != "" {
		if err := checkOutput("--svg", *svgOut, map[string]string{"A": pos[0], "B": pos[1]}); err != nil {
			return 0, err
		}
	}
	b, err := budget()
	if err != nil {
		return 0, err
	}
	a, err := engine.Open(pos[0], b)
	if err != nil {
		return 0, err
	}
	defer a.Close()
	bt, err := engine.Open(pos[1], b)
	if err != nil {
		return 0, err
	}
	defer bt.Close()
	// Open reads only the headers; a damaged node could hide a divergence,
	// so the command checks every byte first (~40 ms a depth-20 tree).
	ctx := context.Background()
	for _, t := range []*engine.Tree{a, bt} {
		if err := t.Verify(ctx); err != nil {
			return 0, err
		}
	}
	res, err := engine.Diff(ctx, a, bt)
	if err != nil {
		return 0, err
	}
	if *svgOut != "" {
		if err := writeDiffSVG(*svgOut, pos[0], pos[1], a, bt, res); err != nil {
			return 0, err
		}
	}
	if *asJSON {
		out := diffJSON{Identical: res.Identical(), Depth: res.Depth, DifferingLeaves: res.DifferingLeaves, Ranges: []jsonRange{}}
		for _, r := range res.Ranges {
			out.Ranges = append(out.Ranges, jsonRange{strconv.FormatInt(r.Lo, 10), strconv.FormatInt(r.Hi, 10)})
		}
		if err := writeJSON(stdout, out); err != nil {
			return 0, err
		}
	} else if res.Identical() {
		fmt.Fprintf(stdout, "identical (depth %d)\n", res.Depth)
	} else {
		fmt.Fprintf(stdout, "different: %d of %d leaves at depth %d, in %d ranges\n", res.DifferingLeaves, 1<<res.Depth, res.Depth, len(res.Ranges))
		for _, r := range res.Ranges {
			fmt.Fprintf(stdout, "  %s\n", r)
		}
	}
	if res.Identical() {
		return exitOK, nil
	}
	return exitDifferent, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

type keysJSON struct {
	Identical bool               `json:"identical"`
	OnlyInA   []repair.ReportKey `json:"only_in_a"`
	OnlyInB   []repair.ReportKey `json:"only_in_b"`
	Different []repair.ReportKey `json:"different"`
}

func runKeys(args []string, e *env) (int, error) {
	stdout := e.stdout
	fs := flag.NewFlagSet("keys", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	depth := depthFlag{engine.AutoDepth}
	fs.Var(&depth, "depth", "tree depth 0..32, or auto")
	budget := budgetFlag(fs)
	pos, err := parse(fs, args, 2)
	if err != nil {
		return 0, err
	}
	b, err := budget()
	if err != nil {
		return 0, err
	}
	ctx := context.Background()
	kd, err := keysOf(ctx, e, pos[0], pos[1], depth.depth, b)
	if err != nil {
		return 0, err
	}
	if *asJSON {
		out := keysJSON{Identical: kd.Identical(), OnlyInA: repair.ReportKeys(kd.OnlyInA), OnlyInB: repair.ReportKeys(kd.OnlyInB), Different: repair.ReportKeys(kd.Different)}
		if err := writeJSON(stdout, out); err != nil {
			return 0, err
		}
	} else if kd.Identical() {
		fmt.Fprintln(stdout, "identical")
	} else {
		printKeys(stdout, [2]string{"only in A", "only in B"}, kd.OnlyInA, kd.OnlyInB, kd.Different)
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

func runToken(args []string, e *env) (int, error) {
	stdout := e.stdout
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	isHex := fs.Bool("hex", false, "KEY is hex-encoded bytes")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return 0, err
	}
	key := []byte(pos[0])
	if *isHex {
		if key, err = hex.DecodeString(pos[0]); err != nil {
			return 0, fmt.Errorf("KEY %q is not hex: %w", pos[0], err)
		}
	}
	fmt.Fprintln(stdout, token.Murmur3{}.Token(key))
	return exitOK, nil
}

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
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	budget := budgetFlag(fs)
	pos, err := parse(fs, args, 1)
	if err != nil {
		return 0, err
	}
	b, err := budget()
	if err != nil {
		return 0, err
	}
	t, err := engine.Open(pos[0], b)
	if err != nil {
		return 0, err
	}
	defer t.Close()
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
		Clean:       !t.FileDirty(),
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

func runVerify(args []string, e *env) (int, error) {
	stdout := e.stdout
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	budget := budgetFlag(fs)
	pos, err := parse(fs, args, 1)
	if err != nil {
		return 0, err
	}
	b, err := budget()
	if err != nil {
		return 0, err
	}
	t, err := engine.Open(pos[0], b)
	if err != nil {
		return 0, err
	}
	defer t.Close()
	if err := t.Verify(context.Background()); err != nil {
		return 0, err
	}
	root, _ := t.Root()
	fmt.Fprintf(stdout, "%s: ok: %d rows, depth %d, %s layout, root %x\n", pos[0], t.Rows(), t.Depth(), t.Layout().Name(), root)
	return exitOK, nil
}
