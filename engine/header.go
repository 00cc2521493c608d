package engine

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/layout"
)

// The tree file, format version 1 (docs/FORMAT.md): one 4096-byte header
// page, then the nodes exactly as they lie in memory, so that the nodes can
// be mapped straight from the file. All integers are little-endian. This
// file is the header's codec; file.go is what opens, writes and checks tree
// files.
const (
	fileMagic      = "GROVETRE"
	headerSize     = 4096
	hdrVersion     = 8  // u16 format version
	hdrLayout      = 10 // u8 layout id
	hdrPartitioner = 11 // u8 partitioner id
	hdrDepth       = 12 // u8 depth
	hdrLo          = 16 // i64
	hdrHi          = 24 // i64
	hdrRows        = 32 // i64
	hdrRoot        = 40 // [32]byte
	hdrBodyCRC     = 72 // u32 CRC-32C of the nodes
	hdrFlags       = 76 // u32
	hdrLabel       = 80 // u64 checkpoint label (Tree.CheckpointAt)
	hdrUsed        = 88 // bytes hdrUsed..hdrCRC are zero
	hdrCRC         = headerSize - 4

	flagDirty = 1 // the nodes may have changed since the header was written

	// MaxRows is the largest row count a tree file may claim: 2^48 rows is
	// far beyond any one node's token range, and a larger claim is a sign
	// of a damaged header.
	MaxRows = 1 << 48
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// header is what a header page describes.
type header struct {
	part    token.Partitioner
	rng     token.Range
	depth   int
	layout  layout.Layout
	rows    int64
	root    Digest
	bodyCRC uint32
	flags   uint32
	label   uint64
}

// headerOf describes s's nodes as a file would hold them.
func headerOf(s *shape, rows int64, flags, bodyCRC uint32) header {
	return header{part: s.part, rng: s.rng, depth: s.depth, layout: s.layout, rows: rows, root: Digest(s.node(0, 0)), bodyCRC: bodyCRC, flags: flags}
}

// encode returns h as a header page of format version FormatVersion.
func (h *header) encode() [headerSize]byte {
	var hdr [headerSize]byte
	copy(hdr[:], fileMagic)
	binary.LittleEndian.PutUint16(hdr[hdrVersion:], FormatVersion)
	hdr[hdrLayout] = h.layout.ID()
	hdr[hdrPartitioner] = h.part.ID()
	hdr[hdrDepth] = byte(h.depth)
	binary.LittleEndian.PutUint64(hdr[hdrLo:], uint64(h.rng.Lo))
	binary.LittleEndian.PutUint64(hdr[hdrHi:], uint64(h.rng.Hi))
	binary.LittleEndian.PutUint64(hdr[hdrRows:], uint64(h.rows))
	copy(hdr[hdrRoot:], h.root[:])
	binary.LittleEndian.PutUint32(hdr[hdrBodyCRC:], h.bodyCRC)
	binary.LittleEndian.PutUint32(hdr[hdrFlags:], h.flags)
	binary.LittleEndian.PutUint64(hdr[hdrLabel:], h.label)
	binary.LittleEndian.PutUint32(hdr[hdrCRC:], crc32c(hdr[:hdrCRC]))
	return hdr
}

// setDirty sets the dirty flag in the header page hdr and reseals it,
// leaving every other field as it was.
func setDirty(hdr []byte) {
	binary.LittleEndian.PutUint32(hdr[hdrFlags:], binary.LittleEndian.Uint32(hdr[hdrFlags:])|flagDirty)
	binary.LittleEndian.PutUint32(hdr[hdrCRC:], crc32c(hdr[:hdrCRC]))
}

// parseHeader checks a header page and returns what it describes. It trusts
// nothing: each field is checked against the engine's own limits.
func parseHeader(hdr []byte) (header, error) {
	var h header
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: header: %s", ErrCorrupt, fmt.Sprintf(format, a...))
	}
	if string(hdr[:len(fileMagic)]) != fileMagic {
		return h, bad("not a grove tree file (magic %q)", hdr[:len(fileMagic)])
	}
	if got, want := binary.LittleEndian.Uint32(hdr[hdrCRC:]), crc32c(hdr[:hdrCRC]); got != want {
		return h, bad("checksum %08x, computed %08x", got, want)
	}
	if v := binary.LittleEndian.Uint16(hdr[hdrVersion:]); v != FormatVersion {
		return h, fmt.Errorf("%w: file format version %d, this grove reads %d", ErrIncompatible, v, FormatVersion)
	}
	l, ok := layout.ByID(hdr[hdrLayout])
	if !ok {
		return h, bad("unknown layout id %d", hdr[hdrLayout])
	}
	p, err := token.ByID(hdr[hdrPartitioner])
	if err != nil {
		return h, bad("unknown partitioner id %d", hdr[hdrPartitioner])
	}
	depth := int(hdr[hdrDepth])
	if depth > MaxDepth {
		return h, bad("depth %d, at most %d", depth, MaxDepth)
	}
	if hdr[13]|hdr[14]|hdr[15] != 0 || !allZero(hdr[hdrUsed:hdrCRC]) {
		return h, bad("reserved bytes are not zero")
	}
	rng := token.Range{
		Lo: int64(binary.LittleEndian.Uint64(hdr[hdrLo:])),
		Hi: int64(binary.LittleEndian.Uint64(hdr[hdrHi:])),
	}
	if err := rng.Valid(); err != nil {
		return h, bad("range: %v", err)
	}
	if full := p.Range(); rng.Lo < full.Lo || rng.Hi > full.Hi {
		return h, bad("range %s outside the %s ring %s", rng, p.Name(), full)
	}
	h.rows = int64(binary.LittleEndian.Uint64(hdr[hdrRows:]))
	if h.rows < 0 || h.rows > MaxRows {
		return h, bad("row count %d outside 0..2^48", uint64(h.rows))
	}
	h.flags = binary.LittleEndian.Uint32(hdr[hdrFlags:])
	if h.flags&^flagDirty != 0 {
		return h, bad("unknown flags %#x", h.flags)
	}
	copy(h.root[:], hdr[hdrRoot:])
	h.bodyCRC = binary.LittleEndian.Uint32(hdr[hdrBodyCRC:])
	h.label = binary.LittleEndian.Uint64(hdr[hdrLabel:])
	h.part, h.rng, h.depth, h.layout = p, rng, depth, l
	return h, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
