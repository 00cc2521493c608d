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

// Headroom is the address space Room keeps back for what a command maps
// besides its trees: heap growth, goroutine and thread stacks.
const Headroom = 192 << 20

// Room returns the address space left for trees under RLIMIT_AS — the limit
// less what the process maps now, less Headroom — and whether there is a
// limit at all. Without one (or where it cannot be read), limited is false.
func Room() (room int64, limited bool) {
	limit, mapped, ok := usage()
	if !ok {
		return 0, false
	}
	return max(0, limit-mapped-Headroom), true
}

// Usage returns RLIMIT_AS and the address space the process maps now, and
// whether there is a limit, for messages that explain a Room of zero.
func Usage() (limit, mapped int64, limited bool) { return usage() }
