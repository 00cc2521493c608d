package grovepebble

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
)

// A table whose blocks fail Pebble's checksums cannot be read past the
// damage: every read that reaches it fails, and so would every scrub of
// its ranges and every compaction of it, for ever. Pebble cannot skip a
// block, and the keys a damaged block held cannot be listed, so the node
// gives up the rows of the table's whole key span — in every level,
// since which versions lived in the damaged block is unknowable — with
// Pebble's Excise, and the scrub then sets the trees of the ranges the
// span crosses to the rows that remain: the next repair session sees the
// rows missing and brings them back from the peers.

// Excised is a span of rows the scrub dropped because a table holding it
// was damaged.
type Excised struct {
	// File is the damaged table; Span the tokens whose rows were dropped,
	// in every level, for a repair to restore from peers; Ranges the
	// node's ranges Span crosses, whose trees were set to the rows left.
	File   string
	Span   token.Range
	Ranges []token.Range
}

// damagedTable returns the path of the table a read failed on, if err is a
// Pebble corruption that names one.
func damagedTable(err error) (string, bool) {
	if err == nil || !pebble.IsCorruptionError(err) {
		return "", false
	}
	var ce *corruptError
	if errors.As(err, &ce) {
		err = ce.err
	}
	info := pebble.ExtractDataCorruptionInfo(err)
	if info == nil {
		return "", false
	}
	return localTable(info)
}

// localTable returns the path of the table a corruption report names, if
// it names a local table: only those can be dropped and listed.
func localTable(info *pebble.DataCorruptionInfo) (string, bool) {
	return info.Path, !info.IsRemote && strings.HasSuffix(info.Path, ".sst")
}

// exciseTable drops the rows of every key span the table at path backs
// (a table may back several virtual ones), and returns their token spans.
// The caller holds n.mu for writing, with the maintainer settled: the
// trees still count the dropped rows until the scrub reads their ranges
// again. Metadata keys the table holds are kept; if the damage is among
// them the next read says so again.
func (n *Node) exciseTable(ctx context.Context, path string) ([]Excised, error) {
	spans, err := n.tableRows(path)
	if err != nil {
		return nil, err
	}
	if len(spans) == 0 {
		return nil, fmt.Errorf("%w: damaged table %s holds no rows the node can drop", ErrCorrupt, path)
	}
	if n.db.FormatMajorVersion() < pebble.FormatVirtualSSTables {
		// Excise leaves what it keeps of a table as a virtual one.
		if err := n.db.RatchetFormatMajorVersion(pebble.FormatVirtualSSTables); err != nil {
			return nil, err
		}
	}
	var out []Excised
	for _, s := range spans {
		if err := n.db.Excise(ctx, pebble.KeyRange{Start: s[0], End: s[1]}); err != nil {
			return nil, fmt.Errorf("dropping the rows of damaged table %s: %w", path, err)
		}
		out = append(out, Excised{File: path, Span: tokenSpan(s[0], s[1])})
	}
	// The maintainer's next round must not read previous versions that
	// are gone.
	n.resnap()
	n.suspects.mu.Lock()
	delete(n.suspects.tables, path)
	n.suspects.mu.Unlock()
	return out, nil
}

// tableRows returns the spans of composite row keys, [lo, hi), that the
// table at path backs: one per table of the LSM it is the file of (a
// file backs several virtual tables after an excise), none once it is
// gone.
func (n *Node) tableRows(path string) ([][2][]byte, error) {
	num, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(path), ".sst"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: damaged table %s: not a table file name", ErrCorrupt, path)
	}
	levels, err := n.db.SSTables()
	if err != nil {
		return nil, err
	}
	var spans [][2][]byte
	for _, level := range levels {
		for _, t := range level {
			if uint64(t.BackingSSTNum) != num {
				continue
			}
			// The rows of [Smallest, Largest], inclusive: Excise takes an
			// exclusive end, the key after Largest.
			lo := t.Smallest.UserKey
			hi := append(slices.Clip(t.Largest.UserKey), 0)
			lo, hi = maxKey(lo, []byte{rowPrefix}), minKey(hi, []byte{rowPrefix + 1})
			if bytes.Compare(lo, hi) < 0 {
				spans = append(spans, [2][]byte{slices.Clone(lo), slices.Clone(hi)})
			}
		}
	}
	return spans, nil
}

// damagedTableSpans are the token spans of the tables Pebble reported
// damaged since Open and the scrub has not yet dropped: the scrub takes
// the ranges crossing them first.
func (n *Node) damagedTableSpans() []Excised {
	n.suspects.mu.Lock()
	paths := make([]string, 0, len(n.suspects.tables))
	for p := range n.suspects.tables {
		paths = append(paths, p)
	}
	n.suspects.mu.Unlock()
	var out []Excised
	for _, p := range paths {
		spans, err := n.tableRows(p)
		if err != nil {
			continue
		}
		for _, s := range spans {
			out = append(out, Excised{File: p, Span: tokenSpan(s[0], s[1])})
		}
	}
	return out
}

// tableDamaged records a table Pebble reported damaged. Pebble calls it
// from its own goroutines too.
func (n *Node) tableDamaged(info pebble.DataCorruptionInfo) {
	path, ok := localTable(&info)
	if !ok {
		return
	}
	n.suspects.mu.Lock()
	defer n.suspects.mu.Unlock()
	if n.suspects.tables == nil {
		n.suspects.tables = map[string]bool{}
	}
	n.suspects.tables[path] = true
}

// tokenSpan is the smallest token range holding the rows of composite
// keys [lo, hi).
func tokenSpan(lo, hi []byte) token.Range {
	tokenOf := func(k []byte, def token.Token) token.Token {
		if len(k) < keyHeader || k[0] != rowPrefix {
			return def
		}
		t, _, _ := splitRowKey(k[:keyHeader])
		return t
	}
	r := token.Range{Lo: tokenOf(lo, math.MinInt64), Hi: tokenOf(hi, math.MaxInt64)}
	if r.Lo > math.MinInt64 {
		r.Lo-- // (Lo, Hi]: the first key's token is inside
	}
	return r
}

func maxKey(a, b []byte) []byte {
	if bytes.Compare(a, b) >= 0 {
		return a
	}
	return b
}

func minKey(a, b []byte) []byte {
	if bytes.Compare(a, b) <= 0 {
		return a
	}
	return b
}

// validateRecovering is the validation scan of a node of one range, which
// drops the rows of up to maxDamagedTables damaged tables it meets, as
// the scrub does, and scans again into a new tree: no tree has been
// served yet, so one built from the rows left is the truth, and a repair
// brings the others back. A node that could not open over a damaged
// table could not run the scrub that recovers it either.
func (n *Node) validateRecovering(ctx context.Context, to engine.Options) (ScanStats, error) {
	var excised []Excised
	for tables := maxDamagedTables; ; tables-- {
		st, err := n.validate(ctx)
		path, damaged := damagedTable(err)
		if !damaged || tables == 0 {
			st.Excised = excised
			return st, err
		}
		ex, xerr := n.exciseTable(ctx, path)
		if xerr != nil {
			return st, errors.Join(err, xerr)
		}
		for _, e := range ex {
			e.Ranges = []token.Range{n.rng}
			excised = append(excised, e)
			n.events.log.Errorf("grovepebble: open: table %s is damaged; dropped the rows of tokens %v from %s, for the next repair to restore from peers", e.File, e.Span, n.dir)
		}
		n.tree.Close()
		if n.tree, err = engine.New(to); err != nil {
			return st, err
		}
	}
}
