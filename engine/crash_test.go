package engine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/antientropy/grove/engine/token"
)

// The crash tests re-run this test binary as a child that writes a tree file
// over and over, kill it with SIGKILL at a random moment, and check what the
// child left on disk. A SIGKILL loses nothing the child had handed to the
// kernel, so these tests check the order of the writes (temporary file and
// rename; dirty flag before nodes, clean header last), not that the fsyncs
// reach the disk: only a power cut tests those.
const (
	crashChildEnv = "GROVE_CRASH_CHILD" // "save" or "writable" in a child
	crashPathEnv  = "GROVE_CRASH_PATH"  // the file a child writes
	crashSeedEnv  = "GROVE_CRASH_SEED"  // set to replay a run's kill times
	crashBatch    = 300                 // rows a writable child adds per Sync
)

// crashTrees builds the two trees the save child alternates between: A of
// depth 14 (1 MiB of nodes) and B of depth 16 (4 MiB), so a save takes long
// enough to be killed in the middle. Parent and child build them from the
// same seeds, so the parent knows both roots.
func crashTrees(t testing.TB) (a, b *Tree) {
	budget := newBudget()
	full := token.Murmur3{}.Range()
	a = build(t, budget, randomRows(rand.New(rand.NewPCG(71, 72)), 4000), full, 14, 2)
	b = build(t, budget, randomRows(rand.New(rand.NewPCG(73, 74)), 4000), full, 16, 2)
	return a, b
}

// crashIterations is how many children a crash test kills, and the seed of
// the random kill times.
func crashIterations(t *testing.T) (n int, rnd *rand.Rand) {
	switch runtime.GOOS {
	case "windows", "plan9", "js", "wasip1":
		t.Skipf("no SIGKILL on %s", runtime.GOOS)
	}
	n = 100
	if testing.Short() {
		n = 10
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(crashSeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", crashSeedEnv, s, err)
		}
	}
	t.Logf("%d kills, kill times from seed %d (%s=%d to replay)", n, seed, crashSeedEnv, seed)
	return n, rand.New(rand.NewPCG(seed, seed))
}

// crashChild is a running child. Its stdout is read as it comes; the
// parent needs only its first and its last line, and all of it for failure
// messages.
type crashChild struct {
	cmd     *exec.Cmd
	started chan struct{} // closed at the first line
	done    chan struct{} // closed when stdout reaches EOF

	mu           sync.Mutex
	first, last  string
	out, errText bytes.Buffer
}

// startCrashChild re-executes the test binary running only test, with the
// child's role and path in its environment. It skips the test where the
// binary cannot start itself (under an emulator: go test -exec qemu-aarch64).
func startCrashChild(t *testing.T, test, role, path string) *crashChild {
	t.Helper()
	c := &crashChild{started: make(chan struct{}), done: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	c.cmd.Env = append(os.Environ(), crashChildEnv+"="+role, crashPathEnv+"="+path)
	c.cmd.Stderr = &lockedWriter{&c.mu, &c.errText}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		if errors.Is(err, syscall.ENOEXEC) {
			t.Skipf("cannot re-execute the test binary here: %v", err)
		}
		t.Fatalf("starting the child: %v", err)
	}
	go func() {
		defer close(c.done)
		s := bufio.NewScanner(stdout)
		for n := 0; s.Scan(); n++ {
			c.mu.Lock()
			fmt.Fprintln(&c.out, s.Text())
			c.last = s.Text()
			if n == 0 {
				c.first = s.Text()
				close(c.started)
			}
			c.mu.Unlock()
		}
		io.Copy(io.Discard, stdout)
	}()
	return c
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// output is what the child printed, for failure messages.
func (c *crashChild) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("child's stdout (end):\n%s\nchild's stderr (end):\n%s", lastLines(c.out.String(), 20), lastLines(c.errText.String(), 40))
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// waitStarted waits for the child's first line and returns it.
func (c *crashChild) waitStarted(t *testing.T) string {
	t.Helper()
	select {
	case <-c.started:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.first
	case <-c.done:
		c.cmd.Wait()
		t.Fatalf("child ended before printing anything: %v\n%s", c.cmd.ProcessState, c.output())
	case <-time.After(2 * time.Minute):
		c.cmd.Process.Kill()
		<-c.done
		c.cmd.Wait()
		t.Fatalf("child printed nothing in 2 minutes\n%s", c.output())
	}
	return ""
}

// kill sends SIGKILL, waits for the child to die, and returns the last line
// it printed: all its output has been read by then.
func (c *crashChild) kill(t *testing.T) (last string) {
	t.Helper()
	err := c.cmd.Process.Kill()
	<-c.done
	c.cmd.Wait()
	if c.cmd.ProcessState.Exited() {
		t.Fatalf("child ended by itself (%v) before the kill\n%s", c.cmd.ProcessState, c.output())
	}
	if err != nil {
		t.Fatalf("kill: %v\n%s", err, c.output())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// crashChildAlive reports whether a child should go on: its parent is still
// the test that started it, and it has not run for implausibly long. A child
// whose parent died stops by itself rather than writing forever.
func crashChildAlive(ppid int, start time.Time) bool {
	return os.Getppid() == ppid && time.Since(start) < 3*time.Minute
}

// sweepTemps removes the temporary files a killed save left beside path and
// returns how many; any other file there fails the test.
func sweepTemps(t *testing.T, path string) int {
	t.Helper()
	dir, base := filepath.Split(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		switch name := e.Name(); {
		case name == base:
		case strings.HasPrefix(name, "."+base+".grove-tmp-"):
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
			n++
		default:
			t.Errorf("unexpected file %q beside %s", name, base)
		}
	}
	return n
}

// TestSaveSurvivesSIGKILL kills a child that saves two different trees
// alternately to one path, at random moments, many times, and checks that
// the path always holds one of the two complete trees — the last one the
// child finished saving or the one it was saving — and that it verifies.
func TestSaveSurvivesSIGKILL(t *testing.T) {
	if os.Getenv(crashChildEnv) == "save" {
		saveChild(t)
		return
	}
	n, rnd := crashIterations(t)
	ctx := context.Background()
	a, b := crashTrees(t)
	rootA, _ := a.Root()
	rootB, _ := b.Root()
	trees := [2]struct {
		name  string
		root  Digest
		depth int
	}{{"A", rootA, a.Depth()}, {"B", rootB, b.Depth()}}
	budget := newBudget()
	path := filepath.Join(t.TempDir(), "crash.tree")
	start := time.Now()
	var found [2]int
	temps, saves := 0, 0
	for i := range n {
		c := startCrashChild(t, "TestSaveSurvivesSIGKILL", "save", path)
		c.waitStarted(t)
		time.Sleep(time.Duration(rnd.Int64N(int64(30 * time.Millisecond))))
		last := c.kill(t)
		// Save k (counting from 1) writes A when k is odd. The path holds
		// save k, the last one finished, or save k+1 if the child was
		// killed after its rename but before it could say so; if that
		// save left its temporary file, it had not renamed it yet.
		k, err := strconv.Atoi(strings.TrimPrefix(last, "saved "))
		if err != nil {
			t.Fatalf("kill %d: child's last line %q", i, last)
		}
		saves += k

		tr, err := Open(path, budget)
		if err != nil {
			t.Fatalf("kill %d after %d saves: the target does not open (a partial file?): %v", i, k, err)
		}
		if tr.Dirty() {
			t.Errorf("kill %d: a saved file opens dirty", i)
		}
		if err := tr.Verify(ctx); err != nil {
			t.Errorf("kill %d after %d saves: Verify: %v", i, k, err)
		}
		root, err := tr.Root()
		if err != nil {
			t.Errorf("kill %d: Root: %v", i, err)
		}
		depth := tr.Depth()
		tr.Close()
		left := sweepTemps(t, path)
		temps += left
		got := -1
		for j, w := range trees {
			if root == w.root && depth == w.depth {
				got = j
			}
		}
		if got < 0 {
			t.Errorf("kill %d after %d saves: the target is depth %d with root %x, neither A nor B", i, k, depth, root[:8])
		} else {
			found[got]++
			if finished := (k - 1) % 2; left > 0 && got != finished {
				t.Errorf("kill %d: save %d left its temporary file, yet the target holds %s, not %s from save %d", i, k+1, trees[got].name, trees[finished].name, k)
			}
		}
		if t.Failed() {
			t.Fatalf("child's output:\n%s", c.output())
		}
	}
	t.Logf("%d kills in %v: the target held A %d times, B %d times; %d saves completed, %d temporary files left behind",
		n, time.Since(start).Round(time.Millisecond), found[0], found[1], saves, temps)
	if n >= 50 && (found[0] == 0 || found[1] == 0) {
		t.Errorf("over %d kills the target was always the same tree: kills never landed between saves", n)
	}
	if budget.Used() != 0 {
		t.Errorf("budget holds %d after closing every opened tree", budget.Used())
	}
}

// saveChild saves A, B, A, B… to the parent's path until it is killed,
// printing "saved K" after the K-th save.
func saveChild(t *testing.T) {
	path := os.Getenv(crashPathEnv)
	ppid, start := os.Getppid(), time.Now()
	a, b := crashTrees(t)
	for k := 1; crashChildAlive(ppid, start); k++ {
		tr := a
		if k%2 == 0 {
			tr = b
		}
		if err := tr.Save(path); err != nil {
			t.Fatalf("save %d: %v", k, err)
		}
		fmt.Printf("saved %d\n", k)
	}
	t.Fatal("child was not killed")
}

// TestWritableSurvivesSIGKILL kills a child that keeps a file open with
// OpenWritable and adds rows, hashes and syncs in a loop, at random moments,
// many times. The file always opens; if it is clean it verifies and holds the
// rows of a completed Sync; if it is dirty, Verify says so (ErrNotHashed)
// and OpenWritable, Hash and Sync repair it.
func TestWritableSurvivesSIGKILL(t *testing.T) {
	if os.Getenv(crashChildEnv) == "writable" {
		writableChild(t)
		return
	}
	n, rnd := crashIterations(t)
	ctx := context.Background()
	budget := newBudget()
	path := filepath.Join(t.TempDir(), "live.tree")
	rows := randomRows(rand.New(rand.NewPCG(75, 76)), 1000)
	if err := build(t, budget, rows, token.Murmur3{}.Range(), 14, 2).Save(path); err != nil {
		t.Fatal(err)
	}
	base := budget.Used() // the tree that made the file
	start := time.Now()
	clean, dirty, syncs := 0, 0, 0
	for i := range n {
		c := startCrashChild(t, "TestWritableSurvivesSIGKILL", "writable", path)
		ready := c.waitStarted(t)
		time.Sleep(time.Duration(rnd.Int64N(int64(30 * time.Millisecond))))
		last := c.kill(t)
		// The child prints "ready ROWS" after opening and "synced ROWS"
		// after each Sync; it adds crashBatch rows between syncs.
		_, s, _ := strings.Cut(last, " ")
		lastRows, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("kill %d: child's last line %q", i, last)
		}
		if strings.HasPrefix(last, "synced ") {
			_, s, _ := strings.Cut(ready, " ")
			r0, _ := strconv.ParseInt(s, 10, 64)
			syncs += int((lastRows - r0) / crashBatch)
		}

		tr, err := Open(path, budget)
		if err != nil {
			t.Fatalf("kill %d: the file does not open: %v\n%s", i, err, c.output())
		}
		if !tr.Dirty() {
			clean++
			if err := tr.Verify(ctx); err != nil {
				t.Errorf("kill %d: a clean file does not verify: %v", i, err)
			}
			if r := tr.Rows(); r != lastRows && r != lastRows+crashBatch {
				t.Errorf("kill %d: a clean file holds %d rows, the child last synced %d", i, r, lastRows)
			}
			tr.Close()
		} else {
			dirty++
			if err := tr.Verify(ctx); !errors.Is(err, ErrNotHashed) {
				t.Errorf("kill %d: Verify of a dirty file: %v, want ErrNotHashed", i, err)
			}
			if _, err := tr.Root(); !errors.Is(err, ErrNotHashed) {
				t.Errorf("kill %d: Root of a dirty file: %v, want ErrNotHashed", i, err)
			}
			tr.Close()
			// The recovery path: open writable, hash, sync.
			w, err := OpenWritable(path, budget)
			if err != nil {
				t.Fatalf("kill %d: OpenWritable of a dirty file: %v", i, err)
			}
			if !w.FileDirty() {
				t.Errorf("kill %d: a dirty file opens writable as clean", i)
			}
			if err := w.Hash(ctx); err != nil {
				t.Fatalf("kill %d: Hash: %v", i, err)
			}
			if err := w.Checkpoint(); err != nil {
				t.Fatalf("kill %d: Sync: %v", i, err)
			}
			if err := w.Verify(ctx); err != nil {
				t.Errorf("kill %d: Verify after Hash and Sync: %v", i, err)
			}
			w.Close()
			r, err := Open(path, budget)
			if err != nil {
				t.Fatalf("kill %d: reopening the repaired file: %v", i, err)
			}
			if r.Dirty() {
				t.Errorf("kill %d: the repaired file reopens dirty", i)
			}
			if err := r.Verify(ctx); err != nil {
				t.Errorf("kill %d: Verify of the repaired file after reopening: %v", i, err)
			}
			r.Close()
		}
		if t.Failed() {
			t.Fatalf("child's output:\n%s", c.output())
		}
	}
	t.Logf("%d kills in %v: the file was clean %d times, dirty (and repaired) %d times; %d syncs completed",
		n, time.Since(start).Round(time.Millisecond), clean, dirty, syncs)
	if n >= 50 && (clean == 0 || dirty == 0) {
		t.Errorf("over %d kills the file was always %s", n, map[bool]string{true: "clean", false: "dirty"}[dirty == 0])
	}
	if b := budget.Used(); b != base {
		t.Errorf("budget holds %d, want %d: only the tree that made the file", b, base)
	}
}

// writableChild opens the parent's file writable and adds crashBatch rows,
// hashes and syncs, over and over, until it is killed. It prints
// "ready ROWS" once open and "synced ROWS" after each Sync.
func writableChild(t *testing.T) {
	ctx := context.Background()
	ppid, start := os.Getppid(), time.Now()
	w, err := OpenWritable(os.Getenv(crashPathEnv), newBudget())
	if err != nil {
		t.Fatal(err)
	}
	if w.FileDirty() {
		t.Fatal("the parent left the file dirty")
	}
	fmt.Printf("ready %d\n", w.Rows())
	seed := uint64(time.Now().UnixNano())
	rnd := rand.New(rand.NewPCG(seed, uint64(os.Getpid())))
	for crashChildAlive(ppid, start) {
		if _, err := w.AddFrom(ctx, &sliceSource{rows: randomRows(rnd, crashBatch)}); err != nil {
			t.Fatal(err)
		}
		if err := w.Hash(ctx); err != nil {
			t.Fatal(err)
		}
		if err := w.Checkpoint(); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("synced %d\n", w.Rows())
	}
	t.Fatal("child was not killed")
}
