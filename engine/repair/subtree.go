package repair

import (
	"context"
	"fmt"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"
)

// Subtree names one node of a range's tree: node Index (0 … 2^Level − 1) at
// Level, covering the tokens of the range's leaf Index at depth Level. A
// session confined to it (Options.Subtree) compares, descends, reconciles
// and repairs only the rows under that node, so that a range too large or
// too divergent to repair in one session within its deadline can be
// repaired in parts that each fit one. The zero value is the whole range.
type Subtree struct {
	Level int
	Index uint64
}

// Whole reports whether s is the whole range, the root.
func (s Subtree) Whole() bool { return s.Level == 0 }

// Tokens returns the tokens of range r that s covers.
func (s Subtree) Tokens(r token.Range) token.Range { return r.Leaf(int(s.Index), s.Level) }

// Halves returns s's two children, a level deeper.
func (s Subtree) Halves() [2]Subtree {
	return [2]Subtree{{s.Level + 1, s.Index << 1}, {s.Level + 1, s.Index<<1 | 1}}
}

// String names s as level/index.
func (s Subtree) String() string { return fmt.Sprintf("%d/%d", s.Level, s.Index) }

// check checks that s is a node of a tree of meeting depth depth: one that
// is no node at all wraps bad, one below the meeting depth ErrIncompatible
// (the trees exist, only not that deep). what names the field or option it
// came from. Subtrees
// stop at tree levels, whose sums both sides' views hold, so that agreeing
// on one costs no scan of its rows.
func (s Subtree) check(depth int, bad error, what string) error {
	switch {
	case s.Level < 0 || s.Level > MaxSessionDepth:
		return fmt.Errorf("%w: %s level %d, want 0..%d", bad, what, s.Level, MaxSessionDepth)
	case s.Index >= 1<<s.Level:
		return fmt.Errorf("%w: %s index %d at level %d, want below %d", bad, what, s.Index, s.Level, uint64(1)<<s.Level)
	case s.Level > depth:
		return fmt.Errorf("%w: %s level %d is below the meeting depth %d", ErrIncompatible, what, s.Level, depth)
	}
	return nil
}

// subtreeOf reads a Hello's subtree fields.
func subtreeOf(req *grovev1.HelloRequest) Subtree {
	l := req.GetSubtreeLevel()
	if l > MaxSessionDepth {
		// Out of range whatever it is; keep it from wrapping an int.
		l = MaxSessionDepth + 1
	}
	return Subtree{Level: int(l), Index: req.GetSubtreeIndex()}
}

// nodeSum is the sum of node s in view.
func nodeSum(ctx context.Context, view *engine.LeafView, s Subtree) (engine.Digest, error) {
	var d [1]engine.Digest
	err := view.Sums(ctx, s.Level, int(s.Index), d[:])
	return d[0], err
}

// liveSum is replica's live sum of s: the root's from Replica.Sum, a
// subtree's from a view taken for the purpose, since a Replica reads its
// live tree's root alone.
func liveSum(ctx context.Context, replica Replica, s Subtree) (engine.Digest, error) {
	if s.Whole() {
		return replica.Sum(ctx)
	}
	view, release, err := replica.View(ctx)
	if err != nil {
		return engine.Digest{}, err
	}
	defer release()
	return nodeSum(ctx, view, s)
}
