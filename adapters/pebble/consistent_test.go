package grovepebble

import (
	"errors"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/ring/ringtest"
)

// countMatches counts the match records stored in n's database.
func countMatches(t *testing.T, n *Node) int {
	t.Helper()
	lower, upper := prefixBounds(matchPrefix)
	it, err := n.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	c := 0
	for ok := it.First(); ok; ok = it.Next() {
		c++
	}
	return c
}

// TestConsistentAsOf: a range is consistent as of the oldest of its
// matches with each of its peers; a newer record replaces an older one,
// records survive a restart, and bad calls are refused.
func TestConsistentAsOf(t *testing.T) {
	dir := t.TempDir()
	rs := testRanges()
	opts := Options{Ranges: rs}
	n := openNode(t, dir, created(opts))
	t1 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Hour)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(n.RecordMatch(rs[0], "n2", t2))
	must(n.RecordMatch(rs[0], "n3", t1))
	must(n.RecordMatch(rs[0], "n3", t1.Add(-time.Hour))) // older: ignored
	cases := []struct {
		name  string
		r     token.Range
		peers []string
		want  time.Time
		ok    bool
	}{
		{"oldest of both peers", rs[0], []string{"n2", "n3"}, t1, true},
		{"one peer", rs[0], []string{"n2"}, t2, true},
		{"a peer never matched", rs[0], []string{"n2", "n4"}, time.Time{}, false},
		{"a range never matched", rs[1], []string{"n2"}, time.Time{}, false},
		{"no peers", rs[0], nil, time.Time{}, false},
	}
	check := func(n *Node) {
		t.Helper()
		for _, c := range cases {
			got, ok := n.ConsistentAsOf(c.r, c.peers)
			if !got.Equal(c.want) || ok != c.ok {
				t.Errorf("%s: ConsistentAsOf = %v, %v; want %v, %v", c.name, got, ok, c.want, c.ok)
			}
		}
	}
	check(n)
	if err := n.RecordMatch(token.Range{Lo: 1, Hi: 2}, "n2", t1); !errors.Is(err, ErrNoSuchRange) {
		t.Errorf("a range not held: %v, want ErrNoSuchRange", err)
	}
	if err := n.RecordMatch(rs[0], "", t1); !errors.Is(err, ErrOptions) {
		t.Errorf("no peer id: %v, want ErrOptions", err)
	}
	n = reopen(t, n, dir, opts)
	check(n)
	must(n.RecordMatch(rs[0], "n3", t2.Add(time.Hour)))
	if got, _ := n.ConsistentAsOf(rs[0], []string{"n2", "n3"}); !got.Equal(t2) {
		t.Errorf("after a newer match with n3: %v, want %v", got, t2)
	}
}

// TestMatchesAcrossRingChange: a range split by a join keeps the matches
// of the range it came from; the records of ranges given away are deleted.
func TestMatchesAcrossRingChange(t *testing.T) {
	old := ringtest.RangesOf(t, ringtest.Random(t, 6, 16, 3, 14), "n1")
	now := ringtest.RangesOf(t, ringtest.Random(t, 7, 16, 3, 14), "n1")
	dir := t.TempDir()
	n := openNode(t, dir, created(Options{Ranges: old, NodeID: "n1"}))
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i, r := range old {
		if err := n.RecordMatch(r, "p", at.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	n = reopen(t, n, dir, Options{Ranges: now, NodeID: "n1"})
	for _, r := range now {
		var want time.Time
		for i, o := range old {
			if o.Lo <= r.Lo && r.Hi <= o.Hi {
				want = at.Add(time.Duration(i) * time.Minute)
			}
		}
		got, ok := n.ConsistentAsOf(r, []string{"p"})
		if want.IsZero() {
			t.Fatalf("range %v of the new ring lies in no old range", r)
		}
		if !ok || !got.Equal(want) {
			t.Errorf("range %v: consistent as of %v (%v), want %v, its old range's", r, got, ok, want)
		}
	}
	if c := countMatches(t, n); c != len(now) {
		t.Fatalf("%d match records stored for %d ranges", c, len(now))
	}
}

// TestRepairRun: a run begun and not ended is resumed with its start time,
// across a restart; an ended one is not.
func TestRepairRun(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Ranges: testRanges()}
	n := openNode(t, dir, created(opts))
	t1 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	start, resumed, err := n.BeginRun(t1)
	if err != nil || resumed || !start.Equal(t1) {
		t.Fatalf("first BeginRun: %v, %v, %v", start, resumed, err)
	}
	n = reopen(t, n, dir, opts)
	start, resumed, err = n.BeginRun(t1.Add(time.Hour))
	if err != nil || !resumed || !start.Equal(t1) {
		t.Fatalf("after a restart: %v, %v, %v; want the unfinished run of %v resumed", start, resumed, err, t1)
	}
	if err := n.EndRun(); err != nil {
		t.Fatal(err)
	}
	start, resumed, err = n.BeginRun(t1.Add(2 * time.Hour))
	if err != nil || resumed || !start.Equal(t1.Add(2*time.Hour)) {
		t.Fatalf("after EndRun: %v, %v, %v; want a new run", start, resumed, err)
	}
}
