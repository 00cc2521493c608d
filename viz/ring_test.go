package viz

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/antientropy/grove/engine/token"
)

var fullRing = token.Range{Lo: math.MinInt64, Hi: math.MaxInt64}

// node is any SVG element, kept whole so tests can look anywhere in it.
type node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Nodes   []node     `xml:",any"`
}

func (n *node) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// all returns n and every element under it, in document order.
func (n *node) all() []*node {
	out := []*node{n}
	for i := range n.Nodes {
		out = append(out, n.Nodes[i].all()...)
	}
	return out
}

func (n *node) byClass(class string) []*node {
	var out []*node
	for _, e := range n.all() {
		if e.attr("class") == class {
			out = append(out, e)
		}
	}
	return out
}

// text is the text of n and its descendants, each element's on its own
// line, as a viewer would read it.
func (n *node) text() string {
	var b strings.Builder
	for _, e := range n.all() {
		if e.XMLName.Local == "title" {
			continue // tooltips are not on the picture
		}
		if t := strings.TrimSpace(e.Text); t != "" {
			b.WriteString(t)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// render draws p and parses the result strictly as XML, failing the test if
// either fails or the root is not an SVG 1.1 document of the fixed size.
func render(t *testing.T, p Ring) (*node, []byte) {
	t.Helper()
	var out bytes.Buffer
	if err := RingSVG(&out, p); err != nil {
		t.Fatalf("RingSVG: %v", err)
	}
	var root node
	d := xml.NewDecoder(bytes.NewReader(out.Bytes()))
	d.Strict = true
	if err := d.Decode(&root); err != nil {
		t.Fatalf("output is not well-formed XML: %v\n%s", err, out.Bytes())
	}
	if root.XMLName.Space != "http://www.w3.org/2000/svg" || root.XMLName.Local != "svg" {
		t.Fatalf("root element %v, want svg in the SVG namespace", root.XMLName)
	}
	if got, want := root.attr("viewBox"), fmt.Sprintf("0 0 %d %d", Width, Height); got != want {
		t.Fatalf("viewBox %q, want %q", got, want)
	}
	if root.attr("version") != "1.1" {
		t.Fatalf("version %q, want 1.1", root.attr("version"))
	}
	return &root, out.Bytes()
}

// leaves returns the given leaves of the full ring at depth 20, as ranges.
func leaves(idx ...int) []token.Range {
	var out []token.Range
	for _, i := range idx {
		out = append(out, fullRing.Leaf(i, 20))
	}
	return out
}

// sevenLeaves returns seven one-leaf ranges spread around a depth-20 ring:
// the common picture.
func sevenLeaves() []token.Range {
	return leaves(3, 100_000, 250_000, 420_000, 600_000, 800_000, 1_000_000)
}

func sides(a, b string) (Side, Side) {
	return Side{Name: a, Bytes: 67108832, Rows: 3000, RowsKnown: true},
		Side{Name: b, Bytes: 67108832, Rows: 2999, RowsKnown: true}
}

func TestRingSVGStructure(t *testing.T) {
	a, b := sides("a.tree", "b.tree")
	ha, hb := sides(`a&b<"c">.tree`, "x'y\x01z\xff.tree")
	spread := make([]token.Range, 100)
	for i := range spread {
		spread[i] = fullRing.Leaf(i*10_000+5, 20)
	}
	for _, tc := range []struct {
		name       string
		ring       Ring
		arcs       int   // wedges drawn
		perArc     []int // data-ranges of each wedge; nil: all 1
		labels     int
		legend     []string // lines the legend must hold
		notLegend  []string
		titleLines []string
	}{
		{
			name:   "seven one-leaf ranges",
			ring:   Ring{Range: fullRing, Depth: 20, Differ: sevenLeaves(), DifferingLeaves: 7, NodesCompared: 41, A: a, B: b},
			arcs:   7,
			labels: 7,
			legend: []string{"(−9.22e18, 9.22e18]", "20 (1,048,576 leaves)", "7 leaves in 7 ranges", "0.000668% of the ring",
				"64.0 MiB, 3,000 rows", "64.0 MiB, 2,999 rows", "41 nodes × 32 B", "= 1,312 B exchanged", "all 7 arcs"},
			notLegend:  []string{"more not labelled", "share a wedge"},
			titleLines: []string{"a.tree vs b.tree"},
		},
		{
			name:       "hostile names are escaped",
			ring:       Ring{Range: fullRing, Depth: 20, Differ: sevenLeaves()[:2], DifferingLeaves: 2, NodesCompared: 80, A: ha, B: hb},
			arcs:       2,
			labels:     2,
			legend:     []string{`a&b<"c">.tree`, "x'y\uFFFDz\uFFFD.tree", "2 leaves in 2 ranges"},
			titleLines: []string{`a&b<"c">.tree vs x'y` + "\uFFFDz\uFFFD.tree"},
		},
		{
			name:       "long names are shortened from the front",
			ring:       Ring{Range: fullRing, Depth: 20, Differ: sevenLeaves()[:1], DifferingLeaves: 1, NodesCompared: 41, A: Side{Name: "/var/lib/grove/replicas/node-a/users.tree"}, B: Side{Name: "b.tree"}},
			arcs:       1,
			labels:     1,
			legend:     []string{"1 leaf in 1 range", "…/replicas/node-a/users.tree"},
			notLegend:  []string{"rows"}, // not given
			titleLines: []string{"…/replicas/node-a/users.tree", "vs b.tree"},
		},
		{
			name:   "nearby ranges share a wedge",
			ring:   Ring{Range: fullRing, Depth: 20, Differ: leaves(10, 12, 500_000), DifferingLeaves: 3, NodesCompared: 100, A: a, B: b},
			arcs:   2,
			perArc: []int{2, 1},
			labels: 2,
			legend: []string{"3 leaves in 3 ranges", "all 2 arcs", "(near ranges share a wedge)"},
		},
		{
			name:   "labels capped at the widest",
			ring:   Ring{Range: fullRing, Depth: 20, Differ: spread, DifferingLeaves: 100, NodesCompared: 2000, A: a, B: b},
			arcs:   100,
			labels: MaxLabels,
			legend: []string{"100 leaves in 100 ranges", "the 20 widest of 100 arcs", "+80 more not labelled"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, _ := render(t, tc.ring)
			arcs := root.byClass("differ")
			if len(arcs) != tc.arcs {
				t.Fatalf("%d differ wedges, want %d", len(arcs), tc.arcs)
			}
			total := 0
			for i, e := range arcs {
				n, err := strconv.Atoi(e.attr("data-ranges"))
				if err != nil {
					t.Fatalf("wedge %d data-ranges %q: %v", i, e.attr("data-ranges"), err)
				}
				want := 1
				if tc.perArc != nil {
					want = tc.perArc[i]
				}
				if n != want {
					t.Errorf("wedge %d holds %d ranges, want %d", i, n, want)
				}
				if e.attr("fill") != ColorDiffer {
					t.Errorf("wedge %d fill %q, want %q", i, e.attr("fill"), ColorDiffer)
				}
				total += n
			}
			if total != len(tc.ring.Differ) {
				t.Errorf("wedges hold %d ranges, want all %d", total, len(tc.ring.Differ))
			}
			labels := root.byClass("label")
			if len(labels) != tc.labels {
				t.Errorf("%d labels, want %d", len(labels), tc.labels)
			}
			for _, l := range labels {
				if !strings.Contains(l.text(), "tokens") {
					t.Errorf("label %q does not give a width in tokens", l.text())
				}
			}
			legend := root.byClass("legend")
			if len(legend) != 1 {
				t.Fatalf("%d legends, want 1", len(legend))
			}
			lines := strings.Split(legend[0].text(), "\n")
			has := func(s string) bool {
				for _, l := range lines {
					if l == s {
						return true
					}
				}
				return false
			}
			for _, s := range tc.legend {
				if !has(s) {
					t.Errorf("legend lacks line %q; it reads:\n%s", s, legend[0].text())
				}
			}
			for _, s := range tc.notLegend {
				if strings.Contains(legend[0].text(), s) {
					t.Errorf("legend says %q; it should not:\n%s", s, legend[0].text())
				}
			}
			if tc.titleLines != nil {
				var got []string
				for _, e := range root.byClass("title") {
					got = append(got, e.Text)
				}
				if strings.Join(got, "|") != strings.Join(tc.titleLines, "|") {
					t.Errorf("title lines %q, want %q", got, tc.titleLines)
				}
			}
		})
	}
}

// TestLabelsWidest checks that, of more arcs than MaxLabels, the labelled
// ones are the widest, and that no two labels in a column overlap.
func TestLabelsWidest(t *testing.T) {
	var ranges []token.Range
	wide := map[int64]bool{}
	for i := range 60 {
		// Every third range spans 3 leaves, the rest one: the 20 wide ones
		// must be the 20 labelled.
		r := fullRing.Leaf(i*17_000, 20)
		if i%3 == 0 {
			r.Hi = fullRing.Leaf(i*17_000+2, 20).Hi
			wide[r.Lo] = true
		}
		ranges = append(ranges, r)
	}
	a, b := sides("a", "b")
	root, _ := render(t, Ring{Range: fullRing, Depth: 20, Differ: ranges, DifferingLeaves: 100, NodesCompared: 999, A: a, B: b})
	labels := root.byClass("label")
	if len(labels) != MaxLabels {
		t.Fatalf("%d labels, want %d", len(labels), MaxLabels)
	}
	columns := map[string][]float64{}
	for _, l := range labels {
		lo, err := strconv.ParseInt(l.attr("data-lo"), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if !wide[lo] {
			t.Errorf("label for the range starting at %d, which is not one of the widest", lo)
		}
		txt := l.Nodes[1] // polyline, then text
		y, err := strconv.ParseFloat(txt.attr("y"), 64)
		if err != nil {
			t.Fatal(err)
		}
		columns[txt.attr("text-anchor")] = append(columns[txt.attr("text-anchor")], y)
		if y < 0 || y > Height {
			t.Errorf("label at y=%v outside the picture", y)
		}
	}
	for side, ys := range columns {
		for i := 1; i < len(ys); i++ {
			if ys[i]-ys[i-1] < labelGap-0.01 {
				t.Errorf("%s column: labels at y=%v and %v overlap", side, ys[i-1], ys[i])
			}
		}
	}
}

// wantDegrees is (t − lo) / width × 360 in exact rational arithmetic.
func wantDegrees(ring token.Range, tok token.Token) float64 {
	off := new(big.Int).Sub(big.NewInt(tok), big.NewInt(ring.Lo))
	width := new(big.Int).Sub(big.NewInt(ring.Hi), big.NewInt(ring.Lo))
	deg := new(big.Rat).SetFrac(new(big.Int).Mul(off, big.NewInt(360)), width)
	f, _ := deg.Float64()
	return f
}

var pathNumbers = regexp.MustCompile(`-?[0-9]+(\.[0-9]+)?`)

// pathAngles reads a wedge's path and returns the angles, clockwise from the
// top, of its outer arc's start and end.
func pathAngles(t *testing.T, d string) (float64, float64) {
	t.Helper()
	var v []float64
	for _, s := range pathNumbers.FindAllString(d, -1) {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatal(err)
		}
		v = append(v, f)
	}
	// M x y, A rx ry rot large sweep x y (twice), L x y, A (twice).
	if len(v) != 2+7+7+2+7+7 {
		t.Fatalf("path %q has %d numbers, want 32", d, len(v))
	}
	angle := func(x, y float64) float64 {
		deg := math.Atan2(x-cx, cy-y) * 180 / math.Pi
		if deg < 0 {
			deg += 360
		}
		return deg
	}
	return angle(v[0], v[1]), angle(v[14], v[15])
}

// sameAngle compares angles on the circle, where 0 and 360 are one place.
func sameAngle(a, b, tol float64) bool {
	d := math.Mod(math.Abs(a-b), 360)
	return d <= tol || 360-d <= tol
}

func TestRingSVGGeometry(t *testing.T) {
	sub := token.Range{Lo: -1 << 62, Hi: 1<<62 + 12345} // a node's share, straddling 0
	w := sub.Width()
	for _, tc := range []struct {
		name   string
		ring   token.Range
		differ []token.Range
	}{
		{"whole ring differs", fullRing, []token.Range{fullRing}},
		{"start, straddling 0, end", fullRing, []token.Range{
			{Lo: math.MinInt64, Hi: math.MinInt64 + 1<<60},
			{Lo: -1 << 59, Hi: 1 << 59},
			{Lo: math.MaxInt64 - 1<<61, Hi: math.MaxInt64},
		}},
		{"one token at each end", fullRing, []token.Range{
			{Lo: math.MinInt64, Hi: math.MinInt64 + 1},
			{Lo: math.MaxInt64 - 1, Hi: math.MaxInt64},
		}},
		{"sub-range: start, straddling 0, end", sub, []token.Range{
			{Lo: sub.Lo, Hi: sub.Lo + int64(w/7)},
			{Lo: -1000, Hi: 1 << 60},
			{Lo: sub.Hi - int64(w/9), Hi: sub.Hi},
		}},
		{"sub-range whole", sub, []token.Range{sub}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, _ := render(t, Ring{Range: tc.ring, Depth: 20, Differ: tc.differ, DifferingLeaves: 1, NodesCompared: 1})
			arcs := root.byClass("differ")
			if len(arcs) != len(tc.differ) {
				t.Fatalf("%d wedges, want %d", len(arcs), len(tc.differ))
			}
			for i, r := range tc.differ {
				e := arcs[i]
				start, err1 := strconv.ParseFloat(e.attr("data-start"), 64)
				end, err2 := strconv.ParseFloat(e.attr("data-end"), 64)
				if err1 != nil || err2 != nil {
					t.Fatalf("wedge %d: data-start %q, data-end %q", i, e.attr("data-start"), e.attr("data-end"))
				}
				ws, we := wantDegrees(tc.ring, r.Lo), wantDegrees(tc.ring, r.Hi)
				if math.Abs(start-ws) > 1e-9 || math.Abs(end-we) > 1e-9 {
					t.Errorf("wedge %d %v: angles [%v, %v], want [%v, %v]", i, r, start, end, ws, we)
				}
				if e.attr("data-lo") != strconv.FormatInt(r.Lo, 10) || e.attr("data-hi") != strconv.FormatInt(r.Hi, 10) {
					t.Errorf("wedge %d: data-lo %s data-hi %s, want %v", i, e.attr("data-lo"), e.attr("data-hi"), r)
				}
				// The drawn wedge covers the true extent, or is the minimum
				// width around it, never crossing the top.
				ps, pe := pathAngles(t, e.attr("d"))
				if we-ws >= MinArcDegrees {
					if !sameAngle(ps, ws, 0.05) || !sameAngle(pe, we, 0.05) {
						t.Errorf("wedge %d drawn from %v° to %v°, want %v° to %v°", i, ps, pe, ws, we)
					}
					continue
				}
				if pe < ps {
					pe += 360 // a wedge ending at the top reads as 0°
				}
				if math.Abs(pe-ps-MinArcDegrees) > 0.05 {
					t.Errorf("narrow wedge %d drawn %v° wide, want %v°", i, pe-ps, MinArcDegrees)
				}
				if ps > ws+0.05 || pe < we-0.05 || ps < -0.05 || pe > 360.05 {
					t.Errorf("narrow wedge %d drawn from %v° to %v° does not cover [%v°, %v°] within one turn", i, ps, pe, ws, we)
				}
			}
		})
	}
}

func TestRingSVGIdentical(t *testing.T) {
	a, b := sides("a.tree", "b.tree")
	root, out := render(t, Ring{Range: fullRing, Depth: 20, NodesCompared: 1, A: a, B: b})
	if n := len(root.byClass("differ")); n != 0 {
		t.Errorf("%d differ wedges for identical trees", n)
	}
	if n := len(root.byClass("label")); n != 0 {
		t.Errorf("%d labels for identical trees", n)
	}
	centre := root.byClass("centre")
	if len(centre) == 0 || centre[0].Text != "identical" {
		t.Errorf("centre text %v, want \"identical\"", centre)
	}
	if len(root.byClass("same")) != 1 {
		t.Error("no ring drawn in the same colour")
	}
	// Not even the legend's key may show the differing colour.
	if bytes.Contains(out, []byte(ColorDiffer)) {
		t.Errorf("identical picture uses the differing colour %s", ColorDiffer)
	}
	if !strings.Contains(root.byClass("legend")[0].text(), "0 leaves in 0 ranges") {
		t.Errorf("legend does not say nothing differs:\n%s", root.byClass("legend")[0].text())
	}
}

// TestRingSVGManyRanges checks that the output stays small however many
// ranges differ: every range is still accounted for in some wedge.
func TestRingSVGManyRanges(t *testing.T) {
	for _, tc := range []struct {
		name  string
		count int
		step  int
	}{
		{"5000 one-leaf ranges", 5000, 200},
		{"every other leaf of 2^20", 1 << 19, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ranges := make([]token.Range, tc.count)
			for i := range ranges {
				ranges[i] = fullRing.Leaf(i*tc.step, 20)
			}
			a, b := sides("a", "b")
			root, out := render(t, Ring{Range: fullRing, Depth: 20, Differ: ranges, DifferingLeaves: tc.count, NodesCompared: 3 * tc.count, A: a, B: b})
			if len(out) > 2<<20 {
				t.Errorf("%d bytes of SVG, want < 2 MiB", len(out))
			}
			arcs := root.byClass("differ")
			if max := int(360 / MinArcDegrees); len(arcs) > max {
				t.Errorf("%d wedges, more than the %d that fit side by side", len(arcs), max)
			}
			total := 0
			for _, e := range arcs {
				n, _ := strconv.Atoi(e.attr("data-ranges"))
				total += n
			}
			if total != tc.count {
				t.Errorf("wedges hold %d ranges, want %d", total, tc.count)
			}
			if n := len(root.byClass("label")); n > MaxLabels {
				t.Errorf("%d labels, more than %d", n, MaxLabels)
			}
			legend := root.byClass("legend")[0].text()
			if want := group(uint64(tc.count)) + " leaves in " + group(uint64(tc.count)) + " ranges"; !strings.Contains(legend, want) {
				t.Errorf("legend lacks %q:\n%s", want, legend)
			}
			if len(arcs) > MaxLabels && !strings.Contains(legend, fmt.Sprintf("+%d more", len(arcs)-MaxLabels)) {
				t.Errorf("legend does not say how many wedges are unlabelled:\n%s", legend)
			}
		})
	}
}

func TestRingSVGDeterministic(t *testing.T) {
	a, b := sides(`a&b<"c">.tree`, "b.tree")
	p := Ring{Range: fullRing, Depth: 20, Differ: sevenLeaves(), DifferingLeaves: 7, NodesCompared: 41, A: a, B: b}
	var x, y bytes.Buffer
	if err := RingSVG(&x, p); err != nil {
		t.Fatal(err)
	}
	if err := RingSVG(&y, p); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x.Bytes(), y.Bytes()) {
		t.Error("two pictures of the same ring differ")
	}
}

func TestRingSVGBadInput(t *testing.T) {
	ok := Ring{Range: fullRing, Depth: 20, Differ: sevenLeaves(), DifferingLeaves: 7, NodesCompared: 41}
	for _, tc := range []struct {
		name   string
		change func(*Ring)
	}{
		{"empty range", func(p *Ring) { p.Range = token.Range{Lo: 5, Hi: 5} }},
		{"wrapping range", func(p *Ring) { p.Range = token.Range{Lo: 5, Hi: -5} }},
		{"negative depth", func(p *Ring) { p.Depth = -1 }},
		{"depth too deep", func(p *Ring) { p.Depth = 63 }},
		{"negative leaves", func(p *Ring) { p.DifferingLeaves = -1 }},
		{"negative nodes", func(p *Ring) { p.NodesCompared = -1 }},
		{"nodes overflow bytes", func(p *Ring) { p.NodesCompared = math.MaxInt }},
		{"negative bytes", func(p *Ring) { p.A.Bytes = -1 }},
		{"negative rows", func(p *Ring) { p.B.Rows = -1 }},
		{"empty differing range", func(p *Ring) { p.Differ = []token.Range{{Lo: 1, Hi: 1}} }},
		{"differing range outside", func(p *Ring) {
			p.Range = token.Range{Lo: 0, Hi: 100}
			p.Differ = []token.Range{{Lo: 50, Hi: 101}}
		}},
		{"differing range below", func(p *Ring) {
			p.Range = token.Range{Lo: 0, Hi: 100}
			p.Differ = []token.Range{{Lo: -1, Hi: 10}}
		}},
		{"out of order", func(p *Ring) { p.Differ = []token.Range{sevenLeaves()[1], sevenLeaves()[0]} }},
		{"overlapping", func(p *Ring) { p.Differ = []token.Range{{Lo: 0, Hi: 10}, {Lo: 5, Hi: 20}} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ok
			tc.change(&p)
			var out bytes.Buffer
			err := RingSVG(&out, p)
			if !errors.Is(err, ErrBadRing) {
				t.Fatalf("err = %v, want ErrBadRing", err)
			}
			if out.Len() != 0 {
				t.Errorf("wrote %d bytes for a ring it refused", out.Len())
			}
		})
	}
	// The unchanged ring draws: the cases above fail for their one change.
	if err := RingSVG(&bytes.Buffer{}, ok); err != nil {
		t.Fatalf("valid ring: %v", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestRingSVGWriteError(t *testing.T) {
	err := RingSVG(failingWriter{}, Ring{Range: fullRing})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("err = %v, want the writer's error", err)
	}
}

func TestFormats(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{abbrev(math.MinInt64), "−9.22e18"},
		{abbrev(math.MaxInt64), "9.22e18"},
		{abbrev(-4069959284402364209), "−4.07e18"},
		{abbrev(0), "0"},
		{abbrev(-1), "−1"},
		{abbrev(9999), "9999"},
		{abbrev(10000), "1.00e4"},
		{abbrevU(math.MaxUint64), "1.84e19"},
		{abbrevU(1 << 44), "1.76e13"},
		{abbrevU(7), "7"},
		{group(0), "0"},
		{group(999), "999"},
		{group(1000), "1,000"},
		{group(1048576), "1,048,576"},
		{plural(1, "leaf", "leaves"), "1 leaf"},
		{plural(0, "leaf", "leaves"), "0 leaves"},
		{plural(2000, "leaf", "leaves"), "2,000 leaves"},
		{percent(0, 100), "0%"},
		{percent(100, 100), "100%"},
		{percent(99999, 100000), "99.99%"},
		{percent(1, 3), "33.33%"},
		{percent(1, 1<<20), "0.0000954%"},
		{percent(1, math.MaxUint64), "0.00000000000000000542%"},
		{bytesText(0), "0 B"},
		{bytesText(1312), "1,312 B"},
		{bytesText(67108832), "64.0 MiB"},
		{bytesText(10240), "10.0 KiB"},
		{bytesText(math.MaxInt64), "8.00 EiB"},
		{shorten("abc", 3), "abc"},
		{shorten("abcd", 3), "…cd"},
		{shorten("a/é/b", 4), "…é/b"},
		{num(-0.001), "0"},
		{num(12.5), "12.5"},
		{num(3), "3"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
