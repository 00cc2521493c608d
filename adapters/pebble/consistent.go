package grovepebble

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/antientropy/grove/engine/token"
)

// This file records when each range last matched each of its peers: a
// repair session that found the two replicas in sync, or converged them.
// An operator must know that every range was repaired within
// gc_grace_seconds, or a tombstone purged on one replica can bring a
// deleted row back from another; the oldest of a range's matches says it.

// matchPrefix starts every match record: 0x00 "match", the range's Lo and
// Hi (8 bytes each, encoded as row tokens are), then the peer's node id.
// The value is the time, Unix nanoseconds, 8 bytes big-endian.
var matchPrefix = []byte("\x00match")

func matchKey(r token.Range, peer string) []byte {
	k := append(slices.Clone(matchPrefix), encodeSpans([]token.Range{r})...)
	return append(k, peer...)
}

// matches is the node's match records in memory, loaded at Open.
type matches struct {
	mu sync.Mutex
	at map[token.Range]map[string]time.Time
}

// loadMatches reads every match record, keeps those of the node's ranges,
// and gives a range that a ring change split out of a recorded one the
// records of the range it came from — its rows were all compared then —
// and deletes the records of ranges the node no longer has.
func (n *Node) loadMatches() error {
	_, upper := prefixBounds(matchPrefix)
	it, err := n.db.NewIter(&pebble.IterOptions{LowerBound: matchPrefix, UpperBound: upper})
	if err != nil {
		return err
	}
	old := map[token.Range]map[string]time.Time{}
	for ok := it.First(); ok; ok = it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) < len(matchPrefix)+2*tokenBytes || len(v) != 8 {
			it.Close()
			return fmt.Errorf("%w: match record %x: want a range, a peer id and 8 bytes of time", ErrCorrupt, k)
		}
		rs, err := decodeSpans(k[len(matchPrefix) : len(matchPrefix)+2*tokenBytes])
		if err != nil {
			it.Close()
			return fmt.Errorf("match record %x: %w", k, err)
		}
		if old[rs[0]] == nil {
			old[rs[0]] = map[string]time.Time{}
		}
		old[rs[0]][string(k[len(matchPrefix)+2*tokenBytes:])] = time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return err
	}
	n.matches.at = map[token.Range]map[string]time.Time{}
	b := n.db.NewBatch()
	defer b.Close()
	ranges := n.Ranges()
	for _, r := range ranges {
		if m, ok := old[r]; ok {
			n.matches.at[r] = m
			continue
		}
		for o, m := range old {
			if o.Lo <= r.Lo && r.Hi <= o.Hi {
				n.matches.at[r] = maps.Clone(m)
				for peer, at := range m {
					if err := b.Set(matchKey(r, peer), binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano())), nil); err != nil {
						return err
					}
				}
			}
		}
	}
	for o, m := range old {
		if slices.Contains(ranges, o) {
			continue
		}
		for peer := range m {
			if err := b.Delete(matchKey(o, peer), nil); err != nil {
				return err
			}
		}
	}
	if b.Empty() {
		return nil
	}
	return n.db.Apply(b, pebble.NoSync)
}

// prefixBounds returns the key range of every key starting with p.
func prefixBounds(p []byte) (lower, upper []byte) {
	upper = slices.Clone(p)
	upper[len(upper)-1]++
	return p, upper
}

// RecordMatch records that range r of the node (one of Ranges) matched its
// replica on node peer at time at: a repair session found the two in sync,
// or converged them. A record older than the one kept is ignored. r must be
// one of the node's ranges (ErrNoSuchRange). The record is written without
// waiting for the disk: one lost in a crash leaves an older time, which
// errs on the side of repairing again.
func (n *Node) RecordMatch(r token.Range, peer string, at time.Time) (err error) {
	defer n.catch(&err)
	if peer == "" {
		return fmt.Errorf("%w: RecordMatch without a peer id", ErrOptions)
	}
	if err := n.use(); err != nil {
		return err
	}
	defer n.life.RUnlock()
	if !n.holdsRange(r) {
		return fmt.Errorf("%w: %v (the node holds %d ranges)", ErrNoSuchRange, r, len(n.Ranges()))
	}
	return n.recordMatch(r, peer, at)
}

// scrubPeer is the peer id of a range's scrub records: the time a scrub
// found its tree matching the rows on this node's own disk, or made it
// match. No node has the empty id (RecordMatch refuses it), and the
// records ride with the match records through ring changes.
const scrubPeer = ""

// LastScrubbed returns when a scrub last checked range r's tree against its
// rows, if ever.
func (n *Node) LastScrubbed(r token.Range) (time.Time, bool) {
	return n.Matched(r, scrubPeer)
}

// recordMatch is RecordMatch for any peer id, scrubPeer included; the
// caller holds the life lock and has checked r.
func (n *Node) recordMatch(r token.Range, peer string, at time.Time) error {
	n.matches.mu.Lock()
	defer n.matches.mu.Unlock()
	if prev, ok := n.matches.at[r][peer]; ok && !at.After(prev) {
		return nil
	}
	if err := n.db.Set(matchKey(r, peer), binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano())), pebble.NoSync); err != nil {
		return fmt.Errorf("grovepebble: recording a match of %v with %s: %w", r, peer, err)
	}
	if n.matches.at[r] == nil {
		n.matches.at[r] = map[string]time.Time{}
	}
	n.matches.at[r][peer] = at.UTC()
	return nil
}

// ConsistentAsOf returns when all of range r's replicas last matched this
// one: the oldest of its matches with each of peers (its other replicas,
// from the ring). It reports false when some peer never matched — or r
// has no peers, whose replicas then have nothing to match.
func (n *Node) ConsistentAsOf(r token.Range, peers []string) (time.Time, bool) {
	n.matches.mu.Lock()
	defer n.matches.mu.Unlock()
	var oldest time.Time
	for i, p := range peers {
		at, ok := n.matches.at[r][p]
		if !ok {
			return time.Time{}, false
		}
		if i == 0 || at.Before(oldest) {
			oldest = at
		}
	}
	return oldest, len(peers) > 0
}

// Matched returns when range r last matched peer, if ever.
func (n *Node) Matched(r token.Range, peer string) (time.Time, bool) {
	n.matches.mu.Lock()
	defer n.matches.mu.Unlock()
	at, ok := n.matches.at[r][peer]
	return at, ok
}

// metaRun records the start of the repair run in progress: a run that a
// crash interrupted resumes from it (coord.Record).
var metaRun = []byte("\x00run")

// BeginRun returns the start of the repair run a crash or a failure left
// unfinished, or else records now, durably, as the start of a new one.
func (n *Node) BeginRun(now time.Time) (_ time.Time, _ bool, err error) {
	defer n.catch(&err)
	if err := n.use(); err != nil {
		return time.Time{}, false, err
	}
	defer n.life.RUnlock()
	v, closer, err := n.db.Get(metaRun)
	switch {
	case err == nil:
		defer closer.Close()
		if len(v) != 8 {
			return time.Time{}, false, fmt.Errorf("%w: repair run record of %d bytes, want 8", ErrCorrupt, len(v))
		}
		return time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC(), true, nil
	case !errors.Is(err, pebble.ErrNotFound):
		return time.Time{}, false, err
	}
	if err := n.db.Set(metaRun, binary.BigEndian.AppendUint64(nil, uint64(now.UnixNano())), pebble.Sync); err != nil {
		return time.Time{}, false, err
	}
	return now, false, nil
}

// EndRun records that the repair run finished.
func (n *Node) EndRun() (err error) {
	defer n.catch(&err)
	if err := n.use(); err != nil {
		return err
	}
	defer n.life.RUnlock()
	return n.db.Delete(metaRun, pebble.Sync)
}
