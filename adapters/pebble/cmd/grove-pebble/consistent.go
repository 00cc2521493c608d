package main

import (
	"strconv"
	"time"

	"github.com/antientropy/grove/metrics"

	grovepebble "github.com/antientropy/grove/adapters/pebble"
)

// consistency returns, for each of the node's ranges in the ring, when all
// its replicas last matched this one — what an operator compares with
// gc_grace_seconds.
func consistency(node *grovepebble.Node, nr *nodeRing) []metrics.RangeConsistency {
	out := make([]metrics.RangeConsistency, 0, len(nr.replicas))
	for _, rep := range nr.replicas {
		rc := metrics.RangeConsistency{Lo: strconv.FormatInt(rep.Range.Lo, 10), Hi: strconv.FormatInt(rep.Range.Hi, 10)}
		if at, ok := node.ConsistentAsOf(rep.Range, rep.Peers); ok {
			rc.AsOf = &at
		}
		if at, ok := node.LastScrubbed(rep.Range); ok {
			rc.LastScrub = &at
		}
		out = append(out, rc)
	}
	return out
}

// scrubText is a last scrub time in inspect's text form.
func scrubText(at *time.Time) string {
	if at == nil {
		return "never scrubbed"
	}
	return "scrubbed " + at.UTC().Format(time.RFC3339)
}

// asOfText is a consistency time in inspect's text form.
func asOfText(at *time.Time) string {
	if at == nil {
		return "never consistent with all its peers"
	}
	return "consistent as of " + at.UTC().Format(time.RFC3339)
}
