package repair

import (
	"fmt"

	"github.com/antientropy/grove/engine"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"
)

func paramsOf(s Shape) *grovev1.Params {
	return &grovev1.Params{
		Protocol:    ProtocolVersion,
		Format:      engine.FormatVersion,
		Partitioner: uint32(s.Partitioner.ID()),
		RangeLo:     s.Range.Lo,
		RangeHi:     s.Range.Hi,
		Depth:       uint32(s.Depth),
	}
}

// checkParams checks a peer's parameters against ours. Depths may differ:
// the session meets at the shallower.
func checkParams(ours Shape, p *grovev1.Params) error {
	switch {
	case p == nil:
		return fmt.Errorf("%w: no parameters", ErrBadMessage)
	case p.GetProtocol() != ProtocolVersion:
		return fmt.Errorf("%w: protocol version %d, ours is %d", ErrIncompatible, p.GetProtocol(), ProtocolVersion)
	case p.GetFormat() != engine.FormatVersion:
		return fmt.Errorf("%w: tree format version %d, ours is %d", ErrIncompatible, p.GetFormat(), engine.FormatVersion)
	case p.GetPartitioner() != uint32(ours.Partitioner.ID()):
		return fmt.Errorf("%w: partitioner %d, ours is %s (%d)", ErrIncompatible, p.GetPartitioner(), ours.Partitioner.Name(), ours.Partitioner.ID())
	case p.GetRangeLo() != ours.Range.Lo || p.GetRangeHi() != ours.Range.Hi:
		return fmt.Errorf("%w: range (%d, %d], ours is %v", ErrIncompatible, p.GetRangeLo(), p.GetRangeHi(), ours.Range)
	case p.GetDepth() > engine.MaxDepth:
		return fmt.Errorf("%w: depth %d, over %d", ErrBadMessage, p.GetDepth(), engine.MaxDepth)
	}
	return nil
}
