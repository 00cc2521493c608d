package arena

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// TestAdviseHugePagesTakesEffect checks, where the kernel offers
// transparent huge pages, that an advised region really gets them.
func TestAdviseHugePagesTakesEffect(t *testing.T) {
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil || strings.Contains(string(mode), "[never]") {
		t.Skipf("transparent huge pages unavailable here (%q)", mode)
	}
	if runtime.GOARCH != "amd64" {
		// Checked natively on the amd64 CI machine; under an emulator
		// (go test -exec qemu-aarch64) madvise does not reach the kernel.
		t.Skip("huge pages are verified on amd64 only")
	}
	r, err := Map(NewBudget(64<<20), 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.AdviseHugePages(); err != nil {
		t.Fatal(err)
	}
	mem := r.Bytes()
	for i := 0; i < len(mem); i += 4096 {
		mem[i] = 1
	}
	kb, err := anonHugeKB(uintptr(unsafe.Pointer(&mem[0])))
	if err != nil {
		t.Fatal(err)
	}
	if kb == 0 {
		t.Fatalf("advised 16 MiB region has no huge pages (THP mode %q)", strings.TrimSpace(string(mode)))
	}
	t.Logf("%d kB of the region on huge pages", kb)
}

// anonHugeKB reads AnonHugePages of the mapping containing addr from
// /proc/self/smaps.
func anonHugeKB(addr uintptr) (int, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x", &lo, &hi); n == 2 && strings.Contains(line, " ") {
			in = addr >= lo && addr < hi
			continue
		}
		if in && strings.HasPrefix(line, "AnonHugePages:") {
			return strconv.Atoi(strings.Fields(line)[1])
		}
	}
	return 0, fmt.Errorf("no mapping for %#x in /proc/self/smaps", addr)
}
