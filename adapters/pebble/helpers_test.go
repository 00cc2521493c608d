package grovepebble

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
)

// openNode opens a Node on dir for a test and closes it when the test ends.
func openNode(t testing.TB, dir string, opts Options) *Node {
	t.Helper()
	if opts.Budget == nil {
		opts.Budget = arena.NewBudget(256 << 20)
	}
	n, err := Open(context.Background(), dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// created returns opts with Create set: for a test's new node.
func created(opts Options) Options {
	opts.Create = true
	return opts
}

// reopen closes n and opens its directory again with the same options.
func reopen(t testing.TB, n *Node, dir string, opts Options) *Node {
	t.Helper()
	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return openNode(t, dir, opts)
}

// storedRow is a decoded row with its token, owning its bytes.
type storedRow struct {
	Token token.Token
	Row   engine.Row
}

func (s storedRow) String() string {
	return fmt.Sprintf("{%d %q %q ts=%d deleted=%v}", s.Token, s.Row.Key, s.Row.Value, s.Row.TS, s.Row.Deleted)
}

// dbRows reads every row of n's database straight from Pebble — not through
// Scan — so it checks what is stored, whatever the Node's read path does.
func dbRows(t testing.TB, n *Node) []storedRow {
	t.Helper()
	it, err := n.db.NewIter(&pebble.IterOptions{LowerBound: []byte{rowPrefix}, UpperBound: []byte{rowPrefix + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []storedRow
	for ok := it.First(); ok; ok = it.Next() {
		var r engine.Row
		tok, err := decodeRow(n.p, it.Key(), it.Value(), &r, n.isStrict())
		if err != nil {
			t.Fatalf("stored row: %v", err)
		}
		out = append(out, storedRow{tok, cloneRow(r)})
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	return out
}

func cloneRow(r engine.Row) engine.Row {
	r.Key = append([]byte{}, r.Key...)
	r.Value = append([]byte{}, r.Value...)
	return r
}

// sortedRows returns rows with their tokens, in the order the database
// keeps them: by token, then key.
func sortedRows(p token.Partitioner, rows []engine.Row) []storedRow {
	out := make([]storedRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, storedRow{p.Token(r.Key), cloneRow(r)})
	}
	slices.SortFunc(out, func(a, b storedRow) int {
		if c := cmp.Compare(a.Token, b.Token); c != 0 {
			return c
		}
		return bytes.Compare(a.Row.Key, b.Row.Key)
	})
	return out
}

func equalRows(a, b []storedRow) bool {
	return slices.EqualFunc(a, b, func(x, y storedRow) bool {
		return x.Token == y.Token && bytes.Equal(x.Row.Key, y.Row.Key) && bytes.Equal(x.Row.Value, y.Row.Value) &&
			x.Row.TS == y.Row.TS && x.Row.Deleted == y.Row.Deleted
	})
}

// diffRows describes how two row lists differ, for a failure message.
func diffRows(a, b []storedRow) string {
	for i := range min(len(a), len(b)) {
		if !equalRows(a[i:i+1], b[i:i+1]) {
			return fmt.Sprintf("first difference at %d: %v vs %v (lengths %d, %d)", i, a[i], b[i], len(a), len(b))
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(a), len(b))
}

// liveRoot returns the root of n's live tree.
func liveRoot(t testing.TB, n *Node) engine.Digest {
	t.Helper()
	d, err := n.Root(context.Background())
	if err != nil {
		t.Fatalf("Root: %v", err)
	}
	return d
}

// rebuiltRoot builds a fresh tree of n's shape from the rows stored in n's
// database, read straight from Pebble, and returns its root: what the live
// tree must equal.
func rebuiltRoot(t testing.TB, n *Node) engine.Digest {
	t.Helper()
	tr, err := engine.New(engine.Options{Partitioner: n.p, Range: n.rng, Depth: n.Depth(), Budget: arena.NewBudget(256 << 20)})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for _, r := range dbRows(t, n) {
		if err := tr.Add(&r.Row); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Hash(context.Background()); err != nil {
		t.Fatal(err)
	}
	d, err := tr.Root()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// rawSet writes one Pebble key straight into the database in dir, bypassing
// any Node: how a test plants a corrupt or out-of-place record. No Node may
// have dir open.
func rawSet(t testing.TB, dir string, key, value []byte) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}, Merger: Merger})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(key, value, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// rawDelete deletes one Pebble key straight from the database in dir. No
// Node may have dir open.
func rawDelete(t testing.TB, dir string, key []byte) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}, Merger: Merger})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Delete(key, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}
