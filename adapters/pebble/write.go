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

// Put writes key = value at timestamp ts. Like a replica reconciling the
// write, the node keeps whichever version of the key wins by
// engine.Supersedes (a newer write, a tombstone at the same timestamp, or
// greater value bytes), so a Put older than the stored version changes
// nothing; the write itself is blind — it does not read the stored version
// — and Pebble's merge operator (Merger) resolves the two. It commits with
// an fsync of Pebble's WAL unless Options.NoSync.
func (n *Node) Put(ctx context.Context, key, value []byte, ts int64) error {
	_, err := n.write(ctx, []engine.Row{{Key: key, Value: value, TS: ts}}, n.putOpt)
	return err
}

// Delete writes a tombstone for key at timestamp ts; as with Put, the
// stored version stays if it wins. The tombstone is a row like any other:
// it is what tells a peer that still holds the key that it was deleted.
func (n *Node) Delete(ctx context.Context, key []byte, ts int64) error {
	_, err := n.write(ctx, []engine.Row{{Key: key, TS: ts, Deleted: true}}, n.putOpt)
	return err
}

// Apply implements repair.Replica: it writes rows in one Pebble batch,
// committed with an fsync, and returns how many keys it wrote (several
// rows for one key count once). Each key ends up with whichever version
// wins by engine.Supersedes among the rows and the stored one; the write
// does not read the stored version to decide (see Put). Every row must
// fall in the Node's range.
//
// Nothing is written, and the tree is untouched, if any row is refused, ctx
// ends before the commit, or the commit fails. The trees follow the batch
// once it is in, off the write's path (they are brought up to date before
// anything reads them); if they cannot — they never should — the error
// wraps ErrInconsistent and the Node refuses further writes until it is
// reopened.
func (n *Node) Apply(ctx context.Context, rows []engine.Row) (int, error) {
	return n.write(ctx, rows, pebble.Sync)
}

// planned is a row to write: its composite key and its index in the input.
type planned struct {
	ck  []byte
	tok token.Token
	in  int
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
	return n.writePlanned(ctx, rows, plan, wo)
}

// writePlanned writes rows as plan says; the caller holds the life lock.
func (n *Node) writePlanned(ctx context.Context, rows []engine.Row, plan []planned, wo *pebble.WriteOptions) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.broken != nil {
		return 0, n.broken
	}
	if err := n.maintErr(); err != nil {
		return 0, err
	}
	if len(plan) == 0 {
		return 0, nil
	}

	b := n.db.NewBatch()
	defer b.Close()
	// A node of many ranges records in each row the generation of its
	// key's first write (the merge keeps the earliest), and beside the
	// rows one intent naming their tokens: after a crash the intents name
	// the leaves to recompute, and the generations tell an insert from a
	// replacement without the read this write skips.
	var gen uint64
	forest := n.forest != nil
	if forest {
		gen = n.forest.Generation()
	}
	val := make([]byte, 0, 64)
	for i, w := range plan {
		if i%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return 0, fmt.Errorf("grovepebble: write: %w", err)
			}
		}
		val = appendStored(val[:0], w.ck, &rows[w.in], gen, forest)
		if err := b.Merge(w.ck, val, nil); err != nil {
			return 0, fmt.Errorf("grovepebble: write: %w", err)
		}
	}
	if forest {
		if err := n.addIntent(b, gen, plan); err != nil {
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
		return 0, fmt.Errorf("grovepebble: write: commit of %d rows: %w", len(plan), err)
	}
	// The batch is in: the trees follow it whatever ctx says now.
	if err := n.enqueue(rows, plan); err != nil {
		return len(plan), err
	}
	if forest {
		n.forest.Committed(int64(len(plan)))
		n.maybeCheckpoint()
	}
	return len(plan), nil
}

// plan checks every row, computes its composite key, and keeps of several
// rows for one key the one that wins among them, in key order — the order
// Pebble takes a batch best in.
func (n *Node) plan(rows []engine.Row) ([]planned, error) {
	size := 0
	plan := make([]planned, len(rows))
	for i := range rows {
		r := &rows[i]
		if len(r.Key) > engine.MaxKeyBytes {
			return nil, fmt.Errorf("grovepebble: row %d: %w: %d bytes, at most %d", i, ErrKeyTooLarge, len(r.Key), engine.MaxKeyBytes)
		}
		tok := n.p.Token(r.Key)
		plan[i] = planned{tok: tok, in: i}
		if !n.holds(tok) {
			if n.ranges != nil {
				return nil, fmt.Errorf("grovepebble: row %d: %w: key %s has token %d, in none of the node's %d ranges", i, ErrOutOfRange, keyText(r.Key), tok, len(n.ranges))
			}
			return nil, fmt.Errorf("grovepebble: row %d: %w: key %s has token %d, outside %v", i, ErrOutOfRange, keyText(r.Key), tok, n.rng)
		}
		size += keyHeader + len(r.Key)
	}
	// One allocation holds every composite key.
	slab := make([]byte, 0, size)
	for i := range plan {
		start := len(slab)
		slab = appendRowKey(slab, plan[i].tok, rows[i].Key)
		plan[i].ck = slab[start:len(slab):len(slab)]
	}
	// Unstable: several rows of a key yield the one Supersedes picks
	// whatever their order (rows equal in all three are the same write).
	slices.SortFunc(plan, func(a, b planned) int { return compareRowKeys(a.tok, a.ck, b.tok, b.ck) })
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

// addIntent writes into b the batch's intent: the tokens of its rows,
// under a key of the current generation, so that a checkpoint's deletion
// of its generation's marks covers it.
func (n *Node) addIntent(b *pebble.Batch, gen uint64, plan []planned) error {
	if n.intent.gen != gen {
		n.intent.gen, n.intent.seq = gen, 0
	}
	n.intent.seq++
	v := make([]byte, 0, tokenBytes*len(plan))
	for _, w := range plan {
		v = binary.BigEndian.AppendUint64(v, uint64(w.tok)^(1<<63))
	}
	if err := b.Set(intentKey(gen, n.intent.seq), v, nil); err != nil {
		return fmt.Errorf("grovepebble: write: %w", err)
	}
	return nil
}

// seekStored reads the stored version of ck into r through an iterator
// the caller reuses for keys in ascending order (a prefix seek consults
// the tables' bloom filters, as a Get does) and reports whether there is
// one. A damaged version counts as none — it is in no tree a scan built
// or a scrub corrected — and ck becomes a suspect for the scrub. r's
// slices are valid until the iterator moves.
func (n *Node) seekStored(it *pebble.Iterator, ck []byte, r *engine.Row) (bool, error) {
	if !it.SeekPrefixGE(ck) || !bytes.Equal(it.Key(), ck) {
		return false, asCorrupt(n.dir, it.Error())
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return false, asCorrupt(n.dir, err)
	}
	r.Key = ck[keyHeader:]
	if err := decodeValue(ck, v, r, n.isStrict()); err != nil {
		n.suspect(ck)
		return false, nil
	}
	return true, nil
}
