package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/antientropy/grove/arena"
)

// figureTarget is a goal the issue sets for a figure: reported, not
// enforced.
type figureTarget struct {
	op    string // "<", "<=", ">=", "="
	value float64
}

var figureTargets = map[string]figureTarget{
	"rows_efficiency":        {">=", 0.9},
	"rows_efficiency_sorted": {">=", 0.9},
	"rows_efficiency_random": {">=", 0.9},
	"heap_alloc_bytes":       {"<", 1 << 20},
	"gc_cycles":              {"<=", 2},
	"diff_k1_ns":             {"<=", 20_000},
	"bytes_per_leaf":         {"<=", 64},
}

func (f figureTarget) met(v float64) bool {
	switch f.op {
	case "<":
		return v < f.value
	case "<=":
		return v <= f.value
	case ">=":
		return v >= f.value
	}
	return v == f.value
}

// WriteTable writes the report as the table the README shows: the machine on
// top, then one line per comparison and one per figure, each with the target
// the issue sets where it sets one.
func (rep *Report) WriteTable(w io.Writer) error {
	m := rep.Machine
	var b strings.Builder
	leaves, rows := rep.Figures["leaves"], rep.Figures["rows"]
	fmt.Fprintf(&b, "grove bench: 2^%d leaves, %.0f rows; medians of %.0f runs (row builds: %.0f)\n",
		int(math.Round(math.Log2(max(leaves, 1)))), rows, rep.Figures["reps"], rep.Figures["rows_reps"])
	fmt.Fprintf(&b, "machine: %s/%s, %s, GOMAXPROCS %d of %d CPUs, %s\n", m.GOOS, m.GOARCH, m.CPU, m.GOMAXPROCS, m.NumCPU, m.GoVersion)
	fmt.Fprintf(&b, "hashing: %s\n", m.SIMD)
	if c, ok := rep.Figures["cores_available"]; ok && c < 0.9*float64(m.GOMAXPROCS) {
		fmt.Fprintf(&b, "warning: other processes held cores during the run (cores_available %.2f of %d): parallel results understate grove\n", c, m.GOMAXPROCS)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "ratio = grove time / baseline time (below 1: grove is faster); targets are goals, reported, not enforced\n")

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "result\tgrove\tbaseline\tbaseline time\tratio\ttarget")
	for _, r := range rep.Results {
		target := ""
		if r.Target > 0 {
			target = fmt.Sprintf("<= %.3g %s", r.Target, verdict(r.Ratio <= r.Target))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.3f\t%s\n", r.Name, formatNS(float64(r.GroveNS)), r.Baseline, formatNS(float64(r.BaselineNS)), r.Ratio, target)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString("\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tvalue\ttarget")
	for _, name := range rep.figureNames() {
		v := rep.Figures[name]
		target := ""
		if t, ok := figureTargets[name]; ok {
			target = fmt.Sprintf("%s %s %s", t.op, formatTarget(name, t.value), verdict(t.met(v)))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", name, formatFigure(name, v), target)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// figureNames lists the figures in the order Run measured them, or sorted
// for a report that did not come from Run (one decoded from JSON).
func (rep *Report) figureNames() []string {
	if len(rep.order) == len(rep.Figures) {
		return rep.order
	}
	names := make([]string, 0, len(rep.Figures))
	for name := range rep.Figures {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func verdict(ok bool) string {
	if ok {
		return "(met)"
	}
	return "(MISSED)"
}

// formatNS formats nanoseconds with three significant digits.
func formatNS(ns float64) string {
	d := time.Duration(ns)
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.3g s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.3g ms", ns/1e6)
	case d >= time.Microsecond:
		return fmt.Sprintf("%.3g µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

// formatTarget formats a target value by the unit its figure's name ends in.
func formatTarget(name string, v float64) string {
	switch {
	case strings.HasSuffix(name, "_ns"):
		return formatNS(v)
	case strings.HasSuffix(name, "_bytes"):
		return arena.FormatBytes(int64(v))
	}
	return fmt.Sprintf("%g", v)
}

// formatFigure formats a figure by the unit its name ends in.
func formatFigure(name string, v float64) string {
	switch {
	case strings.HasSuffix(name, "_ns"):
		return formatNS(v)
	case strings.HasSuffix(name, "_bytes"):
		return fmt.Sprintf("%.0f (%s)", v, arena.FormatBytes(int64(v)))
	case name == "bytes_per_leaf":
		return fmt.Sprintf("%.5f", v)
	case strings.HasSuffix(name, "_per_s"):
		return fmt.Sprintf("%.3g", v)
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.4g", v)
}
