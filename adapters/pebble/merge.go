package grovepebble

import (
	"fmt"
	"io"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/antientropy/grove/engine"
)

// MergerName is the name of Merger, which Pebble records in the database's
// OPTIONS file and checks at every open.
const MergerName = "grove.supersedes.v1"

// Merger is the merge operator a node's database is written with: a write
// is a Pebble Merge of the new version, and whenever Pebble meets several
// versions of a key — reading it, or compacting — it keeps the one that
// wins by engine.Supersedes (Cassandra's rule), with the earliest
// generation of birth among them. So a write needs no read of the stored
// version to be correct: the store resolves versions as a reconciling
// replica would. Open a node's database with it to read it with Pebble
// directly (pebble.Options.Merger); Pebble refuses any other.
var Merger = &pebble.Merger{Name: MergerName, Merge: newSupersedes}

// supersedes merges versions of one key. Operands arrive newest-first or
// oldest-first; the rule is a strict order on versions, so the order does
// not matter, and neither does how Pebble groups them: the merge is
// associative.
type supersedes struct {
	win     []byte // the winning operand so far, owned
	out     []byte // Finish's result, valid until Close
	row     engine.Row
	born    uint64
	hasBorn bool
	err     error
}

var mergerPool = sync.Pool{New: func() any { return new(supersedes) }}

func newSupersedes(key, value []byte) (pebble.ValueMerger, error) {
	m := mergerPool.Get().(*supersedes)
	m.win = append(m.win[:0], value...)
	born, has, err := decodeValueBorn(m.win, &m.row)
	if err != nil {
		mergerPool.Put(m)
		return nil, fmt.Errorf("grovepebble: merging versions of key %s: %w", keyText(key), err)
	}
	m.born, m.hasBorn = born, has
	return m, nil
}

func (m *supersedes) MergeNewer(value []byte) error { return m.merge(value) }
func (m *supersedes) MergeOlder(value []byte) error { return m.merge(value) }

// merge takes value if it wins over the version held; the generation of
// birth is the earliest of both, and a version without one (written
// before layout 2) is older than every generation.
func (m *supersedes) merge(value []byte) error {
	var r engine.Row
	born, has, err := decodeValueBorn(value, &r)
	if err != nil {
		return fmt.Errorf("grovepebble: merging versions: %w", err)
	}
	switch {
	case !has || !m.hasBorn:
		m.born, m.hasBorn = 0, false
	default:
		m.born = min(m.born, born)
	}
	if engine.Supersedes(&r, &m.row) {
		// Held as a copy: value is Pebble's only until the call returns.
		// r.Value is value's tail, so the copy's tail is the row's value.
		m.win = append(m.win[:0], value...)
		r.Value = m.win[len(m.win)-len(r.Value):]
		m.row = r
	}
	return nil
}

// Finish re-encodes the winner with the merged generation of birth. The
// result stays valid until the returned closer puts the merger back in
// its pool.
func (m *supersedes) Finish(includesBase bool) ([]byte, io.Closer, error) {
	m.out = appendValueBorn(m.out[:0], &m.row, m.born, m.hasBorn)
	return m.out, m, nil
}

// Close returns the merger to its pool once Pebble is done with Finish's
// result.
func (m *supersedes) Close() error {
	m.row = engine.Row{}
	mergerPool.Put(m)
	return nil
}
