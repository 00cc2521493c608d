package engine

import (
	"context"
	"errors"
	"testing"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine/token"
)

// TestDiffIncompatibleBeforeFolding: trees of different depths over
// different ranges are ErrIncompatible, and nothing is folded first: with
// room in the budget for the two trees only, a fold would have failed with
// ErrBudgetExceeded instead.
func TestDiffIncompatibleBeforeFolding(t *testing.T) {
	ctx := context.Background()
	b := arena.NewBudget(pageRound(TreeBytes(12), int64(b0page())) + pageRound(TreeBytes(4), int64(b0page())))
	deep, err := New(Options{Depth: 12, Budget: b})
	if err != nil {
		t.Fatal(err)
	}
	defer deep.Close()
	shallow, err := New(Options{Depth: 4, Range: token.Range{Lo: 0, Hi: 1 << 40}, Budget: b})
	if err != nil {
		t.Fatal(err)
	}
	defer shallow.Close()
	deep.Hash(ctx)
	shallow.Hash(ctx)
	peak := b.Peak()
	for _, pair := range [][2]*Tree{{deep, shallow}, {shallow, deep}} {
		_, err := Diff(ctx, pair[0], pair[1])
		if !errors.Is(err, ErrIncompatible) {
			t.Fatalf("got %v, want ErrIncompatible", err)
		}
	}
	if b.Peak() != peak {
		t.Fatalf("the budget peaked at %d during the refused diffs, above the trees' %d: something was folded", b.Peak(), peak)
	}
}

func b0page() int { return arena.NewBudget(0).PageSize() }
