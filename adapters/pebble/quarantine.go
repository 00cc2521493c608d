package grovepebble

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/token"
)

// A stored row that does not decode, or fails its checksum, is damage: it
// must never be served, hashed, compared or sent to a peer as a version.
// Every read skips it and names its key here, a suspect; the scrub checks
// the ranges of suspects first, sets their leaves to the rows that are
// sound, and then moves each row still damaged aside, under quarantinePrefix,
// where it stays for an operator to look at while the next repair brings
// a replica's good version back.

// quarantinePrefix is the metadata key under which a damaged row is kept:
// then its composite key, with its stored value as it was found.
var quarantinePrefix = []byte("\x00quarantine")

// maxSuspects bounds the keys a Node remembers between scrubs: past it,
// the scrub's next full pass finds the others, as it finds damage no read
// has met.
const maxSuspects = 1 << 14

// suspects are the composite keys whose stored row reads have found
// damaged since the scrub last checked their range, each with its token.
type suspects struct {
	mu   sync.Mutex
	keys map[string]token.Token
	// tables are the paths of tables Pebble reported damaged.
	tables map[string]bool
}

// suspect records ck, whose stored row failed to decode or its checksum.
// Pebble's merges call it too, from its own goroutines.
func (n *Node) suspect(ck []byte) {
	tok, _, err := splitRowKey(ck)
	if err != nil {
		return // not a row key: no range to check
	}
	s := &n.suspects
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		s.keys = map[string]token.Token{}
	}
	if len(s.keys) < maxSuspects {
		s.keys[string(ck)] = tok
	}
}

// takeSuspects removes the suspects of range r and returns them in key
// order.
func (n *Node) takeSuspects(r token.Range) [][]byte {
	s := &n.suspects
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for k, tok := range s.keys {
		if r.Contains(tok) {
			out = append(out, []byte(k))
			delete(s.keys, k)
		}
	}
	slices.SortFunc(out, bytes.Compare)
	return out
}

// suspectSpans are the one-token spans of the suspects, and the spans of
// the tables Pebble reported damaged: the scrub checks the ranges that
// cross them first.
func (n *Node) suspectSpans() []token.Range {
	var spans []token.Range
	for _, e := range n.damagedTableSpans() {
		spans = append(spans, e.Span)
	}
	s := &n.suspects
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tok := range s.keys {
		spans = append(spans, token.Range{Lo: tok - 1, Hi: tok})
	}
	return spans
}

// Quarantined is a damaged row the scrub moved aside.
type Quarantined struct {
	// Range is the node's range the row was in, Token its token (as
	// stored), Key its row key (as stored).
	Range token.Range
	Token token.Token
	Key   []byte
	// Reason is why it was moved: what its decoding said.
	Reason string
}

// quarantine moves aside every suspect of range r whose stored row is
// still damaged, in one synced batch, and returns them. The caller holds
// n.mu for writing, with the maintainer settled, and the tree of r
// already leaves them out: their removal keeps it right. A suspect whose
// row reads well now (a write replaced it, and the merge dropped the
// damaged version) is left, and the maintainer names it again if it could
// not follow that write.
func (n *Node) quarantine(r token.Range) ([]Quarantined, error) {
	keys := n.takeSuspects(r)
	if len(keys) == 0 {
		return nil, nil
	}
	b := n.db.NewBatch()
	defer b.Close()
	var moved []Quarantined
	for _, ck := range keys {
		v, closer, err := n.db.Get(ck)
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, asCorrupt(n.dir, err)
		}
		var row engine.Row
		_, derr := decodeRow(n.p, ck, v, &row, n.isStrict())
		if derr == nil {
			closer.Close()
			continue
		}
		err = errors.Join(b.Set(append(slices.Clip(quarantinePrefix), ck...), v, nil), b.Delete(ck, nil))
		closer.Close()
		if err != nil {
			return nil, err
		}
		tok, key, _ := splitRowKey(ck) // takeSuspects holds row keys only
		moved = append(moved, Quarantined{Range: r, Token: tok, Key: key, Reason: derr.Error()})
	}
	if len(moved) == 0 {
		return nil, nil
	}
	if err := n.commit(b, pebble.Sync); err != nil {
		return nil, fmt.Errorf("moving %d damaged rows aside: %w", len(moved), err)
	}
	// The maintainer's next round must not read the rows just moved as
	// the previous versions of later writes.
	n.resnap()
	return moved, nil
}
