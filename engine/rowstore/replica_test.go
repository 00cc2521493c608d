package rowstore

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/engine/token"
)

// TestReplicaTreeFollowsStore: after each batch Apply writes, the live tree
// equals a tree rebuilt from the store's rows, its sum is what a session
// reads, and a view taken before the batch keeps its leaves.
func TestReplicaTreeFollowsStore(t *testing.T) {
	ctx := context.Background()
	budget := arena.NewBudget(1 << 30)
	opts := engine.Options{Depth: 8, Budget: budget}
	rng := rand.New(rand.NewPCG(7, 8))
	keys := keyPool(rng, 300)
	start := make([]engine.Row, 200)
	for i := range start {
		start[i] = randomRow(rng, keys)
	}
	store, err := Load(ctx, token.Murmur3{}, &sliceSource{rows: start})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := BuildTree(ctx, store, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	r := NewReplica(store, tree)
	if got := r.Shape(); got.Depth != 8 || got.Range != tree.Range() || got.Partitioner.ID() != tree.Partitioner().ID() {
		t.Fatalf("shape %+v does not describe the tree", got)
	}
	for round := range 5 {
		view, release, err := r.View(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var before [1]engine.Digest
		if err := view.Sums(ctx, 0, 0, before[:]); err != nil {
			t.Fatal(err)
		}
		batch := make([]engine.Row, 50)
		for i := range batch {
			batch[i] = randomRow(rng, keys)
		}
		if _, err := r.Apply(ctx, batch); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		var after [1]engine.Digest
		if err := view.Sums(ctx, 0, 0, after[:]); err != nil {
			t.Fatal(err)
		}
		release()
		if after != before {
			t.Fatalf("round %d: a view's leaves changed under an Apply", round)
		}
		fresh, err := BuildTree(ctx, store, opts)
		if err != nil {
			t.Fatal(err)
		}
		want, err := fresh.Root()
		fresh.Close()
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Tree().Root()
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("round %d: live root %x, rebuilt %x", round, got[:4], want[:4])
		}
		var sum [1]engine.Digest
		if err := r.Tree().Sums(ctx, 0, 0, sum[:]); err != nil {
			t.Fatal(err)
		}
		if s, err := r.Sum(ctx); err != nil || s != sum[0] {
			t.Fatalf("round %d: Sum %x, %v; want the tree's %x", round, s[:4], err, sum[0][:4])
		}
	}
}

// TestReplicaRefusesOutOfRange: a batch holding a row outside the tree's
// range is a bad message, and none of its rows is written.
func TestReplicaRefusesOutOfRange(t *testing.T) {
	ctx := context.Background()
	rng := token.Range{Lo: -1 << 62, Hi: 1 << 62}
	tree, err := engine.New(engine.Options{Depth: 4, Range: rng, Budget: arena.NewBudget(1 << 30)})
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	if err := tree.Hash(ctx); err != nil {
		t.Fatal(err)
	}
	r := NewReplica(New(token.Murmur3{}), tree)
	var in, out []byte
	for i := 0; in == nil || out == nil; i++ {
		k := []byte{byte(i), byte(i >> 8)}
		if rng.Contains(token.Murmur3{}.Token(k)) {
			in = k
		} else {
			out = k
		}
	}
	_, err = r.Apply(ctx, []engine.Row{{Key: in, TS: 1}, {Key: out, TS: 1}})
	if !errors.Is(err, repair.ErrBadMessage) {
		t.Fatalf("got %v, want repair.ErrBadMessage", err)
	}
	if n := r.Store().Len(); n != 0 {
		t.Fatalf("%d rows written by a refused batch", n)
	}
}
