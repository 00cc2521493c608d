package grovepebble

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
)

// TestLayout1Upgrades opens a database as layout 1 left it — Pebble's
// default merge operator in its OPTIONS file, the format record of
// version 1, rows stored with Set and no generation of birth — and checks
// that the node serves it: its tree is the rebuild of its rows, writes
// over the old rows merge with them by Cassandra's rule, the format record
// and the OPTIONS file now say layout 3 and grovepebble.Merger, and the
// database opens again.
func TestLayout1Upgrades(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := token.Murmur3{}
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(metaFormat, []byte{1, p.ID()}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	var rows []engine.Row
	for i := range 300 {
		r := engine.Row{Key: fmt.Appendf(nil, "old-%03d", i), Value: []byte("v1"), TS: 10}
		rows = append(rows, r)
		if err := db.Set(appendRowKey(nil, p.Token(r.Key), r.Key), appendValue(nil, &r), pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	n := openNode(t, dir, Options{Depth: 6})
	if n.Rows() != 300 {
		t.Fatalf("upgraded node counts %d rows, want 300", n.Rows())
	}
	if live, rebuilt := liveRoot(t, n), rebuiltRoot(t, n); live != rebuilt {
		t.Fatalf("live root %x, rebuilt %x", live[:8], rebuilt[:8])
	}
	// An older write loses to a layout 1 row, a newer one wins.
	if err := n.Put(ctx, rows[0].Key, []byte("older"), 5); err != nil {
		t.Fatal(err)
	}
	if err := n.Put(ctx, rows[1].Key, []byte("newer"), 20); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"v1", "newer"} {
		got, ok, err := n.Get(ctx, rows[i].Key)
		if err != nil || !ok || string(got.Value) != want {
			t.Fatalf("Get(%s) = %q, %v, %v; want %q", rows[i].Key, got.Value, ok, err, want)
		}
	}
	if live, rebuilt := liveRoot(t, n), rebuiltRoot(t, n); live != rebuilt {
		t.Fatalf("after writes: live root %x, rebuilt %x", live[:8], rebuilt[:8])
	}
	n = reopen(t, n, dir, Options{Depth: 6})
	if n.Rows() != 300 {
		t.Fatalf("reopened node counts %d rows, want 300", n.Rows())
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	raw := rawKeys(t, dir)
	if v := raw[string(metaFormat)]; v != string([]byte{layoutVersion, p.ID(), 0}) {
		t.Fatalf("format record %x after the upgrade, want %x", v, []byte{layoutVersion, p.ID(), 0})
	}
	names, _ := filepath.Glob(filepath.Join(dir, "OPTIONS-*"))
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "merger="+MergerName+"\n") {
			t.Errorf("%s does not name %s", filepath.Base(name), MergerName)
		}
	}
}

// TestLayout2RowsGainChecksums: a database of layout 2 — rows without
// checksums, some with a generation of birth — is accepted as it is by
// its first Open; a scrub pass writes every such row again with its
// checksum, changing no tree; the next pass finds none and makes the
// database strict, after which a row written without a checksum around
// the node is damage the scrub moves aside.
func TestLayout2RowsGainChecksums(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := token.Murmur3{}
	n := openNode(t, dir, created(Options{Depth: 8}))
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}, Merger: Merger})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(metaFormat, []byte{2, p.ID()}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	keys := rangeKeys(testRanges(), "old", 500, true)
	for i, k := range keys {
		r := engine.Row{Key: k, Value: fmt.Appendf(nil, "v%d", i), TS: 10, Deleted: i%7 == 0}
		if err := db.Set(appendRowKey(nil, p.Token(k), k), appendValueBorn(nil, &r, 1, i%2 == 0), pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	opts := Options{Depth: 8}
	n = openNode(t, dir, opts)
	if n.isStrict() || n.Rows() != int64(len(keys)) {
		t.Fatalf("upgraded node: strict %v, %d rows; want lenient, %d", n.isStrict(), n.Rows(), len(keys))
	}
	before := dbRows(t, n)
	rep, err := n.Scrub(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Legacy != int64(len(keys)) || len(rep.Mismatches) != 0 || len(rep.Quarantined) != 0 || n.isStrict() {
		t.Fatalf("first pass: %d rows rewritten, %d mismatches, %d quarantined, strict %v; want %d, 0, 0, lenient", rep.Legacy, len(rep.Mismatches), len(rep.Quarantined), n.isStrict(), len(keys))
	}
	if after := dbRows(t, n); !equalRows(before, after) {
		t.Fatalf("the rewrite changed rows: %s", diffRows(before, after))
	}
	if live, want := liveRoot(t, n), rebuiltRoot(t, n); live != want {
		t.Fatalf("after the rewrite the root is %x, its rows' %x", live[:8], want[:8])
	}
	// Every stored value now has its checksum.
	it, err := n.db.NewIter(&pebble.IterOptions{LowerBound: []byte{rowPrefix}, UpperBound: []byte{rowPrefix + 1}})
	if err != nil {
		t.Fatal(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		if it.Value()[0]&flagSum == 0 {
			t.Fatalf("key %q is still stored without a checksum", it.Key())
		}
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}

	rep, err = n.Scrub(ctx, 0)
	if err != nil || rep.Legacy != 0 || !n.isStrict() {
		t.Fatalf("second pass: %d rewritten, strict %v, %v; want 0, strict", rep.Legacy, n.isStrict(), err)
	}
	n = reopen(t, n, dir, opts)
	if !n.isStrict() {
		t.Fatal("strict did not outlive a reopen")
	}
	stray := rangeKeys(testRanges(), "stray", 1, true)[0]
	r := engine.Row{Key: stray, Value: []byte("no checksum"), TS: 1}
	if err := n.db.Set(appendRowKey(nil, p.Token(stray), stray), appendValue(nil, &r), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	rep, err = n.Scrub(ctx, 0)
	if err != nil || len(rep.Quarantined) != 1 || string(rep.Quarantined[0].Key) != string(stray) || rep.Legacy != 0 {
		t.Fatalf("strict pass: %+v, %v; want the row without a checksum moved aside", rep, err)
	}
}
