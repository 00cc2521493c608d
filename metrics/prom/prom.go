// Package prom exposes a metrics.Set to Prometheus. It lives apart from
// package metrics so that only a node that serves Prometheus pulls in its
// client library.
package prom

import (
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/antientropy/grove/metrics"
)

// Collector reads a metrics.Set at each scrape.
type Collector struct {
	set *metrics.Set

	budgetUsed, budgetPeak, budgetLimit *prometheus.Desc
	treesOpen, builds, rehashes, diffs  *prometheus.Desc
	sessions, sessionsOpen, failed      *prometheus.Desc
	bytes, roundTrips, errors           *prometheus.Desc
	consistentAge, scrubAge             *prometheus.Desc
}

// NewCollector returns a collector for s; register it with
// prometheus.MustRegister or a registry of the node's own.
func NewCollector(s *metrics.Set) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("grove_"+name, help, labels, nil)
	}
	return &Collector{
		set:          s,
		budgetUsed:   d("budget_bytes_in_use", "Bytes outside the Go heap reserved against the budget now.", "budget"),
		budgetPeak:   d("budget_bytes_peak", "Most bytes ever reserved against the budget at once.", "budget"),
		budgetLimit:  d("budget_bytes_limit", "The budget's limit.", "budget"),
		treesOpen:    d("trees_open", "Trees mapped now (built, opened, snapshots, folds)."),
		builds:       d("builds_total", "Full hashes of a tree's inner levels."),
		rehashes:     d("rehashes_total", "Hashes of only the paths above changed leaves."),
		diffs:        d("diffs_total", "Comparisons of two trees."),
		sessions:     d("sessions_total", "Repair sessions started.", "role"),
		sessionsOpen: d("sessions_open", "Repair sessions in progress.", "role"),
		failed:       d("sessions_failed_total", "Repair sessions that ended in an error.", "role"),
		bytes:        d("session_message_bytes_total", "Protocol message bytes of repair sessions.", "role", "direction"),
		roundTrips:   d("session_round_trips_total", "Round trips of repair sessions.", "role"),
		errors:       d("errors_total", "Errors by operation.", "op"),
		consistentAge: d("range_consistent_age_seconds", "Seconds since all of the range's replicas last matched this node's (+Inf: some never did); it must stay under gc_grace_seconds.",
			"lo", "hi"),
		scrubAge: d("range_scrub_age_seconds", "Seconds since a scrub last checked the range's tree against the rows on this node's disk (+Inf: never).",
			"lo", "hi"),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.budgetUsed, c.budgetPeak, c.budgetLimit, c.treesOpen, c.builds, c.rehashes, c.diffs,
		c.sessions, c.sessionsOpen, c.failed, c.bytes, c.roundTrips, c.errors, c.consistentAge, c.scrubAge} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	v := c.set.Values()
	gauge := func(d *prometheus.Desc, x int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(x), labels...)
	}
	counter := func(d *prometheus.Desc, x int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(x), labels...)
	}
	for _, b := range v.Budgets {
		gauge(c.budgetUsed, b.Used, b.Name)
		gauge(c.budgetPeak, b.Peak, b.Name)
		gauge(c.budgetLimit, b.Limit, b.Name)
	}
	gauge(c.treesOpen, v.TreesOpen)
	counter(c.builds, v.Builds)
	counter(c.rehashes, v.Rehashes)
	counter(c.diffs, v.Diffs)
	for _, r := range []struct {
		role string
		s    metrics.Sessions
	}{{"initiator", v.Initiator}, {"responder", v.Responder}} {
		counter(c.sessions, r.s.Started, r.role)
		gauge(c.sessionsOpen, r.s.Open, r.role)
		counter(c.failed, r.s.Failed, r.role)
		counter(c.bytes, r.s.BytesSent, r.role, "sent")
		counter(c.bytes, r.s.BytesReceived, r.role, "received")
		counter(c.roundTrips, r.s.RoundTrips, r.role)
	}
	for op, n := range v.Errors {
		counter(c.errors, n, op)
	}
	now := time.Now()
	age := func(at *time.Time) float64 {
		if at == nil {
			return math.Inf(1)
		}
		return now.Sub(*at).Seconds()
	}
	for _, r := range v.Ranges {
		ch <- prometheus.MustNewConstMetric(c.consistentAge, prometheus.GaugeValue, age(r.AsOf), r.Lo, r.Hi)
		ch <- prometheus.MustNewConstMetric(c.scrubAge, prometheus.GaugeValue, age(r.LastScrub), r.Lo, r.Hi)
	}
}
