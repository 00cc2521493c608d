package main

import (
	"math"
	"os"

	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/viz"
)

func main() {
	ring := token.Range{Lo: math.MinInt64, Hi: math.MaxInt64}
	var ranges []token.Range
	for _, i := range []int{3, 100000, 250000, 250001+1, 600000, 600003, 900000} {
		l := ring.Leaf(i, 20)
		ranges = append(ranges, l)
	}
	ranges = append(ranges[:4], append([]token.Range{{Lo: ring.Leaf(400000, 20).Lo, Hi: ring.Leaf(440000, 20).Hi}}, ranges[4:]...)...)
	p := viz.Ring{Range: ring, Depth: 20, Differ: ranges, DifferingLeaves: 40007, NodesCompared: 300,
		A: viz.Side{Name: "replica-a/users.tree", Bytes: 67108832, Rows: 3000, RowsKnown: true},
		B: viz.Side{Name: `a&b<"c">.tree`, Bytes: 67108832, Rows: 2999, RowsKnown: true}}
	if err := viz.RingSVG(os.Stdout, p); err != nil {
		panic(err)
	}
}
