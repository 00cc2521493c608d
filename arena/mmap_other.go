//go:build !unix && !windows

package arena

import (
	"errors"
	"io"
	"os"
)

// osMap falls back to the Go heap where there is no mapping at all (Plan 9,
// wasm). The API and the budget accounting are unchanged; only the
// point of the package, keeping memory away from the garbage collector, is
// lost there, and a heap allocation the machine cannot back is a fatal
// runtime error rather than ErrMap, so the Budget must be sized to fit.
// make returns zeroed memory, as an anonymous mapping would.
func osMap(n int) ([]byte, error) { return make([]byte, n), nil }

// osUnmap has nothing to do: the slice becomes garbage once Region drops it.
func osUnmap([]byte) error { return nil }

// osAdviseHuge does nothing here: transparent huge pages are a Linux notion.
func osAdviseHuge([]byte) error { return nil }

// osMapFile has no shared mapping to offer here: a read-only "mapping" is a
// copy read from the file, and a writable one is refused rather than
// silently not reaching the file.
func osMapFile(f *os.File, off int64, n int, writable bool) ([]byte, error) {
	if writable {
		return nil, errors.New("writable file mappings need a unix system")
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}

func osSync([]byte) error { return nil }
