package repair

import (
	"context"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
)

// Replica is one side's data as a session sees it: a tree to descend and the
// rows behind it. A storage node implements it over its own storage engine;
// rowstore.Replica implements it over the in-memory store the grove command
// uses (this package does not import it: the protocol depends on no store).
type Replica interface {
	// Shape describes the replica's live tree: what a session's handshake
	// checks against the peer's.
	Shape() Shape
	// Sum returns the sum of the live tree's leaves: the multiset digest of
	// every row in its range (see engine.Tree.Sums). It decides in one round
	// trip whether two replicas agree, before any snapshot is taken.
	Sum(ctx context.Context) (engine.Digest, error)
	// View returns the live tree's leaves frozen until release is called,
	// consistent with the rows Scan returned at the moment it was taken
	// (Tree.LeafView): a session reads only subtree sums. Writes may go on;
	// a session notices rows that changed under its view in the leaves it
	// reconciles and fails with ErrChanged.
	View(ctx context.Context) (view *engine.LeafView, release func(), err error)
	// Scan calls fn for every row whose token is in r. The *Row is valid only
	// during the call.
	Scan(ctx context.Context, r token.Range, fn func(*engine.Row) error) error
	// Apply writes, as one atomic batch, each row that wins over the stored
	// version of its key by engine.Supersedes (or whose key is absent), keeps
	// the live tree up to date, and returns how many rows were written. On an
	// error nothing is written.
	Apply(ctx context.Context, rows []engine.Row) (int, error)
}

// Shape is what a replica's tree covers: both sides of a session must have
// the same partitioner and range; their depths may differ.
type Shape struct {
	Partitioner token.Partitioner
	Range       token.Range
	Depth       int
}
