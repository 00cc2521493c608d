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
// and the OPTIONS file now say layout 2 and grovepebble.Merger, and the
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
