package nodebench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	grovepebble "github.com/antientropy/grove/adapters/pebble"
	"github.com/antientropy/grove/arena"
)

// The background scrub's measurement (issue 16): how close it keeps to the
// rate it is given, and what it costs the node's writes at its default
// rate.

// ScrubFigures are the background scrub's figures.
type ScrubFigures struct {
	// Rate is the rate asked for, in bytes a second; Read what the scrub
	// read in Window, as the median of Reps windows.
	Rate   float64
	Read   float64
	Window time.Duration
	// DefaultRate is the rate the write passes scrubbed at: the node's
	// default (grovepebble.AutoScrubRate), for the data they wrote.
	DefaultRate float64
	// Plain and Scrubbed are the medians of the write passes' foreground
	// times without a scrub and with one at DefaultRate.
	Plain, Scrubbed time.Duration
	Batch           int
}

// Figures names scrub_rate_ratio (read rate ÷ asked; the target is within
// 10% of 1) and scrub_write_fg_ratio_256 (writes' foreground time with the
// scrub ÷ without).
func (f ScrubFigures) Figures() []Figure {
	return []Figure{
		{"scrub_rate_ratio", f.Read / f.Rate},
		{"scrub_rate_bytes_per_s", f.Rate},
		{fmt.Sprintf("scrub_write_fg_ratio_%d", f.Batch), ratio(f.Scrubbed, f.Plain)},
		{"scrub_default_rate_bytes_per_s", f.DefaultRate},
	}
}

// ScrubRate is the rate the scrub's rate figure asks for, in bytes a second:
// well below what a core reads, so that the pacing and not the machine
// sets the pace.
const ScrubRate = 8e6

// Scrub measures the background scrub:
//
//   - its rate: a node over a database of opts' size scrubs in the
//     background at ScrubRate for a window of a few seconds, Reps times;
//     the bytes it read in each window (Node.ScrubStats) over the window
//     is its rate;
//   - its cost to writes: the write measurement's passes at 256 rows a
//     batch, alternately without a scrub and with one at the node's
//     default rate for the data written, each pass checked against a
//     rebuild as Write checks it.
func Scrub(ctx context.Context, opts Options) (ScrubFigures, error) {
	rows, reps := opts.sizes()
	window := 3 * time.Second
	if opts.Quick {
		window = time.Second
	}
	f := ScrubFigures{Rate: ScrubRate, Window: window, Batch: 256}
	logf(opts.Log, "scrub: making %d rows", rows)
	d, err := makeDataset(rows)
	if err != nil {
		return f, err
	}
	tmp, err := os.MkdirTemp(opts.Dir, "grove-nodebench-")
	if err != nil {
		return f, fmt.Errorf("nodebench: %w", err)
	}
	defer os.RemoveAll(tmp)
	dbDir := filepath.Join(tmp, "db")
	if err := writeDB(ctx, dbDir, d); err != nil {
		return f, err
	}
	n, err := grovepebble.Open(ctx, dbDir, grovepebble.Options{Ranges: d.ranges, TreesDir: filepath.Join(tmp, "trees"), Budget: arena.NewBudget(grovepebble.DefaultBudget)})
	if err != nil {
		return f, fmt.Errorf("nodebench: the scrub's node: %w", err)
	}
	if err := n.StartScrub(ScrubRate); err != nil {
		n.Close()
		return f, err
	}
	var read []float64
	for rep := range reps {
		before, start := n.ScrubStats().Bytes, time.Now()
		select {
		case <-ctx.Done():
		case <-time.After(window):
		}
		got := float64(n.ScrubStats().Bytes-before) / time.Since(start).Seconds()
		read = append(read, got)
		logf(opts.Log, "scrub: rep %d/%d: %.2f MB/s read, %.2f asked", rep+1, reps, got/1e6, ScrubRate/1e6)
	}
	st := n.ScrubStats()
	if err := errors.Join(ctx.Err(), n.Close()); err != nil {
		return f, err
	}
	if st.Mismatches != 0 {
		return f, fmt.Errorf("nodebench: the scrub corrected %d leaves of a node written through its write path", st.Mismatches)
	}
	slices.Sort(read)
	f.Read = read[len(read)/2]

	wrows := writeRowsCap(opts)
	wd, err := makeDataset(wrows)
	if err != nil {
		return f, err
	}
	order := writeOrder(wd)
	var plain, scrubbed []time.Duration
	pass := 0
	for rep := range reps {
		sides := []bool{false, true}
		if rep%2 == 1 {
			slices.Reverse(sides)
		}
		for _, scrub := range sides {
			pass++
			dir := filepath.Join(tmp, fmt.Sprint("w", pass))
			rate := 0.0
			if scrub {
				// What a node holding these rows would scrub at: its
				// default for the data (the floor, for a database
				// this small).
				rate = grovepebble.AutoScrubRate(uint64(wrows) * storedBytes)
				f.DefaultRate = rate
			}
			fg, _, err := nodeWritesScrubbed(ctx, dir, wd, order, f.Batch, rate)
			if err != nil {
				return f, err
			}
			if scrub {
				scrubbed = append(scrubbed, fg)
			} else {
				plain = append(plain, fg)
			}
		}
		logf(opts.Log, "scrub: write rep %d/%d: %v without a scrub, %v with one at %.1f MB/s", rep+1, reps,
			plain[rep].Round(time.Millisecond), scrubbed[rep].Round(time.Millisecond), f.DefaultRate/1e6)
	}
	f.Plain, f.Scrubbed = median(plain), median(scrubbed)
	return f, nil
}
