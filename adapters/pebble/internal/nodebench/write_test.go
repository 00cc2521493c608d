package nodebench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/antientropy/grove/engine"
)

// TestWriteFigures runs the write measurement on a small dataset: every
// batch size yields positive times and ratios, the sustained time is not
// below the foreground's, and the figures the issue names are there.
func TestWriteFigures(t *testing.T) {
	f, err := Write(context.Background(), Options{Rows: 3000, Reps: 1, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.ByBatch) != len(WriteBatches) {
		t.Fatalf("%d batch sizes measured, want %d", len(f.ByBatch), len(WriteBatches))
	}
	for _, w := range f.ByBatch {
		if w.Plain <= 0 || w.Foreground <= 0 || w.Sustained < w.Foreground {
			t.Errorf("batch %d: plain %v, foreground %v, sustained %v", w.Batch, w.Plain, w.Foreground, w.Sustained)
		}
	}
	got := map[string]float64{}
	for _, fig := range f.Figures() {
		got[fig.Name] = fig.Value
	}
	for _, name := range []string{"write_fg_ratio_256", "write_ratio_16", "write_ratio_256"} {
		if got[name] <= 0 {
			t.Errorf("%s = %v, want a positive ratio", name, got[name])
		}
	}
}

// TestNodeWritesChecksTheTrees: a pass whose node ends up with other rows
// than the dataset's fails, so a write path that skipped rows cannot time
// well.
func TestNodeWritesChecksTheTrees(t *testing.T) {
	d, err := makeDataset(500)
	if err != nil {
		t.Fatal(err)
	}
	// The node is given all but the last row; its trees must not match.
	_, _, err = nodeWrites(context.Background(), t.TempDir(), d, d.rows[:len(d.rows)-1], 16)
	if err == nil || !strings.Contains(err.Error(), "nodebench") {
		t.Fatalf("a node missing a row passed the check: %v", err)
	}
	// And with every row it passes.
	fg, sus, err := nodeWrites(context.Background(), t.TempDir(), d, append([]engine.Row(nil), d.rows...), 16)
	if err != nil || fg <= 0 || sus < fg || sus > time.Hour {
		t.Fatalf("nodeWrites = %v, %v, %v", fg, sus, err)
	}
}
