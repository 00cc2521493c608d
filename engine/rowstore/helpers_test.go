package rowstore

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
)

// partitioners are the ones every test runs under: Murmur3 spreads keys,
// ByteOrdered makes keys share tokens.
var partitioners = []token.Partitioner{token.Murmur3{}, token.ByteOrdered{}}

func clone(r *engine.Row) engine.Row {
	return engine.Row{Key: bytes.Clone(r.Key), Value: bytes.Clone(r.Value), TS: r.TS, Deleted: r.Deleted}
}

func sameRow(a, b *engine.Row) bool {
	return bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value) && a.TS == b.TS && a.Deleted == b.Deleted
}

func fmtRow(r *engine.Row) string {
	if r == nil {
		return "<nil>"
	}
	return fmt.Sprintf("{%q %q %d %v}", r.Key, r.Value, r.TS, r.Deleted)
}

// sortRows sorts rows by (token, key) the slow, obvious way: the order the
// store must keep.
func sortRows(p token.Partitioner, rows []engine.Row) {
	slices.SortFunc(rows, func(a, b engine.Row) int {
		if c := cmp.Compare(p.Token(a.Key), p.Token(b.Key)); c != 0 {
			return c
		}
		return bytes.Compare(a.Key, b.Key)
	})
}

func checkRows(t testing.TB, what string, got, want []engine.Row) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !sameRow(&got[i], &want[i]) {
			t.Fatalf("%s: row %d is %s, want %s", what, i, fmtRow(&got[i]), fmtRow(&want[i]))
		}
	}
}

// all returns copies of every row of s, through All.
func all(t testing.TB, s *Store) []engine.Row {
	t.Helper()
	var rows []engine.Row
	if err := s.All(context.Background(), func(r *engine.Row) error {
		rows = append(rows, clone(r))
		return nil
	}); err != nil {
		t.Fatalf("All: %v", err)
	}
	return rows
}

// oracle is a replica as a map, written one row at a time by the repair
// rule: the obvious implementation the store must agree with.
type oracle map[string]engine.Row

func (o oracle) put(r *engine.Row) {
	if old, ok := o[string(r.Key)]; !ok || engine.Supersedes(r, &old) {
		o[string(r.Key)] = clone(r)
	}
}

func (o oracle) rows(p token.Partitioner) []engine.Row {
	rows := make([]engine.Row, 0, len(o))
	for _, r := range o {
		rows = append(rows, r)
	}
	sortRows(p, rows)
	return rows
}

func (o oracle) dataBytes() int64 {
	var n int64
	for _, r := range o {
		n += int64(len(r.Key) + len(r.Value))
	}
	return n
}

func (o oracle) clone() oracle {
	c := make(oracle, len(o))
	for k, v := range o {
		c[k] = v
	}
	return c
}

// keyPool returns keys that stress ordering: for ByteOrdered, groups that
// share a token (one 8-byte prefix; a short key and its zero-padded forms;
// the empty key and the all-zero prefixes); for both, binary and text keys.
func keyPool(rng *rand.Rand, n int) [][]byte {
	keys := [][]byte{
		{}, {0}, {0, 0, 0, 0, 0, 0, 0, 0, 9}, {0, 0, 0, 0, 0, 0, 0, 1},
		[]byte("ab"), []byte("ab\x00"), []byte("ab\x00\x00\x00\x00\x00\x00"), []byte("ab\x00\x00\x00\x00\x00\x00\x01"),
		[]byte("prefix00"), []byte("prefix00a"), []byte("prefix00b"), []byte("prefix00ba"),
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		[]byte("user:1"), []byte("ключ"),
	}
	for len(keys) < n {
		switch rng.IntN(3) {
		case 0:
			keys = append(keys, fmt.Appendf(nil, "prefix00%d", rng.IntN(1000)))
		case 1:
			k := make([]byte, rng.IntN(12))
			for i := range k {
				k[i] = byte(rng.Uint32())
			}
			keys = append(keys, k)
		default:
			keys = append(keys, fmt.Appendf(nil, "user:%d", rng.IntN(1_000_000)))
		}
	}
	return keys
}

var values = [][]byte{nil, []byte("a"), []byte("b"), []byte("ab"), []byte("a longer value, to move the slab along"), {0xff, 0}}

// randomRow draws a row whose versions often tie: few timestamps, few values.
func randomRow(rng *rand.Rand, keys [][]byte) engine.Row {
	return engine.Row{
		Key:     bytes.Clone(keys[rng.IntN(len(keys))]),
		Value:   bytes.Clone(values[rng.IntN(len(values))]),
		TS:      rng.Int64N(5) - 1,
		Deleted: rng.IntN(4) == 0,
	}
}

// sliceSource yields rows from a slice.
type sliceSource struct {
	rows []engine.Row
	err  error // returned after the rows instead of io.EOF, if set
}

func (s *sliceSource) NextRow(r *engine.Row) error {
	if len(s.rows) == 0 {
		if s.err != nil {
			return s.err
		}
		return io.EOF
	}
	*r = s.rows[0]
	s.rows = s.rows[1:]
	return nil
}

// state is everything a store holds, internals included: two equal states
// mean the store did not change at all.
type state struct {
	ents          []entry
	slab          []byte
	garbage, data int64
}

func snapshot(s *Store) state {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return state{slices.Clone(s.ents), bytes.Clone(s.slab), s.garbage, s.data}
}

func (a state) equal(b state) bool {
	return slices.Equal(a.ents, b.ents) && bytes.Equal(a.slab, b.slab) && a.garbage == b.garbage && a.data == b.data
}

// checkInvariants checks the store's own bookkeeping: entries sorted and
// unique, tokens right, the garbage count exact, the slab compacted by the
// rule.
func checkInvariants(t testing.TB, s *Store) {
	t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	var live, data int64
	var prev engine.Row
	for i, e := range s.ents {
		var r engine.Row
		n := decode(s.slab, e.off, &r)
		live += int64(n)
		data += int64(len(r.Key) + len(r.Value))
		if tok := s.p.Token(r.Key); tok != e.tok {
			t.Fatalf("entry %d: token %d, key %q has token %d", i, e.tok, r.Key, tok)
		}
		if i > 0 && compareEntries(s.slab, s.ents[i-1], e) >= 0 {
			t.Fatalf("entries %d and %d out of order: %q then %q", i-1, i, prev.Key, r.Key)
		}
		prev = r
	}
	if got := int64(len(s.slab)) - s.garbage; got != live {
		t.Fatalf("slab %d bytes less garbage %d = %d, but live records take %d", len(s.slab), s.garbage, got, live)
	}
	if s.garbage > int64(len(s.slab))/2 {
		t.Fatalf("garbage %d of a %d-byte slab: not compacted", s.garbage, len(s.slab))
	}
	if data != s.data {
		t.Fatalf("DataBytes bookkeeping %d, rows hold %d", s.data, data)
	}
}
