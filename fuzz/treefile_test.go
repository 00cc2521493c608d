package fuzz

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"testing"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
)

// The tree file header as docs/FORMAT.md lays it out. These are this
// package's own reading of the document, not the engine's constants.
const (
	hdrSize        = 4096
	offVersion     = 8
	offLayout      = 10
	offPartitioner = 11
	offDepth       = 12
	offLo          = 16
	offHi          = 24
	offRows        = 32
	offRoot        = 40
	offBodyCRC     = 72
	offFlags       = 76
	offLabel       = 80 // u64 checkpoint label: any value
	offReserved    = 88
	offHdrCRC      = 4092
	// offCompact is where fixCompact cuts the header: the fields before
	// the label, as the seed corpus was written.
	offCompact = 80

	maxFileDepth = 32
	maxFileRows  = 1 << 48
	flagDirty    = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var zeroHeader [hdrSize]byte

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// fileHeader is a header page as the reference reads it.
type fileHeader struct {
	layout, partitioner uint8
	depth               int
	lo, hi              int64
	rows                int64
	root                [32]byte
	bodyCRC, flags      uint32
}

// Outcomes of the reference check of a file, in the order the format
// document lists the checks.
type verdict int

const (
	okFile       verdict = iota
	corruptFile          // ErrCorrupt
	otherVersion         // ErrIncompatible
	overBudget           // arena.ErrBudgetExceeded
)

// slots is the node slot count of a layout at a depth, from the format
// document: 2^(d+1) − 1 for breadth-first, 128 per block for page-blocked.
func slots(layoutID uint8, depth int) int {
	if layoutID == 1 {
		return 1<<(depth+1) - 1
	}
	return refBlockedSlots(depth)
}

func slot(layoutID uint8, depth, level, index int) int {
	if layoutID == 1 {
		return 1<<level - 1 + index
	}
	return refBlockedSlot(depth, level, index)
}

// refCheck decides, from the format document alone, what Open must make of
// a file's bytes given a budget limit.
func refCheck(data []byte, limit int64) (fileHeader, verdict, string) {
	var h fileHeader
	if len(data) < hdrSize {
		return h, corruptFile, "shorter than a header"
	}
	hdr := data[:hdrSize]
	switch {
	case string(hdr[:8]) != "GROVETRE":
		return h, corruptFile, "magic"
	case binary.LittleEndian.Uint32(hdr[offHdrCRC:]) != crc32c(hdr[:offHdrCRC]):
		return h, corruptFile, "header CRC"
	case binary.LittleEndian.Uint16(hdr[offVersion:]) != 1:
		return h, otherVersion, "version"
	}
	h.layout, h.partitioner, h.depth = hdr[offLayout], hdr[offPartitioner], int(hdr[offDepth])
	h.lo = int64(binary.LittleEndian.Uint64(hdr[offLo:]))
	h.hi = int64(binary.LittleEndian.Uint64(hdr[offHi:]))
	h.rows = int64(binary.LittleEndian.Uint64(hdr[offRows:]))
	copy(h.root[:], hdr[offRoot:])
	h.bodyCRC = binary.LittleEndian.Uint32(hdr[offBodyCRC:])
	h.flags = binary.LittleEndian.Uint32(hdr[offFlags:])
	switch {
	case h.layout != 1 && h.layout != 2:
		return h, corruptFile, "layout id"
	case h.partitioner != 1 && h.partitioner != 2:
		return h, corruptFile, "partitioner id"
	case h.depth > maxFileDepth:
		return h, corruptFile, "depth"
	case hdr[13]|hdr[14]|hdr[15] != 0 || !bytes.Equal(hdr[offReserved:offHdrCRC], zeroHeader[offReserved:offHdrCRC]):
		return h, corruptFile, "reserved bytes"
	case h.flags&^flagDirty != 0:
		return h, corruptFile, "flags"
	case h.lo >= h.hi || h.lo < math.MinInt64 || h.hi > math.MaxInt64: // both rings are (MinInt64, MaxInt64]
		return h, corruptFile, "range"
	case h.rows < 0 || h.rows > maxFileRows:
		return h, corruptFile, "rows"
	case int64(len(data)) != hdrSize+int64(slots(h.layout, h.depth))*32:
		return h, corruptFile, "file size"
	}
	if size := int64(slots(h.layout, h.depth)) * 32; (size+4095)/4096*4096 > limit {
		return h, overBudget, "budget"
	}
	return h, okFile, ""
}

// innerConsistent reports whether every inner node of body is SHA-256 of
// its two children.
func innerConsistent(body []byte, h fileHeader) bool {
	node := func(l, i int) []byte {
		s := slot(h.layout, h.depth, l, i) * 32
		return body[s : s+32]
	}
	var pair [64]byte
	for l := h.depth - 1; l >= 0; l-- {
		for i := 0; i < 1<<l; i++ {
			copy(pair[:32], node(l+1, 2*i))
			copy(pair[32:], node(l+1, 2*i+1))
			if sum := sha256.Sum256(pair[:]); !bytes.Equal(sum[:], node(l, i)) {
				return false
			}
		}
	}
	return true
}

// Bits of FuzzOpenTreeFile's fix argument: repairs made to the fuzzer's
// bytes before they are written, so that mutations get past the checksums
// and reach the checks behind them.
const (
	fixBodyCRC   = 1 << iota // set the node CRC to that of the bytes after the header
	fixRoot                  // copy the root node (per the header's layout) into the header
	fixHeaderCRC             // then set the header CRC
	fixNoBudget              // open with a budget of 0 bytes
	fixWritable              // also open it writable, Hash and Sync
	// fixCompact reads the input as the header's first 80 bytes followed by
	// the nodes; the reserved bytes and the header CRC are zeros in between
	// (fixHeaderCRC then sets the CRC). It puts the header fields, rather
	// than 4 KiB of mostly zeros, where the fuzzer's mutations land.
	fixCompact
	// fixFill makes the nodes the size the header's layout and depth
	// imply (depth at most fillMaxDepth), repeating the input's node bytes,
	// or zeros if it has none. With fixHash, a whole valid tree file of any
	// depth up to fillMaxDepth, in either layout, is an input of about 100
	// bytes: small enough for mutations to keep it valid and for Go's
	// quadratic minimiser to finish, where a page-blocked file is at least
	// 8 KiB.
	fixFill
	// fixHash recomputes every inner node from the leaves, by the layout's
	// slots, when the nodes are the size the header implies.
	fixHash
)

// fillMaxDepth bounds what fixFill makes: 2^(d+1) nodes, 64 KiB at most.
const fillMaxDepth = 10

func applyFixes(data []byte, fix uint8) []byte {
	if fix&fixCompact != 0 && len(data) >= offCompact {
		data = slices.Concat(data[:offCompact], make([]byte, hdrSize-offCompact), data[offCompact:])
	} else {
		data = bytes.Clone(data)
	}
	if len(data) < hdrSize {
		return data
	}
	id, d := data[offLayout], int(data[offDepth])
	known := (id == 1 || id == 2) && d <= maxFileDepth
	if fix&fixFill != 0 && known && d <= fillMaxDepth {
		pattern := data[hdrSize:]
		body := make([]byte, slots(id, d)*32)
		for i := 0; len(pattern) > 0 && i < len(body); i += len(pattern) {
			copy(body[i:], pattern)
		}
		data = append(data[:hdrSize:hdrSize], body...)
	}
	if fix&fixHash != 0 && known && int64(len(data)) == hdrSize+int64(slots(id, d))*32 {
		body := data[hdrSize:]
		node := func(l, i int) []byte {
			s := slot(id, d, l, i) * 32
			return body[s : s+32]
		}
		var pair [64]byte
		for l := d - 1; l >= 0; l-- {
			for i := 0; i < 1<<l; i++ {
				copy(pair[:32], node(l+1, 2*i))
				copy(pair[32:], node(l+1, 2*i+1))
				sum := sha256.Sum256(pair[:])
				copy(node(l, i), sum[:])
			}
		}
	}
	if fix&fixBodyCRC != 0 {
		binary.LittleEndian.PutUint32(data[offBodyCRC:], crc32c(data[hdrSize:]))
	}
	if fix&fixRoot != 0 && known {
		if s := hdrSize + int64(slot(id, d, 0, 0))*32; s+32 <= int64(len(data)) {
			copy(data[offRoot:offRoot+32], data[s:s+32])
		}
	}
	if fix&fixHeaderCRC != 0 {
		binary.LittleEndian.PutUint32(data[offHdrCRC:], crc32c(data[:offHdrCRC]))
	}
	return data
}

// maxOpenHeap is what Open may allocate on the heap, whatever the header
// claims: a header page and change.
const maxOpenHeap = 256 << 10

var heapAllocs = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}

// heapAllocated returns about how many bytes were allocated on the heap so
// far, cheaply: runtime.ReadMemStats stops the world and took 22 µs, twice
// per execution. It counts small objects a span at a time, so it may run
// ahead by a few spans; large objects count as they are allocated.
func heapAllocated() uint64 {
	metrics.Read(heapAllocs)
	return heapAllocs[0].Value.Uint64()
}

// fuzzDir is where the targets write their files: tmpfs when there is one,
// so that the engine's fsyncs cost nothing.
func fuzzDir(f *testing.F) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "grove-fuzz-"); err == nil {
			f.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return f.TempDir()
}

// FuzzOpenTreeFile writes arbitrary bytes (with optional checksum repairs)
// to a file and opens it with engine.Open. A reference reading of
// docs/FORMAT.md decides what must happen: a file it rejects fails with
// ErrCorrupt (ErrIncompatible for another version, arena.ErrBudgetExceeded
// when the budget is too small) and leaves nothing charged; a file it
// accepts opens, with the header's depth, range, partitioner, layout, row
// count and dirty flag, leaves equal to the file's bytes at the layout's
// slots, and Verify's verdict equal to a recomputation of the node CRC, the
// header root and every inner hash. A verified file saves back byte for
// byte; a read-only tree refuses writes and never changes its file;
// closing returns every byte to the budget. Whatever the header claims,
// Open allocates no more than a few pages on the heap.
func FuzzOpenTreeFile(f *testing.F) {
	dir := fuzzDir(f)
	path := filepath.Join(dir, "tree")
	// One file, rewritten in place for each input: a write and a truncate
	// rather than os.WriteFile's open, write and close.
	file, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { file.Close() })
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, raw []byte, fix uint8) {
		data := applyFixes(raw, fix)
		if _, err := file.WriteAt(data, 0); err != nil {
			t.Fatal(err)
		}
		if err := file.Truncate(int64(len(data))); err != nil {
			t.Fatal(err)
		}
		limit := int64(256 << 20)
		if fix&fixNoBudget != 0 {
			limit = 0
		}
		budget := arena.NewBudget(limit)
		h, want, why := refCheck(data, limit)

		// Open reads a header page; whatever a header claims, the nodes
		// are mapped (and charged), never allocated on the heap.
		before := heapAllocated()
		tr, err := engine.Open(path, budget)
		if heapAllocated()-before > maxOpenHeap {
			// The cheap count may include a span of small objects or the
			// runtime's own: measure again, exactly.
			if err == nil {
				tr.Close()
			}
			budget = arena.NewBudget(limit)
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			tr, err = engine.Open(path, budget)
			runtime.ReadMemStats(&ms1)
			if n := ms1.TotalAlloc - ms0.TotalAlloc; n > maxOpenHeap {
				t.Fatalf("Open allocated %d bytes on the heap (file of %d bytes; %s)", n, len(data), why)
			}
		}
		if want != okFile {
			if err == nil {
				tr.Close()
				t.Fatalf("Open accepted a file the format rejects (%s): %+v", why, h)
			}
			var sentinel error
			switch want {
			case corruptFile:
				sentinel = engine.ErrCorrupt
			case otherVersion:
				sentinel = engine.ErrIncompatible
			case overBudget:
				sentinel = arena.ErrBudgetExceeded
			}
			if !errors.Is(err, sentinel) {
				t.Fatalf("Open: %v; want an error wrapping %v (%s)", err, sentinel, why)
			}
			if budget.Used() != 0 {
				t.Fatalf("failed Open left %d bytes charged", budget.Used())
			}
			return
		}
		if err != nil {
			t.Fatalf("Open rejected a file the format accepts: %v (header %+v)", err, h)
		}
		defer tr.Close()
		body := data[hdrSize:]
		dirty := h.flags&flagDirty != 0
		checkOpened(t, tr, h, body, dirty)

		consistent := innerConsistent(body, h)
		wantVerified := !dirty && crc32c(body) == h.bodyCRC && bytes.Equal(body[slot(h.layout, h.depth, 0, 0)*32:][:32], h.root[:]) && consistent
		verr := tr.Verify(ctx)
		switch {
		case dirty:
			if !errors.Is(verr, engine.ErrNotHashed) {
				t.Fatalf("Verify of a dirty file: %v, want ErrNotHashed", verr)
			}
		case wantVerified && verr != nil:
			t.Fatalf("Verify: %v, but the file checks out", verr)
		case !wantVerified && !errors.Is(verr, engine.ErrCorrupt):
			t.Fatalf("Verify: %v; want ErrCorrupt (CRC ok %v, root ok %v, inner nodes ok %v)", verr,
				crc32c(body) == h.bodyCRC, bytes.Equal(body[slot(h.layout, h.depth, 0, 0)*32:][:32], h.root[:]), consistent)
		}

		// Read-only: a View has no method that writes, and the file stays
		// as it was.
		if wantVerified {
			res, err := engine.Diff(ctx, tr, tr)
			if err != nil || !res.Identical() || res.NodesCompared != 1 {
				t.Fatalf("Diff with itself: %+v, %v", res, err)
			}
			saved := filepath.Join(dir, "saved")
			if err := tr.Save(saved); err != nil {
				t.Fatalf("Save: %v", err)
			}
			got, err := os.ReadFile(saved)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("Save of a verified file wrote different bytes (%d vs %d)", len(got), len(data))
			}
		}
		if err := tr.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if _, err := tr.Root(); !errors.Is(err, engine.ErrClosed) {
			t.Fatalf("Root after Close: %v, want ErrClosed", err)
		}
		if budget.Used() != 0 {
			t.Fatalf("Close left %d bytes charged", budget.Used())
		}
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("a read-only Open changed the file (err %v)", err)
		}

		if fix&fixWritable != 0 {
			checkWritable(t, path, data, h, dirty, wantVerified)
		}
	})
}

// checkOpened compares what an opened tree reports with the header and the
// file's nodes.
func checkOpened(t *testing.T, tr *engine.View, h fileHeader, body []byte, dirty bool) {
	t.Helper()
	if tr.Depth() != h.depth || tr.Range().Lo != h.lo || tr.Range().Hi != h.hi ||
		tr.Partitioner().ID() != h.partitioner || tr.Layout().ID() != h.layout || tr.Rows() != h.rows {
		t.Fatalf("opened tree: depth %d range %v partitioner %d layout %d rows %d; header %+v",
			tr.Depth(), tr.Range(), tr.Partitioner().ID(), tr.Layout().ID(), tr.Rows(), h)
	}
	if tr.Dirty() != dirty {
		t.Fatalf("Dirty() = %v, header flags %#x", tr.Dirty(), h.flags)
	}
	if tr.Bytes() != int64(slots(h.layout, h.depth))*32 {
		t.Fatalf("Bytes() = %d, want %d", tr.Bytes(), slots(h.layout, h.depth)*32)
	}
	// Every node, or a sample of a large tree.
	step := 1
	if n := 1 << (h.depth + 1); n > 1<<14 {
		step = n >> 14
	}
	for l := 0; l <= h.depth; l++ {
		for i := 0; i < 1<<l; i += max(1, step>>(h.depth-l)) {
			d, err := tr.Node(l, i)
			if l < h.depth && dirty {
				if !errors.Is(err, engine.ErrNotHashed) {
					t.Fatalf("Node(%d, %d) of a dirty file: %v, want ErrNotHashed", l, i, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("Node(%d, %d): %v", l, i, err)
			}
			s := slot(h.layout, h.depth, l, i) * 32
			if !bytes.Equal(d[:], body[s:s+32]) {
				t.Fatalf("Node(%d, %d) = %x, file has %x at slot %d", l, i, d, body[s:s+32], s/32)
			}
		}
	}
	root, err := tr.Root()
	if dirty && h.depth > 0 { // at depth 0 the root is the leaf, always current
		if !errors.Is(err, engine.ErrNotHashed) {
			t.Fatalf("Root of a dirty file: %v, want ErrNotHashed", err)
		}
	} else if s := slot(h.layout, h.depth, 0, 0) * 32; err != nil || !bytes.Equal(root[:], body[s:s+32]) {
		t.Fatalf("Root() = %x, %v; file has %x", root, err, body[s:s+32])
	}
	for _, bad := range [][2]int{{-1, 0}, {h.depth + 1, 0}, {h.depth, 1 << h.depth}, {0, -1}} {
		if _, err := tr.Node(bad[0], bad[1]); !errors.Is(err, engine.ErrNodeIndex) {
			t.Fatalf("Node(%d, %d): %v, want ErrNodeIndex", bad[0], bad[1], err)
		}
	}
}

// checkWritable opens the file read-write, hashes and checkpoints it, and
// checks that it then opens clean with the same leaves and rows, and
// verifies when it should: a dirty file is rehashed from its leaves and
// verifies; a clean one is left byte for byte as it was — a writable open
// does not read the whole file, and a checkpoint must not bless a body its
// header's checksum disagrees with — so it verifies exactly when it did.
func checkWritable(t *testing.T, path string, orig []byte, h fileHeader, dirty, wasVerified bool) {
	t.Helper()
	ctx := context.Background()
	budget := arena.NewBudget(256 << 20)
	w, err := engine.OpenWritable(path, budget)
	if err != nil {
		t.Fatalf("OpenWritable: %v", err)
	}
	if err := w.Hash(ctx); err != nil {
		t.Fatalf("Hash: %v", err)
	}
	if err := w.Checkpoint(); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if budget.Used() != 0 {
		t.Fatalf("writable tree left %d bytes charged", budget.Used())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h2, v, why := refCheck(data, 256<<20)
	if v != okFile {
		t.Fatalf("after OpenWritable, Hash, Sync the file does not check out: %s", why)
	}
	if h2.flags != 0 || h2.rows != h.rows || h2.depth != h.depth || h2.layout != h.layout || h2.lo != h.lo || h2.hi != h.hi {
		t.Fatalf("after Sync: header %+v, was %+v", h2, h)
	}
	if !dirty && !bytes.Equal(data, orig) {
		t.Fatalf("OpenWritable, Hash, Sync of a clean file changed its bytes")
	}
	body, body2 := orig[hdrSize:], data[hdrSize:]
	for i := 0; i < 1<<h.depth; i++ {
		s := slot(h.layout, h.depth, h.depth, i) * 32
		if !bytes.Equal(body[s:s+32], body2[s:s+32]) {
			t.Fatalf("leaf %d changed from %x to %x", i, body[s:s+32], body2[s:s+32])
		}
	}
	r, err := engine.Open(path, budget)
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	defer r.Close()
	if err, want := r.Verify(ctx), dirty || wasVerified; (err == nil) != want {
		t.Fatalf("Verify after OpenWritable, Hash, Sync: %v (want verified: %v)", err, want)
	}
}
