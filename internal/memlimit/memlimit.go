// Package memlimit fits the commands under an address-space limit
// (ulimit -v, RLIMIT_AS): it says how much address space is left for trees,
// so that a budget that cannot fit is refused with a clear error instead of
// a mapping, or the runtime, failing later.
//
// Trees are mapped outside the Go heap, but every mapping — the Go
// runtime's own reservations, thread stacks, glibc's arenas — counts toward
// RLIMIT_AS, so the room for trees is what is left of the limit after what
// the process already maps, less a headroom for the heap and threads still
// to come.
package memlimit

import "fmt"

// Headroom is the address space Fit keeps back for what a command maps
// besides its trees: heap growth, goroutine and thread stacks.
const Headroom = 192 << 20

// room returns the address space left for trees under RLIMIT_AS — the limit
// less what the process maps now, less Headroom — and whether there is a
// limit at all. Without one (or where it cannot be read), limited is false.
func room() (left int64, limited bool) {
	limit, mapped, ok := usage()
	if !ok {
		return 0, false
	}
	return max(0, limit-mapped-Headroom), true
}

// MinBudget is the least room under an address-space limit that Fit shrinks
// a default budget to; below it Fit says why instead.
const MinBudget = 1 << 20

// Fit returns the budget to use for a requested one under an address-space
// limit: unchanged without a limit or when it fits; shrunk to the room left
// when it is a default; an error giving both figures when the caller asked
// for it explicitly (flag names the flag, such as "--budget 2GiB"), or when
// the room is under MinBudget.
func Fit(n int64, explicit bool, flag string) (int64, error) {
	room, limited := room()
	if !limited || n <= room {
		return n, nil
	}
	limit, mapped, _ := usage()
	if explicit {
		return 0, fmt.Errorf("%s does not fit under the address-space limit (ulimit -v) of %s: this process maps %s already, about %s is left for trees; lower it or raise the limit", flag, mib(limit), mib(mapped), mib(room))
	}
	if room < MinBudget {
		return 0, fmt.Errorf("the address-space limit (ulimit -v) of %s leaves no room for trees: this process maps %s already (a build with cgo maps hundreds of MiB more than one without: docs/DEPLOY.md); raise the limit", mib(limit), mib(mapped))
	}
	return room, nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
