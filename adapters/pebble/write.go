package grovepebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
)

// Put writes key = value at timestamp ts and reports whether it was written.
// Like a replica reconciling the write, it keeps the stored version when
// that one wins by engine.Supersedes (a newer write, a tombstone at the same
// timestamp, or greater value bytes): such a Put is a no-op. It commits with
// an fsync of Pebble's WAL unless Options.NoSync.
func (n *Node) Put(ctx context.Context, key, value []byte, ts int64) (bool, error) {
	w, err := n.write(ctx, []engine.Row{{Key: key, Value: value, TS: ts}}, n.putOpt)
	return w == 1, err
}

// Delete writes a tombstone for key at timestamp ts and reports whether it
// was written; as Put, it is a no-op if the stored version wins. The
// tombstone is a row like any other: it is what tells a peer that still
// holds the key that it was deleted.
func (n *Node) Delete(ctx context.Context, key []byte, ts int64) (bool, error) {
	w, err := n.write(ctx, []engine.Row{{Key: key, TS: ts, Deleted: true}}, n.putOpt)
	return w == 1, err
}

// Apply implements repair.Replica: of rows, it writes every row that wins
// over the stored version of its key (or whose key is absent) in one Pebble
// batch, committed with an fsync, and returns how many it wrote. Of several
// rows for one key, only the one that wins among them is considered. Every
// row must fall in the Node's range.
//
// Nothing is written, and the tree is untouched, if any row is refused, ctx
// ends before the commit, or the commit fails: the tree is updated only once
// the batch is in. (If the tree then cannot follow — it never should — the
// error wraps ErrInconsistent and the Node refuses further writes until it
// is reopened.)
func (n *Node) Apply(ctx context.Context, rows []engine.Row) (int, error) {
	return n.write(ctx, rows, pebble.Sync)
}

// planned is a row to write: its composite key and its index in the input.
type planned struct {
	ck []byte
	in int
}

// change is a row written by a batch, with the digest of the version it
// replaced, for the tree update after the commit.
type change struct {
	in     int
	old    engine.Digest
	hadOld bool
}

// write is the write path of Put, Delete and Apply.
func (n *Node) write(ctx context.Context, rows []engine.Row, wo *pebble.WriteOptions) (_ int, err error) {
	defer n.catch(&err)
	plan, err := n.plan(rows)
	if err != nil {
		return 0, err
	}
	if err := n.use(); err != nil {
		return 0, err
	}
	defer n.life.RUnlock()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.broken != nil {
		return 0, n.broken
	}
	if len(plan) == 0 {
		return 0, nil
	}

	// Read before write: a row is written only if it wins over the stored
	// version, and the tree must lose that version's digest.
	b := n.db.NewBatch()
	defer b.Close()
	// One iterator reads every stored version of the batch, in key order:
	// a prefix seek consults the tables' bloom filters as a Get does, and
	// the batch pays for one iterator instead of one per row.
	it, err := n.db.NewIter(nil)
	if err != nil {
		return 0, fmt.Errorf("grovepebble: write: %w", err)
	}
	defer it.Close()
	changes := make([]change, 0, len(plan))
	var val []byte
	for i, w := range plan {
		if i%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return 0, fmt.Errorf("grovepebble: write: %w", err)
			}
		}
		row := &rows[w.in]
		c := change{in: w.in}
		var wins bool
		found, err := n.seekStored(it, w.ck, func(old *engine.Row) {
			if wins = engine.Supersedes(row, old); wins {
				c.old, c.hadOld = n.hasher.Digest(old), true
			}
		})
		if err != nil {
			return 0, fmt.Errorf("grovepebble: write: reading the stored version: %w", err)
		}
		if found && !wins {
			continue
		}
		val = appendValue(val[:0], row)
		if err := b.Set(w.ck, val, nil); err != nil {
			return 0, fmt.Errorf("grovepebble: write: %w", err)
		}
		changes = append(changes, c)
	}
	if len(changes) == 0 {
		return 0, nil
	}
	var marked map[markLeaf]int64
	if n.forest != nil {
		if marked, err = n.addMarks(b, rows, changes); err != nil {
			return 0, err
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("grovepebble: write: %w", err)
	}
	if err := n.dropStaleForest(); err != nil {
		return 0, err
	}
	if err := n.commit(b, wo); err != nil {
		return 0, fmt.Errorf("grovepebble: write: commit of %d rows: %w", len(changes), err)
	}
	// The batch is in: the tree follows it whatever ctx says now.
	if n.forest != nil {
		for k, v := range marked {
			n.marks.rows[k.leaf] = v
		}
		return n.updateForest(rows, changes)
	}
	for _, c := range changes {
		row := &rows[c.in]
		d := n.hasher.Digest(row)
		old := &c.old
		if !c.hadOld {
			old = nil
		}
		if err := n.tree.UpdateDigest(row.Key, old, &d); err != nil {
			n.broken = fmt.Errorf("%w: updating the tree after a commit: %v", ErrInconsistent, err)
			return len(changes), n.broken
		}
	}
	return len(changes), nil
}

// plan checks every row, computes its composite key, and keeps of several
// rows for one key the one that wins among them, in key order — the order
// Pebble takes a batch best in.
func (n *Node) plan(rows []engine.Row) ([]planned, error) {
	size := 0
	for i := range rows {
		r := &rows[i]
		if len(r.Key) > engine.MaxKeyBytes {
			return nil, fmt.Errorf("grovepebble: row %d: %w: %d bytes, at most %d", i, ErrKeyTooLarge, len(r.Key), engine.MaxKeyBytes)
		}
		if tok := n.p.Token(r.Key); !n.holds(tok) {
			if n.ranges != nil {
				return nil, fmt.Errorf("grovepebble: row %d: %w: key %s has token %d, in none of the node's %d ranges", i, ErrOutOfRange, keyText(r.Key), tok, len(n.ranges))
			}
			return nil, fmt.Errorf("grovepebble: row %d: %w: key %s has token %d, outside %v", i, ErrOutOfRange, keyText(r.Key), tok, n.rng)
		}
		size += keyHeader + len(r.Key)
	}
	// One allocation holds every composite key.
	slab := make([]byte, 0, size)
	plan := make([]planned, len(rows))
	for i := range rows {
		start := len(slab)
		slab = appendRowKey(slab, n.p.Token(rows[i].Key), rows[i].Key)
		plan[i] = planned{ck: slab[start:len(slab):len(slab)], in: i}
	}
	slices.SortStableFunc(plan, func(a, b planned) int { return bytes.Compare(a.ck, b.ck) })
	out := plan[:0]
	for i := 0; i < len(plan); {
		win := plan[i]
		j := i + 1
		for ; j < len(plan) && bytes.Equal(plan[j].ck, win.ck); j++ {
			if engine.Supersedes(&rows[plan[j].in], &rows[win.in]) {
				win = plan[j]
			}
		}
		out = append(out, win)
		i = j
	}
	return out, nil
}

// markLeaf names one mark: a leaf in a generation.
type markLeaf struct {
	gen  uint64
	leaf token.Range
}

// addMarks writes into b, beside its rows, the forest's marks for the
// changes: one per leaf touched, its row delta added to that leaf's mark in
// the current generation, so that a crash after the commit leaves the
// leaves to recompute named in the data itself. It returns the marks'
// new values, which the caller keeps (n.marks) once the batch committed:
// every mark of the current generation is written by this node, under its
// write lock, so they need not be read back from the database.
func (n *Node) addMarks(b *pebble.Batch, rows []engine.Row, changes []change) (map[markLeaf]int64, error) {
	next := map[markLeaf]int64{}
	var order []markLeaf
	for i := range changes {
		c := &changes[i]
		var delta int64 = 1 // a write never removes a row
		if c.hadOld {
			delta = 0
		}
		m, err := n.forest.Mark(rows[c.in].Key, delta)
		if err != nil {
			return nil, fmt.Errorf("grovepebble: write: %w", err)
		}
		if m.Generation != n.marks.gen {
			// A checkpoint moved the forest on: its marks are gone.
			n.marks.gen, n.marks.rows = m.Generation, map[token.Range]int64{}
		}
		k := markLeaf{m.Generation, m.Leaf}
		if _, ok := next[k]; !ok {
			order = append(order, k)
			next[k] = n.marks.rows[m.Leaf]
		}
		next[k] += m.Rows
	}
	for _, k := range order {
		if err := b.Set(markKey(k.gen, k.leaf), binary.BigEndian.AppendUint64(nil, uint64(next[k])), nil); err != nil {
			return nil, fmt.Errorf("grovepebble: write: %w", err)
		}
	}
	return next, nil
}

// updateForest applies a committed batch's changes to the forest's trees,
// then checkpoints if one is due. The caller holds n.mu for writing.
func (n *Node) updateForest(rows []engine.Row, changes []change) (int, error) {
	for i := range changes {
		c := &changes[i]
		var old *engine.Digest
		if c.hadOld {
			old = &c.old
		}
		d := n.hasher.Digest(&rows[c.in])
		if err := n.forest.UpdateDigest(rows[c.in].Key, old, &d); err != nil {
			n.broken = fmt.Errorf("%w: updating the tree after a commit: %v", ErrInconsistent, err)
			return len(changes), n.broken
		}
	}
	n.maybeCheckpoint()
	return len(changes), nil
}

// seekStored is get through an iterator the caller reuses for keys in
// ascending order: it calls fn with the stored version of ck, if any.
func (n *Node) seekStored(it *pebble.Iterator, ck []byte, fn func(*engine.Row)) (bool, error) {
	if !it.SeekPrefixGE(ck) || !bytes.Equal(it.Key(), ck) {
		return false, asCorrupt(n.dir, it.Error())
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return false, asCorrupt(n.dir, err)
	}
	var r engine.Row
	r.Key = ck[keyHeader:]
	if err := decodeValue(v, &r); err != nil {
		return false, fmt.Errorf("key %s: %w", keyText(r.Key), err)
	}
	fn(&r)
	return true, nil
}
