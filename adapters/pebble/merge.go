package grovepebble

import (
	"io"
	"sync"
	"sync/atomic"

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
//
// A version that does not decode or fails its checksum is dropped when
// another is valid: it must not win, and failing the merge instead would
// fail every compaction of its table, for ever. When none is valid the
// first is kept as it is, for reads to refuse and a scrub to move aside.
// A Node's own merger also reports the key, so that its next scrub checks
// the key's range first. A key's only version, having nothing to win
// against, passes through as it is, unchecked: every reader of a row
// checks its checksum, and a merge that checked it too would check nearly
// every row of every scan and compaction twice more.
var Merger = (&mergeRule{}).merger()

// mergeRule is what a merger's merges share: once strict is set, a
// version without a checksum is damage; report, if not nil, is told each
// key a damaged version of which was dropped or kept. Pebble calls report
// from its compactions and reads, so it must be quick and not block.
type mergeRule struct {
	strict atomic.Bool
	report func(ck []byte)
}

// merger is the merge operator that follows rule.
func (rule *mergeRule) merger() *pebble.Merger {
	return &pebble.Merger{Name: MergerName, Merge: rule.start}
}

// supersedes merges versions of one key. Operands arrive newest-first or
// oldest-first; the rule is a strict order on versions, so the order does
// not matter, and neither does how Pebble groups them: the merge is
// associative.
type supersedes struct {
	rule    *mergeRule
	key     []byte // the composite key, owned: each checksum covers it
	win     []byte // the winning operand so far, owned
	out     []byte // Finish's result, valid until Close
	row     engine.Row
	born    uint64
	hasBorn bool
	// valid says win decoded and passed its checksum; if not and kept,
	// win is the first operand, kept as it was because no other was valid
	// either.
	valid, kept bool
	// first is the first operand, owned, while it is the only one: a key
	// written once (nearly every key a compaction or a scan meets) has
	// nothing to choose between, so its operand passes through as it is,
	// neither decoded nor re-encoded; the reader that decodes it checks
	// its checksum. A second operand makes it pending no longer.
	first   []byte
	pending bool
}

var mergerPool = sync.Pool{New: func() any { return new(supersedes) }}

func (rule *mergeRule) start(key, value []byte) (pebble.ValueMerger, error) {
	m := mergerPool.Get().(*supersedes)
	m.rule, m.valid, m.kept = rule, false, false
	m.key = append(m.key[:0], key...)
	m.win = m.win[:0]
	// Held as a copy: value is Pebble's only until the call returns.
	m.first, m.pending = append(m.first[:0], value...), true
	return m, nil
}

func (m *supersedes) MergeNewer(value []byte) error { m.another(value); return nil }
func (m *supersedes) MergeOlder(value []byte) error { m.another(value); return nil }

// another merges an operand after the first, which is merged first if it
// is still pending.
func (m *supersedes) another(value []byte) {
	if m.pending {
		m.pending = false
		m.merge(m.first)
	}
	m.merge(value)
}

// merge takes value if it wins over the version held; the generation of
// birth is the earliest of the valid versions, and a version without one
// (written before layout 2) is older than every generation.
func (m *supersedes) merge(value []byte) {
	var r engine.Row
	born, has, err := decodeValueBorn(m.key, value, &r, m.rule.strict.Load())
	switch {
	case err != nil:
		if m.rule.report != nil {
			m.rule.report(m.key)
		}
		if !m.valid && !m.kept {
			m.win, m.kept = append(m.win[:0], value...), true
		}
		return
	case !m.valid:
		m.born, m.hasBorn = born, has
	case !has || !m.hasBorn:
		m.born, m.hasBorn = 0, false
	default:
		m.born = min(m.born, born)
	}
	if !m.valid || engine.Supersedes(&r, &m.row) {
		// Held as a copy: value is Pebble's only until the call returns.
		// r.Value ends where value does, or its checksum starts.
		end := len(value)
		if value[0]&flagSum != 0 {
			end -= sumBytes
		}
		m.win = append(m.win[:0], value...)
		r.Value = m.win[end-len(r.Value) : end]
		m.row, m.valid = r, true
	}
}

// Finish re-encodes the winner with the merged generation of birth and its
// checksum, or returns the damaged operand unchanged if no operand was
// valid, or the only operand as it is. The result stays valid until the returned closer puts the merger
// back in its pool.
func (m *supersedes) Finish(includesBase bool) ([]byte, io.Closer, error) {
	if m.pending {
		return m.first, m, nil
	}
	if !m.valid {
		m.out = append(m.out[:0], m.win...)
		return m.out, m, nil
	}
	m.out = appendStored(m.out[:0], m.key, &m.row, m.born, m.hasBorn)
	return m.out, m, nil
}

// Close returns the merger to its pool once Pebble is done with Finish's
// result.
func (m *supersedes) Close() error {
	m.row = engine.Row{}
	mergerPool.Put(m)
	return nil
}
