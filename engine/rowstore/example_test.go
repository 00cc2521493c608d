package rowstore_test

import (
	"context"
	"fmt"
	"io"
	"math"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/rowstore"
	"github.com/antientropy/grove/engine/token"
)

// rows is an engine.RowSource over a slice, as a table scan would be.
type rows []engine.Row

func (r *rows) NextRow(row *engine.Row) error {
	if len(*r) == 0 {
		return io.EOF
	}
	*row, *r = (*r)[0], (*r)[1:]
	return nil
}

// Load a replica's rows, apply a batch from a peer by the repair rule, and
// scan a token range. ByteOrdered tokens keep the keys in byte order, so the
// output reads alphabetically.
func Example() {
	ctx := context.Background()
	src := rows{
		{Key: []byte("alice"), Value: []byte("1"), TS: 10},
		{Key: []byte("bob"), Value: []byte("2"), TS: 10},
		{Key: []byte("bob"), Value: []byte("old"), TS: 5}, // an older version: Load keeps the newer
		{Key: []byte("carol"), Value: []byte("3"), TS: 10},
	}
	store, err := rowstore.Load(ctx, token.ByteOrdered{}, &src)
	if err != nil {
		panic(err)
	}

	fromPeer := []engine.Row{
		{Key: []byte("alice"), Value: []byte("stale"), TS: 9}, // older than ours: ignored
		{Key: []byte("bob"), TS: 11, Deleted: true},           // a delete we missed
		{Key: []byte("dave"), Value: []byte("4"), TS: 10},     // a row we missed
	}
	applied, err := store.Apply(ctx, fromPeer, func(old, new *engine.Row) error {
		// A live tree would follow here: tree.Update(old, new).
		if old == nil {
			fmt.Printf("insert %s\n", new.Key)
		} else {
			fmt.Printf("replace %s@%d by %s@%d deleted=%v\n", old.Key, old.TS, new.Key, new.TS, new.Deleted)
		}
		return nil
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("applied %d of %d, %d rows\n", applied, len(fromPeer), store.Len())

	// The rows of the range (token("b"), max]: everything after "b".
	r := token.Range{Lo: store.Partitioner().Token([]byte("b")), Hi: math.MaxInt64}
	err = store.Scan(ctx, r, func(row *engine.Row) error {
		fmt.Printf("%s=%q ts=%d deleted=%v\n", row.Key, row.Value, row.TS, row.Deleted)
		return nil
	})
	if err != nil {
		panic(err)
	}
	// Output:
	// replace bob@10 by bob@11 deleted=true
	// insert dave
	// applied 2 of 3, 4 rows
	// bob="" ts=11 deleted=true
	// carol="3" ts=10 deleted=false
	// dave="4" ts=10 deleted=false
}
