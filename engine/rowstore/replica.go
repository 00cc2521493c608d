package rowstore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/engine/token"
)

// Replica is a repair.Replica over an in-memory Store and a live tree built
// from it: what the grove command serves and syncs, and a model of what a
// storage node does (see docs/LIVE.md for where the old row of a write comes
// from in a real engine). It lives beside the Store, not in package repair,
// so that the protocol does not depend on this demo store.
type Replica struct {
	// mu orders Apply against View: a view is taken with no batch half
	// applied, so its leaves agree with the store at that moment.
	mu    sync.RWMutex
	store *Store
	tree  *engine.Tree
}

var _ repair.Replica = (*Replica)(nil)

// NewReplica returns a replica over store whose live tree is tree. The tree
// must have been built from exactly the store's rows (BuildTree does that)
// and is kept up to date by Apply; the caller keeps ownership of both.
func NewReplica(store *Store, tree *engine.Tree) *Replica {
	return &Replica{store: store, tree: tree}
}

// BuildTree builds a hashed tree over store's rows with opts: the live tree
// NewReplica needs, which must start out agreeing with the store.
func BuildTree(ctx context.Context, store *Store, opts engine.Options) (*engine.Tree, error) {
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

// Store returns the replica's row store, for callers that read or save its
// rows outside a session.
func (s *Replica) Store() *Store { return s.store }

// Tree returns the replica's live tree, for callers that compare or save it
// outside a session.
func (s *Replica) Tree() *engine.Tree { return s.tree }

// Shape implements repair.Replica.
func (s *Replica) Shape() repair.Shape {
	return repair.Shape{Partitioner: s.tree.Partitioner(), Range: s.tree.Range(), Depth: s.tree.Depth()}
}

// Sum implements repair.Replica.
func (s *Replica) Sum(ctx context.Context) (engine.Digest, error) {
	var d [1]engine.Digest
	err := s.tree.Sums(ctx, 0, 0, d[:])
	return d[0], err
}

// View implements repair.Replica with a snapshot of the live tree's leaves.
func (s *Replica) View(ctx context.Context) (*engine.LeafView, func(), error) {
	s.mu.RLock()
	v, err := s.tree.LeafView(ctx)
	s.mu.RUnlock()
	if err != nil {
		return nil, nil, err
	}
	return v, func() { v.Close() }, nil
}

// Scan implements repair.Replica.
func (s *Replica) Scan(ctx context.Context, r token.Range, fn func(*engine.Row) error) error {
	return s.store.Scan(ctx, r, fn)
}

// Apply implements repair.Replica: the store merges the rows as one batch
// and, for each row it writes, the tree is updated first; if any tree update
// fails the ones made are undone and the store keeps its old rows.
func (s *Replica) Apply(ctx context.Context, rows []engine.Row) (int, error) {
	rng := s.tree.Range()
	p := s.tree.Partitioner()
	for i := range rows {
		if tok := p.Token(rows[i].Key); !rng.Contains(tok) {
			return 0, fmt.Errorf("%w: row %d: token %d outside the replica's range %v", repair.ErrBadMessage, i, tok, rng)
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
