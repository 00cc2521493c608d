package grovepebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/forest"
)

// This file is the Node of many ranges: its forest, the marks that let the
// forest recover from a crash, and the per-range replicas.

// DefaultTreesDir is the forest's directory inside the database directory
// when Options.TreesDir is empty: beside the data it describes, so that
// moving or deleting the one moves or deletes the other.
const DefaultTreesDir = "grove-trees"

// markPrefix starts every mark key: 0x00 "mark", then the generation (8
// bytes big-endian), then the leaf's Lo and Hi (8 bytes each, as row
// tokens are: uint64(t) XOR 1<<63, big-endian). Generation first, so that
// the marks a checkpoint covers are one key range to delete.
var markPrefix = []byte("\x00mark")

const markKeyLen = 5 + 8 + 2*tokenBytes

// markKey is the key of the mark of leaf in generation gen.
func markKey(gen uint64, leaf token.Range) []byte {
	k := make([]byte, 0, markKeyLen)
	k = append(k, markPrefix...)
	k = binary.BigEndian.AppendUint64(k, gen)
	k = binary.BigEndian.AppendUint64(k, uint64(leaf.Lo)^(1<<63))
	return binary.BigEndian.AppendUint64(k, uint64(leaf.Hi)^(1<<63))
}

// decodeMark reads a mark back from its key and value (an int64 row delta,
// big-endian).
func decodeMark(k, v []byte) (forest.Mark, error) {
	if len(k) != markKeyLen || !bytes.HasPrefix(k, markPrefix) {
		return forest.Mark{}, fmt.Errorf("%w: mark key %x: want %d bytes after 0x00 \"mark\"", ErrCorrupt, k, markKeyLen-len(markPrefix))
	}
	if len(v) != 8 {
		return forest.Mark{}, fmt.Errorf("%w: mark %x: value of %d bytes, want 8", ErrCorrupt, k, len(v))
	}
	b := k[len(markPrefix):]
	m := forest.Mark{
		Generation: binary.BigEndian.Uint64(b[0:8]),
		Leaf: token.Range{
			Lo: token.Token(binary.BigEndian.Uint64(b[8:16]) ^ (1 << 63)),
			Hi: token.Token(binary.BigEndian.Uint64(b[16:24]) ^ (1 << 63)),
		},
		Rows: int64(binary.BigEndian.Uint64(v)),
	}
	if err := m.Leaf.Valid(); err != nil {
		return forest.Mark{}, fmt.Errorf("%w: mark %x: leaf %v", ErrCorrupt, k, err)
	}
	return m, nil
}

// An intent is what a blind batch of a node of many ranges records beside
// its rows: the tokens of its rows, under 0x00 "mark", the generation and
// a batch number (8 bytes big-endian each). It shares the marks' prefix
// and generation, so the checkpoint that covers a generation's marks
// deletes its intents with them; its key is shorter than a mark's.
const intentKeyLen = 5 + 8 + 8

// intentKey is the key of the intent of batch seq of generation gen.
func intentKey(gen, seq uint64) []byte {
	k := make([]byte, 0, intentKeyLen)
	k = append(k, markPrefix...)
	k = binary.BigEndian.AppendUint64(k, gen)
	return binary.BigEndian.AppendUint64(k, seq)
}

// decodeIntent returns an intent's generation and tokens.
func decodeIntent(k, v []byte) (uint64, []token.Token, error) {
	if len(v)%tokenBytes != 0 {
		return 0, nil, fmt.Errorf("%w: intent %x: value of %d bytes, want a multiple of %d", ErrCorrupt, k, len(v), tokenBytes)
	}
	toks := make([]token.Token, 0, len(v)/tokenBytes)
	for ; len(v) > 0; v = v[tokenBytes:] {
		toks = append(toks, token.Token(binary.BigEndian.Uint64(v)^(1<<63)))
	}
	return binary.BigEndian.Uint64(k[len(markPrefix):]), toks, nil
}

// markBounds returns the key range [lower, upper) of every mark of
// generation at most g.
func markBounds(g uint64) (lower, upper []byte) {
	lower = markPrefix
	if g == math.MaxUint64 {
		return lower, []byte("\x00marl") // the end of the mark prefix
	}
	return lower, binary.BigEndian.AppendUint64(slices.Clone(markPrefix), g+1)
}

// readMarks returns every mark stored in the database.
func (n *Node) readMarks() ([]forest.Mark, error) {
	_, upper := markBounds(math.MaxUint64)
	it, err := n.db.NewIter(&pebble.IterOptions{LowerBound: markPrefix, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	var out []forest.Mark
	intents := map[uint64]map[token.Token]bool{}
	for ok := it.First(); ok; ok = it.Next() {
		if len(it.Key()) == intentKeyLen {
			gen, toks, err := decodeIntent(it.Key(), it.Value())
			if err != nil {
				it.Close()
				return nil, err
			}
			if intents[gen] == nil {
				intents[gen] = map[token.Token]bool{}
			}
			for _, t := range toks {
				intents[gen][t] = true
			}
			continue
		}
		m, err := decodeMark(it.Key(), it.Value())
		if err != nil {
			it.Close()
			return nil, err
		}
		out = append(out, m)
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, err
	}
	if len(intents) == 0 {
		return out, nil
	}
	rows, err := n.db.NewIter(&pebble.IterOptions{LowerBound: []byte{rowPrefix}, UpperBound: []byte{rowPrefix + 1}})
	if err != nil {
		return nil, err
	}
	for gen, toks := range intents {
		for tok := range toks {
			m, err := n.intentMark(rows, gen, tok)
			if err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, m)
		}
	}
	return out, rows.Close()
}

// intentMark is the mark of one token an intent of generation gen names:
// the leaf holding it, (tok-1, tok] at any depth, and as its row delta the
// rows with that token whose key was first written in gen — a write
// records the generation of its key's first write in the row, since it
// does not read whether the key was there. Summed over the generations a
// tree's checkpoint does not cover, these count exactly the keys inserted
// since.
// rows is an iterator over the row keys the caller reuses for every token.
func (n *Node) intentMark(rows *pebble.Iterator, gen uint64, tok token.Token) (forest.Mark, error) {
	leaf := token.Range{Lo: tok - 1, Hi: tok}
	if err := leaf.Valid(); err != nil {
		return forest.Mark{}, fmt.Errorf("%w: an intent of generation %d names token %d: %v", ErrCorrupt, gen, tok, err)
	}
	lower, upper := rangeBounds(leaf)
	var inserted int64
	for ok := rows.SeekGE(lower); ok && bytes.Compare(rows.Key(), upper) < 0; ok = rows.Next() {
		v, err := rows.ValueAndErr()
		if err != nil {
			return forest.Mark{}, asCorrupt(n.dir, err)
		}
		var r engine.Row
		born, has, err := decodeValueBorn(rows.Key(), v, &r, n.isStrict())
		if err != nil {
			// Not counted: the scrub sets the leaf, and its count, to
			// what is stored.
			n.suspect(rows.Key())
			continue
		}
		if has && born == gen {
			inserted++
		}
	}
	if err := rows.Error(); err != nil {
		return forest.Mark{}, asCorrupt(n.dir, err)
	}
	return forest.Mark{Generation: gen, Leaf: leaf, Rows: inserted}, nil
}

// deleteMarks deletes, durably, every mark of generation at most g: a
// checkpoint labelled g covers them.
func (n *Node) deleteMarks(g uint64) error {
	lower, upper := markBounds(g)
	if err := n.db.DeleteRange(lower, upper, pebble.Sync); err != nil {
		return fmt.Errorf("grovepebble: deleting the marks of generations up to %d: %w", g, err)
	}
	return nil
}

// nodeStore is the forest's view of the Node's rows. The forest scans
// ranges on goroutines of its own, which no recover of Open's covers: a
// Fatalf inside Pebble is caught here and becomes the scan's error.
type nodeStore struct{ n *Node }

var _ forest.SourceStore = nodeStore{}

func (s nodeStore) Scan(ctx context.Context, r token.Range, fn func(*engine.Row) error) (err error) {
	defer catchFatal(&err)
	return s.n.scanRows(ctx, r, fn)
}

// Source gives the forest's builds the rows of r as the validation scan
// reads them, so that they load with the tree's batched loader.
func (s nodeStore) Source(ctx context.Context, r token.Range) (_ engine.RowSource, _ func() error, err error) {
	defer catchFatal(&err)
	src, err := s.n.newSource(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	return fatalSafeSource{src}, func() (err error) {
		defer catchFatal(&err)
		return src.close()
	}, nil
}

// fatalSafeSource is a rowSource whose Fatalf panics are its errors.
type fatalSafeSource struct{ *rowSource }

func (s fatalSafeSource) NextRow(r *engine.Row) (err error) {
	defer catchFatal(&err)
	return s.rowSource.NextRow(r)
}

// openForest makes n a node of opts.Ranges: it checks that no row lies
// outside them or the spans the node held before (holdSpans), opens the forest in dir with the marks stored in the
// database, and deletes the marks the forest's open covered.
func (n *Node) openForest(ctx context.Context, dir string, opts Options, budget *arena.Budget) error {
	rs := slices.Clone(opts.Ranges)
	if err := forest.CheckRanges(n.p, rs); err != nil {
		return fmt.Errorf("%w: Ranges: %v", ErrOptions, err)
	}
	n.ranges = rs
	n.rng = n.p.Range()
	if err := n.holdSpans(rs, opts.NodeID); err != nil {
		return err
	}
	marks, err := n.readMarks()
	if err != nil {
		return err
	}
	po := forest.PlanOptions{}
	if opts.Depth > 0 {
		po.MaxDepth = opts.Depth
	}
	expected := opts.RangeRows
	if expected == nil {
		if expected, err = n.estimatedRows(rs); err != nil {
			return err
		}
	}
	f, err := forest.Open(ctx, dir, forest.Options{
		Budget:       budget,
		Partitioner:  n.p,
		Ranges:       rs,
		Store:        nodeStore{n},
		Marks:        marks,
		Plan:         po,
		Checkpoints:  opts.Checkpoints,
		ExpectedRows: expected,
	})
	if err != nil {
		return err
	}
	n.forest = f
	n.openStats = f.Stats()
	if len(marks) > 0 {
		// Every tree now includes every mark's change.
		return n.deleteMarks(f.Generation() - 1)
	}
	return nil
}

// estimatedRows returns, for a node whose database records its row count,
// an estimate of the rows of each of ranges: the recorded count in
// proportion to the range's share of the rows' bytes on disk, which Pebble
// estimates from its files' indexes without reading a row. A new tree's
// depth needs only an estimate, and the forest would otherwise count every
// new range's rows in a pass of its own before building them, reading the
// rows of a node that lost its trees twice. It returns nil — count them —
// without a recorded count, or when Pebble's files hold no rows yet (the
// rows are all in memtables).
func (n *Node) estimatedRows(ranges []token.Range) (func(token.Range) int64, error) {
	if n.recorded <= 0 {
		return nil, nil
	}
	total, err := n.db.EstimateDiskUsage([]byte{rowPrefix}, []byte{rowPrefix + 1})
	if err != nil {
		return nil, fmt.Errorf("grovepebble: estimating the rows' disk usage: %w", err)
	}
	if total == 0 {
		return nil, nil
	}
	est := make(map[token.Range]int64, len(ranges))
	for _, r := range ranges {
		lower, upper := rangeBounds(r)
		b, err := n.db.EstimateDiskUsage(lower, upper)
		if err != nil {
			return nil, fmt.Errorf("grovepebble: estimating the disk usage of %v: %w", r, err)
		}
		est[r] = int64(math.Round(float64(n.recorded) * float64(b) / float64(total)))
	}
	return func(r token.Range) int64 { return est[r] }, nil
}

// Rebalance plans the depths of a node of many ranges' trees again from
// their row counts now, and moves each range whose planned depth changed
// (forest.Forest.Rebalance): shallower by a fold that reads no rows,
// deeper by rebuilding that range from its rows. A tree's depth is planned
// from the rows its range held when it was built — none, for a new node —
// and the rows a crash leaves to reread are those of whole leaves, so call
// it after a bulk load; the checkpoints that writes bring call it by
// themselves once row counts have drifted (forest.Forest.Drifted). Writes
// wait while it runs; it deletes the marks its checkpoint covered. A node of one
// range has nothing to rebalance.
func (n *Node) Rebalance(ctx context.Context) (_ []forest.Redepth, err error) {
	defer n.catch(&err)
	if err := n.use(); err != nil {
		return nil, err
	}
	defer n.life.RUnlock()
	if n.forest == nil {
		return nil, nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.broken != nil {
		return nil, n.broken
	}
	if err := n.settle(); err != nil {
		return nil, err
	}
	moved, g, err := n.forest.Rebalance(ctx)
	if g > 0 {
		// The checkpoint came first, and covers what it covers even if a
		// move failed.
		err = errors.Join(err, n.deleteMarks(g))
	}
	if err != nil {
		return moved, fmt.Errorf("grovepebble: rebalance: %w", err)
	}
	return moved, nil
}

// closeForest checkpoints and closes the forest, then deletes the marks
// its checkpoint covered.
func (n *Node) closeForest() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	g, err := n.forest.Close(context.Background())
	if err != nil {
		return err
	}
	return n.deleteMarks(g)
}

// maybeCheckpoint checkpoints the forest if its policy says one is due,
// and deletes the marks it covered; then, if some range's row count has
// drifted far from what its depth was planned for, it rebalances the
// forest (forest.Forest.Drifted), so that a node that grows or shrinks
// keeps the depths the budget can best afford without anyone calling
// Rebalance. The caller holds n.mu for writing, so no batch is between its
// commit and its tree update. A failure is logged, not returned: the batch
// that triggered it is in, and the marks still cover every change, so the
// next due checkpoint simply tries again.
func (n *Node) maybeCheckpoint() {
	if n.forest == nil || !n.forest.Due() {
		return
	}
	err := n.checkpointNow()
	if err == nil && n.forest.Drifted() {
		var g uint64
		var moved []forest.Redepth
		moved, g, err = n.forest.Rebalance(context.Background())
		if g > 0 {
			err = errors.Join(err, n.deleteMarks(g))
		}
		for _, m := range moved {
			n.events.log.Infof("grovepebble: range %v re-planned from depth %d to %d (%d rows read)", m.Tree.Range, m.From, m.To, m.RowsRead)
		}
	}
	if err != nil {
		n.events.log.Errorf("grovepebble: checkpoint of the trees in %s: %v", n.dir, err)
	}
}

// checkpointNow checkpoints a node of many ranges' trees, which then claim
// every committed batch, and deletes the marks they cover; the caller holds
// n.mu for writing. A node of one range keeps its tree in memory: nothing
// to do.
func (n *Node) checkpointNow() error {
	if n.forest == nil {
		return nil
	}
	if err := n.settle(); err != nil {
		return err
	}
	g, err := n.forest.Checkpoint(context.Background())
	if err != nil {
		return err
	}
	return n.deleteMarks(g)
}

// rows is the Node's row count, over every tree.
func (n *Node) rows() int64 {
	if n.forest == nil {
		return n.tree.Rows()
	}
	var s int64
	for _, t := range n.forest.Trees() {
		s += t.Live.Rows()
	}
	return s
}

// holds reports whether token tok lies in the Node's range, or in one of
// its ranges.
func (n *Node) holds(tok token.Token) bool {
	if n.ranges == nil {
		return n.rng.Contains(tok)
	}
	_, found := slices.BinarySearchFunc(n.ranges, tok, token.Range.Compare)
	return found
}

// holdsRange reports whether r is one of the Node's ranges exactly.
func (n *Node) holdsRange(r token.Range) bool {
	if n.forest == nil {
		return r == n.rng
	}
	_, ok := n.forest.Tree(r)
	return ok
}

// Ranges returns the Node's ranges in token order: those of
// Options.Ranges, or else the one range it serves.
func (n *Node) Ranges() []token.Range {
	if n.ranges == nil {
		return []token.Range{n.rng}
	}
	return slices.Clone(n.ranges)
}

// OpenStats says what Open read to make a node of many ranges' trees
// match its data: no rows after a clean Close, those of the leaves written
// since the last checkpoint after a crash, every row of a new range. It is
// zero for a node of one range, whose Open reads everything (ScanStats).
func (n *Node) OpenStats() forest.Stats { return n.openStats }

// RangeReplica is one range of a node of many ranges, as a repair.Replica:
// a session repairs one range against one peer, so each range is a
// replica of its own, sharing the Node's database, write lock and budget.
type RangeReplica struct {
	n *Node
	t *forest.Tree
}

var _ repair.Replica = (*RangeReplica)(nil)

// Replicas returns one replica per range of a node of many ranges, in
// token order; nil for a node of one range, which is a replica itself.
func (n *Node) Replicas() []*RangeReplica {
	if n.forest == nil {
		return nil
	}
	var out []*RangeReplica
	for _, t := range n.forest.Trees() {
		out = append(out, &RangeReplica{n: n, t: t})
	}
	return out
}

// Replica returns the replica of range r, which must be one of the Node's
// ranges exactly (ErrNoSuchRange): a peer's session names the range it
// repairs, and a near miss is a ring mismatch, not something to guess at.
func (n *Node) Replica(r token.Range) (*RangeReplica, error) {
	if n.forest != nil {
		if t, ok := n.forest.Tree(r); ok {
			return &RangeReplica{n: n, t: t}, nil
		}
	}
	return nil, fmt.Errorf("%w: %v (the node holds %d ranges)", ErrNoSuchRange, r, len(n.ranges))
}

// Range returns the replica's token range.
func (r *RangeReplica) Range() token.Range { return r.t.Range }

// live returns the range's tree, which Rebalance may replace: under the
// write lock's read side.
func (r *RangeReplica) live() *engine.Tree {
	r.n.mu.RLock()
	defer r.n.mu.RUnlock()
	return r.t.Live
}

// Rows returns how many rows the range holds, tombstones included.
func (r *RangeReplica) Rows() int64 {
	r.n.mu.RLock()
	defer r.n.mu.RUnlock()
	r.n.settle() // as Node.Rows
	return r.t.Live.Rows()
}

// Depth returns the depth of the range's tree.
func (r *RangeReplica) Depth() int { return r.live().Depth() }

// Shape implements repair.Replica.
func (r *RangeReplica) Shape() repair.Shape {
	return repair.Shape{Partitioner: r.n.p, Range: r.t.Range, Depth: r.Depth()}
}

// Sum implements repair.Replica: the sum of the range's leaves.
func (r *RangeReplica) Sum(ctx context.Context) (engine.Digest, error) {
	if err := r.n.use(); err != nil {
		return engine.Digest{}, err
	}
	defer r.n.life.RUnlock()
	return r.n.sum(ctx, func() *engine.Tree { return r.t.Live })
}

// Root returns the root hash of the range's tree, first rehashing the
// paths above the leaves written since.
func (r *RangeReplica) Root(ctx context.Context) (engine.Digest, error) {
	if err := r.n.use(); err != nil {
		return engine.Digest{}, err
	}
	defer r.n.life.RUnlock()
	return r.n.root(ctx, func() *engine.Tree { return r.t.Live })
}

// View implements repair.Replica with a snapshot of the range's leaves,
// taken while no write is in flight (as Node.View).
func (r *RangeReplica) View(ctx context.Context) (*engine.LeafView, func(), error) {
	if err := r.n.use(); err != nil {
		return nil, nil, err
	}
	defer r.n.life.RUnlock()
	return r.n.leafView(ctx, func() *engine.Tree { return r.t.Live })
}

// Scan implements repair.Replica over the rows of the range that are in
// rg, in token order, from one Pebble iterator.
func (r *RangeReplica) Scan(ctx context.Context, rg token.Range, fn func(*engine.Row) error) (err error) {
	n := r.n
	defer n.catch(&err)
	if err := rg.Valid(); err != nil {
		return fmt.Errorf("grovepebble: scan: %w", err)
	}
	if err := n.use(); err != nil {
		return err
	}
	defer n.life.RUnlock()
	rg.Lo, rg.Hi = max(rg.Lo, r.t.Range.Lo), min(rg.Hi, r.t.Range.Hi)
	if rg.Lo >= rg.Hi {
		return nil
	}
	return n.scanRows(ctx, rg, fn)
}

// Apply implements repair.Replica as Node.Apply does, for rows of this
// range only: a row of another range is refused (ErrOutOfRange) and then
// nothing is written, since a session repairing this range has no business
// sending it.
func (r *RangeReplica) Apply(ctx context.Context, rows []engine.Row) (int, error) {
	for i := range rows {
		if tok := r.n.p.Token(rows[i].Key); !r.t.Range.Contains(tok) {
			return 0, fmt.Errorf("grovepebble: row %d: %w: key %s has token %d, outside %v", i, ErrOutOfRange, keyText(rows[i].Key), tok, r.t.Range)
		}
	}
	return r.n.Apply(ctx, rows)
}

// dropStaleForest removes, durably and before a node of one range first
// writes, the manifest of the forest a node of many ranges left in the
// default trees directory: its trees are about to fall behind the data
// with no mark to say so, and without a manifest the next Open with Ranges
// rebuilds them from the rows instead of trusting them. The caller holds
// n.mu for writing.
func (n *Node) dropStaleForest() error {
	if n.staleForest == "" {
		return nil
	}
	if err := forest.Retire(n.staleForest); err != nil {
		return fmt.Errorf("grovepebble: write: retiring the trees of the node's ranges: %w", err)
	}
	n.staleForest = ""
	return nil
}
