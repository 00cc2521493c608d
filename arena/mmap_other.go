//go:build !unix

package arena

// osMap falls back to the Go heap where there is no unix.Mmap (Windows,
// Plan 9, wasm). The API and the budget accounting are unchanged; only the
// point of the package, keeping memory away from the garbage collector, is
// lost there, and a heap allocation the machine cannot back is a fatal
// runtime error rather than ErrMap, so the Budget must be sized to fit.
// make returns zeroed memory, as an anonymous mapping would.
func osMap(n int) ([]byte, error) { return make([]byte, n), nil }

// osUnmap has nothing to do: the slice becomes garbage once Region drops it.
func osUnmap([]byte) error { return nil }

// osAdviseHuge does nothing here: transparent huge pages are a Linux notion.
func osAdviseHuge([]byte) error { return nil }
