// Package nodebench measures a grovepebble node against floors — the same
// work done with nothing of grove's in the way — in one run, as single
// figures, so that a change to the node can be judged by one command
// (grove-pebble bench) on the machine at hand. Each measurement builds its
// own database in a temporary directory, times grove and its floors
// alternately, checks that every timed run did all its work, and reports
// medians.
package nodebench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// Options say how big a run is and where it works.
type Options struct {
	// Quick runs a small database a few times: seconds, not minutes, and
	// noisier figures.
	Quick bool
	// Rows, if positive, is the size of the database instead of the
	// mode's: tests run tiny ones.
	Rows int
	// Reps, if positive, is how many times each side is timed instead of
	// the mode's.
	Reps int
	// Dir is where the temporary databases go; empty means os.TempDir.
	// Each is removed before its measurement returns.
	Dir string
	// Log, if not nil, gets a line as each phase starts and as each
	// repetition ends.
	Log io.Writer
}

// sizes returns the rows and repetitions of a run.
func (o Options) sizes() (rows, reps int) {
	rows, reps = FullRows, fullReps
	if o.Quick {
		rows, reps = QuickRows, quickReps
	}
	if o.Rows > 0 {
		rows = o.Rows
	}
	if o.Reps > 0 {
		reps = o.Reps
	}
	return rows, reps
}

// Figure is one named number of a report.
type Figure struct {
	Name  string
	Value float64
}

// Report is every figure of a run. Its JSON form is
//
//	{"figures": {"scan_vs_floor": 0.93, ...}}
//
// so that reports from different runs, or different measurements, merge
// by name.
type Report struct {
	Figures map[string]float64 `json:"figures"`
	order   []string           // names in the order they were measured
}

// Add records a figure; a later one of the same name replaces it.
func (r *Report) Add(fs ...Figure) {
	if r.Figures == nil {
		r.Figures = map[string]float64{}
	}
	for _, f := range fs {
		if _, ok := r.Figures[f.Name]; !ok {
			r.order = append(r.order, f.Name)
		}
		r.Figures[f.Name] = f.Value
	}
}

// measurement is one of the things Run measures: it returns its figures.
type measurement struct {
	name string
	run  func(context.Context, Options) ([]Figure, error)
}

// measurements are what Run runs, in order. A new measurement adds itself
// here.
var measurements = []measurement{
	{"scan", func(ctx context.Context, o Options) ([]Figure, error) {
		f, err := Scan(ctx, o)
		return f.Figures(), err
	}},
	{"write", func(ctx context.Context, o Options) ([]Figure, error) {
		f, err := Write(ctx, o)
		return f.Figures(), err
	}},
	{"scrub", func(ctx context.Context, o Options) ([]Figure, error) {
		f, err := Scrub(ctx, o)
		return f.Figures(), err
	}},
}

// Run runs every measurement in turn and returns their figures in one
// report. It stops at the first that fails.
//
// Run takes the machine to itself: it sets GOMAXPROCS as each measurement
// needs (restoring it after), and a full run writes a few hundred
// megabytes to Options.Dir.
func Run(ctx context.Context, opts Options) (*Report, error) {
	rep := &Report{Figures: map[string]float64{}}
	for _, m := range measurements {
		fs, err := m.run(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.name, err)
		}
		rep.Add(fs...)
	}
	return rep, nil
}

// Target is what a figure should reach.
type Target struct {
	// AtLeast is true for a floor (≥ Value), false for a ceiling (≤).
	AtLeast bool
	Value   float64
	// Within, if positive, makes the target Value ± Within instead.
	Within float64
}

// Met reports whether v meets the target.
func (t Target) Met(v float64) bool {
	switch {
	case t.Within > 0:
		// A hair over Within, so that a value on the band's edge counts
		// whatever the rounding of its subtraction.
		return math.Abs(v-t.Value) <= t.Within*(1+1e-9)
	case t.AtLeast:
		return v >= t.Value
	}
	return v <= t.Value
}

func (t Target) String() string {
	if t.Within > 0 {
		return fmt.Sprintf("%s ± %s", formatValue(t.Value), formatValue(t.Within))
	}
	op := "≤"
	if t.AtLeast {
		op = "≥"
	}
	return fmt.Sprintf("%s %s", op, formatValue(t.Value))
}

// Targets are the figures that have a target, by name.
var Targets = map[string]Target{
	"scan_vs_floor":      {AtLeast: true, Value: ScanTarget},
	"write_fg_ratio_256": {Value: WriteFgTarget256},
	"write_ratio_256":    {Value: WriteTarget256},
	"write_ratio_16":     {Value: WriteTarget16},
	// Issue 16: the background scrub keeps within 10% of its rate.
	"scrub_rate_ratio": {Value: 1, Within: 0.1},
}

// WriteJSON writes the report's JSON form, indented, on one object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report as a table: each figure, its value, and its
// target with whether it was met.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tvalue\ttarget")
	for _, name := range r.names() {
		v := r.Figures[name]
		target := "–"
		if t, ok := Targets[name]; ok {
			verdict := "met"
			if !t.Met(v) {
				verdict = "MISSED"
			}
			target = fmt.Sprintf("%s (%s)", t, verdict)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", name, formatValue(v), target)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// names lists the figures in the order they were measured, then any added
// to the map directly, sorted.
func (r *Report) names() []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range r.order {
		if _, ok := r.Figures[n]; ok && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	var rest []string
	for n := range r.Figures {
		if !seen[n] {
			rest = append(rest, n)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// formatValue shows a ratio with three decimals and a count or a rate
// without fractions.
func formatValue(v float64) string {
	if math.Abs(v) >= 100 || v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}
