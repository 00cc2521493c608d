package grovepebble

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/antientropy/grove/engine"
)

// operand is one version of a key as a write stores it.
type operand struct {
	row     engine.Row
	born    uint64
	hasBorn bool
}

// mergeKey is the composite key the operands are stored under.
var mergeKey = []byte("\x01tokenk")

func (o operand) encode() []byte { return appendStored(nil, mergeKey, &o.row, o.born, o.hasBorn) }

// mergeAll runs Merger over values as Pebble would, the first operand
// given to Merge and the rest through MergeNewer or MergeOlder.
func mergeAll(t *testing.T, values [][]byte, newer bool) []byte {
	t.Helper()
	return mergeWith(t, Merger, values, newer)
}

// mergeWith is mergeAll with merger m.
func mergeWith(t *testing.T, m *pebble.Merger, values [][]byte, newer bool) []byte {
	t.Helper()
	vm, err := m.Merge(mergeKey, values[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range values[1:] {
		if newer {
			err = vm.MergeNewer(v)
		} else {
			err = vm.MergeOlder(v)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	out, closer, err := vm.Finish(true)
	if err != nil {
		t.Fatal(err)
	}
	got := append([]byte(nil), out...)
	if closer != nil {
		closer.Close()
	}
	return got
}

// TestMergerKeepsTheWinner checks the merge operator against its oracle:
// whatever the order and grouping of a key's versions, the result is the
// version engine.Supersedes puts above all the others, with the earliest
// generation of birth — none if any version has none.
func TestMergerKeepsTheWinner(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	values := [][]byte{nil, []byte("a"), []byte("b"), []byte("bb")}
	for trial := range 2000 {
		ops := make([]operand, 1+rng.IntN(6))
		for i := range ops {
			ops[i] = operand{
				row:     engine.Row{Key: []byte("k"), Value: values[rng.IntN(len(values))], TS: int64(rng.IntN(4)), Deleted: rng.IntN(3) == 0},
				born:    uint64(1 + rng.IntN(9)),
				hasBorn: rng.IntN(8) != 0,
			}
		}
		want := ops[0]
		for _, o := range ops[1:] {
			if engine.Supersedes(&o.row, &want.row) {
				want.row = o.row
			}
		}
		for _, o := range ops {
			if !o.hasBorn || !want.hasBorn {
				want.born, want.hasBorn = 0, false
			} else {
				want.born = min(want.born, o.born)
			}
		}
		enc := make([][]byte, len(ops))
		for i, o := range ops {
			enc[i] = o.encode()
		}
		// In order, reversed, and in two groups merged again, as a
		// compaction of part of the operands and a later read do.
		split := rng.IntN(len(enc))
		grouped := [][]byte{mergeAll(t, enc[:split+1], true)}
		if split+1 < len(enc) {
			grouped = append(grouped, mergeAll(t, enc[split+1:], true))
		}
		rev := make([][]byte, len(enc))
		for i := range enc {
			rev[i] = enc[len(enc)-1-i]
		}
		for name, got := range map[string][]byte{
			"newer":   mergeAll(t, enc, true),
			"older":   mergeAll(t, rev, false),
			"grouped": mergeAll(t, grouped, true),
		} {
			var r engine.Row
			born, has, err := decodeValueBorn(mergeKey, got, &r, true)
			if err != nil {
				t.Fatalf("trial %d %s: %v", trial, name, err)
			}
			if r.TS != want.row.TS || r.Deleted != want.row.Deleted || string(r.Value) != string(want.row.Value) || born != want.born || has != want.hasBorn {
				t.Fatalf("trial %d %s: merged %+v born %d/%v, want %+v born %d/%v", trial, name, r, born, has, want.row, want.born, want.hasBorn)
			}
		}
	}
}

// TestMergerDropsDamagedOperands: a version that does not decode or fails
// its checksum never wins a merge, whatever its bytes — a value rotted to
// greater bytes at the same timestamp would win Cassandra's rule — and
// never fails it (a compaction would fail with it, for ever). When every
// version is damaged the first is kept as it was, for reads to refuse.
// Each damaged version is reported with its key. A key's only version
// passes through unchanged and unreported: its reader checks it.
func TestMergerDropsDamagedOperands(t *testing.T) {
	old := operand{row: engine.Row{Value: []byte("old"), TS: 1}, born: 3, hasBorn: true}
	cur := operand{row: engine.Row{Value: []byte("b"), TS: 2}, born: 5, hasBorn: true}
	rotted := cur.encode()
	rotted[len(rotted)-1] = 'z' // greater bytes, same timestamp, stale checksum
	unsummed := appendValueBorn(nil, &engine.Row{Value: []byte("zz"), TS: 9}, 1, true)
	for _, c := range []struct {
		name     string
		ops      [][]byte
		strict   bool
		want     []byte // nil: the first operand unchanged
		reported int
	}{
		{"rotted value newest", [][]byte{old.encode(), rotted}, false, old.encode(), 1},
		{"rotted value first", [][]byte{rotted, old.encode()}, false, old.encode(), 1},
		{"undecodable", [][]byte{{0x04}, cur.encode(), {0x04, 0, 0}}, false, cur.encode(), 2},
		{"no checksum, strict", [][]byte{cur.encode(), unsummed}, true, cur.encode(), 1},
		{"no checksum, upgraded database", [][]byte{cur.encode(), unsummed}, false, appendStored(nil, mergeKey, &engine.Row{Value: []byte("zz"), TS: 9}, 1, true), 0},
		{"all damaged", [][]byte{rotted, {0x04}}, false, nil, 2},
		// A key's only version has nothing to win against: it passes
		// through as it is, unchecked, for its reader to check.
		{"one sound version", [][]byte{cur.encode()}, true, nil, 0},
		{"one damaged version", [][]byte{rotted}, true, nil, 0},
		{"one version without checksum, strict", [][]byte{unsummed}, true, nil, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var reported [][]byte
			rule := &mergeRule{report: func(ck []byte) { reported = append(reported, slices.Clone(ck)) }}
			rule.strict.Store(c.strict)
			for _, newer := range []bool{true, false} {
				reported = nil
				got := mergeWith(t, rule.merger(), c.ops, newer)
				want := c.want
				if want == nil {
					want = c.ops[0]
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("newer %v: merged % x, want % x", newer, got, want)
				}
				if len(reported) != c.reported {
					t.Fatalf("newer %v: %d keys reported, want %d", newer, len(reported), c.reported)
				}
				for _, k := range reported {
					if !bytes.Equal(k, mergeKey) {
						t.Fatalf("reported key %q, want %q", k, mergeKey)
					}
				}
			}
		})
	}
}

// FuzzMergeOperands: a merge of any operand bytes never fails or panics,
// and yields either a sound checksummed version — one of the sound
// operands' rows — or, when no operand is sound, the first as it was.
func FuzzMergeOperands(f *testing.F) {
	good := operand{row: engine.Row{Value: []byte("v"), TS: 2}, born: 1, hasBorn: true}.encode()
	f.Add(good, []byte{0x04}, []byte(nil))
	f.Add([]byte{0x07, 1}, good, good[:len(good)-1])
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		ops := [][]byte{a, b, c}
		var sound []engine.Row
		for _, o := range ops {
			var r engine.Row
			if _, _, err := decodeValueBorn(mergeKey, o, &r, true); err == nil {
				sound = append(sound, r)
			}
		}
		for _, newer := range []bool{true, false} {
			rule := &mergeRule{}
			rule.strict.Store(true)
			got := mergeWith(t, rule.merger(), ops, newer)
			if len(sound) == 0 {
				if !bytes.Equal(got, a) {
					t.Fatalf("no sound operand: merged % x, want the first % x", got, a)
				}
				continue
			}
			var r engine.Row
			if _, _, err := decodeValueBorn(mergeKey, got, &r, true); err != nil {
				t.Fatalf("merged % x does not decode: %v", got, err)
			}
			win := sound[0]
			for _, s := range sound[1:] {
				if engine.Supersedes(&s, &win) {
					win = s
				}
			}
			if r.TS != win.TS || r.Deleted != win.Deleted || !bytes.Equal(r.Value, win.Value) {
				t.Fatalf("merged %+v, want the winner of the sound operands %+v", r, win)
			}
		}
	})
}
