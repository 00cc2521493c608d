package memlimit

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRoom: without a limit there is none; under one (set in a child, so
// this process keeps its own) the room is the limit less what is mapped
// less Headroom, checked against the kernel's own figures.
func TestRoom(t *testing.T) {
	if os.Getenv("MEMLIMIT_CHILD") == "" {
		var lim unix.Rlimit
		unix.Getrlimit(unix.RLIMIT_AS, &lim)
		if lim.Cur == unix.RLIM_INFINITY {
			if _, limited := room(); limited {
				t.Fatal("Room reports a limit where there is none")
			}
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestRoom$", "-test.v")
		cmd.Env = append(os.Environ(), "MEMLIMIT_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "room ok") {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	limit := uint64(vmSize(t)) + 512<<20
	if err := unix.Setrlimit(unix.RLIMIT_AS, &unix.Rlimit{Cur: limit, Max: limit}); err != nil {
		t.Fatal(err)
	}
	room, limited := room()
	vm := vmSize(t)
	want := int64(limit) - vm - Headroom
	if !limited || room <= 0 || room > want+16<<20 || room < want-64<<20 {
		t.Fatalf("Room = %d, %v; want about %d (limit %d, VmSize %d)", room, limited, want, limit, vm)
	}
	fmt.Println("room ok")
}

func vmSize(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmSize:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmSize")
	return 0
}
