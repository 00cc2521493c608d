// Package rowstore keeps one replica's rows in memory: what `grove serve`,
// `grove sync` and tests use as a replica's table. A real node keeps its rows
// in its own storage engine and only needs the engine package. Replica puts a
// Store and its live tree behind repair.Replica, for sessions of package
// repair; that package does not depend on this one.
//
// A Store holds at most one row per key (the version a replica keeps) in
// (token, key) order, so that the rows of a token range are scanned in order
// after one binary search. It is built to hold tens of millions of rows at
// little cost to the garbage collector: it holds no Go pointer per row. Each
// row is one record in a single byte slab, and a sorted array of (token,
// offset) pairs indexes the slab. 10 million rows are a few large
// allocations the collector never has to look inside: the slab, and the
// index twice over, so that Apply can build the next index while readers
// use the current one.
//
// Writes follow the repair rule: a row replaces the stored version of its key
// only if it supersedes it (engine.Supersedes), and Apply tells its caller
// about every change before it makes it, so that a live Merkle tree over the
// same rows can follow along.
package rowstore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/jsonl"
	"github.com/antientropy/grove/engine/token"
)

// A record is one row in the slab:
//
//	key length uvarint | value length << 1 | deleted, uvarint | ts i64 LE | key | value
//
// Folding the tombstone flag into the value length saves a byte per row; the
// timestamp is fixed-width because microsecond timestamps need 8 varint bytes
// anyway.

// entry indexes one row: its token, and where its record starts in the slab.
// Entries are sorted by (tok, key); the token is kept here, not only derived
// from the key, so that searches compare integers and read the slab only when
// two tokens tie.
type entry struct {
	tok token.Token
	off uint64
}

// ctxEvery is how many rows a long loop handles between checks of its
// context: often enough to stop within microseconds, rarely enough to cost
// nothing.
const ctxEvery = 4096

// Store is one replica's rows in memory, at most one per key, ordered by
// (token, key bytes).
//
// A Store is safe for concurrent use. Get, Scan, All and WriteJSONL hold the
// read side of its lock while they run, callbacks included; Apply works out
// and announces its changes without blocking them, and holds the write side
// only to publish the result, which it has built beside the live data.
type Store struct {
	p token.Partitioner

	// applyMu serialises Apply, so that the rows an Apply plans against
	// and reports as old stay the stored ones until it commits. Holding it,
	// Apply may read ents and slab without mu: only Apply changes them.
	applyMu sync.Mutex

	mu      sync.RWMutex
	ents    []entry // sorted by (tok, key)
	slab    []byte  // the records; bytes past len are Apply's to fill
	garbage int64   // slab bytes of records no entry points to any more
	data    int64   // key and value bytes of the rows in ents

	// Owned by Apply, under applyMu. spare is the entry array that ents was
	// before the last Apply that rebuilt it: no reader can still be using
	// it (they hold mu's read side and the swap took the write side), so the
	// next rebuild fills it instead of allocating n entries again.
	spare []entry
	items []item
	plan  []change
	old   engine.Row
}

// item is one incoming row of an Apply, by index, with its token.
type item struct {
	tok token.Token
	in  int
}

// change is one row an Apply writes: rows[in] goes to position pos of the
// entries, replacing the row there or inserted before it.
type change struct {
	tok     token.Token
	in      int
	pos     int
	replace bool
	oldLen  int    // the replaced record's length
	oldData int    // the replaced row's key and value bytes
	off     uint64 // the new record's offset, once written
}

// New returns an empty store whose rows' tokens come from p; nil means
// token.Murmur3{}.
func New(p token.Partitioner) *Store {
	if p == nil {
		p = token.Murmur3{}
	}
	return &Store{p: p}
}

// Load returns a store holding every row of src. Several rows for one key
// are resolved as a storage engine's compaction would: the one that
// supersedes the others (engine.Supersedes) is kept. Load checks ctx every
// few thousand rows; an error from src or ctx is returned, wrapped, with the
// number of the row it came at.
func Load(ctx context.Context, p token.Partitioner, src engine.RowSource) (*Store, error) {
	s := New(p)
	var (
		row  engine.Row
		ents []entry
		slab []byte
	)
	for n := 0; ; n++ {
		if n%ctxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("rowstore: load stopped before row %d: %w", n+1, err)
			}
		}
		err := src.NextRow(&row)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("rowstore: load: reading row %d: %w", n+1, err)
		}
		ents = append(ents, entry{tok: s.p.Token(row.Key), off: uint64(len(slab))})
		slab = appendRecord(slab, &row)
		s.data += int64(len(row.Key) + len(row.Value))
	}
	slices.SortFunc(ents, func(a, b entry) int { return compareEntries(slab, a, b) })
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("rowstore: load stopped after sorting: %w", err)
	}

	// Keep the winner of each run of one key. Only rows that share a token
	// can share a key, so the slab is read only for those: reading it for
	// every row would cost a cache miss each.
	var garbage int64
	var a, b engine.Row
	kept := 0
	for i := 0; i < len(ents); {
		win := ents[i]
		j := i + 1
		if j < len(ents) && ents[j].tok == win.tok {
			decode(slab, win.off, &a)
			for ; j < len(ents) && ents[j].tok == win.tok && bytes.Equal(keyAt(slab, ents[j].off), a.Key); j++ {
				decode(slab, ents[j].off, &b)
				loser := &b
				if engine.Supersedes(&b, &a) {
					loser = &a
				}
				garbage += int64(recordLen(loser))
				s.data -= int64(len(loser.Key) + len(loser.Value))
				if loser == &a {
					win = ents[j]
					decode(slab, win.off, &a)
				}
			}
		}
		ents[kept] = win
		kept++
		i = j
	}
	ents = slices.Clip(ents[:kept])
	if garbage > 0 || !inOrder(ents) {
		// Records in scan order make a scan read the slab front to back:
		// a leaf scan of a million-row store takes a third of the time. The
		// price is a second slab for the moment of the copy; a source that
		// is already in order with one row per key (WriteJSONL's output)
		// does not pay it.
		slab = compact(ents, slab, int64(len(slab))-garbage)
	}
	s.ents, s.slab = ents, slab
	return s, nil
}

// Partitioner is the partitioner that gives the rows their tokens.
func (s *Store) Partitioner() token.Partitioner { return s.p }

// Len is the number of rows held (tombstones included).
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.ents)
}

// DataBytes is the number of key and value bytes of the rows held: the size
// of the data, without the store's own overhead.
func (s *Store) DataBytes() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.data
}

// Get returns the row stored for key, with copies of its bytes that the
// caller may keep, and whether there is one. A nil and an empty key are the
// same key.
func (s *Store) Get(key []byte) (engine.Row, bool) {
	tok := s.p.Token(key)
	s.mu.RLock()
	defer s.mu.RUnlock()
	i := search(s.ents, s.slab, 0, tok, key)
	if i == len(s.ents) || s.ents[i].tok != tok || !bytes.Equal(keyAt(s.slab, s.ents[i].off), key) {
		return engine.Row{}, false
	}
	var r engine.Row
	decode(s.slab, s.ents[i].off, &r)
	// One allocation for both: the caller gets capped slices of it.
	buf := make([]byte, len(r.Key)+len(r.Value))
	copy(buf, r.Key)
	copy(buf[len(r.Key):], r.Value)
	r.Key = buf[:len(r.Key):len(r.Key)]
	r.Value = buf[len(r.Key):]
	return r, true
}

// Scan calls fn for every row whose token lies in r = (r.Lo, r.Hi], in
// (token, key) order, starting with a binary search, so the cost grows with
// the rows in r, not with the store. The row's slices point into the store:
// fn must not modify them, and they are valid only until fn returns. An error
// from fn stops the scan and is returned as it is; ctx is checked every few
// thousand rows.
//
// A range with Lo == Hi is empty, as a leaf of a narrow range can be (see
// token.Range.Leaf): Scan returns nil without calling fn. A range with Lo >
// Hi wraps around the ring, which the caller must split (see token.Range):
// Scan returns an error wrapping token.ErrBadRange.
//
// fn runs under the store's read lock: it must not call Apply (which would
// wait for the scan to end, forever), and should not call the store's other
// methods either (a read lock taken again while Apply waits deadlocks too).
// A slow fn delays Apply and, while Apply waits, every new reader.
func (s *Store) Scan(ctx context.Context, r token.Range, fn func(*engine.Row) error) error {
	if r.Lo > r.Hi {
		return fmt.Errorf("rowstore: scan of %v: %w", r, r.Valid())
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rowstore: scan of %v: %w", r, err)
	}
	if r.Lo == r.Hi {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return scan(ctx, s.ents, s.slab, searchToken(s.ents, r.Lo), r.Hi, fn)
}

// All calls fn for every row in (token, key) order, as Scan does for the
// whole ring, and under the same rules.
func (s *Store) All(ctx context.Context, fn func(*engine.Row) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rowstore: scan of all rows: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return scan(ctx, s.ents, s.slab, 0, math.MaxInt64, fn)
}

// WriteJSONL writes every row, in (token, key) order, as JSON Lines that
// jsonl.Reader reads back exactly (see jsonl.Writer). Like All it holds the
// read lock throughout, so the output is one consistent state of the store,
// and Apply waits for it.
func (s *Store) WriteJSONL(ctx context.Context, w io.Writer) error {
	jw := jsonl.NewWriter(w)
	if err := s.All(ctx, jw.WriteRow); err != nil {
		return err
	}
	return jw.Flush()
}

// scan calls fn for ents[i:] while their token is at most hi.
func scan(ctx context.Context, ents []entry, slab []byte, i int, hi token.Token, fn func(*engine.Row) error) error {
	var row engine.Row
	for n := 1; i < len(ents) && ents[i].tok <= hi; i, n = i+1, n+1 {
		if n%ctxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("rowstore: scan stopped after %d rows: %w", n-1, err)
			}
		}
		decode(slab, ents[i].off, &row)
		if err := fn(&row); err != nil {
			return err
		}
	}
	return nil
}

// Apply merges rows into the store as one atomic batch, by the repair rule:
// a row is written if the store holds no row for its key, or if it
// supersedes the stored one (engine.Supersedes); otherwise it is ignored. Of
// several rows for one key in rows, only the one that supersedes the others
// is considered. applied is the number of rows written. A nil and an empty
// key are the same key.
//
// For each row to be written, in (token, key) order, Apply first calls
// changed(old, new), old being the stored row (nil for a new key) and new the
// row from rows, so that the caller can bring something that mirrors the
// store up to date, such as a live tree (tree.Update(old, new)). Both rows
// are valid only during the call; changed may read the store (Get, Scan) but
// must not call Apply. changed may be nil.
//
// If changed returns an error, or ctx is done, Apply stops and returns it
// (wrapped), and the store is exactly as it was: nothing is half-applied.
// changed, though, has then already returned nil for the first applied
// changes, in (token, key) order, whose effects the caller must undo (for a
// tree, Update(new, old) for each). Once every change has been announced,
// Apply commits without looking at ctx again. Applying a batch costs
// O(len(rows)·log) to plan and, when it adds keys, O(Len) to rebuild the
// index; readers are held off only while the result is published.
func (s *Store) Apply(ctx context.Context, rows []engine.Row, changed func(old, new *engine.Row) error) (applied int, err error) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("rowstore: apply: %w", err)
	}
	plan := s.planApply(rows)
	defer s.dropScratch()

	for i := range plan {
		if err := ctx.Err(); err != nil {
			return i, fmt.Errorf("rowstore: apply stopped before change %d of %d: %w", i+1, len(plan), err)
		}
		if changed == nil {
			continue
		}
		var old *engine.Row
		if plan[i].replace {
			decode(s.slab, s.ents[plan[i].pos].off, &s.old)
			old = &s.old
		}
		if err := changed(old, &rows[plan[i].in]); err != nil {
			return i, fmt.Errorf("rowstore: apply: change %d of %d (key %q): %w", i+1, len(plan), trunc(rows[plan[i].in].Key), err)
		}
	}
	if len(plan) > 0 {
		s.commit(rows, plan)
	}
	return len(plan), nil
}

// planApply works out which rows Apply writes and where, in (token, key)
// order, without changing the store.
func (s *Store) planApply(rows []engine.Row) []change {
	items := s.items[:0]
	for i := range rows {
		items = append(items, item{tok: s.p.Token(rows[i].Key), in: i})
	}
	slices.SortFunc(items, func(a, b item) int {
		if a.tok != b.tok {
			return cmp.Compare(a.tok, b.tok)
		}
		return bytes.Compare(rows[a.in].Key, rows[b.in].Key)
	})
	s.items = items

	plan := s.plan[:0]
	pos := 0
	for i := 0; i < len(items); {
		// The winner of the run of rows for this key.
		win := items[i]
		j := i + 1
		for ; j < len(items) && items[j].tok == win.tok && bytes.Equal(rows[items[j].in].Key, rows[win.in].Key); j++ {
			if engine.Supersedes(&rows[items[j].in], &rows[win.in]) {
				win = items[j]
			}
		}
		i = j

		key := rows[win.in].Key
		pos = search(s.ents, s.slab, pos, win.tok, key)
		if pos < len(s.ents) && s.ents[pos].tok == win.tok && bytes.Equal(keyAt(s.slab, s.ents[pos].off), key) {
			n := decode(s.slab, s.ents[pos].off, &s.old)
			if engine.Supersedes(&rows[win.in], &s.old) {
				plan = append(plan, change{tok: win.tok, in: win.in, pos: pos, replace: true,
					oldLen: n, oldData: len(s.old.Key) + len(s.old.Value)})
			}
			continue
		}
		plan = append(plan, change{tok: win.tok, in: win.in, pos: pos})
	}
	s.plan = plan
	return plan
}

// dropScratch lets go of Apply's scratch space after a huge batch, and of the
// rows it points into.
func (s *Store) dropScratch() {
	const keep = 1 << 16
	if cap(s.items) > keep {
		s.items = nil
	}
	if cap(s.plan) > keep {
		s.plan = nil
	}
	s.old = engine.Row{}
}

// commit writes the planned rows. Everything is built beside the live data,
// which readers go on using: new records past the end of the slab (bytes no
// reader looks at) and, if keys are added, a new entry array. The write lock
// is held only to publish them.
func (s *Store) commit(rows []engine.Row, plan []change) {
	need, inserts := 0, 0
	garbage, data := s.garbage, s.data
	for i := range plan {
		r := &rows[plan[i].in]
		need += recordLen(r)
		data += int64(len(r.Key) + len(r.Value))
		if plan[i].replace {
			garbage += int64(plan[i].oldLen)
			data -= int64(plan[i].oldData)
		} else {
			inserts++
		}
	}
	slab := slices.Grow(s.slab, need)
	for i := range plan {
		plan[i].off = uint64(len(slab))
		slab = appendRecord(slab, &rows[plan[i].in])
	}
	compacting := garbage > int64(len(slab))/2

	if inserts == 0 && !compacting {
		// Only new versions of stored keys: repoint their entries in place.
		s.mu.Lock()
		for i := range plan {
			s.ents[plan[i].pos].off = plan[i].off
		}
		s.slab, s.garbage, s.data = slab, garbage, data
		s.mu.Unlock()
		return
	}

	ents := merge(s.spare, s.ents, plan, inserts)
	if compacting {
		slab = compact(ents, slab, int64(len(slab))-garbage)
		garbage = 0
	}
	s.mu.Lock()
	s.spare = s.ents
	s.ents, s.slab, s.garbage, s.data = ents, slab, garbage, data
	s.mu.Unlock()
}

// merge returns old with the planned changes made, built in dst's memory
// if it is large enough.
func merge(dst, old []entry, plan []change, inserts int) []entry {
	n := len(old) + inserts
	if cap(dst) < n {
		dst = make([]entry, 0, n+n/8) // room for a few more batches of new keys
	}
	dst = dst[:0]
	prev := 0
	for i := range plan {
		c := &plan[i]
		dst = append(dst, old[prev:c.pos]...)
		dst = append(dst, entry{tok: c.tok, off: c.off})
		prev = c.pos
		if c.replace {
			prev++
		}
	}
	return append(dst, old[prev:]...)
}

// compact returns a new slab holding only the records ents point to, in
// their order, and points ents at them. live is their total size.
func compact(ents []entry, slab []byte, live int64) []byte {
	out := make([]byte, 0, live+live/8)
	var r engine.Row
	for i := range ents {
		off := ents[i].off
		n := decode(slab, off, &r)
		ents[i].off = uint64(len(out))
		out = append(out, slab[off:off+uint64(n)]...)
	}
	return out
}

// inOrder reports whether the records of ents lie in the slab in their
// order.
func inOrder(ents []entry) bool {
	for i := 1; i < len(ents); i++ {
		if ents[i].off < ents[i-1].off {
			return false
		}
	}
	return true
}

// appendRecord appends r's record to dst.
func appendRecord(dst []byte, r *engine.Row) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(r.Key)))
	dst = binary.AppendUvarint(dst, valueWord(r))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(r.TS))
	dst = append(dst, r.Key...)
	return append(dst, r.Value...)
}

func valueWord(r *engine.Row) uint64 {
	v := uint64(len(r.Value)) << 1
	if r.Deleted {
		v |= 1
	}
	return v
}

// recordLen is the length of r's record.
func recordLen(r *engine.Row) int {
	return uvarintLen(uint64(len(r.Key))) + uvarintLen(valueWord(r)) + 8 + len(r.Key) + len(r.Value)
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// decode points r at the record at off and returns the record's length.
// The slices are capped, so a caller appending to them cannot overwrite the
// next record.
func decode(slab []byte, off uint64, r *engine.Row) int {
	b := slab[off:]
	klen, n1 := binary.Uvarint(b)
	vword, n2 := binary.Uvarint(b[n1:])
	p := n1 + n2
	r.TS = int64(binary.LittleEndian.Uint64(b[p:]))
	p += 8
	k := p + int(klen)
	v := k + int(vword>>1)
	r.Key = b[p:k:k]
	r.Value = b[k:v:v]
	r.Deleted = vword&1 != 0
	return v
}

// keyAt returns the key of the record at off.
func keyAt(slab []byte, off uint64) []byte {
	b := slab[off:]
	klen, n1 := binary.Uvarint(b)
	_, n2 := binary.Uvarint(b[n1:])
	p := n1 + n2 + 8
	return b[p : p+int(klen)]
}

func compareEntries(slab []byte, a, b entry) int {
	if a.tok != b.tok {
		return cmp.Compare(a.tok, b.tok)
	}
	return bytes.Compare(keyAt(slab, a.off), keyAt(slab, b.off))
}

// less reports whether entry e orders before (tok, key).
func less(slab []byte, e entry, tok token.Token, key []byte) bool {
	if e.tok != tok {
		return e.tok < tok
	}
	return bytes.Compare(keyAt(slab, e.off), key) < 0
}

// search returns the first index i >= from of ents whose entry does not
// order before (tok, key). It gallops from from before it bisects, so that
// the sorted keys of a batch cost O(log gap) each rather than O(log n).
func search(ents []entry, slab []byte, from int, tok token.Token, key []byte) int {
	lo, hi := from, len(ents)
	for step := 1; lo+step < hi; step *= 2 {
		if !less(slab, ents[lo+step], tok, key) {
			hi = lo + step
			break
		}
		lo += step
	}
	// ents[lo-1] (if lo > from) orders before; find the first in [lo, hi) that does not.
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if less(slab, ents[mid], tok, key) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// searchToken returns the first index whose token is greater than tok.
func searchToken(ents []entry, tok token.Token) int {
	lo, hi := 0, len(ents)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if ents[mid].tok <= tok {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

func trunc(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}
