package engine

import (
	"context"
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/antientropy/grove/metrics"
)

// TestMetrics checks the engine's counts against what a test did: trees
// open through build, snapshot, fold, open and close, one build and one
// rehash per kind of Hash, one diff per Diff however many folds it takes.
func TestMetrics(t *testing.T) {
	ctx := context.Background()
	m := metrics.New()
	b := newBudget()
	m.AddBudget("test", b)
	rows := randomRows(rand.New(rand.NewPCG(9, 9)), 500)
	a, err := New(Options{Depth: 8, Budget: b, Observer: m})
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		a.Add(&rows[i])
	}
	if err := a.Hash(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Update(&rows[0], nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Hash(ctx); err != nil {
		t.Fatal(err)
	}
	snap, err := a.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	shallow, err := a.Fold(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "a.tree")
	if err := a.Save(path); err != nil {
		t.Fatal(err)
	}
	opened, err := Open(path, b, WithObserver(m))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Diff(ctx, opened, shallow); err != nil { // folds opened: one diff
		t.Fatal(err)
	}
	v := m.Values()
	// Trees: a, snap, shallow, opened (the fold inside Diff is closed).
	if v.TreesOpen != 4 || v.Diffs != 1 || v.Rehashes != 1 {
		t.Fatalf("open %d, diffs %d, rehashes %d: want 4, 1, 1", v.TreesOpen, v.Diffs, v.Rehashes)
	}
	// Builds: a's first Hash, the fold's, and the fold inside Diff; the
	// snapshot copies a hashed tree and hashes nothing.
	if v.Builds != 3 {
		t.Fatalf("builds %d, want 3", v.Builds)
	}
	if v.Budgets[0].Used != b.Used() || v.Budgets[0].Used == 0 {
		t.Fatalf("budget %+v, budget used %d", v.Budgets[0], b.Used())
	}
	for _, tr := range []io.Closer{a, snap, shallow, opened} {
		tr.Close()
		tr.Close() // idempotent: counted once
	}
	if v := m.Values(); v.TreesOpen != 0 || v.Budgets[0].Used != 0 {
		t.Fatalf("after closing: %d trees open, %d bytes used", v.TreesOpen, v.Budgets[0].Used)
	}
	if _, err := Diff(ctx, a, opened); err == nil || m.Values().Errors["diff"] != 1 {
		t.Fatalf("diff of closed trees: %v, errors %v", err, m.Values().Errors)
	}
}
