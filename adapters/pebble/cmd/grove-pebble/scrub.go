package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"

	grovepebble "github.com/antientropy/grove/adapters/pebble"
	"github.com/antientropy/grove/internal/cli"
)

// scrubReport is scrub's JSON.
type scrubReport struct {
	Ranges        int             `json:"ranges"`
	Rows          int64           `json:"rows"`
	Bytes         int64           `json:"bytes"`
	Seconds       float64         `json:"seconds"`
	RowsCorrected int64           `json:"rows_corrected"`
	Mismatches    []scrubMismatch `json:"mismatches"`
}

// scrubMismatch is a leaf scrub found its tree wrong about, with its
// range and tokens as decimal strings.
type scrubMismatch struct {
	Lo     string `json:"lo"`
	Hi     string `json:"hi"`
	Leaf   int    `json:"leaf"`
	LeafLo string `json:"leaf_lo"`
	LeafHi string `json:"leaf_hi"`
}

func runScrub(ctx context.Context, args []string, stdout io.Writer) (int, error) {
	fs := cli.NewFlagSet("scrub")
	nf := &nodeFlags{
		db:     fs.String("db", "", "the Pebble database directory `DIR` (required)"),
		budget: cli.AddBudget(fs, "1GiB", "memory for the trees and one range's frozen leaves (a `SIZE`: 64MiB, 2GiB)"),
		ring:   addRingFlags(fs),
	}
	rate := fs.Float64("rate", 0, "read the rows at most at `MB/s` (10^6 bytes a second) of stored keys and values; 0 is unlimited")
	if err := cli.ParseNamed(fs, args); err != nil {
		return 0, err
	}
	if !(*rate >= 0) || math.IsInf(*rate, 1) {
		return 0, fmt.Errorf("--rate %v: want MB/s, 0 (unlimited) or more", *rate)
	}
	// The scrub's pace is the node's scan rate, which its reads charge.
	nf.scanRate = rate
	node, _, _, err := openRanges(ctx, nf)
	if err != nil {
		return 0, err
	}
	defer node.Close()
	rep, err := node.Scrub(ctx)
	if err != nil {
		return 0, err
	}
	if err := node.Close(); err != nil {
		return 0, err
	}
	out := scrubReport{Ranges: rep.Ranges, Rows: rep.Rows, Bytes: rep.Bytes, Seconds: rep.Duration.Seconds(),
		RowsCorrected: rep.RowsCorrected, Mismatches: []scrubMismatch{}}
	for _, m := range rep.Mismatches {
		out.Mismatches = append(out.Mismatches, mismatchOf(m))
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return 0, err
	}
	if len(rep.Mismatches) > 0 || rep.RowsCorrected != 0 {
		return exitDifferent, nil
	}
	return exitOK, nil
}

func mismatchOf(m grovepebble.ScrubMismatch) scrubMismatch {
	d := func(t int64) string { return strconv.FormatInt(t, 10) }
	return scrubMismatch{Lo: d(m.Range.Lo), Hi: d(m.Range.Hi), Leaf: m.Leaf, LeafLo: d(m.Span.Lo), LeafHi: d(m.Span.Hi)}
}

// parseScrubRate reads --scrub-rate: MB/s, auto (-1) or off (0).
func parseScrubRate(s string) (float64, error) {
	switch s {
	case "auto":
		return -1, nil
	case "off", "0":
		return 0, nil
	}
	mbps, err := strconv.ParseFloat(s, 64)
	if err != nil || !(mbps > 0) || math.IsInf(mbps, 1) {
		return 0, fmt.Errorf("--scrub-rate %q: want MB/s above 0, auto or off", s)
	}
	return mbps * 1e6, nil
}

// startScrub starts serve's background scrub at rate bytes a second, or
// for auto (-1) at grovepebble.AutoScrubRate of the node's data, and
// returns the rate (0: none).
func startScrub(node *grovepebble.Node, rate float64) (float64, error) {
	if rate == 0 {
		return 0, nil
	}
	if rate < 0 {
		var bytes uint64
		for _, r := range node.Ranges() {
			b, err := node.DiskBytes(r)
			if err != nil {
				return 0, err
			}
			bytes += b
		}
		rate = grovepebble.AutoScrubRate(bytes)
	}
	return rate, node.StartScrub(rate)
}
