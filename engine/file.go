package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/layout"
)

// The tree file (docs/FORMAT.md): one 4096-byte header page, then the nodes
// exactly as they lie in memory. All integers are little-endian.
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
	hdrCRC         = headerSize - 4
)

func crc32c(b []byte) uint32 {
	return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))
}

// Save writes the tree to path: to a temporary file in the same directory,
// fsynced, renamed over path, and the directory fsynced, so path always holds
// either the old complete file or the new one. The tree must be hashed.
func (t *Tree) Save(path string) (err error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return ErrClosed
	}
	if t.dirty.Load() {
		return ErrNotHashed
	}
	var hdr [headerSize]byte
	copy(hdr[:], fileMagic)
	binary.LittleEndian.PutUint16(hdr[hdrVersion:], t.version)
	hdr[hdrLayout] = t.layout.ID()
	hdr[hdrPartitioner] = t.part.ID()
	hdr[hdrDepth] = byte(t.depth)
	binary.LittleEndian.PutUint64(hdr[hdrLo:], uint64(t.rng.Lo))
	binary.LittleEndian.PutUint64(hdr[hdrHi:], uint64(t.rng.Hi))
	binary.LittleEndian.PutUint64(hdr[hdrRows:], uint64(t.rows.Load()))
	copy(hdr[hdrRoot:], t.node(0, 0))
	binary.LittleEndian.PutUint32(hdr[hdrBodyCRC:], crc32c(t.nodes))
	binary.LittleEndian.PutUint32(hdr[hdrCRC:], crc32c(hdr[:hdrCRC]))

	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("engine: saving %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(hdr[:]); err != nil {
		return fmt.Errorf("engine: saving %s: %w", path, err)
	}
	if _, err = f.Write(t.nodes); err != nil {
		return fmt.Errorf("engine: saving %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("engine: saving %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("engine: saving %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("engine: saving %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("engine: syncing directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("engine: syncing directory %s: %w", dir, err)
	}
	return nil
}

// Open reads a tree file into a new tree charged to budget. Every claim the
// header makes is checked against the engine's own limits, and the size it
// implies against the file's real size and the budget, before any memory is
// mapped; a file that does not check out gives an error wrapping ErrCorrupt
// that names what was wrong, and is never used.
func Open(path string, budget *arena.Budget) (*Tree, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("engine: opening tree: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("engine: opening tree: %w", err)
	}
	var hdr [headerSize]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return nil, corrupt(path, "header: %v (file is %d bytes, header needs %d)", err, st.Size(), headerSize)
	}
	opts, rows, root, bodyCRC, err := parseHeader(hdr[:])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	want := int64(headerSize) + LayoutBytes(opts.Layout, opts.Depth)
	if st.Size() != want {
		return nil, corrupt(path, "file is %d bytes, a depth-%d tree file is %d", st.Size(), opts.Depth, want)
	}
	opts.Budget = budget
	t, err := New(opts)
	if err != nil {
		return nil, fmt.Errorf("engine: opening %s: %w", path, err)
	}
	t.version = binary.LittleEndian.Uint16(hdr[hdrVersion:])
	if _, err := io.ReadFull(f, t.nodes); err != nil {
		t.Close()
		return nil, corrupt(path, "reading nodes: %v", err)
	}
	if got := crc32c(t.nodes); got != bodyCRC {
		t.Close()
		return nil, corrupt(path, "node checksum %08x, header says %08x", got, bodyCRC)
	}
	if !bytes.Equal(t.node(0, 0), root[:]) {
		t.Close()
		return nil, corrupt(path, "root in the nodes differs from the root in the header")
	}
	t.rows.Store(rows)
	t.dirty.Store(false)
	return t, nil
}

// parseHeader checks a header page and returns what it describes.
func parseHeader(hdr []byte) (opts Options, rows int64, root Digest, bodyCRC uint32, err error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: header: %s", ErrCorrupt, fmt.Sprintf(format, a...))
	}
	if string(hdr[:len(fileMagic)]) != fileMagic {
		return opts, 0, root, 0, bad("not a grove tree file (magic %q)", hdr[:len(fileMagic)])
	}
	if got, want := binary.LittleEndian.Uint32(hdr[hdrCRC:]), crc32c(hdr[:hdrCRC]); got != want {
		return opts, 0, root, 0, bad("checksum %08x, computed %08x", got, want)
	}
	if v := binary.LittleEndian.Uint16(hdr[hdrVersion:]); v != FormatVersion {
		return opts, 0, root, 0, fmt.Errorf("%w: file format version %d, this grove reads %d", ErrIncompatible, v, FormatVersion)
	}
	l, ok := layout.ByID(hdr[hdrLayout])
	if !ok {
		return opts, 0, root, 0, bad("unknown layout id %d", hdr[hdrLayout])
	}
	p, perr := token.ByID(hdr[hdrPartitioner])
	if perr != nil {
		return opts, 0, root, 0, bad("unknown partitioner id %d", hdr[hdrPartitioner])
	}
	depth := int(hdr[hdrDepth])
	if depth > MaxDepth {
		return opts, 0, root, 0, bad("depth %d, at most %d", depth, MaxDepth)
	}
	rng := token.Range{
		Lo: int64(binary.LittleEndian.Uint64(hdr[hdrLo:])),
		Hi: int64(binary.LittleEndian.Uint64(hdr[hdrHi:])),
	}
	if err := rng.Valid(); err != nil {
		return opts, 0, root, 0, bad("range: %v", err)
	}
	full := p.Range()
	if rng.Lo < full.Lo || rng.Hi > full.Hi {
		return opts, 0, root, 0, bad("range %s outside the %s ring %s", rng, p.Name(), full)
	}
	rows = int64(binary.LittleEndian.Uint64(hdr[hdrRows:]))
	copy(root[:], hdr[hdrRoot:])
	opts = Options{Partitioner: p, Range: rng, Depth: depth, Layout: l}
	return opts, rows, root, binary.LittleEndian.Uint32(hdr[hdrBodyCRC:]), nil
}

func corrupt(path, format string, a ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrCorrupt, path, fmt.Sprintf(format, a...))
}
