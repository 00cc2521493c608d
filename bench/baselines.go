package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"runtime"
	"strconv"
	"sync"

	"github.com/prysmaticlabs/gohashtree"
	"github.com/transparency-dev/merkle/compact"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
)

// This file holds what grove is measured against, and the grove builds the
// runner and the benchmarks share. Every baseline computes the same root as
// grove from the same leaves (or the same row digests as grove's leaves
// sum), and the callers check that it did.

// buildParallel is grove's build: a new tree, every source added by
// AddFrom on its own goroutine, then Hash. It returns the tree (hashed) and
// the number of rows added.
func buildParallel(ctx context.Context, depth int, budget *arena.Budget, srcs []engine.RowSource) (*engine.Tree, int64, error) {
	t, err := engine.New(engine.Options{Depth: depth, Budget: budget})
	if err != nil {
		return nil, 0, err
	}
	counts := make([]int64, len(srcs))
	errs := make([]error, len(srcs))
	var wg sync.WaitGroup
	for w, src := range srcs {
		wg.Go(func() { counts[w], errs[w] = t.AddFrom(ctx, src) })
	}
	wg.Wait()
	var n int64
	for w := range srcs {
		if errs[w] != nil {
			t.Close()
			return nil, 0, errs[w]
		}
		n += counts[w]
	}
	if err := t.Hash(ctx); err != nil {
		t.Close()
		return nil, 0, err
	}
	return t, n, nil
}

// buildLoad is grove's build from one sequential source: Load, which reads
// on the calling goroutine and hashes on GOMAXPROCS workers, then Hash.
func buildLoad(ctx context.Context, depth int, budget *arena.Budget, src engine.RowSource) (*engine.Tree, int64, error) {
	t, err := engine.New(engine.Options{Depth: depth, Budget: budget})
	if err != nil {
		return nil, 0, err
	}
	n, err := t.Load(ctx, src, 0)
	if err == nil {
		err = t.Hash(ctx)
	}
	if err != nil {
		t.Close()
		return nil, 0, err
	}
	return t, n, nil
}

// lanes is the lane-wise sum of digests that a leaf holds: four
// little-endian uint64 lanes, added mod 2^64 (docs/FORMAT.md).
type lanes [4]uint64

func (l *lanes) add(d *[32]byte) {
	for i := range l {
		l[i] += binary.LittleEndian.Uint64(d[8*i:])
	}
}

// leafSum is the lane-wise sum of every leaf: the sum of every row digest a
// tree holds.
func leafSum(leaves []byte) lanes {
	var l lanes
	for i := 0; i < len(leaves); i += engine.NodeSize {
		l.add((*[32]byte)(leaves[i:]))
	}
	return l
}

// digestRows is the rows baseline: the digest of every row of src, computed
// with crypto/sha256 over exactly the bytes grove hashes (engine's encoding,
// in a reused buffer), on the calling goroutine. It returns the lane-wise sum
// of the digests, which must equal the sum of grove's leaves over the same
// rows, and the number of rows.
func digestRows(src *Source) (lanes, int64) {
	var (
		sum lanes
		n   int64
		r   engine.Row
		buf = make([]byte, 0, 256)
	)
	for src.NextRow(&r) == nil {
		buf = engine.AppendEncoding(buf[:0], &r)
		d := sha256.Sum256(buf)
		sum.add(&d)
		n++
	}
	return sum, n
}

// leavesOf copies the leaves of t, in order, into one buffer: the input every
// inner-level baseline starts from.
func leavesOf(t *engine.Tree) ([]byte, error) {
	leaves := make([]byte, t.Leaves()*engine.NodeSize)
	for i := range t.Leaves() {
		d, err := t.Node(t.Depth(), i)
		if err != nil {
			return nil, err
		}
		copy(leaves[i*engine.NodeSize:], d[:])
	}
	return leaves, nil
}

// ptrNode is a node of the pointer-tree baseline: the way a Merkle tree is
// usually written in Go (and in Cassandra's MerkleTree), one heap object per
// node.
type ptrNode struct {
	left, right *ptrNode
	hash        [32]byte
}

// pointerLeaves makes the leaf nodes of a pointer tree.
func pointerLeaves(leaves []byte) []*ptrNode {
	nodes := make([]*ptrNode, len(leaves)/engine.NodeSize)
	for i := range nodes {
		nodes[i] = &ptrNode{hash: [32]byte(leaves[i*engine.NodeSize:])}
	}
	return nodes
}

// buildPointer builds the inner nodes of a pointer tree bottom-up from its
// leaves, one heap node and one crypto/sha256 call per node, and returns the
// root.
func buildPointer(level []*ptrNode) *ptrNode {
	var buf [64]byte
	for len(level) > 1 {
		up := make([]*ptrNode, len(level)/2)
		for i := range up {
			l, r := level[2*i], level[2*i+1]
			copy(buf[:32], l.hash[:])
			copy(buf[32:], r.hash[:])
			up[i] = &ptrNode{left: l, right: r, hash: sha256.Sum256(buf[:])}
		}
		level = up
	}
	return level[0]
}

// pointerTreeHeap is the Go heap a whole pointer tree over leaves holds
// (leaves and inner nodes, nothing else), measured after a collection.
func pointerTreeHeap(leaves []byte) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	root := buildPointer(pointerLeaves(leaves))
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(root)
	if after.HeapAlloc < before.HeapAlloc {
		return 0
	}
	return after.HeapAlloc - before.HeapAlloc
}

// flatTree is the flat-slice baselines' tree: every node in one []byte, in
// breadth-first order (level l starts at node 2^l − 1), as grove's own
// default layout, but on the Go heap and hashed on one goroutine.
type flatTree struct {
	depth int
	nodes []byte
}

func newFlatTree(leaves []byte, depth int) *flatTree {
	f := &flatTree{depth: depth, nodes: make([]byte, engine.TreeBytes(depth))}
	copy(f.level(depth), leaves)
	return f
}

// level returns the nodes of level l.
func (f *flatTree) level(l int) []byte {
	return f.nodes[((1<<l)-1)*engine.NodeSize : ((1<<(l+1))-1)*engine.NodeSize]
}

// hashSHA256 computes the inner levels with one crypto/sha256 call per node.
func (f *flatTree) hashSHA256() [32]byte {
	for l := f.depth - 1; l >= 0; l-- {
		up, down := f.level(l), f.level(l+1)
		for i := 0; i < len(up); i += engine.NodeSize {
			d := sha256.Sum256(down[2*i : 2*i+2*engine.NodeSize])
			copy(up[i:], d[:])
		}
	}
	return [32]byte(f.nodes)
}

// hashGohashtree computes the inner levels with one gohashtree call per
// level, on the calling goroutine.
func (f *flatTree) hashGohashtree() ([32]byte, error) {
	for l := f.depth - 1; l >= 0; l-- {
		if err := gohashtree.HashByteSlice(f.level(l), f.level(l+1)); err != nil {
			return [32]byte{}, err
		}
	}
	return [32]byte(f.nodes), nil
}

// compactRoot is the transparency-dev/merkle baseline: a compact range
// appended one leaf at a time, and its root. With leaf hashes taken as they
// are and SHA-256(left ‖ right) for inner nodes, its tree over 2^depth leaves
// is grove's perfect tree, so the roots agree.
func compactRoot(leaves []byte) ([]byte, error) {
	f := &compact.RangeFactory{Hash: func(left, right []byte) []byte {
		var buf [64]byte
		copy(buf[:32], left)
		copy(buf[32:], right)
		d := sha256.Sum256(buf[:])
		return d[:]
	}}
	r := f.NewEmptyRange(0)
	for i := 0; i < len(leaves); i += engine.NodeSize {
		if err := r.Append(leaves[i:i+engine.NodeSize:i+engine.NodeSize], nil); err != nil {
			return nil, err
		}
	}
	return r.GetRootHash(nil)
}

// scanLeaves is the diff baseline: compare every leaf of two trees, as one
// would without the inner levels. It returns how many differ.
func scanLeaves(a, b []byte) int {
	n := 0
	for i := 0; i < len(a); i += engine.NodeSize {
		if !bytes.Equal(a[i:i+engine.NodeSize], b[i:i+engine.NodeSize]) {
			n++
		}
	}
	return n
}

// extraRows returns k rows whose keys fall in k distinct leaves of t, chosen
// deterministically: adding them to a copy of t makes exactly k leaves
// differ. Rows whose leaves are in skip are not chosen, so that successive
// calls can add more differing leaves; the chosen leaves are added to skip.
func extraRows(t *engine.Tree, k int, skip map[int]bool, next *int) ([]engine.Row, error) {
	if len(skip)+k > t.Leaves() {
		return nil, fmt.Errorf("bench: %d differing leaves asked of a tree of %d", len(skip)+k, t.Leaves())
	}
	rows := make([]engine.Row, 0, k)
	for len(rows) < k {
		key := strconv.AppendInt([]byte("grove-bench-extra:"), int64(*next), 10)
		*next++
		leaf := t.Range().LeafOf(t.Partitioner().Token(key), t.Depth())
		if leaf < 0 || skip[leaf] {
			continue
		}
		skip[leaf] = true
		rows = append(rows, engine.Row{Key: key, Value: []byte("an extra row"), TS: baseTS})
	}
	return rows, nil
}
