package repair

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/rowstore"
	"github.com/antientropy/grove/engine/token"
)

// Replica is one side's data as a session sees it: a tree to descend and the
// rows behind it. A storage node implements it over its own storage engine;
// StoreReplica implements it over an in-memory rowstore.Store.
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

// StoreReplica is a Replica over an in-memory row store and a live tree
// built from it: what the grove command serves and syncs, and a model of
// what a storage node does (see docs/LIVE.md for where the old row of a write
// comes from in a real engine).
type StoreReplica struct {
	// mu orders Apply against View: a view is taken with no batch half
	// applied, so its leaves agree with the store at that moment.
	mu    sync.RWMutex
	store *rowstore.Store
	tree  *engine.Tree
}

// NewStoreReplica returns a replica over store whose live tree is tree. The
// tree must have been built from exactly the store's rows (BuildTree does
// that) and is kept up to date by Apply; the caller keeps ownership of both.
func NewStoreReplica(store *rowstore.Store, tree *engine.Tree) *StoreReplica {
	return &StoreReplica{store: store, tree: tree}
}

// BuildTree builds a hashed tree over store's rows with opts.
func BuildTree(ctx context.Context, store *rowstore.Store, opts engine.Options) (*engine.Tree, error) {
	t, err := engine.New(opts)
	if err != nil {
		return nil, err
	}
	err = store.All(ctx, func(r *engine.Row) error { return t.Add(r) })
	if err == nil {
		err = t.Hash(ctx)
	}
	if err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// Store returns the replica's row store.
func (s *StoreReplica) Store() *rowstore.Store { return s.store }

// Tree returns the replica's live tree.
func (s *StoreReplica) Tree() *engine.Tree { return s.tree }

// Shape implements Replica.
func (s *StoreReplica) Shape() Shape {
	return Shape{Partitioner: s.tree.Partitioner(), Range: s.tree.Range(), Depth: s.tree.Depth()}
}

// Sum implements Replica.
func (s *StoreReplica) Sum(ctx context.Context) (engine.Digest, error) {
	var d [1]engine.Digest
	err := s.tree.Sums(ctx, 0, 0, d[:])
	return d[0], err
}

// View implements Replica with a snapshot of the live tree's leaves.
func (s *StoreReplica) View(ctx context.Context) (*engine.LeafView, func(), error) {
	s.mu.RLock()
	v, err := s.tree.LeafView(ctx)
	s.mu.RUnlock()
	if err != nil {
		return nil, nil, err
	}
	return v, func() { v.Close() }, nil
}

// Scan implements Replica.
func (s *StoreReplica) Scan(ctx context.Context, r token.Range, fn func(*engine.Row) error) error {
	return s.store.Scan(ctx, r, fn)
}

// Apply implements Replica: the store merges the rows as one batch and, for
// each row it writes, the tree is updated first; if any tree update fails the
// ones made are undone and the store keeps its old rows.
func (s *StoreReplica) Apply(ctx context.Context, rows []engine.Row) (int, error) {
	rng := s.tree.Range()
	p := s.tree.Partitioner()
	for i := range rows {
		if tok := p.Token(rows[i].Key); !rng.Contains(tok) {
			return 0, fmt.Errorf("%w: row %d: token %d outside the replica's range %v", ErrBadMessage, i, tok, rng)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	type change struct{ old, new *engine.Row }
	var done []change
	n, err := s.store.Apply(ctx, rows, func(old, new *engine.Row) error {
		if err := s.tree.Update(old, new); err != nil {
			return err
		}
		done = append(done, change{cloneRow(old), cloneRow(new)})
		return nil
	})
	if err != nil {
		var undo error
		for i := len(done) - 1; i >= 0; i-- {
			undo = errors.Join(undo, s.tree.Update(done[i].new, done[i].old))
		}
		if undo != nil {
			return 0, fmt.Errorf("repair: apply failed (%w) and undoing its tree updates failed too: %v", err, undo)
		}
		return 0, err
	}
	// The batch is in: rehash even if ctx ended meanwhile, so the tree never
	// stays behind the store.
	if err := s.tree.Hash(context.WithoutCancel(ctx)); err != nil {
		return n, err
	}
	return n, nil
}

func cloneRow(r *engine.Row) *engine.Row {
	if r == nil {
		return nil
	}
	c := *r
	c.Key = append([]byte(nil), r.Key...)
	c.Value = append([]byte(nil), r.Value...)
	return &c
}
