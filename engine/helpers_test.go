package engine

import (
	"io"

	"github.com/antientropy/grove/layout"
)

var eof = io.EOF

// mirrorLayout stores the breadth-first order backwards: a permutation with
// no contiguous levels, which exercises the engine's gathering hash path and
// every place that must go through Layout.Slot.
type mirrorLayout struct{}

func (mirrorLayout) Name() string          { return "mirror" }
func (mirrorLayout) ID() uint8             { return 200 }
func (mirrorLayout) Slots(depth int) int   { return layout.Nodes(depth) }
func (mirrorLayout) LevelContiguous() bool { return false }
func (mirrorLayout) Slot(depth, level, index int) int {
	return layout.Nodes(depth) - 1 - (1<<level - 1 + index)
}
