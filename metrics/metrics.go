// Package metrics counts what grove does in a process — memory outside the
// heap per budget, trees open, builds, rehashes, diffs, repair sessions, the
// bytes and round trips they cost, and errors — for a storage node to
// export. A Set is passed to the packages that update it (engine.Options,
// repair.Options, repair.ResponderOptions); there is no global registry.
// Publish exposes a Set through expvar; package metrics/prom adapts it to a
// Prometheus collector, so that only nodes that want Prometheus depend on it.
//
// Every method is safe for concurrent use, and a nil *Set accepts every
// update and ignores it, so the engine updates its Set unconditionally.
package metrics

import (
	"errors"
	"expvar"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/antientropy/grove/arena"
)

// Role says which side of a repair session a count is for.
type Role int

// Roles of a repair session.
const (
	Initiator Role = iota
	Responder
)

func (r Role) String() string {
	if r == Initiator {
		return "initiator"
	}
	return "responder"
}

// ErrPublished: Publish was given a name expvar already holds.
var ErrPublished = errors.New("metrics: name already published")

// Set is one process's grove metrics.
type Set struct {
	treesOpen atomic.Int64
	builds    atomic.Int64
	rehashes  atomic.Int64
	diffs     atomic.Int64
	roles     [2]roleCounters

	mu      sync.Mutex
	budgets map[string]*arena.Budget
	errors  map[string]int64
	ranges  func() []RangeConsistency
}

type roleCounters struct {
	sessions, failed, open atomic.Int64
	sent, received, trips  atomic.Int64
}

// New returns an empty Set.
func New() *Set {
	return &Set{budgets: map[string]*arena.Budget{}, errors: map[string]int64{}}
}

// AddBudget reports b under name: bytes in use, at peak, and the limit.
// Adding a name again replaces the budget it reports.
func (s *Set) AddBudget(name string, b *arena.Budget) {
	if s == nil || b == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.budgets[name] = b
}

// TreeOpened counts a tree mapped (built, opened, snapshotted or folded).
func (s *Set) TreeOpened() {
	if s != nil {
		s.treesOpen.Add(1)
	}
}

// TreeClosed counts a tree unmapped.
func (s *Set) TreeClosed() {
	if s != nil {
		s.treesOpen.Add(-1)
	}
}

// Built counts a full hash of a tree's inner levels: a build.
func (s *Set) Built() {
	if s != nil {
		s.builds.Add(1)
	}
}

// Rehashed counts a hash of only the paths above changed leaves.
func (s *Set) Rehashed() {
	if s != nil {
		s.rehashes.Add(1)
	}
}

// Diffed counts a comparison of two trees.
func (s *Set) Diffed() {
	if s != nil {
		s.diffs.Add(1)
	}
}

// SessionStarted counts a repair session opened in role r.
func (s *Set) SessionStarted(r Role) {
	if s != nil {
		s.roles[r].sessions.Add(1)
		s.roles[r].open.Add(1)
	}
}

// SessionEnded counts a session closed; err non-nil counts it as failed.
func (s *Set) SessionEnded(r Role, err error) {
	if s == nil {
		return
	}
	s.roles[r].open.Add(-1)
	if err != nil {
		s.roles[r].failed.Add(1)
	}
}

// Exchanged counts one round trip of a session in role r and its message
// bytes, as that side sent and received them.
func (s *Set) Exchanged(r Role, sent, received int64) {
	if s == nil {
		return
	}
	s.roles[r].trips.Add(1)
	s.roles[r].sent.Add(sent)
	s.roles[r].received.Add(received)
}

// Error counts an error of operation op ("build", "hash", "diff", "open",
// "session", …).
func (s *Set) Error(op string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errors[op]++
}

// RangeConsistency is when all of one range's replicas last matched: a
// repair session found each in sync with this node, or converged it.
type RangeConsistency struct {
	// Lo and Hi bound the range (Lo, Hi], as decimal tokens.
	Lo string `json:"lo"`
	Hi string `json:"hi"`
	// AsOf is the oldest of the range's matches with its peers; nil when
	// some peer never matched.
	AsOf *time.Time `json:"consistent_as_of"`
	// LastScrub is when a scrub last checked the range's tree against the
	// rows on this node's disk; nil if never.
	LastScrub *time.Time `json:"last_scrub"`
}

// SetRanges makes fn the source of the node's per-range consistency,
// read at each Values: the node knows its ranges and when each matched.
func (s *Set) SetRanges(fn func() []RangeConsistency) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ranges = fn
}

// Budget is one budget's figures.
type Budget struct {
	Name  string `json:"name"`
	Used  int64  `json:"used_bytes"`
	Peak  int64  `json:"peak_bytes"`
	Limit int64  `json:"limit_bytes"`
}

// Sessions is one role's session figures.
type Sessions struct {
	Started       int64 `json:"started"`
	Open          int64 `json:"open"`
	Failed        int64 `json:"failed"`
	BytesSent     int64 `json:"bytes_sent"`
	BytesReceived int64 `json:"bytes_received"`
	RoundTrips    int64 `json:"round_trips"`
}

// Values is a Set's figures at one moment; its JSON form is what expvar
// shows.
type Values struct {
	Budgets   []Budget         `json:"budgets"`
	TreesOpen int64            `json:"trees_open"`
	Builds    int64            `json:"builds"`
	Rehashes  int64            `json:"rehashes"`
	Diffs     int64            `json:"diffs"`
	Initiator Sessions         `json:"initiator"`
	Responder Sessions         `json:"responder"`
	Errors    map[string]int64 `json:"errors"`
	// Ranges are the node's ranges and when each was last consistent,
	// from SetRanges's source.
	Ranges []RangeConsistency `json:"ranges,omitempty"`
}

// Values returns the Set's figures now, budgets in name order.
func (s *Set) Values() Values {
	if s == nil {
		return Values{Errors: map[string]int64{}}
	}
	v := Values{
		TreesOpen: s.treesOpen.Load(),
		Builds:    s.builds.Load(),
		Rehashes:  s.rehashes.Load(),
		Diffs:     s.diffs.Load(),
		Initiator: s.roles[Initiator].values(),
		Responder: s.roles[Responder].values(),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ranges != nil {
		v.Ranges = s.ranges()
	}
	v.Errors = maps.Clone(s.errors)
	for _, name := range slices.Sorted(maps.Keys(s.budgets)) {
		b := s.budgets[name]
		v.Budgets = append(v.Budgets, Budget{Name: name, Used: b.Used(), Peak: b.Peak(), Limit: b.Limit()})
	}
	return v
}

func (c *roleCounters) values() Sessions {
	return Sessions{
		Started: c.sessions.Load(), Open: c.open.Load(), Failed: c.failed.Load(),
		BytesSent: c.sent.Load(), BytesReceived: c.received.Load(), RoundTrips: c.trips.Load(),
	}
}

// Publish exposes the Set through expvar under name (served at /debug/vars
// by expvar.Handler). expvar's names are process-wide and cannot be
// withdrawn, so a name already taken is an error rather than expvar's panic.
func (s *Set) Publish(name string) error {
	if expvar.Get(name) != nil {
		return fmt.Errorf("%w: %q", ErrPublished, name)
	}
	expvar.Publish(name, expvar.Func(func() any { return s.Values() }))
	return nil
}
