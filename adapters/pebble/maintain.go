package grovepebble

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
)

// This file keeps the trees following the data off the write path. A
// write commits its batch blind (a Pebble Merge per row: the merge operator
// keeps the version that wins) and queues its rows; the maintainer takes
// the queue in rounds, reads each key's previous version from a snapshot
// of the database as of the round before — in key order, through one
// iterator — and applies to the tree the difference between it and the
// version that now wins. Everything that reads a tree first settles: it
// runs what is queued and waits for the rounds in flight, so that a
// session, a checkpoint or a root always sees every committed write.
//
// Rounds need not finish in the order they were taken: a leaf is a sum,
// and each round subtracts the digests its snapshot held and adds the ones
// the next snapshot holds, so the rounds' changes add up to the same
// leaves in any order.

// maxQueued is how many rows writes may queue before a write runs a round
// itself: it bounds the memory the queue holds and how far the trees fall
// behind a writer faster than the maintainer.
const maxQueued = 1 << 16

// A round waits for roundRows queued rows, or roundWait after the first,
// whichever comes first: the seeks of a round go through one iterator in
// key order, so a larger round opens each table's iterators once for
// more keys, and finds more of them in blocks it has just read.
const (
	roundRows = 1 << 13
	roundWait = 10 * time.Millisecond
)

// queued is a committed row whose tree update is pending. Its slices point
// into one of its queue's chunks.
type queued struct {
	ck  []byte
	tok token.Token
	row engine.Row
}

// round is a queue taken for maintenance, with the snapshot its rows'
// previous versions are read from.
type round struct {
	rows   []queued
	chunks [][]byte // own the rows' bytes
	old    *pebble.Snapshot
}

// chunkBytes is the size of the chunks a queue copies rows into. Rows go
// into fixed chunks rather than one growing slab, so that a queue never
// copies what it holds as it grows, and chunks are handed back once their
// round ends, so that a steady writer allocates none: both were a
// measurable share of the writer's own time.
const chunkBytes = 256 << 10

// spareChunks bounds the chunks kept for reuse: a full queue's worth.
const spareChunks = maxQueued * 160 / chunkBytes

// maintainer is the Node's queue of rows committed but not yet in its
// trees, and the goroutine that drains it.
type maintainer struct {
	mu   sync.Mutex
	done sync.Cond // broadcast each time a round ends
	// rows are the committed rows since snap; chunks own their bytes,
	// the last one filling. spare are chunks and a rows slice free for
	// reuse.
	rows      []queued
	chunks    [][]byte
	spare     [][]byte
	spareRows []queued
	// snap is the database as of the last round taken: what the trees
	// reflect once every round in flight ends.
	snap     *pebble.Snapshot
	inflight int
	// err is the first failure of a round: from then on the trees do not
	// follow the data, and every settle reports it.
	err error

	wake   chan struct{}
	full   chan struct{} // roundRows are queued
	quit   chan struct{}
	exited chan struct{}
}

// startMaintainer starts the maintainer once the trees match the data.
func (n *Node) startMaintainer() {
	m := &n.maint
	m.done.L = &m.mu
	m.snap = n.db.NewSnapshot()
	m.wake = make(chan struct{}, 1)
	m.full = make(chan struct{}, 1)
	m.quit = make(chan struct{})
	m.exited = make(chan struct{})
	go n.maintain()
}

// maintain runs rounds as writes queue rows, until stopMaintainer.
func (n *Node) maintain() {
	m := &n.maint
	defer close(m.exited)
	for {
		select {
		case <-m.quit:
			return
		case <-m.wake:
		}
		timer := time.NewTimer(roundWait)
		select {
		case <-m.quit:
			timer.Stop()
			return
		case <-m.full:
		case <-timer.C:
		}
		timer.Stop()
		n.mu.RLock()
		r := n.takeRound()
		n.mu.RUnlock()
		if r != nil {
			n.runRound(r)
		}
	}
}

// stopMaintainer stops the goroutine and brings the trees up to date; the
// caller holds no lock, and no write can start (the life lock is held).
func (n *Node) stopMaintainer() error {
	m := &n.maint
	if m.quit == nil {
		return nil
	}
	close(m.quit)
	<-m.exited
	n.mu.Lock()
	defer n.mu.Unlock()
	err := n.settle()
	m.quit = nil
	if m.snap != nil {
		m.snap.Close()
		m.snap = nil
	}
	return err
}

// enqueue queues a committed batch's rows, in plan order, and wakes the
// maintainer; if the queue is full it runs a round itself. The caller
// holds n.mu for writing.
func (n *Node) enqueue(rows []engine.Row, plan []planned) error {
	m := &n.maint
	m.mu.Lock()
	if m.rows == nil {
		m.rows, m.spareRows = m.spareRows, nil
		if m.rows == nil {
			m.rows = make([]queued, 0, roundRows)
		}
	}
	for _, w := range plan {
		r := &rows[w.in]
		b := m.room(len(w.ck) + len(r.Value))
		start := len(b)
		b = append(b, w.ck...)
		b = append(b, r.Value...)
		m.chunks[len(m.chunks)-1] = b
		ck := b[start : start+len(w.ck) : start+len(w.ck)]
		m.rows = append(m.rows, queued{ck: ck, tok: w.tok, row: engine.Row{
			Key: ck[keyHeader:], Value: b[start+len(w.ck) : len(b) : len(b)],
			TS: r.TS, Deleted: r.Deleted,
		}})
	}
	full := len(m.rows) >= maxQueued
	round := len(m.rows) >= roundRows
	m.mu.Unlock()
	if round {
		select {
		case m.full <- struct{}{}:
		default:
		}
	}
	if full {
		if r := n.takeRound(); r != nil {
			n.runRound(r)
		}
		return n.maintErr()
	}
	select {
	case m.wake <- struct{}{}:
	default:
	}
	return nil
}

// takeRound takes the queue, with a new snapshot that holds exactly the
// queued batches on top of the last one. The caller holds n.mu (either
// side), so no batch is between its commit and its enqueue.
func (n *Node) takeRound() *round {
	m := &n.maint
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.rows) == 0 || m.snap == nil {
		return nil
	}
	r := &round{rows: m.rows, chunks: m.chunks, old: m.snap}
	m.snap = n.db.NewSnapshot()
	// The round keeps the chunks; the next batches fill others.
	m.rows, m.chunks = nil, nil
	m.inflight++
	return r
}

// runRound applies a round to the trees, then closes its snapshot.
func (n *Node) runRound(r *round) {
	err := n.applyRound(r)
	r.old.Close()
	m := &n.maint
	m.mu.Lock()
	if err != nil && m.err == nil {
		m.err = fmt.Errorf("%w: updating the trees after a commit: %v", ErrInconsistent, err)
	}
	m.inflight--
	m.recycle(r)
	m.done.Broadcast()
	m.mu.Unlock()
}

// room returns the filling chunk with room for n more bytes, starting a
// chunk if the last has not; a row larger than a chunk gets one of its
// own. The caller holds m.mu.
func (m *maintainer) room(n int) []byte {
	if k := len(m.chunks); k > 0 {
		if b := m.chunks[k-1]; cap(b)-len(b) >= n {
			return b
		}
	}
	var b []byte
	switch {
	case n > chunkBytes:
		b = make([]byte, 0, n)
	case len(m.spare) > 0:
		b = m.spare[len(m.spare)-1][:0]
		m.spare = m.spare[:len(m.spare)-1]
	default:
		b = make([]byte, 0, chunkBytes)
	}
	m.chunks = append(m.chunks, b)
	return b
}

// recycle keeps an ended round's chunks and rows slice for the next
// batches. Nothing points into them once the round ended: the trees
// copy what they keep. The caller holds m.mu.
func (m *maintainer) recycle(r *round) {
	for _, b := range r.chunks {
		if cap(b) == chunkBytes && len(m.spare) < spareChunks {
			m.spare = append(m.spare, b)
		}
	}
	if m.spareRows == nil && cap(r.rows) <= maxQueued {
		clear(r.rows) // drop the pointers into the chunks
		m.spareRows = r.rows[:0]
	}
	r.rows, r.chunks = nil, nil
}

// applyRound reads the previous version of every key of the round from
// its snapshot and hands the trees the change to the version that wins
// now. Several writes of one key in a round make one change.
func (n *Node) applyRound(r *round) error {
	rows := r.rows
	// Unstable: several rows of a key yield the one Supersedes picks
	// whatever their order.
	slices.SortFunc(rows, func(a, b queued) int { return compareRowKeys(a.tok, a.ck, b.tok, b.ck) })
	// Pebble skips the bottom level's filters by default, taking a seek
	// there to find its key; most rows live there, and most keys a round
	// looks up (inserts) are in no table, which the filter says without
	// reading a data block.
	it, err := r.old.NewIter(&pebble.IterOptions{UseL6Filters: true})
	if err != nil {
		return err
	}
	defer it.Close()
	var h engine.Hasher
	var b changeBatch
	for i := 0; i < len(rows); {
		j := i + 1
		win := &rows[i].row
		for ; j < len(rows) && bytes.Equal(rows[j].ck, rows[i].ck); j++ {
			if engine.Supersedes(&rows[j].row, win) {
				win = &rows[j].row
			}
		}
		ck, tok := rows[i].ck, rows[i].tok
		i = j
		var old engine.Row
		// A damaged stored version reads as none: the write is an
		// insert. If it rotted after the tree took it, the tree still
		// holds the digest it had, which only a read of the leaf can
		// tell: the key is a suspect, whose range the scrub checks first.
		found, err := n.seekStored(it, ck, &old)
		if err != nil {
			return err
		}
		if found && !engine.Supersedes(win, &old) {
			continue // the stored version still wins: nothing changed
		}
		c := b.next(tok, win.Key)
		if found {
			// old is the iterator's until it moves: hashed now.
			*c.New, *c.Old = h.Digest2(win, &old)
		} else {
			c.Old = nil
			b.insert(&h, c, win)
		}
		if b.full() {
			if err := n.applyChanges(&b, &h); err != nil {
				return err
			}
		}
	}
	return n.applyChanges(&b, &h)
}

// changeBatch collects a round's tree changes, with room for their
// digests, so that the trees take them a batch at a time: the leaves of a
// batch are updated together, their cache misses overlapping, where one
// change at a time waits for each behind the tree's locks.
type changeBatch struct {
	changes [changeBatchSize]engine.DigestChange
	digests [2 * changeBatchSize]engine.Digest
	n       int
	// An insert's row waits here for another's, to be hashed beside it
	// (engine.Hasher.Digest2: two rows cost little more than one). The
	// row is the round's, valid until the round ends.
	waiting    *engine.DigestChange
	waitingRow *engine.Row
}

// insert fills in c.New, the digest of an inserted row r, now or with the
// next insert's.
func (b *changeBatch) insert(h *engine.Hasher, c *engine.DigestChange, r *engine.Row) {
	if b.waiting == nil {
		b.waiting, b.waitingRow = c, r
		return
	}
	*b.waiting.New, *c.New = h.Digest2(b.waitingRow, r)
	b.waiting, b.waitingRow = nil, nil
}

// changeBatchSize is enough changes for their misses to overlap, and few
// enough that a tree's lock is held briefly.
const changeBatchSize = 256

// next returns the batch's next change, for key of token tok, with Old
// and New pointing at its own digests; the caller fills them in (or
// clears Old).
func (b *changeBatch) next(tok token.Token, key []byte) *engine.DigestChange {
	c := &b.changes[b.n]
	*c = engine.DigestChange{Token: tok, Key: key, New: &b.digests[2*b.n], Old: &b.digests[2*b.n+1]}
	b.n++
	return c
}

func (b *changeBatch) full() bool { return b.n == changeBatchSize }

// applyChanges hands the batch's changes to the trees and empties it.
func (n *Node) applyChanges(b *changeBatch, h *engine.Hasher) error {
	if b.waiting != nil {
		*b.waiting.New = h.Digest(b.waitingRow)
		b.waiting, b.waitingRow = nil, nil
	}
	changes := b.changes[:b.n]
	b.n = 0
	if len(changes) == 0 {
		return nil
	}
	if n.forest != nil {
		return n.forest.UpdateDigests(changes)
	}
	return n.tree.UpdateDigests(changes)
}

// settle brings the trees up to every committed write: it runs what is
// queued and waits for the rounds in flight. The caller holds n.mu
// (either side), so no write commits meanwhile.
func (n *Node) settle() error {
	if r := n.takeRound(); r != nil {
		n.runRound(r)
	}
	m := &n.maint
	m.mu.Lock()
	defer m.mu.Unlock()
	for m.inflight > 0 {
		m.done.Wait()
	}
	return m.err
}

// resnap moves the snapshot the next round reads previous versions from up
// to now. A write that went around the write path (damage a scrub is about
// to correct) is in the database but in no snapshot the maintainer holds:
// once the trees are made to say what is on disk, the next round must
// read the versions on disk too, not the ones the damage replaced. The
// caller holds n.mu for writing, with the maintainer settled: the queue is
// empty and no round is in flight.
func (n *Node) resnap() {
	m := &n.maint
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.snap == nil {
		return
	}
	m.snap.Close()
	m.snap = n.db.NewSnapshot()
}

// maintErr is the maintainer's failure, if any.
func (n *Node) maintErr() error {
	m := &n.maint
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}
