package grovepebble

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/antientropy/grove/engine"
)

// TestWritePathReadsThroughFilters checks what the maintainer's lookup of
// each written key's previous version stands on: without Pebble options of
// its own, a Node gets bloom filters, so that the lookup of a key no table
// holds (every insert) is answered by a table's filter — in the bottom
// level too — and a block cache of the size asked for.
func TestWritePathReadsThroughFilters(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, t.TempDir(), created(Options{Depth: 4, BlockCache: 32 << 20}))
	if got := n.cache.MaxSize(); got != 32<<20 {
		t.Fatalf("block cache of %d bytes, want %d", got, 32<<20)
	}
	write := func(from, to int) {
		t.Helper()
		for i := from; i < to; i += 100 {
			var batch []engine.Row
			for j := i; j < min(i+100, to); j++ {
				batch = append(batch, engine.Row{Key: fmt.Appendf(nil, "key-%06d", j), Value: []byte("v"), TS: 1})
			}
			if _, err := n.Apply(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(0, 2000)
	n.Rows() // settled: the lookups counted below are the next writes' alone
	if err := n.db.Flush(); err != nil {
		t.Fatal(err)
	}
	before := n.db.Metrics().Filter
	write(2000, 4000) // new keys: each lookup meets the flushed table
	n.Rows()          // the maintainer has looked every key up
	after := n.db.Metrics().Filter
	if hits := after.Hits - before.Hits; hits < 1000 {
		t.Fatalf("%d of 2000 lookups of new keys were answered by a bloom filter (metrics before %+v, after %+v)", hits, before, after)
	}
	// Compacted into the bottom level, where most of a node's rows live
	// and where Pebble skips filters unless an iterator asks for them.
	if err := n.db.Compact(ctx, []byte{0}, []byte{0xff}, true); err != nil {
		t.Fatal(err)
	}
	if m := n.db.Metrics(); m.Levels[6].TablesCount == 0 {
		t.Fatalf("no table in L6 after a full compaction: %s", m)
	}
	before = n.db.Metrics().Filter
	write(4000, 6000)
	n.Rows()
	after = n.db.Metrics().Filter
	if hits := after.Hits - before.Hits; hits < 1000 {
		t.Fatalf("%d of 2000 lookups of new keys were answered by a bottom-level bloom filter (metrics before %+v, after %+v)", hits, before, after)
	}
}

// TestCallerCacheIsTheCallers checks that a Node uses the block cache
// Options.Pebble brings, and leaves it usable after Close: the caller owns
// it.
func TestCallerCacheIsTheCallers(t *testing.T) {
	cache := pebble.NewCache(8 << 20)
	defer cache.Unref()
	dir := t.TempDir()
	n := openNode(t, dir, created(Options{Depth: 4, Pebble: &pebble.Options{Cache: cache}}))
	if n.cache != nil {
		t.Fatal("the Node made a cache of its own beside the caller's")
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	// A second node on the same cache: it must still be referenced.
	m := openNode(t, dir, Options{Depth: 4, Pebble: &pebble.Options{Cache: cache}})
	if err := m.Put(context.Background(), []byte("k"), []byte("v"), 1); err != nil {
		t.Fatal(err)
	}
}

func TestNegativeBlockCacheRefused(t *testing.T) {
	_, err := Open(context.Background(), t.TempDir(), Options{Create: true, BlockCache: -1})
	if !errors.Is(err, ErrOptions) {
		t.Fatalf("Open with BlockCache -1: %v, want ErrOptions", err)
	}
}
