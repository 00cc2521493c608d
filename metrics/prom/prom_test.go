package prom

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/metrics"
)

// TestCollector checks the exposition text against a Set with known counts,
// through a real registry (which also checks the metrics are consistent
// with their descriptions).
func TestCollector(t *testing.T) {
	s := metrics.New()
	b := arena.NewBudget(1 << 20)
	if err := b.Reserve(8192); err != nil {
		t.Fatal(err)
	}
	s.AddBudget("trees", b)
	s.TreeOpened()
	s.TreeOpened()
	s.Built()
	s.Rehashed()
	s.Rehashed()
	s.Diffed()
	s.SessionStarted(metrics.Initiator)
	s.Exchanged(metrics.Initiator, 100, 250)
	s.Exchanged(metrics.Initiator, 50, 30)
	s.SessionEnded(metrics.Initiator, nil)
	s.SessionStarted(metrics.Responder)
	s.Error("hash")
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(s))
	want := `
# HELP grove_budget_bytes_in_use Bytes outside the Go heap reserved against the budget now.
# TYPE grove_budget_bytes_in_use gauge
grove_budget_bytes_in_use{budget="trees"} 8192
# HELP grove_budget_bytes_limit The budget's limit.
# TYPE grove_budget_bytes_limit gauge
grove_budget_bytes_limit{budget="trees"} 1.048576e+06
# HELP grove_builds_total Full hashes of a tree's inner levels.
# TYPE grove_builds_total counter
grove_builds_total 1
# HELP grove_errors_total Errors by operation.
# TYPE grove_errors_total counter
grove_errors_total{op="hash"} 1
# HELP grove_rehashes_total Hashes of only the paths above changed leaves.
# TYPE grove_rehashes_total counter
grove_rehashes_total 2
# HELP grove_session_message_bytes_total Protocol message bytes of repair sessions.
# TYPE grove_session_message_bytes_total counter
grove_session_message_bytes_total{direction="received",role="initiator"} 280
grove_session_message_bytes_total{direction="received",role="responder"} 0
grove_session_message_bytes_total{direction="sent",role="initiator"} 150
grove_session_message_bytes_total{direction="sent",role="responder"} 0
# HELP grove_sessions_open Repair sessions in progress.
# TYPE grove_sessions_open gauge
grove_sessions_open{role="initiator"} 0
grove_sessions_open{role="responder"} 1
# HELP grove_trees_open Trees mapped now (built, opened, snapshots, folds).
# TYPE grove_trees_open gauge
grove_trees_open 2
`
	names := []string{"grove_budget_bytes_in_use", "grove_budget_bytes_limit", "grove_builds_total", "grove_errors_total",
		"grove_rehashes_total", "grove_session_message_bytes_total", "grove_sessions_open", "grove_trees_open"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 20 {
		t.Fatalf("%d series (%v), want 20: 3 per budget, 4 tree counts, 6 per role, 1 per erring op", n, err)
	}
}

// TestRangeAges: each range of the Set's source is a gauge of the seconds
// since its replicas last matched, and one of the seconds since its last
// scrub, +Inf for a range that never did.
func TestRangeAges(t *testing.T) {
	s := metrics.New()
	hourAgo, dayAgo := time.Now().Add(-time.Hour), time.Now().Add(-24*time.Hour)
	s.SetRanges(func() []metrics.RangeConsistency {
		return []metrics.RangeConsistency{{Lo: "-5", Hi: "3", AsOf: &hourAgo}, {Lo: "3", Hi: "9", LastScrub: &dayAgo}}
	})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(s))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		metric     string
		set, inf   string // the range with a time, the one without
		wantAgeSec float64
	}{
		{"grove_range_consistent_age_seconds", "-5,3", "3,9", 3600},
		{"grove_range_scrub_age_seconds", "3,9", "-5,3", 86400},
	} {
		got := map[string]float64{}
		for _, mf := range mfs {
			if mf.GetName() != tc.metric {
				continue
			}
			for _, m := range mf.GetMetric() {
				var lo, hi string
				for _, l := range m.GetLabel() {
					switch l.GetName() {
					case "lo":
						lo = l.GetValue()
					case "hi":
						hi = l.GetValue()
					}
				}
				got[lo+","+hi] = m.GetGauge().GetValue()
			}
		}
		if len(got) != 2 || !math.IsInf(got[tc.inf], 1) || got[tc.set] < tc.wantAgeSec || got[tc.set] > tc.wantAgeSec+300 {
			t.Fatalf("%s: %v; want %s about %v s and %s +Inf", tc.metric, got, tc.set, tc.wantAgeSec, tc.inf)
		}
	}
}
