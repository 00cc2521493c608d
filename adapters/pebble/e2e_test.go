package grovepebble

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/rpc"
)

// Two real Pebble replicas diverge the three ways repair exists for — a
// missed write, a corrupted value, a missed delete — plus a write only the
// peer has; one session over loopback gRPC finds exactly those keys and
// repairs both sides, after which the two databases hold the same rows, the
// live trees agree, and each equals the tree a fresh validation scan of its
// database builds.
func TestSyncTwoPebbleReplicas(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := Options{Depth: 12}
	dirA, dirB := t.TempDir(), t.TempDir()
	a, b := openNode(t, dirA, created(opts)), openNode(t, dirB, created(opts))

	const baseRows = 4000
	var base []engine.Row
	for i := range baseRows {
		base = append(base, engine.Row{
			Key:   []byte(fmt.Sprintf("user:%05d", i)),
			Value: []byte(fmt.Sprintf("profile %d: %x", i, i*7919)),
			TS:    1_700_000_000_000_000 + int64(i),
		})
	}
	for _, n := range []*Node{a, b} {
		if w, err := n.Apply(ctx, base); err != nil || w != baseRows {
			t.Fatalf("base load = %d, %v", w, err)
		}
	}

	// A missed write: A has a row B never got.
	missed := []byte("user:missed")
	if err := a.Put(ctx, missed, []byte("written while B was down"), 1_800_000_000_000_000); err != nil {
		t.Fatalf("Put: %v", err)
	}
	// A write only B has (A missed it): repair pulls it to A.
	onlyB := []byte("user:only-b")
	if err := b.Put(ctx, onlyB, []byte("written while A was down"), 1_800_000_000_000_001); err != nil {
		t.Fatalf("Put: %v", err)
	}
	// A missed delete: A has a tombstone newer than B's live row.
	deleted := base[42].Key
	if err := a.Delete(ctx, deleted, 1_800_000_000_000_002); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	// A corrupted value: B's copy of one row has other bytes under the same
	// timestamp, written past the write path with no checksum, as a disk
	// or a tool would. The bytes sort above the good ones, so Cassandra's
	// tie rule (greater value wins) would keep them and spread them; the
	// checksum makes B's reads refuse the row and its validation scan at
	// reopen leave it out, so the session takes it for a row B lacks.
	corrupt := base[17]
	bad := slices.Clone(corrupt.Value)
	bad[0] = 'z' // "zrofile" > "profile"
	b = reopenWith(t, b, dirB, opts, func() {
		rawSet(t, dirB, appendRowKey(nil, b.p.Token(corrupt.Key), corrupt.Key),
			appendValue(nil, &engine.Row{Key: corrupt.Key, Value: bad, TS: corrupt.TS}))
	})
	if got, _, err := b.Get(ctx, corrupt.Key); !errors.Is(err, ErrChecksum) {
		t.Fatalf("B's Get of the corrupt row = %q, %v; want ErrChecksum", got.Value, err)
	}

	// Serve B over loopback, as a node would.
	client, stop := serve(t, b)
	defer stop()
	res, err := repair.Sync(ctx, a, client, repair.Options{Repair: true})
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	keys := func(ks []engine.Key) []string {
		var out []string
		for _, k := range ks {
			out = append(out, string(k.Key))
		}
		slices.Sort(out)
		return out
	}
	for _, c := range []struct {
		name      string
		got, want []string
	}{
		{"only here (A)", keys(res.OnlyHere), []string{string(corrupt.Key), string(missed)}},
		{"only there (B)", keys(res.OnlyThere), []string{string(onlyB)}},
		{"different", keys(res.Different), []string{string(deleted)}},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, c.got, c.want)
		}
	}
	if !res.Converged || res.Pushed != 3 || res.PeerApplied != 3 || res.Applied != 1 {
		t.Errorf("repair: converged %v, pushed %d, peer applied %d, applied %d; want true, 3, 3, 1",
			res.Converged, res.Pushed, res.PeerApplied, res.Applied)
	}
	t.Logf("sync of %d rows at depth %d, 4 differing keys: %d bytes sent, %d received (%d and %d of them rows), %d round trips, %d differing leaves",
		baseRows, res.Depth, res.BytesSent, res.BytesReceived, res.RowBytesSent, res.RowBytesReceived, res.RoundTrips, res.DifferingLeaves)

	// Both databases now hold the same rows, and the repaired ones are A's.
	rowsA, rowsB := dbRows(t, a), dbRows(t, b)
	if !equalRows(rowsA, rowsB) {
		t.Fatalf("databases differ after repair: %s", diffRows(rowsA, rowsB))
	}
	if len(rowsA) != baseRows+2 {
		t.Fatalf("%d rows after repair, want %d", len(rowsA), baseRows+2)
	}
	if got, _, _ := b.Get(ctx, corrupt.Key); !bytes.Equal(got.Value, corrupt.Value) {
		t.Errorf("B's corrupt row after repair: %q, want %q", got.Value, corrupt.Value)
	}
	if got, ok, _ := b.Get(ctx, deleted); !ok || !got.Deleted {
		t.Errorf("B's deleted row after repair: %+v, want a tombstone", got)
	}
	rootA, rootB := liveRoot(t, a), liveRoot(t, b)
	if rootA != rootB {
		t.Fatalf("live roots differ after repair: %x, %x", rootA[:8], rootB[:8])
	}

	// A second session finds nothing, in one round trip.
	res, err = repair.Sync(ctx, a, client, repair.Options{Repair: true})
	if err != nil || !res.InSync || res.RoundTrips != 1 {
		t.Fatalf("second Sync: in sync %v, %d round trips, %v", res != nil && res.InSync, res.RoundTrips, err)
	}

	// The live trees are the trees a validation scan builds from the data.
	stop()
	a, b = reopen(t, a, dirA, opts), reopen(t, b, dirB, opts)
	if got := liveRoot(t, a); got != rootA {
		t.Errorf("A rebuilt from its database: root %x, live tree had %x", got[:8], rootA[:8])
	}
	if got := liveRoot(t, b); got != rootB {
		t.Errorf("B rebuilt from its database: root %x, live tree had %x", got[:8], rootB[:8])
	}
}

// reopenWith closes n, runs between (which may touch dir directly), and
// opens dir again.
func reopenWith(t *testing.T, n *Node, dir string, opts Options, between func()) *Node {
	t.Helper()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	between()
	return openNode(t, dir, opts)
}

// serve serves n's repair responder on a loopback port, as grove-pebble
// serve does, and returns a client for it and a function that stops it.
func serve(t *testing.T, n *Node) (*rpc.Client, func()) {
	t.Helper()
	responder := repair.NewResponder(n, repair.ResponderOptions{})
	mux := http.NewServeMux()
	mux.Handle(rpc.NewHandler(responder, rpc.HandlerOptions{}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(mux, nil)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	client, err := rpc.NewClient("http://"+ln.Addr().String(), rpc.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	return client, func() {
		if stopped {
			return
		}
		stopped = true
		client.CloseIdle()
		srv.Close()
		<-done
		responder.Shutdown()
	}
}
