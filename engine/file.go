package engine

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/internal/atomicfile"
	"github.com/antientropy/grove/internal/flock"
)

// Tree files (docs/FORMAT.md): Save writes one, Open maps one read-only as a
// View, OpenWritable maps one read-write as a live Tree that changes it in
// place. header.go is the header's codec.

// fileInfo is what a View opened from a file remembers of it.
type fileInfo struct {
	path string
	// dirty records that the file carried the dirty flag: it was left
	// mid-update, so its inner nodes and checksums may be stale.
	dirty   bool
	bodyCRC uint32 // from the header; meaningful when !dirty
	root    Digest // likewise
}

// treeFile is the file a writable Tree changes in place.
type treeFile struct {
	path string
	f    *os.File // open, and locked, until the tree is closed

	mu        sync.Mutex  // serialises header writes
	diskDirty atomic.Bool // the dirty flag is set on disk
	bodyCRC   uint32      // from the last clean header; under the tree's lock
	root      Digest      // likewise
	label     uint64      // likewise
}

// save writes s's nodes, with a header for rows, to path atomically. The
// caller holds the owner's read lock and knows s is hashed.
func (s *shape) save(path string, rows int64) error {
	err := atomicfile.Write(path, 0o644, func(f *os.File) error { return s.write(f, rows) })
	if err != nil {
		return fmt.Errorf("engine: saving %s: %w", path, err)
	}
	return nil
}

// write writes the tree file of s's nodes, with a header for rows, to f.
func (s *shape) write(f *os.File, rows int64) error {
	h := headerOf(s, rows, 0, crc32c(s.nodes))
	hdr := h.encode()
	if _, err := f.Write(hdr[:]); err != nil {
		return err
	}
	_, err := f.Write(s.nodes)
	return err
}

// Save writes the tree to path: to a temporary file in the same directory,
// fsynced, renamed over path, and the directory fsynced, so path always holds
// either the old complete file or the new one. The tree must be hashed. A
// replaced file keeps its permission bits; a new one is 0644 less the umask.
// A crash mid-save can leave a ".NAME.grove-tmp-*" file beside path; it is
// never read, and the next Save to path removes it (docs/FORMAT.md).
func (t *Tree) Save(path string) error {
	staged, err := t.SaveStaged(path)
	if err != nil {
		return err
	}
	return staged.Commit()
}

// StagedFile is a tree written to a temporary file beside its path, not
// yet synced: Commit makes it the file at the path as Save does, Abort
// removes it.
type StagedFile struct{ f *atomicfile.File }

// SaveStaged is Save in two steps: it writes the tree to a temporary file
// beside path and returns it, unsynced; the returned file's Commit
// fsyncs it, renames it over path and fsyncs the directory. The tree may
// change or close once SaveStaged returns — the file holds its bytes — so
// a caller building many trees commits one while it builds the next, and
// the wait for the disk overlaps the work.
func (t *Tree) SaveStaged(path string) (*StagedFile, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return nil, ErrClosed
	}
	if t.dirty.Load() {
		return nil, ErrNotHashed
	}
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return nil, fmt.Errorf("engine: saving %s: %w", path, err)
	}
	if err := t.write(f.File, t.rows.Load()); err != nil {
		f.Abort()
		return nil, fmt.Errorf("engine: saving %s: %w", path, err)
	}
	return &StagedFile{f: f}, nil
}

// Commit makes the staged file the tree file at its path: fsynced,
// renamed over it, the directory fsynced.
func (s *StagedFile) Commit() error {
	if err := s.f.Commit(); err != nil {
		// atomicfile's errors name the path.
		return fmt.Errorf("engine: saving %w", err)
	}
	return nil
}

// Abort removes the staged file; the path keeps what it held.
func (s *StagedFile) Abort() { s.f.Abort() }

// Save writes the view to path, atomically, as Tree.Save does. A tree file
// left dirty cannot be saved: ErrNotHashed.
func (v *View) Save(path string) error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.closed {
		return ErrClosed
	}
	if !v.hashed {
		return ErrNotHashed
	}
	return v.save(path, v.rows)
}

// Open maps a tree file read-only, as a View. Only the header page is read
// and checked: every claim it makes is checked against the engine's own
// limits, the size it implies against the file's real size, and that size is
// reserved against budget, all before anything is mapped. The nodes are not
// read, parsed or copied — pages come in as a diff touches them — so even a
// deep tree opens at once; Verify checks every byte. A file that does not
// check out gives an error wrapping ErrCorrupt that names what was wrong.
//
// A file left with its dirty flag set (a writable tree not checkpointed
// before a crash or Close) opens, but reports Dirty, and its inner nodes
// count as unhashed: the caller rebuilds it, or opens it writable and
// hashes it. The file must not be truncated while it is open.
func Open(path string, budget *arena.Budget, opts ...OpenOption) (*View, error) {
	var o openOptions
	for _, f := range opts {
		f(&o)
	}
	f, h, region, err := openFile(path, budget, false)
	if err != nil {
		return nil, err
	}
	// The mapping holds the file's pages; the descriptor is not needed.
	f.Close()
	v := &View{
		shape:  fileShape(budget, region, h, o.obs),
		rows:   h.rows,
		hashed: h.flags&flagDirty == 0,
		file:   &fileInfo{path: path, dirty: h.flags&flagDirty != 0, bodyCRC: h.bodyCRC, root: h.root},
	}
	return v, nil
}

// OpenWritable maps a tree file read-write, as a live Tree whose updates and
// Hash change the file in place. The file is locked against a second writer,
// in this process or another, which fails with ErrInUse. The first change
// after opening or after Checkpoint sets the file's dirty flag on disk (and
// fsyncs it) before any node is touched; Checkpoint writes the header and
// clears it. Closing without Checkpoint leaves the flag set, which the next
// Open reports.
func OpenWritable(path string, budget *arena.Budget, opts ...OpenOption) (*Tree, error) {
	var o openOptions
	for _, f := range opts {
		f(&o)
	}
	f, h, region, err := openFile(path, budget, true)
	if err != nil {
		return nil, err
	}
	t := newTree(fileShape(budget, region, h, o.obs))
	t.file = &treeFile{path: path, f: f, bodyCRC: h.bodyCRC, root: h.root, label: h.label}
	dirty := h.flags&flagDirty != 0
	t.file.diskDirty.Store(dirty)
	t.rows.Store(h.rows)
	t.dirty.Store(dirty)
	t.needsFullHash.Store(dirty)
	return t, nil
}

// OpenOption adjusts how a tree file is opened.
type OpenOption func(*openOptions)

type openOptions struct{ obs Observer }

// WithObserver reports the opened tree to o, as Options.Observer does for a
// new one.
func WithObserver(o Observer) OpenOption {
	return func(opts *openOptions) { opts.obs = o }
}

// fileShape is the shape of a tree file mapped whole in region: its nodes
// follow the header page.
func fileShape(budget *arena.Budget, region *arena.Region, h header, obs Observer) shape {
	s := shape{budget: budget, region: region, nodes: region.Bytes()[headerSize:], part: h.part, rng: h.rng, depth: h.depth, layout: h.layout, version: FormatVersion, obs: orNop(obs)}
	s.obs.TreeOpened()
	return s
}

// openFile opens, checks and maps the tree file at path. A writable file is
// locked, and returned open; a read-only one is returned open too, for the
// caller to close.
func openFile(path string, budget *arena.Budget, writable bool) (_ *os.File, _ header, _ *arena.Region, err error) {
	flag := os.O_RDONLY
	if writable {
		flag = os.O_RDWR
	}
	var h header
	// Only a regular file can be a tree file. Checked before opening, too:
	// opening a named pipe waits for a writer, and a directory would fail
	// only when read, with a message about its size.
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		return nil, h, nil, notRegular(path, st.Mode())
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, h, nil, fmt.Errorf("engine: opening tree: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if writable {
		// One writer per file, as bbolt locks its database: held until
		// Close closes f.
		if err := flock.TryLock(f); err != nil {
			return nil, h, nil, fmt.Errorf("%w: %s is open for writing elsewhere (%v)", ErrInUse, path, err)
		}
	}
	st, err := f.Stat()
	if err != nil {
		return nil, h, nil, fmt.Errorf("engine: opening tree: %w", err)
	}
	if !st.Mode().IsRegular() { // replaced since the check above
		return nil, h, nil, notRegular(path, st.Mode())
	}
	var hdr [headerSize]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return nil, h, nil, corrupt(path, "header: %v (file is %d bytes, the header alone is %d)", err, st.Size(), headerSize)
	}
	if h, err = parseHeader(hdr[:]); err != nil {
		return nil, h, nil, fmt.Errorf("%s: %w", path, err)
	}
	size := LayoutBytes(h.layout, h.depth)
	if want := int64(headerSize) + size; st.Size() != want {
		return nil, h, nil, corrupt(path, "file is %d bytes, a depth-%d %s tree file is %d", st.Size(), h.depth, h.layout.Name(), want)
	}
	if budget == nil {
		return nil, h, nil, fmt.Errorf("engine: opening %s: a budget is required", path)
	}
	// The nodes start 4096 bytes in, which is no page boundary on kernels
	// with 16 or 64 KiB pages (nor Windows' 64 KiB mapping granularity):
	// map the file from its start and slice the header off.
	region, err := arena.MapFile(budget, f, 0, int(headerSize+size), writable)
	if err != nil {
		return nil, h, nil, fmt.Errorf("engine: opening %s: %w", path, err)
	}
	return f, h, region, nil
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

// Dirty reports whether the view's file carried the dirty flag: it was left
// mid-update. It is false for views not opened from a file.
func (v *View) Dirty() bool { return v.file != nil && v.file.dirty }

// FileDirty reports whether the tree's file has changed since it was opened
// or last checkpointed, or was opened left dirty. It is false for a tree in
// memory.
func (t *Tree) FileDirty() bool {
	return t.file != nil && t.file.diskDirty.Load()
}

// beginWrite is called by every write path, holding t.mu, before it changes
// a node: a file tree sets its dirty flag on disk first, once, so a crash
// between here and Checkpoint is detectable.
func (t *Tree) beginWrite() error {
	tf := t.file
	if tf == nil || tf.diskDirty.Load() {
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
	setDirty(hdr[:])
	if _, err := tf.f.WriteAt(hdr[:], 0); err != nil {
		return fmt.Errorf("engine: marking %s dirty: %w", tf.path, err)
	}
	if err := tf.f.Sync(); err != nil {
		return fmt.Errorf("engine: marking %s dirty: %w", tf.path, err)
	}
	tf.diskDirty.Store(true)
	return nil
}

// Checkpoint makes a writable file tree's file consistent and clean: it
// flushes the mapped nodes, then writes the header (rows, root, node
// checksum) with the dirty flag cleared, and fsyncs. The tree must be
// hashed. It does nothing for a tree that has not changed since it was
// opened or checkpointed; a tree in memory has no file and gets ErrNoFile.
// The file keeps the label of its last CheckpointAt.
func (t *Tree) Checkpoint() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.checkpoint(false, 0)
}

// CheckpointAt is Checkpoint that also records label in the file's header,
// even if the tree has not changed: a storage node passes the number of
// the checkpoint, so that after a crash it knows which of its records of
// touched leaves the file already includes (those of checkpoints up to
// CheckpointLabel) and which it must redo with RebuildLeaves.
func (t *Tree) CheckpointAt(label uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.checkpoint(true, label)
}

// CheckpointLabel is the label the tree's file carried when opened, or of
// its last CheckpointAt since; 0 for a file never labelled or a tree in
// memory.
func (t *Tree) CheckpointLabel() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.file == nil {
		return 0
	}
	return t.file.label
}

// checkpoint is Checkpoint, relabelling the file when relabel is set.
// Callers hold t.mu for writing.
func (t *Tree) checkpoint(relabel bool, label uint64) error {
	if t.closed {
		return ErrClosed
	}
	tf := t.file
	if tf == nil {
		return ErrNoFile
	}
	if !relabel {
		label = tf.label
	}
	if !tf.diskDirty.Load() && label == tf.label {
		return nil
	}
	if t.dirty.Load() {
		return ErrNotHashed
	}
	if err := t.region.Sync(); err != nil {
		return fmt.Errorf("engine: checkpointing %s: %w", tf.path, err)
	}
	crc := crc32c(t.nodes)
	h := headerOf(&t.shape, t.rows.Load(), 0, crc)
	h.label = label
	hdr := h.encode()
	if _, err := tf.f.WriteAt(hdr[:], 0); err != nil {
		return fmt.Errorf("engine: checkpointing %s: %w", tf.path, err)
	}
	if err := tf.f.Sync(); err != nil {
		return fmt.Errorf("engine: checkpointing %s: %w", tf.path, err)
	}
	tf.bodyCRC, tf.root, tf.label = crc, h.root, label
	tf.diskDirty.Store(false)
	return nil
}

// Verify checks every byte of the tree: for a clean file tree, the nodes'
// checksum against the header; then every inner node against the hash of
// its children, bottom-up. It reports the first inconsistency as an error
// wrapping ErrCorrupt that names the node. A tree changed since its last
// Hash or Checkpoint cannot be checked against its header or inner nodes:
// Verify reports that as ErrNotHashed.
func (t *Tree) Verify(ctx context.Context) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return ErrClosed
	}
	name := "tree"
	if tf := t.file; tf != nil {
		name = tf.path
		if tf.diskDirty.Load() {
			return fmt.Errorf("%w: %s changed since its last checkpoint: checkpoint it first", ErrNotHashed, name)
		}
		if err := checkBody(&t.shape, name, tf.bodyCRC, tf.root); err != nil {
			return err
		}
	}
	if t.dirty.Load() {
		return ErrNotHashed
	}
	return checkInner(ctx, &t.shape, name)
}

// Verify checks every byte of the view as Tree.Verify does. A tree file left
// dirty cannot be checked: ErrNotHashed says so.
func (v *View) Verify(ctx context.Context) error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.closed {
		return ErrClosed
	}
	name := "tree"
	if fi := v.file; fi != nil {
		name = fi.path
		if fi.dirty {
			return fmt.Errorf("%w: %s is dirty (left mid-update): rebuild it, or open it writable and Hash", ErrNotHashed, name)
		}
		if err := checkBody(&v.shape, name, fi.bodyCRC, fi.root); err != nil {
			return err
		}
	}
	return checkInner(ctx, &v.shape, name)
}

// checkBody checks s's nodes against the checksum and root a clean header
// recorded.
func checkBody(s *shape, name string, bodyCRC uint32, root Digest) error {
	if got := crc32c(s.nodes); got != bodyCRC {
		return corrupt(name, "node checksum %08x, header says %08x", got, bodyCRC)
	}
	if Digest(s.node(0, 0)) != root {
		return corrupt(name, "root in the nodes differs from the root in the header")
	}
	return nil
}
