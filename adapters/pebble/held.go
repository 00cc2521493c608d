package grovepebble

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/antientropy/grove/engine/token"
)

// This file is what a node of many ranges keeps across ring changes: the
// token spans its database may hold rows in, and the id of the ring node it
// is.
//
// When a node joins the ring, the nodes whose ranges it takes keep those
// rows until an operator cleans them up, as Cassandra's nodetool cleanup:
// until the join has streamed them to the new replica, they may be the only
// copy. So an Open whose Ranges no longer cover rows the database held is
// not an error; those rows are unowned — in no tree, served to no peer,
// written by no one — until Cleanup deletes them. A row in a span the node
// never held is still one that no ring put there, and fails Open.

var (
	// metaHeld records the spans the node's rows may lie in: its ranges,
	// and those it no longer replicates but has not cleaned up.
	metaHeld = []byte("\x00held")
	// metaNode records the ring node id the database belongs to.
	metaNode = []byte("\x00node")
)

// encodeSpans encodes token spans as 16 bytes each: Lo then Hi, as row
// tokens are encoded.
func encodeSpans(spans []token.Range) []byte {
	out := make([]byte, 0, 2*tokenBytes*len(spans))
	for _, s := range spans {
		out = binary.BigEndian.AppendUint64(out, uint64(s.Lo)^(1<<63))
		out = binary.BigEndian.AppendUint64(out, uint64(s.Hi)^(1<<63))
	}
	return out
}

// decodeSpans reads what encodeSpans wrote, checking the spans are valid,
// in order and disjoint.
func decodeSpans(v []byte) ([]token.Range, error) {
	if len(v)%(2*tokenBytes) != 0 {
		return nil, fmt.Errorf("%w: held-spans record of %d bytes, want a multiple of %d", ErrCorrupt, len(v), 2*tokenBytes)
	}
	var out []token.Range
	for b := v; len(b) > 0; b = b[2*tokenBytes:] {
		s := token.Range{
			Lo: token.Token(binary.BigEndian.Uint64(b[:tokenBytes]) ^ (1 << 63)),
			Hi: token.Token(binary.BigEndian.Uint64(b[tokenBytes:]) ^ (1 << 63)),
		}
		if err := s.Valid(); err != nil {
			return nil, fmt.Errorf("%w: held-spans record: span %d: %v", ErrCorrupt, len(out)+1, err)
		}
		if len(out) > 0 && s.Lo <= out[len(out)-1].Hi {
			return nil, fmt.Errorf("%w: held-spans record: span %v after %v", ErrCorrupt, s, out[len(out)-1])
		}
		out = append(out, s)
	}
	return out, nil
}

// mergeSpans returns the union of spans as disjoint spans in token order,
// adjacent ones joined.
func mergeSpans(spans []token.Range) []token.Range {
	s := slices.Clone(spans)
	slices.SortFunc(s, func(a, b token.Range) int { return cmp.Compare(a.Lo, b.Lo) })
	var out []token.Range
	for _, r := range s {
		if last := len(out) - 1; last >= 0 && r.Lo <= out[last].Hi {
			out[last].Hi = max(out[last].Hi, r.Hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// subtractSpans returns the parts of spans that no range of rs covers;
// rs must be in token order and disjoint.
func subtractSpans(spans, rs []token.Range) []token.Range {
	var out []token.Range
	for _, s := range spans {
		lo := s.Lo
		for _, r := range rs {
			if r.Hi <= lo || r.Lo >= s.Hi {
				continue
			}
			if r.Lo > lo {
				out = append(out, token.Range{Lo: lo, Hi: r.Lo})
			}
			lo = max(lo, r.Hi)
		}
		if lo < s.Hi {
			out = append(out, token.Range{Lo: lo, Hi: s.Hi})
		}
	}
	return out
}

// readHeld returns the spans recorded in the database, nil if none.
func (n *Node) readHeld() ([]token.Range, error) {
	v, closer, err := n.db.Get(metaHeld)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return decodeSpans(v)
}

// checkNodeID refuses a database recorded as another ring node's: opened
// under the wrong --node, every row would look like a range given away.
// It reports whether id must be recorded.
func (n *Node) checkNodeID(id string) (bool, error) {
	if id == "" {
		return false, nil
	}
	v, closer, err := n.db.Get(metaNode)
	if errors.Is(err, pebble.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	if string(v) != id {
		return false, fmt.Errorf("%w: the database at %s is ring node %q's, opened as node %q", ErrIncompatible, n.dir, v, id)
	}
	return false, nil
}

// holdSpans makes the node's ranges rs, checking that every stored row
// lies in them or in a span the database held before, and records, durably
// and before any tree is dropped, the spans it now holds: rs and the
// unowned rest of what it held. It records id too if the database has none.
func (n *Node) holdSpans(rs []token.Range, id string) error {
	recordID, err := n.checkNodeID(id)
	if err != nil {
		return err
	}
	held, err := n.readHeld()
	if err != nil {
		return err
	}
	n.unowned = subtractSpans(held, rs)
	now := mergeSpans(append(slices.Clone(rs), n.unowned...))
	where := fmt.Sprintf("in none of the node's %d ranges", len(rs))
	if len(n.unowned) > 0 {
		where += fmt.Sprintf(" nor in the %d spans it held before its ring changed", len(n.unowned))
	}
	// A row no range holds is in no tree: it would never be repaired nor
	// served. One seek per gap finds any.
	for _, gap := range gaps(now) {
		if err := n.noRows(gap[0], gap[1], where); err != nil {
			return err
		}
	}
	b := n.db.NewBatch()
	defer b.Close()
	if !slices.Equal(held, now) {
		if err := b.Set(metaHeld, encodeSpans(now), nil); err != nil {
			return err
		}
	}
	if recordID {
		if err := b.Set(metaNode, []byte(id), nil); err != nil {
			return err
		}
	}
	if b.Empty() {
		return nil
	}
	return n.db.Apply(b, pebble.Sync)
}

// gaps returns the composite-key spans of the row prefix that no span of
// spans (disjoint, in token order) holds.
func gaps(spans []token.Range) [][2][]byte {
	var out [][2][]byte
	prev := []byte{rowPrefix}
	for _, r := range spans {
		lower, upper := rangeBounds(r)
		if bytes.Compare(prev, lower) < 0 {
			out = append(out, [2][]byte{prev, lower})
		}
		prev = upper
	}
	if end := []byte{rowPrefix + 1}; bytes.Compare(prev, end) < 0 {
		out = append(out, [2][]byte{prev, end})
	}
	return out
}

// Unowned returns the token spans whose rows a node of many ranges keeps
// but no longer replicates, since its ring changed: in no tree, served to
// no peer, refused to writers, until Cleanup deletes them. Nil for a node
// of one range.
func (n *Node) Unowned() []token.Range {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return slices.Clone(n.unowned)
}

// DiskBytes returns Pebble's estimate of the disk space the rows of token
// range r take: what deleting them would in time free.
func (n *Node) DiskBytes(r token.Range) (_ uint64, err error) {
	defer n.catch(&err)
	if err := r.Valid(); err != nil {
		return 0, fmt.Errorf("grovepebble: disk bytes: %w", err)
	}
	if err := n.use(); err != nil {
		return 0, err
	}
	defer n.life.RUnlock()
	lower, upper := rangeBounds(r)
	return n.db.EstimateDiskUsage(lower, upper)
}

// CleanupStats say what Cleanup deleted.
type CleanupStats struct {
	// Spans are the token spans whose rows it deleted.
	Spans []token.Range
	// Bytes is Pebble's estimate, before the delete, of the disk space
	// those rows took. Pebble frees it as it compacts the files the
	// deletion covers; files wholly inside a span go first, without being
	// rewritten.
	Bytes uint64
}

// Cleanup deletes, in one synced batch, every row of the spans the node no
// longer replicates (Unowned), as Cassandra's nodetool cleanup does after
// a node joins: run it once the new replicas hold those rows. It reads no
// rows and touches no tree.
func (n *Node) Cleanup(ctx context.Context) (_ CleanupStats, err error) {
	defer n.catch(&err)
	if err := n.use(); err != nil {
		return CleanupStats{}, err
	}
	defer n.life.RUnlock()
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.unowned) == 0 {
		return CleanupStats{}, nil
	}
	if err := ctx.Err(); err != nil {
		return CleanupStats{}, err
	}
	st := CleanupStats{Spans: slices.Clone(n.unowned)}
	b := n.db.NewBatch()
	defer b.Close()
	for _, s := range n.unowned {
		lower, upper := rangeBounds(s)
		size, err := n.db.EstimateDiskUsage(lower, upper)
		if err != nil {
			return CleanupStats{}, err
		}
		st.Bytes += size
		if err := b.DeleteRange(lower, upper, nil); err != nil {
			return CleanupStats{}, err
		}
	}
	if err := b.Set(metaHeld, encodeSpans(mergeSpans(n.ranges)), nil); err != nil {
		return CleanupStats{}, err
	}
	if err := n.commit(b, pebble.Sync); err != nil {
		return CleanupStats{}, fmt.Errorf("grovepebble: cleanup: %w", err)
	}
	n.unowned = nil
	return st, nil
}
