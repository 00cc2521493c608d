package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"sync"
	"sync/atomic"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine/token"
	"github.com/antientropy/grove/internal/atomicfile"
	"github.com/antientropy/grove/layout"
	"github.com/antientropy/grove/metrics"
	"github.com/antientropy/grove/simd"
)

// The tree file, format version 1 (docs/FORMAT.md): one 4096-byte header
// page, then the nodes exactly as they lie in memory, so that the nodes can
// be mapped straight from the file. All integers are little-endian.
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
	hdrUsed        = 80 // bytes hdrUsed..hdrCRC are zero
	hdrCRC         = headerSize - 4

	flagDirty = 1 // the nodes may have changed since the header was written

	// MaxRows is the largest row count a tree file may claim: 2^48 rows is
	// far beyond any one node's token range, and a larger claim is a sign
	// of a damaged header.
	MaxRows = 1 << 48
)

func crc32c(b []byte) uint32 {
	return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))
}

// treeFile is the file behind a tree opened with Open or OpenWritable.
type treeFile struct {
	path     string
	f        *os.File // kept open only for a writable tree
	writable bool
	// openedDirty records that the file carried the dirty flag when opened:
	// it was left mid-update, so its inner nodes and checksums may be stale.
	openedDirty bool
	bodyCRC     uint32 // from the header; meaningful when !openedDirty
	root        Digest // likewise

	mu        sync.Mutex  // serialises header writes
	diskDirty atomic.Bool // the dirty flag is set on disk
}

// header returns t's header page with the given flags.
func (t *Tree) header(flags uint32, bodyCRC uint32) [headerSize]byte {
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
	binary.LittleEndian.PutUint32(hdr[hdrBodyCRC:], bodyCRC)
	binary.LittleEndian.PutUint32(hdr[hdrFlags:], flags)
	binary.LittleEndian.PutUint32(hdr[hdrCRC:], crc32c(hdr[:hdrCRC]))
	return hdr
}

// Save writes the tree to path: to a temporary file in the same directory,
// fsynced, renamed over path, and the directory fsynced, so path always holds
// either the old complete file or the new one. The tree must be hashed. A
// replaced file keeps its permission bits; a new one is 0644 less the umask.
// A crash mid-save can leave a ".NAME.grove-tmp-*" file beside path; it is
// never read, and the next Save to path removes it (docs/FORMAT.md).
func (t *Tree) Save(path string) (err error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return ErrClosed
	}
	if t.dirty.Load() {
		return ErrNotHashed
	}
	hdr := t.header(0, crc32c(t.nodes))
	err = atomicfile.Write(path, 0o644, func(f *os.File) error {
		if _, err := f.Write(hdr[:]); err != nil {
			return err
		}
		_, err := f.Write(t.nodes)
		return err
	})
	if err != nil {
		return fmt.Errorf("engine: saving %s: %w", path, err)
	}
	return nil
}

// Open maps a tree file read-only. Only the header page is read and checked:
// every claim it makes is checked against the engine's own limits, the size
// it implies against the file's real size, and that size is reserved against
// budget, all before anything is mapped. The nodes are not read, parsed or
// copied — pages come in as a diff touches them — so a depth-20 tree opens
// in microseconds; Verify checks every byte. A file that does not check out
// gives an error wrapping ErrCorrupt that names what was wrong.
//
// A file left with its dirty flag set (a writable tree not synced before a
// crash or Close) opens, but reports FileDirty, and its inner nodes count as
// unhashed: the caller verifies, or rebuilds it.
//
// The tree is read-only (writes give ErrReadOnly). The file must not be
// truncated while it is open.
func Open(path string, budget *arena.Budget, opts ...OpenOption) (*Tree, error) {
	return openFile(path, budget, false, opts)
}

// OpenOption adjusts how a tree file is opened.
type OpenOption func(*Tree)

// WithMetrics counts the opened tree in m, as Options.Metrics does for a
// new one.
func WithMetrics(m *metrics.Set) OpenOption {
	return func(t *Tree) { t.metrics = m }
}

// OpenWritable maps a tree file read-write, so that updates and Hash change
// the file in place. The first change after opening or after Sync sets the
// file's dirty flag on disk (and fsyncs it) before any node is touched; Sync
// writes the header and clears it. Closing without Sync leaves the flag set,
// which the next Open reports.
func OpenWritable(path string, budget *arena.Budget, opts ...OpenOption) (*Tree, error) {
	return openFile(path, budget, true, opts)
}

func openFile(path string, budget *arena.Budget, writable bool, opts []OpenOption) (*Tree, error) {
	flag := os.O_RDONLY
	if writable {
		flag = os.O_RDWR
	}
	// Only a regular file can be a tree file. Checked before opening, too:
	// opening a named pipe waits for a writer, and a directory would fail
	// only when read, with a message about its size.
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		return nil, notRegular(path, st.Mode())
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, fmt.Errorf("engine: opening tree: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			f.Close()
		}
	}()
	if writable {
		// One writer per file, as bbolt locks its database: held until
		// Close closes f.
		if err := lockWriter(f); err != nil {
			return nil, fmt.Errorf("%w: %s is open for writing elsewhere (%v)", ErrInUse, path, err)
		}
	}
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("engine: opening tree: %w", err)
	}
	if !st.Mode().IsRegular() { // replaced since the check above
		return nil, notRegular(path, st.Mode())
	}
	var hdr [headerSize]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return nil, corrupt(path, "header: %v (file is %d bytes, the header alone is %d)", err, st.Size(), headerSize)
	}
	h, err := parseHeader(hdr[:])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	size := LayoutBytes(h.opts.Layout, h.opts.Depth)
	if want := int64(headerSize) + size; st.Size() != want {
		return nil, corrupt(path, "file is %d bytes, a depth-%d %s tree file is %d", st.Size(), h.opts.Depth, h.opts.Layout.Name(), want)
	}
	if budget == nil {
		return nil, fmt.Errorf("engine: opening %s: a budget is required", path)
	}
	// The nodes start 4096 bytes in, which is no page boundary on kernels
	// with 16 or 64 KiB pages (nor Windows' 64 KiB mapping granularity):
	// map the file from its start and slice the header off.
	region, err := arena.MapFile(budget, f, 0, int(headerSize+size), writable)
	if err != nil {
		return nil, fmt.Errorf("engine: opening %s: %w", path, err)
	}
	t := &Tree{
		budget:    budget,
		region:    region,
		nodes:     region.Bytes()[headerSize:],
		part:      h.opts.Partitioner,
		rng:       h.opts.Range,
		depth:     h.opts.Depth,
		layout:    h.opts.Layout,
		version:   FormatVersion,
		bandShift: max(0, h.opts.Depth-6),
		file: &treeFile{
			path:        path,
			writable:    writable,
			openedDirty: h.flags&flagDirty != 0,
			bodyCRC:     h.bodyCRC,
			root:        h.root,
		},
	}
	t.file.diskDirty.Store(t.file.openedDirty)
	t.rows.Store(h.rows)
	t.dirty.Store(t.file.openedDirty)
	t.bulk.Store(t.file.openedDirty)
	if writable {
		t.file.f = f
		keep = true
	}
	for _, o := range opts {
		o(t)
	}
	t.metrics.TreeOpened()
	return t, nil
}

// header is what a header page describes.
type header struct {
	opts    Options
	rows    int64
	root    Digest
	bodyCRC uint32
	flags   uint32
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
	h.opts = Options{Partitioner: p, Range: rng, Depth: depth, Layout: l}
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

func corrupt(path, format string, a ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrCorrupt, path, fmt.Sprintf(format, a...))
}

// notRegular is the error for a path that is not a regular file, and so
// cannot be a tree file.
func notRegular(path string, mode os.FileMode) error {
	what := "not a regular file"
	switch {
	case mode.IsDir():
		what = "a directory, not a tree file"
	case mode&os.ModeNamedPipe != 0:
		what = "a named pipe, not a tree file"
	case mode&os.ModeSocket != 0:
		what = "a socket, not a tree file"
	case mode&os.ModeDevice != 0:
		what = "a device, not a tree file"
	}
	return corrupt(path, "is %s", what)
}

// FileDirty reports whether the tree's file carried the dirty flag when it
// was opened — it was left mid-update — or, for a writable tree, whether it
// has changed since the last Sync. It is false for trees not opened from a
// file.
func (t *Tree) FileDirty() bool {
	return t.file != nil && t.file.diskDirty.Load()
}

// beginWrite is called by every write path, holding t.mu, before it changes
// a node. A read-only tree refuses; a writable file tree sets its dirty flag
// on disk first, once, so a crash between here and Sync is detectable.
func (t *Tree) beginWrite() error {
	if t.frozen {
		return fmt.Errorf("%w: a snapshot is frozen", ErrReadOnly)
	}
	tf := t.file
	if tf == nil {
		return nil
	}
	if !tf.writable {
		return fmt.Errorf("%w: %s was opened read-only", ErrReadOnly, tf.path)
	}
	if tf.diskDirty.Load() {
		return nil
	}
	tf.mu.Lock()
	defer tf.mu.Unlock()
	if tf.diskDirty.Load() {
		return nil
	}
	var hdr [headerSize]byte
	if _, err := tf.f.ReadAt(hdr[:], 0); err != nil {
		return fmt.Errorf("engine: marking %s dirty: %w", tf.path, err)
	}
	binary.LittleEndian.PutUint32(hdr[hdrFlags:], binary.LittleEndian.Uint32(hdr[hdrFlags:])|flagDirty)
	binary.LittleEndian.PutUint32(hdr[hdrCRC:], crc32c(hdr[:hdrCRC]))
	if _, err := tf.f.WriteAt(hdr[:], 0); err != nil {
		return fmt.Errorf("engine: marking %s dirty: %w", tf.path, err)
	}
	if err := tf.f.Sync(); err != nil {
		return fmt.Errorf("engine: marking %s dirty: %w", tf.path, err)
	}
	tf.diskDirty.Store(true)
	return nil
}

// Sync makes a writable file tree's file consistent and clean: it flushes
// the mapped nodes, then writes the header (rows, root, node checksum) with
// the dirty flag cleared, and fsyncs. The tree must be hashed. It does
// nothing for a tree that has not changed since it was opened or synced.
func (t *Tree) Sync() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	tf := t.file
	if tf == nil || !tf.writable {
		return fmt.Errorf("%w: Sync needs a tree opened with OpenWritable", ErrReadOnly)
	}
	if !tf.diskDirty.Load() {
		return nil
	}
	if t.dirty.Load() {
		return ErrNotHashed
	}
	if err := t.region.Sync(); err != nil {
		return fmt.Errorf("engine: syncing %s: %w", tf.path, err)
	}
	crc := crc32c(t.nodes)
	hdr := t.header(0, crc)
	if _, err := tf.f.WriteAt(hdr[:], 0); err != nil {
		return fmt.Errorf("engine: syncing %s: %w", tf.path, err)
	}
	if err := tf.f.Sync(); err != nil {
		return fmt.Errorf("engine: syncing %s: %w", tf.path, err)
	}
	tf.bodyCRC, tf.openedDirty = crc, false
	copy(tf.root[:], t.node(0, 0))
	tf.diskDirty.Store(false)
	return nil
}

// Verify checks every byte of the tree: for a clean file tree, the nodes'
// checksum against the header; then, for any tree, every inner node against
// the hash of its children, bottom-up, and reports the first inconsistency
// as an error wrapping ErrCorrupt that names the node. A tree changed since
// its last Hash (or a file left dirty) cannot be checked against its inner
// nodes: Verify reports that as ErrNotHashed.
func (t *Tree) Verify(ctx context.Context) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return ErrClosed
	}
	name := "tree"
	if t.file != nil {
		name = t.file.path
		if t.file.openedDirty || t.file.diskDirty.Load() {
			return fmt.Errorf("%w: %s is dirty (left mid-update): rebuild it, or open it writable and Hash", ErrNotHashed, name)
		}
		if got := crc32c(t.nodes); got != t.file.bodyCRC {
			return corrupt(name, "node checksum %08x, header says %08x", got, t.file.bodyCRC)
		}
		if !bytes.Equal(t.node(0, 0), t.file.root[:]) {
			return corrupt(name, "root in the nodes differs from the root in the header")
		}
	}
	if t.dirty.Load() {
		return ErrNotHashed
	}
	g := newScratch()
	src, dst := g.src, g.dst
	for l := t.depth - 1; l >= 0; l-- {
		for start := 0; start < 1<<l; start += gatherChunk {
			if err := ctx.Err(); err != nil {
				return err
			}
			n := min(gatherChunk, 1<<l-start)
			for i := range 2 * n {
				copy(src[i*NodeSize:], t.node(l+1, 2*start+i))
			}
			if err := simd.HashPairs(dst[:n*NodeSize], src[:2*n*NodeSize]); err != nil {
				return err
			}
			for i := range n {
				if !bytes.Equal(t.node(l, start+i), dst[i*NodeSize:(i+1)*NodeSize]) {
					return corrupt(name, "node (%d, %d) is not the hash of its children", l, start+i)
				}
			}
		}
	}
	return nil
}
