package atomicfile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func temps(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if IsTemp(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestWriteReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	for _, content := range []string{"one", "two"} {
		err := Write(path, 0o644, func(f *os.File) error {
			_, err := f.WriteString(content)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(path); string(got) != content {
			t.Fatalf("file holds %q, want %q", got, content)
		}
	}
	if ts := temps(t, dir); len(ts) != 0 {
		t.Fatalf("temporary files left: %v", ts)
	}
}

// TestFailedWriteLeavesTarget: an error from the writer, or an Abort, leaves
// the target byte-identical and no temporary file.
func TestFailedWriteLeavesTarget(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	os.WriteFile(path, []byte("original"), 0o644)
	boom := errors.New("boom")
	err := Write(path, 0o644, func(f *os.File) error {
		f.WriteString("half")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want the writer's error", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "original" {
		t.Fatalf("target now holds %q", got)
	}
	if ts := temps(t, dir); len(ts) != 0 {
		t.Fatalf("temporary files left: %v", ts)
	}
}

// TestMode: a replaced file keeps its permission bits; a new one gets perm
// less the umask.
func TestMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits")
	}
	old := syscall.Umask(0o027)
	defer syscall.Umask(old)
	dir := t.TempDir()
	tests := []struct {
		name     string
		existing fs.FileMode // 0: no file yet
		perm     fs.FileMode
		want     fs.FileMode
	}{
		{"new file, umask 027", 0, 0o644, 0o640},
		{"new key file", 0, 0o600, 0o600},
		{"replaced 0644 file", 0o644, 0o600, 0o644},
		{"replaced 0600 file", 0o600, 0o644, 0o600},
		{"replaced 0755 file", 0o755, 0o644, 0o755},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if tc.existing != 0 {
				if err := os.WriteFile(path, []byte("x"), 0); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tc.existing); err != nil {
					t.Fatal(err)
				}
			}
			if err := Write(path, tc.perm, func(f *os.File) error { return nil }); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != tc.want {
				t.Fatalf("mode %v, want %v", st.Mode().Perm(), tc.want)
			}
		})
	}
}

// TestCleanStaleSparesLiveWriters: a temporary file whose writer is alive
// (this process holds it) is left alone; one nobody holds is removed, as is
// the file a killed writer left (TestKilledWriter).
func TestCleanStaleSparesLiveWriters(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no file locks: only day-old files are removed")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "tree")
	live, err := Create(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Abort()
	stale := filepath.Join(dir, ".tree"+tempInfix+"0123456789abcdef")
	os.WriteFile(stale, []byte("left by a crash"), 0o600)
	other := filepath.Join(dir, ".other"+tempInfix+"0123456789abcdef")
	os.WriteFile(other, []byte("another target's"), 0o600)

	removed, err := CleanStale(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != stale {
		t.Fatalf("removed %v, want only %s", removed, stale)
	}
	for _, keep := range []string{live.Name(), other} {
		if _, err := os.Stat(keep); err != nil {
			t.Fatalf("%s was removed: %v", keep, err)
		}
	}
	live.WriteString("still writing")
	if err := live.Commit(); err != nil {
		t.Fatalf("the live writer's commit: %v", err)
	}
}

// TestKilledWriter: a process SIGKILLed while it holds a temporary file
// leaves it behind; the next Create for the same target removes it.
func TestKilledWriter(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGKILL")
	}
	if os.Getenv("ATOMICFILE_CHILD") != "" {
		f, err := Create(os.Getenv("ATOMICFILE_CHILD"), 0o644)
		if err != nil {
			os.Exit(3)
		}
		f.Write(bytes.Repeat([]byte("x"), 1<<20))
		os.Stdout.WriteString("ready\n")
		time.Sleep(time.Minute)
		os.Exit(4)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "tree")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledWriter$")
	cmd.Env = append(os.Environ(), "ATOMICFILE_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil || string(buf) != "ready\n" {
		cmd.Process.Kill()
		t.Fatalf("child: %q, %v", buf, err)
	}
	// While the child lives, its file is not stale.
	if removed, err := CleanStale(path); err != nil || len(removed) != 0 {
		t.Fatalf("removed %v (%v) from a live writer", removed, err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if ts := temps(t, dir); len(ts) != 1 {
		t.Fatalf("after the kill: temporary files %v, want the child's one", ts)
	}
	if err := Write(path, 0o644, func(f *os.File) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if ts := temps(t, dir); len(ts) != 0 {
		t.Fatalf("the next write left %v", ts)
	}
}

func TestCreateRefusesNonFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := Create(dir, 0o644); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("Create over a directory: %v", err)
	}
	if _, err := Create(filepath.Join(dir, "missing", "f"), 0o644); err == nil {
		t.Fatal("Create in a missing directory succeeded")
	}
}

// TestCommitNew: a new target is written; an existing one is refused,
// byte-identical, with fs.ErrExist, and no temporary file stays.
func TestCommitNew(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	for i, want := range []error{nil, fs.ErrExist} {
		f, err := Create(path, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("attempt " + string(rune('0'+i)))
		err = f.CommitNew()
		if !errors.Is(err, want) || (want == nil && err != nil) {
			t.Fatalf("attempt %d: %v, want %v", i, err, want)
		}
		if got, _ := os.ReadFile(path); string(got) != "attempt 0" {
			t.Fatalf("attempt %d: target holds %q", i, got)
		}
		if ts := temps(t, dir); len(ts) != 0 {
			t.Fatalf("left %v", ts)
		}
	}
}
