package metrics

import (
	"encoding/json"
	"errors"
	"expvar"
	"sync"
	"testing"

	"github.com/antientropy/grove/arena"
)

// TestCounts checks every update lands in Values, concurrently.
func TestCounts(t *testing.T) {
	s := New()
	b := arena.NewBudget(1 << 20)
	s.AddBudget("trees", b)
	if err := b.Reserve(4096); err != nil {
		t.Fatal(err)
	}
	b.Release(1024)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				s.TreeOpened()
				s.Built()
				s.Rehashed()
				s.Diffed()
				s.SessionStarted(Initiator)
				s.Exchanged(Initiator, 10, 20)
				s.SessionEnded(Initiator, nil)
				s.SessionStarted(Responder)
				s.SessionEnded(Responder, errors.New("x"))
				s.Error("diff")
			}
			for range 50 {
				s.TreeClosed()
			}
		})
	}
	wg.Wait()
	v := s.Values()
	want := Values{
		Budgets:   []Budget{{Name: "trees", Used: 3072, Peak: 4096, Limit: 1 << 20}},
		TreesOpen: 400, Builds: 800, Rehashes: 800, Diffs: 800,
		Initiator: Sessions{Started: 800, BytesSent: 8000, BytesReceived: 16000, RoundTrips: 800},
		Responder: Sessions{Started: 800, Failed: 800},
	}
	if v.Errors["diff"] != 800 {
		t.Fatalf("errors %v", v.Errors)
	}
	v.Errors = nil
	got, _ := json.Marshal(v)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Fatalf("got  %s\nwant %s", got, exp)
	}
}

// TestNilSet checks a nil Set takes every update without effect, so code
// can update an optional Set unconditionally.
func TestNilSet(t *testing.T) {
	var s *Set
	s.TreeOpened()
	s.TreeClosed()
	s.Built()
	s.Rehashed()
	s.Diffed()
	s.SessionStarted(Responder)
	s.SessionEnded(Responder, nil)
	s.Exchanged(Initiator, 1, 1)
	s.Error("x")
	s.AddBudget("b", arena.NewBudget(1))
	if v := s.Values(); v.TreesOpen != 0 || len(v.Errors) != 0 {
		t.Fatalf("nil set: %+v", v)
	}
}

// TestPublish checks the expvar view is the Set's current Values, and that
// a second publication under one name is an error, not expvar's panic.
func TestPublish(t *testing.T) {
	s := New()
	if err := s.Publish("grove_test_publish"); err != nil {
		t.Fatal(err)
	}
	s.Diffed()
	var v Values
	if err := json.Unmarshal([]byte(expvar.Get("grove_test_publish").String()), &v); err != nil || v.Diffs != 1 {
		t.Fatalf("expvar shows %s (%v)", expvar.Get("grove_test_publish").String(), err)
	}
	if err := New().Publish("grove_test_publish"); !errors.Is(err, ErrPublished) {
		t.Fatalf("second publish: %v", err)
	}
}
