package arena

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const (
	rlimitChildEnv = "GROVE_ARENA_RLIMIT_CHILD"
	rlimitChildOK  = "arena-rlimit-child-ok"
)

// TestMapFailsUnderRlimit makes the kernel really refuse a mapping. The
// address-space limit is process-wide and cannot be lifted again once
// lowered, so it re-runs this test binary as a child that lowers it, and
// checks that the child reached the end.
func TestMapFailsUnderRlimit(t *testing.T) {
	if os.Getenv(rlimitChildEnv) == "1" {
		mapUnderRlimit(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMapFailsUnderRlimit$", "-test.count=1")
	cmd.Env = append(os.Environ(), rlimitChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if errors.Is(err, unix.ENOEXEC) {
		// A test binary run under an emulator (go test -exec qemu-aarch64)
		// cannot start itself directly.
		t.Skipf("cannot re-execute the test binary here: %v", err)
	}
	if err != nil || !strings.Contains(string(out), rlimitChildOK) {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func mapUnderRlimit(t *testing.T) {
	vm, err := vmSize()
	if err != nil {
		t.Fatal(err)
	}
	// Leave room for the runtime to keep working (the race detector's own
	// address space is already counted in vm), but not for 1 GiB more.
	const headroom = 256 << 20
	lim := &unix.Rlimit{Cur: uint64(vm) + headroom, Max: uint64(vm) + headroom}
	if err := unix.Setrlimit(unix.RLIMIT_AS, lim); err != nil {
		t.Fatalf("setrlimit: %v", err)
	}
	b := NewBudget(4 << 30)
	r, err := Map(b, 1<<30)
	if r != nil || !errors.Is(err, ErrMap) || !errors.Is(err, unix.ENOMEM) {
		t.Fatalf("Map(1 GiB) under RLIMIT_AS = %v, %v; want ErrMap wrapping ENOMEM", r, err)
	}
	if !strings.Contains(err.Error(), "1073741824 B") {
		t.Fatalf("error %q does not name the size", err)
	}
	if b.Used() != 0 {
		t.Fatalf("Used %d after failed mmap, want 0", b.Used())
	}
	// The limit refused the large mapping, not mapping as such.
	small, err := Map(b, 1<<20)
	if err != nil {
		t.Fatalf("Map(1 MiB) under the same limit: %v", err)
	}
	small.Bytes()[0] = 1
	if err := small.Close(); err != nil || b.Used() != 0 {
		t.Fatalf("Close = %v, Used %d", err, b.Used())
	}
	fmt.Println(rlimitChildOK)
}

// vmSize reads the process's current virtual memory size in bytes.
func vmSize() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		rest, ok := strings.CutPrefix(s.Text(), "VmSize:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		return kb << 10, err
	}
	return 0, errors.New("no VmSize in /proc/self/status")
}
