package grovepebble

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/antientropy/grove/engine"
)

// operand is one version of a key as a write stores it.
type operand struct {
	row     engine.Row
	born    uint64
	hasBorn bool
}

func (o operand) encode() []byte { return appendValueBorn(nil, &o.row, o.born, o.hasBorn) }

// mergeAll runs Merger over values as Pebble would, the first operand
// given to Merge and the rest through MergeNewer or MergeOlder.
func mergeAll(t *testing.T, values [][]byte, newer bool) []byte {
	t.Helper()
	vm, err := Merger.Merge([]byte("k"), values[0])
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
			born, has, err := decodeValueBorn(got, &r)
			if err != nil {
				t.Fatalf("trial %d %s: %v", trial, name, err)
			}
			if r.TS != want.row.TS || r.Deleted != want.row.Deleted || string(r.Value) != string(want.row.Value) || born != want.born || has != want.hasBorn {
				t.Fatalf("trial %d %s: merged %+v born %d/%v, want %+v born %d/%v", trial, name, r, born, has, want.row, want.born, want.hasBorn)
			}
		}
	}
}

// TestMergerRefusesCorruptOperands: an operand that does not decode fails
// the merge, naming the key, instead of being kept or dropped.
func TestMergerRefusesCorruptOperands(t *testing.T) {
	good := operand{row: engine.Row{Value: []byte("v"), TS: 1}}.encode()
	if _, err := Merger.Merge([]byte("k"), []byte{0x04}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Merge of a corrupt first operand: %v, want ErrCorrupt", err)
	}
	vm, err := Merger.Merge([]byte("k"), good)
	if err != nil {
		t.Fatal(err)
	}
	if err := vm.MergeNewer([]byte{0x04, 0, 0}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("MergeNewer of a corrupt operand: %v, want ErrCorrupt", err)
	}
}
