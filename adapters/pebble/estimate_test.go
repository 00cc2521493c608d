package grovepebble

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/antientropy/grove/engine/token"
)

// TestRebuildPlansFromRecordedCount: a node of many ranges that lost its
// trees rebuilds them reading every row once — depths planned from the
// recorded row count split by Pebble's disk-usage estimate, not from a
// counting pass — at the depths a plan from the exact counts gives, give
// or take a level; and its trees equal those before.
func TestRebuildPlansFromRecordedCount(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rs := testRanges()
	n := openNode(t, dir, created(Options{Ranges: rs}))
	keys := rangeKeys(rs, "est", 20_000, true)
	loadRows(t, n, keys, 1)
	// Planned from the exact row counts.
	if _, err := n.Rebalance(ctx); err != nil {
		t.Fatal(err)
	}
	type tree struct {
		depth int
		rows  int64
	}
	before := map[token.Range]tree{}
	for _, r := range n.Replicas() {
		before[r.Range()] = tree{r.Depth(), r.Rows()}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, DefaultTreesDir)); err != nil {
		t.Fatal(err)
	}
	n = openNode(t, dir, Options{Ranges: rs})
	if s := n.OpenStats(); s.Built != len(rs) || s.RowsScanned != int64(len(keys)) {
		t.Fatalf("rebuild: %+v; want %d trees built reading each of %d rows once", s, len(rs), len(keys))
	}
	for _, r := range n.Replicas() {
		b := before[r.Range()]
		if d := r.Depth() - b.depth; d < -1 || d > 1 || r.Rows() != b.rows {
			t.Errorf("range %v: depth %d holding %d rows; a plan from the exact counts gave depth %d holding %d", r.Range(), r.Depth(), r.Rows(), b.depth, b.rows)
		}
	}
	checkTrees(t, n, rs)
}
