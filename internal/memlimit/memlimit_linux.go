//go:build linux

package memlimit

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// usage returns RLIMIT_AS and the process's current virtual size.
func usage() (limit, mapped int64, ok bool) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_AS, &lim); err != nil || lim.Cur == unix.RLIM_INFINITY || lim.Cur > 1<<62 {
		return 0, 0, false
	}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return int64(lim.Cur), 0, true
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, found := strings.CutPrefix(sc.Text(), "VmSize:"); found {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				mapped = kb << 10
			}
			break
		}
	}
	return int64(lim.Cur), mapped, true
}
