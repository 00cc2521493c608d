package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/internal/atomicfile"
)

// tempsIn lists grove's temporary files in dir.
func tempsIn(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if atomicfile.IsTemp(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

// smallFixture writes two row files and their trees into dir.
func smallFixture(t *testing.T, dir string) (rowsA, rowsB, treeA, treeB string) {
	t.Helper()
	a, b, _, _, _ := makeReplicas(200)
	rowsA, rowsB = filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	writeRows(t, rowsA, a)
	writeRows(t, rowsB, b)
	treeA, treeB = filepath.Join(dir, "a.tree"), filepath.Join(dir, "b.tree")
	for _, c := range [][2]string{{rowsA, treeA}, {rowsB, treeB}} {
		if code, _, errOut := grove(t, "build", "--in", c[0], "--out", c[1], "--depth", "8"); code != 0 {
			t.Fatal(errOut)
		}
	}
	return
}

// TestOutputIsNotAnInput: an output that names an input — spelled another
// way, or through a hard link — is refused with exit 2 before anything is
// written, and the input is byte-identical afterwards.
func TestOutputIsNotAnInput(t *testing.T) {
	dir := t.TempDir()
	rowsA, _, treeA, treeB := smallFixture(t, dir)
	link := filepath.Join(dir, "a-link.jsonl")
	if err := os.Link(rowsA, link); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	pem := filepath.Join(dir, "node.pem")
	os.WriteFile(pem, []byte("not really a certificate"), 0o600)
	respelled := filepath.Join(sub, "..", "a.jsonl")
	tests := []struct {
		name  string
		args  []string
		input string // must not change
		want  string
	}{
		{"build --out is --in", []string{"build", "--in", rowsA, "--out", rowsA}, rowsA, "same file as --in"},
		{"build --out is --in, spelled otherwise", []string{"build", "--in", rowsA, "--out", respelled}, rowsA, "same file as --in"},
		{"build --out is a hard link to --in", []string{"build", "--in", rowsA, "--out", link}, rowsA, "same file as --in"},
		{"build --out is a directory", []string{"build", "--in", rowsA, "--out", sub}, rowsA, "is a directory"},
		{"diff --svg is A", []string{"diff", treeA, treeB, "--svg", treeA}, treeA, "same file as A"},
		{"diff --svg is B", []string{"diff", treeA, treeB, "--svg", treeB}, treeB, "same file as B"},
		{"apply --in is the tree", []string{"apply", treeA, "--in", treeA}, treeA, "is the tree itself"},
		{"sync --repair-out is --tls-cert", []string{"sync", "--rows", rowsA, "--peer", "https://127.0.0.1:1", "--repair-out", pem, "--tls-cert", pem, "--tls-key", pem}, pem, "same file as --tls-"},
		{"serve --repair-out is --tls-ca", []string{"serve", "--rows", rowsA, "--repair-out", pem, "--tls-ca", pem}, pem, "same file as --tls-ca"},
		{"--cpuprofile is an input", []string{"build", "--in", rowsA, "--out", filepath.Join(dir, "x.tree"), "--cpuprofile", rowsA}, rowsA, "refusing to overwrite an input"},
		{"--memprofile is an input", []string{"diff", treeA, treeB, "--memprofile", treeB}, treeB, "refusing to overwrite an input"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, err := os.ReadFile(tc.input)
			if err != nil {
				t.Fatal(err)
			}
			code, _, errOut := grove(t, tc.args...)
			if code != exitError || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
				t.Fatalf("exit %d, stderr %q; want 2 and one line saying %q", code, errOut, tc.want)
			}
			if after, _ := os.ReadFile(tc.input); !bytes.Equal(after, before) {
				t.Fatalf("%s changed", tc.input)
			}
			if ts := tempsIn(t, dir); len(ts) != 0 {
				t.Fatalf("left %v", ts)
			}
		})
	}
	// --repair-out may name --rows: an update in place, atomic.
	if err := checkOutput("--repair-out", rowsA, map[string]string{"--tls-cert": ""}); err != nil {
		t.Fatalf("--repair-out naming --rows refused: %v", err)
	}
}

// failingWriter fails every write, as a full disk or a closed pipe would.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, syscall.ENOSPC }

// TestStdoutWriteErrors: a failed write to stdout is exit 2 for every
// command, whatever it found.
func TestStdoutWriteErrors(t *testing.T) {
	dir := t.TempDir()
	rowsA, rowsB, treeA, treeB := smallFixture(t, dir)
	for _, args := range [][]string{
		{"token", "user:1"},
		{"keys", rowsA, rowsB},
		{"keys", rowsA, rowsB, "--json"},
		{"diff", treeA, treeB},
		{"diff", treeA, treeA, "--json"},
		{"verify", treeA},
		{"inspect", treeA},
		{"inspect", treeA, "--json"},
		{"build", "--in", rowsA, "--out", filepath.Join(dir, "c.tree")},
		{"help"},
	} {
		t.Run(strings.Join(args[:min(2, len(args))], " "), func(t *testing.T) {
			var errOut bytes.Buffer
			code := run(args, failingWriter{}, &errOut)
			if code != exitError || !strings.Contains(errOut.String(), "writing to standard output") {
				t.Fatalf("exit %d, stderr %q; want 2 naming standard output", code, errOut.String())
			}
		})
	}
}

// TestStdoutFull runs the binary with stdout on /dev/full.
func TestStdoutFull(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full")
	}
	defer full.Close()
	bin := groveBinary(t)
	dir := t.TempDir()
	rowsA, rowsB, _, _ := smallFixture(t, dir)
	for _, args := range [][]string{{"token", "k"}, {"keys", rowsA, rowsB}} {
		cmd := exec.Command(bin, args...)
		cmd.Stdout = full
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(stderr.String(), "no space left") {
			t.Fatalf("%v > /dev/full: %v, stderr %q; want exit 2 naming the error", args, err, stderr.String())
		}
	}
}

// TestStaleTempsRemoved: a temporary file a killed run left beside an
// output is removed by the next run that writes there; a file that is not
// grove's is left alone.
func TestStaleTempsRemoved(t *testing.T) {
	dir := t.TempDir()
	rowsA, _, treeA, treeB := smallFixture(t, dir)
	plant := func(target string) string {
		p := filepath.Join(filepath.Dir(target), "."+filepath.Base(target)+".grove-tmp-00000000deadbeef")
		if err := os.WriteFile(p, make([]byte, 4096), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	foreign := filepath.Join(dir, ".a.tree.tmp-someone-elses")
	os.WriteFile(foreign, nil, 0o600)
	svg := filepath.Join(dir, "d.svg")
	out := filepath.Join(dir, "rows.out")
	ch := filepath.Join(dir, "changes.jsonl")
	os.WriteFile(ch, []byte(`{"op": "put", "key": "new", "value": "v", "ts": 1}`+"\n"), 0o644)
	for _, tc := range []struct {
		target string
		args   []string
	}{
		{treeA, []string{"build", "--in", rowsA, "--out", treeA, "--depth", "8"}},
		{treeA, []string{"apply", treeA, "--in", ch}},
		{svg, []string{"diff", treeA, treeB, "--svg", svg}},
		{out, []string{"sync", "--rows", rowsA, "--peer", "http://127.0.0.1:1", "--repair-out", out, "--timeout", "1s"}},
	} {
		p := plant(tc.target)
		grove(t, tc.args...) // sync fails (no peer), after its output check
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%v left the stale %s", tc.args, filepath.Base(p))
		}
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Fatalf("a file that is not grove's was removed: %v", err)
	}
}

// TestKilledApplyLeavesNothingForGood kills `grove apply` while it works
// on its copy of a tree (as soon as the copy exists, then a random moment
// later); the copy stays behind, the next apply removes it, and the tree is
// always whole.
func TestKilledApplyLeavesNothingForGood(t *testing.T) {
	bin := groveBinary(t)
	dir := t.TempDir()
	rowsA, _, _, _ := smallFixture(t, dir)
	tree := filepath.Join(dir, "big.tree")
	if code, _, errOut := grove(t, "build", "--in", rowsA, "--out", tree, "--depth", "16"); code != 0 {
		t.Fatal(errOut)
	}
	var ch bytes.Buffer
	for i := range 100_000 {
		fmt.Fprintf(&ch, `{"op": "put", "key": "k%d", "value": "v", "ts": 1}`+"\n", i)
	}
	chPath := filepath.Join(dir, "changes.jsonl")
	os.WriteFile(chPath, ch.Bytes(), 0o644)
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	killed := 0
	var left []string // copies killed runs left behind
	for kill := range 4 {
		cmd := exec.Command(bin, "apply", tree, "--in", chPath)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Its own copy, not one an earlier kill left: it is made after
		// the stale ones are cleaned.
		ownCopy := func() bool {
			return slices.ContainsFunc(tempsIn(t, dir), func(p string) bool { return !slices.Contains(left, p) })
		}
		for deadline := time.Now().Add(10 * time.Second); !ownCopy(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatal("apply made no copy within 10 s")
			}
		}
		time.Sleep(time.Duration(rnd.IntN(50)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		// The run before this one removed its predecessor's copy. A run
		// killed midway leaves its own; one that finished, or was killed
		// after renaming its copy over the tree, leaves none.
		ts := tempsIn(t, dir)
		if len(ts) > 1 || (len(ts) == 1 && cmd.ProcessState.Success()) {
			t.Fatalf("kill %d: temporary files %v (the run exited %v)", kill, ts, cmd.ProcessState)
		}
		for _, p := range ts {
			if slices.Contains(left, p) {
				t.Fatalf("kill %d: %s, left by an earlier run, is still there", kill, p)
			}
		}
		left = append(left, ts...)
		killed += len(ts)
		if code, _, errOut := grove(t, "verify", tree); code != 0 {
			t.Fatalf("after a kill the tree does not verify: %s", errOut)
		}
	}
	if killed == 0 {
		t.Fatal("no apply was killed while working on its copy: the test exercised nothing")
	}
	emptyCh := filepath.Join(dir, "none.jsonl")
	os.WriteFile(emptyCh, nil, 0o644)
	if code, _, errOut := grove(t, "apply", tree, "--in", emptyCh); code != 0 {
		t.Fatal(errOut)
	}
	if ts := tempsIn(t, dir); len(ts) != 0 {
		t.Fatalf("after the next apply: %v", ts)
	}
}

// TestBuildKeepsMode: a rebuilt tree keeps the mode of the file it
// replaces; a new one is 0644 less the umask.
func TestBuildKeepsMode(t *testing.T) {
	dir := t.TempDir()
	rowsA, _, _, _ := smallFixture(t, dir)
	umask := syscall.Umask(0o022)
	syscall.Umask(umask)
	fresh := filepath.Join(dir, "fresh.tree")
	if code, _, errOut := grove(t, "build", "--in", rowsA, "--out", fresh); code != 0 {
		t.Fatal(errOut)
	}
	if st, _ := os.Stat(fresh); st.Mode().Perm() != 0o644&^os.FileMode(umask) {
		t.Fatalf("new tree has mode %v, want %v", st.Mode().Perm(), 0o644&^os.FileMode(umask))
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o600} {
		os.Chmod(fresh, mode)
		if code, _, errOut := grove(t, "build", "--in", rowsA, "--out", fresh); code != 0 {
			t.Fatal(errOut)
		}
		if st, _ := os.Stat(fresh); st.Mode().Perm() != mode {
			t.Fatalf("rebuilt over a %v file: mode %v", mode, st.Mode().Perm())
		}
	}
}

// TestKeyOverLimitRefusedOnItsLine: every command that reads rows refuses a
// key over engine.MaxKeyBytes, naming the file and line.
func TestKeyOverLimitRefusedOnItsLine(t *testing.T) {
	dir := t.TempDir()
	rows := filepath.Join(dir, "big-key.jsonl")
	good := filepath.Join(dir, "good.jsonl")
	writeRows(t, good, []testRow{{Key: "a", Value: "1", TS: 1}})
	writeRows(t, rows, []testRow{
		{Key: "a", Value: "1", TS: 1},
		{Key: "b", Value: "2", TS: 1},
		{Key: strings.Repeat("k", engine.MaxKeyBytes+1), Value: "3", TS: 1},
	})
	for _, args := range [][]string{
		{"build", "--in", rows, "--out", filepath.Join(dir, "t.tree")},
		{"keys", good, rows},
		{"serve", "--rows", rows, "--listen", "127.0.0.1:0"},
		{"sync", "--rows", rows, "--peer", "http://127.0.0.1:1"},
	} {
		code, _, errOut := grove(t, args...)
		if code != exitError || !strings.Contains(errOut, rows+": ") || !strings.Contains(errOut, "line 3") || !strings.Contains(errOut, "over the limit") {
			t.Fatalf("%s: exit %d, %q; want 2 naming %s line 3", args[0], code, errOut, rows)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "t.tree")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("build left a tree")
	}
}

// TestDurationsRefused: a zero or negative --idle-timeout is refused, as
// --timeout is, instead of silently meaning the default.
func TestDurationsRefused(t *testing.T) {
	dir := t.TempDir()
	rowsA, _, _, _ := smallFixture(t, dir)
	for _, args := range [][]string{
		{"serve", "--rows", rowsA, "--idle-timeout", "0"},
		{"serve", "--rows", rowsA, "--idle-timeout", "-1s"},
		{"sync", "--rows", rowsA, "--peer", "http://127.0.0.1:1", "--timeout", "0"},
	} {
		code, _, errOut := grove(t, args...)
		if code != exitError || !strings.Contains(errOut, args[len(args)-2]) || !strings.Contains(errOut, "positive") {
			t.Fatalf("%v: exit %d %q", args, code, errOut)
		}
	}
}

// TestApplyBudgetNotBlamedOnALine: when the budget, not a change, fails,
// apply says so without pointing at a line of the changes.
func TestApplyBudgetNotBlamedOnALine(t *testing.T) {
	dir := t.TempDir()
	_, _, treeA, _ := smallFixture(t, dir)
	ch := filepath.Join(dir, "changes.jsonl")
	os.WriteFile(ch, []byte(`{"op": "put", "key": "new", "value": "v", "ts": 1}`+"\n"), 0o644)
	before, _ := os.ReadFile(treeA)
	// Room for the tree, not for its dirty-leaf bitmap.
	budget := fmt.Sprint(engine.TreeBytes(8))
	code, _, errOut := grove(t, "apply", treeA, "--in", ch, "--budget", budget)
	if code != exitError || strings.Contains(errOut, "line") || !strings.Contains(errOut, "budget") {
		t.Fatalf("exit %d %q: want 2, the budget named, no line", code, errOut)
	}
	if after, _ := os.ReadFile(treeA); !bytes.Equal(after, before) {
		t.Fatal("the tree changed")
	}
}

// TestRepairOutCheckedBeforeTheSession: sync with a --repair-out that cannot
// be written fails before it reaches the peer, which stays as it was.
func TestRepairOutCheckedBeforeTheSession(t *testing.T) {
	dir := t.TempDir()
	rowsA, rowsB, _, _ := smallFixture(t, dir)
	bOut := filepath.Join(dir, "b.out")
	url, _ := startServe(t, "--rows", rowsB, "--repair-out", bOut)
	code, _, errOut := grove(t, "sync", "--rows", rowsA, "--peer", url, "--repair-out", filepath.Join(dir, "no", "such", "dir", "a.out"))
	if code != exitError || !strings.Contains(errOut, "--repair-out") {
		t.Fatalf("exit %d %q", code, errOut)
	}
	if _, err := os.Stat(bOut); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the peer was repaired although this side could not record its own repair")
	}
	if code, _, _ := grove(t, "sync", "--rows", rowsA, "--peer", url); code != exitDifferent {
		t.Fatalf("the peer changed: a keys-only sync now exits %d", code)
	}
}

// TestServeRepairOutFailureFailsCommit: when serve cannot write its
// --repair-out after it started, it logs why, the session's commit fails,
// and nothing is applied: its rows are what they were.
func TestServeRepairOutFailureFailsCommit(t *testing.T) {
	dir := t.TempDir()
	rowsA, rowsB, _, _ := smallFixture(t, dir)
	outDir := filepath.Join(dir, "out")
	os.Mkdir(outDir, 0o755)
	bOut := filepath.Join(outDir, "b.out")
	cmd := exec.Command(groveBinary(t), "serve", "--listen", "127.0.0.1:0", "--rows", rowsB, "--repair-out", bOut)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		t.Fatal("serve printed nothing")
	}
	url := lines.Text()[strings.Index(lines.Text(), "http"):]
	_, keysBefore, _ := grove(t, "sync", "--rows", rowsA, "--peer", url, "--json")

	// The output's directory goes away after serve checked it.
	if err := os.RemoveAll(outDir); err != nil {
		t.Fatal(err)
	}
	aOut := filepath.Join(dir, "a.out")
	code, _, errOut := grove(t, "sync", "--rows", rowsA, "--peer", url, "--repair-out", aOut)
	if code != exitError {
		t.Fatalf("sync exit %d %q; want 2: the peer could not save its repair", code, errOut)
	}
	if !lines.Scan() || !strings.Contains(lines.Text(), "repair failed") || !strings.Contains(lines.Text(), bOut) {
		t.Fatalf("serve logged %q, want the failed repair naming %s", lines.Text(), bOut)
	}
	code, keysAfter, _ := grove(t, "sync", "--rows", rowsA, "--peer", url, "--json")
	if code != exitDifferent || stripCosts(t, keysAfter) != stripCosts(t, keysBefore) {
		t.Fatalf("the peer's rows changed although its repair could not be saved:\nbefore %s\nafter %s", keysBefore, keysAfter)
	}
}

// stripCosts keeps a sync report's keys only.
func stripCosts(t *testing.T, out string) string {
	s := syncJSONOf(t, out)
	return fmt.Sprint(keyNames(t, s.OnlyHere), keyNames(t, s.OnlyThere), keyNames(t, s.Different))
}

// TestUnderAddressLimit runs the cgo-free binary under ulimit -v 1 GiB, the
// limit the issue names: a default build succeeds (its budget shrinks to
// what the limit leaves), and a --budget that cannot fit is refused in one
// line, exit 2, before anything is read or written.
func TestUnderAddressLimit(t *testing.T) {
	bin := groveBinary(t)
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh for ulimit")
	}
	dir := t.TempDir()
	rowsA, _, _, _ := smallFixture(t, dir)
	under := func(args ...string) (int, string, string) {
		cmd := exec.Command("sh", append([]string{"-c", `ulimit -v 1048576 && exec "$@"`, "sh", bin}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), stdout.String(), stderr.String()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, stdout.String(), stderr.String()
	}
	for i := range 3 {
		out := filepath.Join(dir, fmt.Sprintf("t%d.tree", i))
		if code, _, errOut := under("build", "--in", rowsA, "--out", out, "--depth", "16"); code != 0 {
			t.Fatalf("build under ulimit -v 1GiB: exit %d %q", code, errOut)
		}
	}
	out := filepath.Join(dir, "big.tree")
	code, _, errOut := under("build", "--in", rowsA, "--out", out, "--budget", "2GiB")
	if code != exitError || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "address-space limit") {
		t.Fatalf("--budget 2GiB under ulimit -v 1GiB: exit %d %q; want 2 and one line", code, errOut)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused build wrote its output")
	}
}
