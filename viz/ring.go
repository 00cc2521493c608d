// Package viz draws what grove found as pictures a person can read at a
// glance: RingSVG draws a tree's token range as a ring, with the ranges where
// two trees differ marked, labelled and counted in a legend.
//
// The output is a standalone SVG 1.1 document of a fixed size (no scripts,
// fonts or other external resources), and the same input always gives the
// same bytes, so pictures can be diffed and cached. Tools can read it back:
// each wedge is a <path class="differ"> whose data-start and data-end give
// the true angles of what it covers (degrees clockwise from the top, where
// the range starts and ends), data-lo and data-hi the tokens, data-ranges
// and data-leaves what it holds; labels are <g class="label">.
package viz

import (
	"bytes"
	"cmp"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/antientropy/grove/engine/token"
)

// Picture size in SVG user units (pixels at 100% zoom). Fixed so that every
// picture lays out the same way and a viewer can compare two side by side.
const (
	Width  = 900
	Height = 700
)

// MinArcDegrees is the narrowest angle a differing range is drawn with. One
// leaf of a depth-20 tree is a millionth of the circle, far below a pixel;
// it is widened to this so that it can be seen, while its label and the
// legend still give its true width.
const MinArcDegrees = 1.2

// MaxLabels is how many arcs get a label with a leader line: the widest ones.
// More labels than this would overlap whatever the layout, so the legend
// says how many were left out instead.
const MaxLabels = 20

// NodeBytes is what comparing one node pair costs an exchange between two
// peers: one SHA-256 hash.
const NodeBytes = 32

// Colours of the picture. The render test looks for them in a screenshot,
// so they are solid, far apart, and used for nothing but the ring, the
// wedges and their keys in the legend.
const (
	ColorDiffer = "#e31a1c"
	ColorSame   = "#a6cee3"
)

// Side describes one of the two compared trees for the legend.
type Side struct {
	// Name labels the side, e.g. its file name. Any string is safe: it is
	// escaped, and long names are shortened from the front (the end of a
	// path says most).
	Name string
	// Bytes is the size of the tree's nodes; 0 leaves it out.
	Bytes int64
	// Rows is the tree's row count, shown only when RowsKnown, since zero
	// rows is a real count.
	Rows      int64
	RowsKnown bool
}

// Ring is what RingSVG draws: one token range as a full circle, and the
// ranges inside it where two trees differ.
type Ring struct {
	// Range is the range both trees cover; the ring's full circle.
	Range token.Range
	// Depth is the depth at which the trees were compared (0..62): it turns
	// widths into leaf counts.
	Depth int
	// Differ are the differing ranges (engine.DiffResult.Ranges): inside
	// Range, in ring order, not overlapping. Empty means identical trees.
	Differ []token.Range
	// DifferingLeaves is how many leaves differ, as the diff counted them.
	DifferingLeaves int
	// NodesCompared is how many node pairs the diff compared; the legend
	// prices it at NodeBytes a pair.
	NodesCompared int
	// A and B are the two sides.
	A, B Side
}

// Geometry of the picture, in user units. The ring sits left of centre so
// that the legend has a column of its own on the right.
const (
	cx, cy    = 318.0, 350.0
	rOut      = 170.0
	rIn       = 125.0
	overhang  = 5.0  // a differing wedge stands out of the ring on both sides
	labelCol  = 52.0 // label columns stand this far outside the ring
	labelGap  = 27.0 // two-line labels need this much vertical room
	labelTop  = 24.0
	labelBot  = Height - 16.0
	legendX   = 648.0
	legendVal = 696.0
)

// arc is one wedge: one differing range, or several whose widened wedges
// would overlap and so are drawn as one. Keeping overlapping wedges apart
// would add nothing a viewer can see and would let the output grow with the
// number of ranges; merged, there are fewer than 360/MinArcDegrees wedges.
type arc struct {
	first, last        int // indices into Ring.Differ
	lo, hi             token.Token
	start, end         float64 // true extent, degrees clockwise from the top
	drawStart, drawEnd float64 // widened to MinArcDegrees where needed
	width              uint64  // tokens in its ranges (not the gaps between)
	leaves             uint64
}

// RingSVG writes p as a standalone SVG document to w. It returns an error
// wrapping ErrBadRing, before writing anything, if p cannot be drawn as
// given, and otherwise only w's error.
func RingSVG(w io.Writer, p Ring) error {
	if err := p.check(); err != nil {
		return err
	}
	arcs := p.arcs()
	var b svg
	b.header(p)
	b.ring(p, arcs)
	shown := b.labels(arcs)
	b.centre(p)
	b.legend(p, arcs, shown)
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

func (p *Ring) check() error {
	if err := p.Range.Valid(); err != nil {
		return fmt.Errorf("%w: range: %w", ErrBadRing, err)
	}
	if p.Depth < 0 || p.Depth > 62 {
		return fmt.Errorf("%w: depth %d outside 0..62", ErrBadRing, p.Depth)
	}
	if p.Range.LeafOf(p.Range.Hi, p.Depth) < 0 {
		// LeafOf refuses depths that overflow int on 32-bit platforms.
		return fmt.Errorf("%w: depth %d too deep for this platform", ErrBadRing, p.Depth)
	}
	if p.DifferingLeaves < 0 || p.NodesCompared < 0 {
		return fmt.Errorf("%w: negative count (differing leaves %d, nodes compared %d)", ErrBadRing, p.DifferingLeaves, p.NodesCompared)
	}
	if int64(p.NodesCompared) > math.MaxInt64/NodeBytes {
		// Its byte figure would overflow; no diff compares this many.
		return fmt.Errorf("%w: nodes compared %d is more than any tree has", ErrBadRing, p.NodesCompared)
	}
	for _, s := range []Side{p.A, p.B} {
		if s.Bytes < 0 || s.Rows < 0 {
			return fmt.Errorf("%w: side %q: negative bytes %d or rows %d", ErrBadRing, s.Name, s.Bytes, s.Rows)
		}
	}
	for i, r := range p.Differ {
		if err := r.Valid(); err != nil {
			return fmt.Errorf("%w: differing range %d: %w", ErrBadRing, i, err)
		}
		if r.Lo < p.Range.Lo || r.Hi > p.Range.Hi {
			return fmt.Errorf("%w: differing range %d %v outside the ring %v", ErrBadRing, i, r, p.Range)
		}
		if i > 0 && r.Lo < p.Differ[i-1].Hi {
			return fmt.Errorf("%w: differing range %d %v overlaps or precedes range %d %v", ErrBadRing, i, r, i-1, p.Differ[i-1])
		}
	}
	return nil
}

// angle is where t lies on the ring, in degrees clockwise from the top:
// (t − lo) / width × 360. The offset is taken in uint64, where it is exact
// for any t in the range, even one 2^64 − 1 tokens wide; only the division
// rounds, by less than 1e-13 of a degree.
func (p *Ring) angle(t token.Token) float64 {
	off := uint64(t) - uint64(p.Range.Lo)
	return float64(off) / float64(p.Range.Width()) * 360
}

// leaves counts the leaves of the ring at p.Depth that r overlaps.
func (p *Ring) leaves(r token.Range) uint64 {
	first := p.Range.LeafOf(r.Lo+1, p.Depth)
	last := p.Range.LeafOf(r.Hi, p.Depth)
	return uint64(last-first) + 1
}

func (p *Ring) arcs() []arc {
	var out []arc
	for i, r := range p.Differ {
		a := arc{first: i, last: i, lo: r.Lo, hi: r.Hi, start: p.angle(r.Lo), end: p.angle(r.Hi), width: r.Width(), leaves: p.leaves(r)}
		a.drawStart, a.drawEnd = a.start, a.end
		if a.end-a.start < MinArcDegrees {
			// Widen around the middle, but never across the top, where the
			// ring's end meets its start: a range there would seem to be
			// at the other end too.
			mid := (a.start + a.end) / 2
			a.drawStart = min(max(mid-MinArcDegrees/2, 0), 360-MinArcDegrees)
			a.drawEnd = a.drawStart + MinArcDegrees
		}
		// Wedges less than a pixel apart merge too: the gap would show
		// only as a seam.
		if n := len(out); n > 0 && a.drawStart <= out[n-1].drawEnd+MinArcDegrees/4 {
			m := &out[n-1]
			m.last, m.hi, m.end = i, a.hi, a.end
			m.drawEnd = max(m.drawEnd, a.drawEnd)
			m.drawStart = min(m.drawStart, a.drawStart)
			m.width += a.width
			m.leaves += a.leaves
			continue
		}
		out = append(out, a)
	}
	return out
}

// svg builds the document in memory: it is bounded (see arc), and writing
// it in one piece means a failed writer never sees half a picture.
type svg struct {
	bytes.Buffer
}

// num formats a coordinate: two decimals are a hundredth of a pixel, and
// trimming zeros keeps the many path numbers short.
func num(v float64) string {
	s := strconv.FormatFloat(v, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" || s == "" {
		return "0"
	}
	return s
}

// text writes s escaped for XML text or a quoted attribute. Characters XML
// cannot hold at all (most control characters, invalid UTF-8) become U+FFFD,
// so any name gives a well-formed document.
func (b *svg) text(s string) {
	_ = xml.EscapeText(b, []byte(s)) // bytes.Buffer writes do not fail
}

// point is the point at angle deg (clockwise from the top) and radius r.
func point(deg, r float64) (float64, float64) {
	rad := deg * math.Pi / 180
	return cx + r*math.Sin(rad), cy - r*math.Cos(rad)
}

func (b *svg) header(p Ring) {
	fmt.Fprintf(b, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">
<title>`, Width, Height, Width, Height)
	b.text("grove diff: " + p.A.Name + " vs " + p.B.Name)
	b.WriteString("</title>\n")
	fmt.Fprintf(b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", Width, Height)
}

func (b *svg) ring(p Ring, arcs []arc) {
	// A stroked circle rather than a path: an annulus path from 0° to 360°
	// starts and ends at the same point, which SVG draws as nothing.
	fmt.Fprintf(b, `<circle class="same" cx="%s" cy="%s" r="%s" fill="none" stroke="%s" stroke-width="%s"/>`+"\n",
		num(cx), num(cy), num((rOut+rIn)/2), ColorSame, num(rOut-rIn))
	// Ticks go under the wedges, so that a range at a tick is not crossed
	// out by it.
	b.ticks(p)
	for _, a := range arcs {
		fmt.Fprintf(b, `<path class="differ" data-start="%s" data-end="%s" data-lo="%d" data-hi="%d" data-ranges="%d" data-leaves="%d" fill="%s" d="`,
			strconv.FormatFloat(a.start, 'f', -1, 64), strconv.FormatFloat(a.end, 'f', -1, 64),
			a.lo, a.hi, a.last-a.first+1, a.leaves, ColorDiffer)
		b.wedge(a.drawStart, a.drawEnd, rIn-overhang, rOut+overhang)
		b.WriteString(`"><title>`)
		b.arcTitle(p, a)
		b.WriteString("</title></path>\n")
	}
}

// wedge writes the path of the annulus sector from angle s to e. Each side
// is two arcs of half the sweep, so that no arc exceeds 180° (no large-arc
// flag to get wrong) and a full 360° wedge still has distinct endpoints.
func (b *svg) wedge(s, e, r0, r1 float64) {
	m := (s + e) / 2
	pt := func(deg, r float64) string {
		x, y := point(deg, r)
		return num(x) + " " + num(y)
	}
	fmt.Fprintf(b, "M%s A%s %s 0 0 1 %s A%s %s 0 0 1 %s L%s A%s %s 0 0 0 %s A%s %s 0 0 0 %sZ",
		pt(s, r1), num(r1), num(r1), pt(m, r1), num(r1), num(r1), pt(e, r1),
		pt(e, r0), num(r0), num(r0), pt(m, r0), num(r0), num(r0), pt(s, r0))
}

// arcTitle is the tooltip of a wedge: its exact ranges, since the picture
// can only abbreviate them.
func (b *svg) arcTitle(p Ring, a arc) {
	const most = 3
	if n := a.last - a.first + 1; n > 1 {
		fmt.Fprintf(b, "%s ranges, %s leaves:\n", group(uint64(n)), group(a.leaves))
	}
	for i := a.first; i <= a.last && i < a.first+most; i++ {
		if i > a.first {
			b.WriteString("\n")
		}
		r := p.Differ[i]
		fmt.Fprintf(b, "(%d, %d] %s tokens", r.Lo, r.Hi, group(r.Width()))
	}
	if n := a.last - a.first + 1; n > most {
		fmt.Fprintf(b, "\nand %d more ranges", n-most)
	}
}

func (b *svg) ticks(p Ring) {
	w := p.Range.Width()
	for k := range uint64(4) {
		deg := float64(k) * 90
		x0, y0 := point(deg, rIn-overhang-6)
		x1, y1 := point(deg, rOut+overhang+2)
		fmt.Fprintf(b, `<line class="tick" x1="%s" y1="%s" x2="%s" y2="%s" stroke="#333333" stroke-width="1"/>`+"\n", num(x0), num(y0), num(x1), num(y1))
	}
	// Tick labels go inside the hole, where no leader line runs. The ring
	// starts and ends at the top: lo (excluded) right of the tick, hi
	// (included) left of it, bracketed as the range is.
	inner := rIn - overhang - 8
	b.tickText(cx+4, cy-inner+10, "start", "("+abbrev(p.Range.Lo))
	b.tickText(cx-4, cy-inner+10, "end", abbrev(p.Range.Hi)+"]")
	for k, at := range []struct {
		x, y   float64
		anchor string
	}{
		{cx + inner - 2, cy + 4, "end"},
		{cx, cy + inner - 4, "middle"},
		{cx - inner + 2, cy + 4, "start"},
	} {
		t := p.Range.Lo + token.Token(fraction(w, uint64(k+1), 4))
		b.tickText(at.x, at.y, at.anchor, abbrev(t))
	}
}

func (b *svg) tickText(x, y float64, anchor, s string) {
	fmt.Fprintf(b, `<text class="tick" x="%s" y="%s" text-anchor="%s" font-size="10" fill="#333333">%s</text>`+"\n", num(x), num(y), anchor, s)
}

// fraction is floor(w × k / n), exact in 128 bits, for 0 < n and k <= n
// (which keeps the quotient below 2^64, as bits.Div64 needs).
func fraction(w, k, n uint64) uint64 {
	hi, lo := bits.Mul64(w, k)
	q, _ := bits.Div64(hi, lo, n)
	return q
}

// label is one placed label: the arc it names and where its text goes.
type label struct {
	a     arc
	right bool
	mid   float64 // angle of the arc's middle
	y     float64
}

// labels labels the MaxLabels widest arcs in two columns beside the ring,
// spread so that no two overlap, and returns how many it labelled.
func (b *svg) labels(arcs []arc) int {
	idx := make([]int, len(arcs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(i, j int) int { return cmp.Compare(arcs[j].width, arcs[i].width) })
	idx = idx[:min(len(idx), MaxLabels)]
	var left, right []label
	for _, i := range idx {
		a := arcs[i]
		l := label{a: a, mid: (a.drawStart + a.drawEnd) / 2}
		_, l.y = point(l.mid, rOut+overhang+12)
		l.right = l.mid < 180
		if l.right {
			right = append(right, l)
		} else {
			left = append(left, l)
		}
	}
	for _, col := range [][]label{right, left} {
		spread(col)
		for _, l := range col {
			b.label(l)
		}
	}
	return len(idx)
}

// spread moves labels apart vertically, keeping their order by height, so
// that each is at least labelGap below the one above, within the picture.
func spread(col []label) {
	slices.SortStableFunc(col, func(x, y label) int { return cmp.Compare(x.y, y.y) })
	for i := range col {
		lowest := labelTop
		if i > 0 {
			lowest = col[i-1].y + labelGap
		}
		col[i].y = max(col[i].y, lowest)
	}
	for i := len(col) - 1; i >= 0; i-- {
		highest := labelBot
		if i < len(col)-1 {
			highest = col[i+1].y - labelGap
		}
		col[i].y = min(col[i].y, highest)
	}
}

func (b *svg) label(l label) {
	x0, y0 := point(l.mid, rOut+overhang)
	x1, y1 := point(l.mid, rOut+overhang+12)
	x2, anchor, tx := cx-rOut-labelCol, "end", cx-rOut-labelCol-4
	if l.right {
		x2, anchor, tx = cx+rOut+labelCol, "start", cx+rOut+labelCol+4
	}
	fmt.Fprintf(b, `<g class="label" data-lo="%d"><polyline points="%s,%s %s,%s %s,%s" fill="none" stroke="#555555" stroke-width="0.8"/>`,
		l.a.lo, num(x0), num(y0), num(x1), num(y1), num(x2), num(l.y))
	fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="%s" font-size="10" fill="#222222">`, num(tx), num(l.y-2), anchor)
	// How many ranges a shared wedge holds is in its tooltip: the columns
	// have room for the two figures that matter, leaves and tokens.
	b.WriteString(plural(l.a.leaves, "leaf", "leaves"))
	fmt.Fprintf(b, `<tspan x="%s" dy="12">%s tokens</tspan></text></g>`+"\n", num(tx), abbrevU(l.a.width))
}

func (b *svg) centre(p Ring) {
	word, fill := "identical", "#2c6e49"
	sub := "depth " + strconv.Itoa(p.Depth)
	if len(p.Differ) > 0 {
		word, fill = "different", "#a50f15" // darker than the wedges, so as not to count as one
		sub = fmt.Sprintf("%s of %s leaves", group(uint64(p.DifferingLeaves)), group(uint64(1)<<p.Depth))
	}
	fmt.Fprintf(b, `<text class="centre" x="%s" y="%s" text-anchor="middle" font-size="24" font-weight="bold" fill="%s">%s</text>`+"\n", num(cx), num(cy-22), fill, word)
	fmt.Fprintf(b, `<text class="centre" x="%s" y="%s" text-anchor="middle" font-size="12" fill="#222222">%s</text>`+"\n", num(cx), num(cy+36), sub)
}

func (b *svg) legend(p Ring, arcs []arc, shown int) {
	b.WriteString(`<g class="legend" font-size="12" fill="#222222">` + "\n")
	y := 48.0
	line := func(key, val string) {
		if key != "" {
			fmt.Fprintf(b, `<text x="%s" y="%s" font-weight="bold">%s</text>`, num(legendX), num(y), key)
		}
		fmt.Fprintf(b, `<text class="value" x="%s" y="%s">`, num(legendVal), num(y))
		b.text(val)
		b.WriteString("</text>\n")
		y += 19
	}
	// The title is "A vs B" on one line when it fits, else on two.
	titles := []string{p.A.Name + " vs " + p.B.Name}
	if len([]rune(titles[0])) > 30 {
		titles = []string{shorten(p.A.Name, 28), "vs " + shorten(p.B.Name, 28)}
	}
	for _, t := range titles {
		fmt.Fprintf(b, `<text class="title" x="%s" y="%s" font-size="15" font-weight="bold">`, num(legendX), num(y))
		b.text(t)
		b.WriteString("</text>\n")
		y += 20
	}
	y += 10

	line("range", "("+abbrev(p.Range.Lo)+", "+abbrev(p.Range.Hi)+"]")
	line("depth", fmt.Sprintf("%d (%s leaves)", p.Depth, group(uint64(1)<<p.Depth)))
	var differing uint64
	for _, r := range p.Differ {
		differing += r.Width() // ranges do not overlap, so this fits
	}
	line("differ", plural(uint64(p.DifferingLeaves), "leaf", "leaves")+" in "+plural(uint64(len(p.Differ)), "range", "ranges"))
	line("", percent(differing, p.Range.Width())+" of the ring")
	for i, s := range []Side{p.A, p.B} {
		line(string(rune('A'+i)), shorten(s.Name, 28))
		var parts []string
		if s.Bytes > 0 {
			parts = append(parts, bytesText(s.Bytes))
		}
		if s.RowsKnown {
			parts = append(parts, plural(uint64(s.Rows), "row", "rows"))
		}
		if len(parts) > 0 {
			line("", strings.Join(parts, ", "))
		}
	}
	line("diff", fmt.Sprintf("%s × %d B", plural(uint64(p.NodesCompared), "node", "nodes"), NodeBytes))
	line("", "= "+bytesText(int64(p.NodesCompared)*NodeBytes)+" exchanged")
	y += 8

	// The differing swatch appears only when something differs, so that a
	// picture of identical trees holds no differing colour at all.
	if len(p.Differ) > 0 {
		b.swatch(y, ColorDiffer, fmt.Sprintf("differing (drawn ≥ %g° wide)", MinArcDegrees))
		y += 20
	}
	b.swatch(y, ColorSame, "same")
	y += 28
	if len(arcs) > 0 {
		if shown == len(arcs) {
			line("labels", "all "+plural(uint64(len(arcs)), "arc", "arcs"))
		} else {
			line("labels", fmt.Sprintf("the %d widest of %s arcs", shown, group(uint64(len(arcs)))))
		}
		if more := len(arcs) - shown; more > 0 {
			line("", fmt.Sprintf("+%s more not labelled", group(uint64(more))))
		}
		if len(arcs) < len(p.Differ) {
			line("", "(near ranges share a wedge)")
		}
	}
	b.WriteString("</g>\n")
}

func (b *svg) swatch(y float64, colour, what string) {
	fmt.Fprintf(b, `<rect class="key" x="%s" y="%s" width="14" height="14" fill="%s"/>`, num(legendX), num(y-11), colour)
	fmt.Fprintf(b, `<text x="%s" y="%s">%s</text>`+"\n", num(legendX+22), num(y), what)
}
