package repair_test

import (
	"context"
	"fmt"
	"io"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/engine/rowstore"
	"github.com/antientropy/grove/engine/token"
)

type exampleRows []engine.Row

func (r *exampleRows) NextRow(row *engine.Row) error {
	if len(*r) == 0 {
		return io.EOF
	}
	*row, *r = (*r)[0], (*r)[1:]
	return nil
}

// exampleReplica loads rows into a store and builds its live tree.
func exampleReplica(budget *arena.Budget, rows ...engine.Row) *rowstore.Replica {
	ctx := context.Background()
	src := exampleRows(rows)
	store, err := rowstore.Load(ctx, token.Murmur3{}, &src)
	if err != nil {
		panic(err)
	}
	tree, err := rowstore.BuildTree(ctx, store, engine.Options{Depth: 10, Budget: budget})
	if err != nil {
		panic(err)
	}
	return rowstore.NewReplica(store, tree)
}

// Two replicas that missed a write each and disagree on a third key find
// exactly those keys and converge. Here the peer is a Responder in the same
// process; over a network it is an rpc.Client.
func ExampleSync() {
	budget := arena.NewBudget(64 << 20)
	here := exampleReplica(budget,
		engine.Row{Key: []byte("alice"), Value: []byte("v1"), TS: 10},
		engine.Row{Key: []byte("bob"), Value: []byte("v2"), TS: 20},   // the peer missed it
		engine.Row{Key: []byte("carol"), Value: []byte("old"), TS: 5}, // the peer has a newer one
	)
	there := exampleReplica(budget,
		engine.Row{Key: []byte("alice"), Value: []byte("v1"), TS: 10},
		engine.Row{Key: []byte("carol"), Value: []byte("new"), TS: 9},
		engine.Row{Key: []byte("dave"), TS: 30, Deleted: true}, // a tombstone we missed
	)
	defer here.Tree().Close()
	defer there.Tree().Close()

	peer := repair.NewResponder(there, repair.ResponderOptions{})
	res, err := repair.Sync(context.Background(), here, peer, repair.Options{Repair: true})
	if err != nil {
		panic(err)
	}
	for _, k := range res.OnlyHere {
		fmt.Printf("only here:  %s\n", k.Key)
	}
	for _, k := range res.OnlyThere {
		fmt.Printf("only there: %s\n", k.Key)
	}
	for _, k := range res.Different {
		fmt.Printf("different:  %s\n", k.Key)
	}
	carol, _ := here.Store().Get([]byte("carol"))
	fmt.Printf("converged: %v; carol is now %q; sent %d row, applied %d here\n", res.Converged, carol.Value, res.Pushed, res.Applied)
	// Output:
	// only here:  bob
	// only there: dave
	// different:  carol
	// converged: true; carol is now "new"; sent 1 row, applied 2 here
}
