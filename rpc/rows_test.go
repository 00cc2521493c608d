package rpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/repair"
)

// mapStore is a RowStore over a map that keeps Cassandra's rule, refusing
// keys that start with "foreign" as a node refuses rows of other ranges.
type mapStore struct {
	mu   sync.Mutex
	rows map[string]engine.Row
	fail error // returned by every call when set
}

func (m *mapStore) Apply(_ context.Context, rows []engine.Row) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return 0, m.fail
	}
	for _, r := range rows {
		if bytes.HasPrefix(r.Key, []byte("foreign")) {
			return 0, fmt.Errorf("%w: key %q is in none of the node's ranges", ErrRefused, r.Key)
		}
	}
	n := 0
	for _, r := range rows {
		old, ok := m.rows[string(r.Key)]
		if ok && !engine.Supersedes(&r, &old) {
			continue
		}
		r.Key, r.Value = bytes.Clone(r.Key), bytes.Clone(r.Value)
		m.rows[string(r.Key)] = r
		n++
	}
	return n, nil
}

func (m *mapStore) Get(_ context.Context, key []byte) (engine.Row, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return engine.Row{}, false, m.fail
	}
	r, ok := m.rows[string(key)]
	return r, ok, nil
}

func serveRows(t *testing.T, store RowStore) *RowClient {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(NewRowHandler(store, HandlerOptions{}))
	url, _ := serve(t, mux, nil)
	rc, err := NewRowClient(url, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.CloseIdle)
	return rc
}

// TestRowsOverTheWire: random puts, deletes, batches and gets through a
// RowClient equal the same writes applied to a map by Cassandra's rule, and
// each write reports whether it won.
func TestRowsOverTheWire(t *testing.T) {
	ctx := context.Background()
	store := &mapStore{rows: map[string]engine.Row{}}
	rc := serveRows(t, store)
	oracle := &mapStore{rows: map[string]engine.Row{}}
	rnd := rand.New(rand.NewPCG(3, 4))
	key := func() []byte { return fmt.Appendf(nil, "k%d", rnd.IntN(40)) }
	for i := range 400 {
		var got, want int
		var err error
		switch op := rnd.IntN(4); op {
		case 0, 1:
			k, v, ts := key(), fmt.Appendf(nil, "v%d", rnd.IntN(3)), int64(rnd.IntN(20))
			var ok bool
			if op == 0 {
				ok, err = rc.Put(ctx, k, v, ts)
				want, _ = oracle.Apply(ctx, []engine.Row{{Key: k, Value: v, TS: ts}})
			} else {
				ok, err = rc.Delete(ctx, k, ts)
				want, _ = oracle.Apply(ctx, []engine.Row{{Key: k, TS: ts, Deleted: true}})
			}
			if ok {
				got = 1
			}
		case 2:
			var batch []engine.Row
			for range rnd.IntN(5) + 1 {
				batch = append(batch, engine.Row{Key: key(), Value: []byte("b"), TS: int64(rnd.IntN(20)), Deleted: rnd.IntN(4) == 0})
			}
			got, err = rc.Apply(ctx, batch)
			want, _ = oracle.Apply(ctx, batch)
		case 3:
			k := key()
			r, found, err := rc.Get(ctx, k)
			w, wfound, _ := oracle.Get(ctx, k)
			if err != nil || found != wfound || (found && (!bytes.Equal(r.Key, w.Key) || !bytes.Equal(r.Value, w.Value) || r.TS != w.TS || r.Deleted != w.Deleted)) {
				t.Fatalf("op %d: Get(%s) = %+v, %v, %v; want %+v, %v", i, k, r, found, err, w, wfound)
			}
			continue
		}
		if err != nil || got != want {
			t.Fatalf("op %d: wrote %d (%v), the oracle %d", i, got, err, want)
		}
	}
	if len(store.rows) != len(oracle.rows) {
		t.Fatalf("%d rows stored, the oracle holds %d", len(store.rows), len(oracle.rows))
	}
	for k, w := range oracle.rows {
		r := store.rows[k]
		if !bytes.Equal(r.Value, w.Value) || r.TS != w.TS || r.Deleted != w.Deleted {
			t.Fatalf("key %s: stored %+v, the oracle %+v", k, r, w)
		}
	}
}

// TestRowsRefused: a row the node refuses, and a key over the limit, are
// ErrRefused at the client, naming the row, with nothing written; a
// failure inside the node is not ErrRefused.
func TestRowsRefused(t *testing.T) {
	ctx := context.Background()
	store := &mapStore{rows: map[string]engine.Row{}}
	rc := serveRows(t, store)
	big := bytes.Repeat([]byte("x"), engine.MaxKeyBytes+1)
	for _, tc := range []struct {
		name  string
		call  func() error
		names string
	}{
		{"foreign put", func() error { _, err := rc.Put(ctx, []byte("foreign1"), nil, 1); return err }, `"foreign1"`},
		{"foreign in a batch", func() error {
			_, err := rc.Apply(ctx, []engine.Row{{Key: []byte("ok"), TS: 1}, {Key: []byte("foreign2"), TS: 1}})
			return err
		}, `"foreign2"`},
		{"key too large", func() error { _, err := rc.Delete(ctx, big, 1); return err }, "over the limit"},
		{"get of a key too large", func() error { _, _, err := rc.Get(ctx, big); return err }, "over the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.names) {
				t.Fatalf("%v; want ErrRefused naming %s", err, tc.names)
			}
		})
	}
	if len(store.rows) != 0 {
		t.Fatalf("refused writes stored %d rows", len(store.rows))
	}
	store.fail = fmt.Errorf("disk on fire: %w", repair.ErrBusy)
	_, err := rc.Put(ctx, []byte("k"), nil, 1)
	if errors.Is(err, ErrRefused) || !errors.Is(err, repair.ErrBusy) {
		t.Fatalf("a node's own failure: %v; want its repair sentinel, not ErrRefused", err)
	}
}
