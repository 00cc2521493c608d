package fuzz

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/engine/rowstore"
	"github.com/antientropy/grove/engine/token"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"
)

type rowSlice []engine.Row

func (r *rowSlice) NextRow(row *engine.Row) error {
	if len(*r) == 0 {
		return io.EOF
	}
	*row = (*r)[0]
	*r = (*r)[1:]
	return nil
}

// replicaRows are the rows of a replica of n rows; skip drops one of them
// and tweak changes another, so two replicas built with different arguments
// differ.
func replicaRows(n, skip, tweak int) []engine.Row {
	var rows []engine.Row
	for i := range n {
		if i == skip {
			continue
		}
		r := engine.Row{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i), TS: int64(i)}
		if i == tweak {
			r.Value = []byte("tweaked")
		}
		rows = append(rows, r)
	}
	return rows
}

// replicaDepth is the depth of the protocol targets' trees: 64 leaves for 60
// rows, so most leaves hold a row or two and a session descends several
// levels (the checked-in corpora were found against this shape).
const replicaDepth = 6

// fixture is one side of the protocol targets, built once per fuzzing
// process and put back after any input that changed it. Building a replica
// maps a tree and loads a store; putting it back costs two tree updates per
// row and a rehash of the paths they touched, and only when an input
// actually wrote rows.
type fixture struct {
	rows  []engine.Row
	sum   engine.Digest // of the pristine replica's leaves
	root  engine.Digest
	tree  *engine.Tree
	store *rowstore.Store
	rep   *rowstore.Replica
	// inUse is set while an input runs: still set when the next one starts,
	// the last one failed or panicked half-way, and the replica is built
	// afresh rather than trusted.
	inUse bool
}

func newFixture(f *testing.F, n, skip, tweak int) *fixture {
	fx := &fixture{rows: replicaRows(n, skip, tweak)}
	fx.build(f)
	f.Cleanup(func() { fx.tree.Close() })
	return fx
}

// build makes the replica from the fixture's rows, in a tree of its own.
func (fx *fixture) build(tb testing.TB) {
	ctx := context.Background()
	fx.store = fx.loadStore(tb)
	tree, err := rowstore.BuildTree(ctx, fx.store, engine.Options{Depth: replicaDepth, Budget: arena.NewBudget(1 << 20), NoHugePages: true})
	if err != nil {
		tb.Fatal(err)
	}
	fx.tree = tree
	fx.rep = rowstore.NewReplica(fx.store, tree)
	if fx.sum, err = fx.rep.Sum(ctx); err != nil {
		tb.Fatal(err)
	}
	if fx.root, err = tree.Root(); err != nil {
		tb.Fatal(err)
	}
	fx.inUse = false
}

func (fx *fixture) loadStore(tb testing.TB) *rowstore.Store {
	rows := rowSlice(fx.rows)
	st, err := rowstore.Load(context.Background(), token.Murmur3{}, &rows)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// replica returns the fixture's replica for one input, as it was built.
// Call done when the input has run.
func (fx *fixture) replica(t *testing.T) *rowstore.Replica {
	if fx.inUse {
		fx.tree.Close()
		fx.build(t)
	}
	fx.inUse = true
	return fx.rep
}

// done checks what every input must leave true (treeMatchesStore), then
// puts the replica back as it was built if the input changed its rows.
func (fx *fixture) done(t *testing.T) {
	t.Helper()
	treeMatchesStore(t, fx.rep)
	ctx := context.Background()
	if sum, err := fx.rep.Sum(ctx); err == nil && sum == fx.sum && fx.tree.Rows() == int64(len(fx.rows)) {
		// Same multiset of rows as built (the tree matches the store, and
		// its leaves sum to the pristine sum): nothing to put back.
		fx.inUse = false
		return
	}
	// Take the store's rows out of the tree and the pristine ones back in,
	// then give the replica a fresh store of the pristine rows.
	err := fx.store.All(ctx, func(r *engine.Row) error { return fx.tree.Update(r, nil) })
	for i := 0; err == nil && i < len(fx.rows); i++ {
		err = fx.tree.Update(nil, &fx.rows[i])
	}
	if err == nil {
		err = fx.tree.Hash(ctx)
	}
	if err != nil {
		t.Fatalf("restoring the replica: %v", err)
	}
	if root, err := fx.tree.Root(); err != nil || root != fx.root || fx.tree.Rows() != int64(len(fx.rows)) {
		t.Fatalf("restored tree: root %x (%v), %d rows; built %x, %d rows", root[:4], err, fx.tree.Rows(), fx.root[:4], len(fx.rows))
	}
	fx.store = fx.loadStore(t)
	fx.rep = rowstore.NewReplica(fx.store, fx.tree)
	fx.inUse = false
}

// treeMatchesStore checks the replica's live tree is exactly a tree rebuilt
// from its rows, computed here from docs/FORMAT.md (rowDigest, lane-wise
// leaf sums, SHA-256 inner nodes) rather than by the engine: whatever
// messages arrived, tree and rows never part.
func treeMatchesStore(t *testing.T, r *rowstore.Replica) {
	t.Helper()
	tree := r.Tree()
	p, rng, depth := tree.Partitioner(), tree.Range(), tree.Depth()
	nodes := make([][32]byte, 1<<depth)
	rows := 0
	err := r.Store().All(context.Background(), func(row *engine.Row) error {
		rows++
		leaf := &nodes[rng.LeafOf(p.Token(row.Key), depth)]
		d := rowDigest(row)
		for lane := 0; lane < 32; lane += 8 {
			binary.LittleEndian.PutUint64(leaf[lane:], binary.LittleEndian.Uint64(leaf[lane:])+binary.LittleEndian.Uint64(d[lane:]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var pair [64]byte
	for n := len(nodes) / 2; n >= 1; n /= 2 {
		for i := range n {
			copy(pair[:32], nodes[2*i][:])
			copy(pair[32:], nodes[2*i+1][:])
			nodes[i] = sha256.Sum256(pair[:])
		}
	}
	got, err := tree.Root()
	if err != nil || got != nodes[0] || tree.Rows() != int64(rows) {
		t.Fatalf("live tree %x (%v, %d rows) differs from a rebuild from its %d rows %x", got[:4], err, tree.Rows(), rows, nodes[0][:4])
	}
}

// sentinel reports whether err wraps one of the protocol's sentinels.
func sentinel(err error) bool {
	return repair.Code(err) != "" || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

var fuzzSalt = make([]byte, repair.SaltBytes)

// FuzzResponderRequests opens a real session on a responder and then feeds
// it requests decoded from the fuzzer's bytes: one byte picks the call, two
// give the length of the encoded request that follows. A Hello among them
// (its parameters, sum and salt filled in where it leaves them out) opens
// another session, whole or over a subtree, which the calls after it use. The responder must
// never panic, must fail only with the protocol's sentinels, and its replica's
// tree must always equal a rebuild from its rows.
func FuzzResponderRequests(f *testing.F) {
	add := func(msgs ...proto.Message) {
		var b []byte
		for _, m := range msgs {
			enc, _ := proto.Marshal(m)
			kind := map[string]byte{"DescendRequest": 0, "ReconcileRequest": 1, "PushRequest": 2, "CommitRequest": 3, "CloseRequest": 4, "HelloRequest": 5}[string(m.ProtoReflect().Descriptor().Name())]
			b = append(b, kind, byte(len(enc)), byte(len(enc)>>8))
			b = append(b, enc...)
		}
		f.Add(b)
	}
	add(&grovev1.DescendRequest{Differ: []byte{1}, Levels: 2})
	add(&grovev1.DescendRequest{Differ: []byte{0xff}, Levels: 3}, &grovev1.ReconcileRequest{Differ: []byte{1}, Counts: []uint32{1}, Fingerprints: []byte{1, 2, 3, 4}})
	add(&grovev1.ReconcileRequest{Differ: []byte{1}}, &grovev1.PushRequest{Rows: []*grovev1.Row{{Key: []byte("k1"), Value: []byte("x"), Ts: 1 << 40}}}, &grovev1.CommitRequest{})
	add(&grovev1.CommitRequest{Rows: []*grovev1.Row{{Key: []byte("k3"), Ts: 9, Deleted: true}}})
	add(&grovev1.CloseRequest{}, &grovev1.DescendRequest{Differ: []byte{1}, Levels: 1})
	// Probes (replicaDepth 6, first band of one level): a probe to the
	// leaves, then the nodes it located named in found.
	add(&grovev1.DescendRequest{Differ: []byte{3}, Levels: 5, Sparse: true}, &grovev1.ReconcileRequest{Found: []byte{0x21, 0x01}, Counts: []uint32{1, 0}, Fingerprints: []byte{1, 2, 3, 4}})
	add(&grovev1.DescendRequest{Differ: []byte{1}, Levels: 5, Sparse: true}, &grovev1.DescendRequest{Differ: []byte{1}, Levels: 1, Found: []byte{7}})
	add(&grovev1.DescendRequest{Differ: []byte{2}, Levels: 7, Sparse: true}, &grovev1.ReconcileRequest{Found: []byte{0x7f}}, &grovev1.PushRequest{Rows: []*grovev1.Row{{Key: []byte("k7"), Value: []byte("x"), Ts: 1 << 40}}})
	// Subtree sessions (protocol 4): a half, a leaf (no band: reconciled
	// straight away), and fields naming no node or one below the depth.
	add(&grovev1.HelloRequest{Levels: 2, SubtreeLevel: 1, SubtreeIndex: 1}, &grovev1.DescendRequest{Differ: []byte{0x0f}, Levels: 1})
	add(&grovev1.HelloRequest{Levels: 1, SubtreeLevel: replicaDepth, SubtreeIndex: 40}, &grovev1.ReconcileRequest{Differ: []byte{1}, Counts: []uint32{1}, Fingerprints: []byte{1, 2, 3, 4}},
		&grovev1.PushRequest{Rows: []*grovev1.Row{{Key: []byte("k1"), Value: []byte("x"), Ts: 1 << 40}}})
	add(&grovev1.HelloRequest{Levels: 1, SubtreeLevel: 3, SubtreeIndex: 8})
	add(&grovev1.HelloRequest{Levels: 1, SubtreeLevel: replicaDepth + 1})
	add(&grovev1.HelloRequest{Levels: 3, SubtreeLevel: 2, SubtreeIndex: 2}, &grovev1.DescendRequest{Differ: []byte{1}, Levels: 3, Sparse: true}, &grovev1.ReconcileRequest{Found: []byte{5}})
	// Built once per process: the initiator's side only gives the sum its
	// Hello carries; the responder's replica is put back after each input.
	ours := newFixture(f, 60, 7, 30).sum
	theirs := newFixture(f, 60, -1, -1)
	params := &grovev1.Params{Protocol: repair.ProtocolVersion, Format: engine.FormatVersion, Partitioner: uint32(token.Murmur3{}.ID()),
		RangeLo: token.Murmur3{}.Range().Lo, RangeHi: token.Murmur3{}.Range().Hi, Depth: replicaDepth}
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		b := theirs.replica(t)
		resp := repair.NewResponder(b, repair.ResponderOptions{MaxMessageBytes: 1 << 20})
		defer resp.Shutdown()
		hello, err := resp.Hello(ctx, &grovev1.HelloRequest{Params: params, Sum: ours[:], Salt: fuzzSalt, Levels: 1})
		if err != nil || len(hello.GetSession()) == 0 {
			t.Fatalf("hello: %v", err)
		}
		id := hello.GetSession()
		for len(data) >= 3 {
			kind, n := data[0], int(data[1])|int(data[2])<<8
			data = data[3:]
			if n > len(data) {
				n = len(data)
			}
			msg := data[:n]
			data = data[n:]
			var err error
			switch kind % 6 {
			case 0:
				req := &grovev1.DescendRequest{}
				if proto.Unmarshal(msg, req) != nil {
					continue
				}
				req.Session = id
				_, err = resp.Descend(ctx, req)
			case 1:
				req := &grovev1.ReconcileRequest{}
				if proto.Unmarshal(msg, req) != nil {
					continue
				}
				req.Session = id
				_, err = resp.Reconcile(ctx, req)
			case 2:
				req := &grovev1.PushRequest{}
				if proto.Unmarshal(msg, req) != nil {
					continue
				}
				req.Session = id
				_, err = resp.Push(ctx, req)
			case 3:
				req := &grovev1.CommitRequest{}
				if proto.Unmarshal(msg, req) != nil {
					continue
				}
				req.Session = id
				_, err = resp.Commit(ctx, req)
			case 4:
				_, err = resp.Close(ctx, &grovev1.CloseRequest{Session: id})
			case 5:
				req := &grovev1.HelloRequest{}
				if proto.Unmarshal(msg, req) != nil {
					continue
				}
				if req.Params == nil {
					req.Params = proto.Clone(params).(*grovev1.Params)
				}
				if req.Sum == nil {
					req.Sum = ours[:]
				}
				if req.Salt == nil {
					req.Salt = fuzzSalt
				}
				var h *grovev1.HelloResponse
				if h, err = resp.Hello(ctx, req); err == nil && len(h.GetSession()) != 0 {
					id = h.GetSession()
				}
			}
			if err != nil && !sentinel(err) {
				t.Fatalf("call %d: error %v wraps no sentinel", kind%6, err)
			}
		}
		resp.Shutdown()
		theirs.done(t)
	})
}

// lyingPeer passes calls to a real responder and overwrites its answers
// with fields decoded from the fuzzer's bytes (proto.Merge: scalars replace,
// lists append), one chunk per answer.
type lyingPeer struct {
	*repair.Responder
	data []byte
}

func (p *lyingPeer) next() []byte {
	if len(p.data) < 2 {
		return nil
	}
	n := min(int(p.data[0])|int(p.data[1])<<8, len(p.data)-2)
	chunk := p.data[2 : 2+n]
	p.data = p.data[2+n:]
	return chunk
}

func lie[M proto.Message](p *lyingPeer, m M, err error) (M, error) {
	if err != nil {
		return m, err
	}
	if chunk := p.next(); chunk != nil {
		patch := m.ProtoReflect().New().Interface()
		if proto.Unmarshal(chunk, patch) == nil {
			proto.Merge(m, patch)
		}
	}
	return m, nil
}

func (p *lyingPeer) Hello(ctx context.Context, r *grovev1.HelloRequest) (*grovev1.HelloResponse, error) {
	m, err := p.Responder.Hello(ctx, r)
	return lie(p, m, err)
}

func (p *lyingPeer) Descend(ctx context.Context, r *grovev1.DescendRequest) (*grovev1.DescendResponse, error) {
	m, err := p.Responder.Descend(ctx, r)
	return lie(p, m, err)
}

func (p *lyingPeer) Reconcile(ctx context.Context, r *grovev1.ReconcileRequest) (*grovev1.ReconcileResponse, error) {
	m, err := p.Responder.Reconcile(ctx, r)
	return lie(p, m, err)
}

func (p *lyingPeer) Commit(ctx context.Context, r *grovev1.CommitRequest) (*grovev1.CommitResponse, error) {
	m, err := p.Responder.Commit(ctx, r)
	return lie(p, m, err)
}

// FuzzInitiatorAnswers runs sessions against a peer whose answers the
// fuzzer rewrites. The initiator must never panic, must fail only with the
// protocol's sentinels, and must never let its tree and rows part; when the
// session reports success without lies it must have found the two planted
// keys.
func FuzzInitiatorAnswers(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{4, 0, 0x22, 2, 0x10, 0x03})                // hello: band level 3
	f.Add([]byte{0, 0, 3, 0, 0x1a, 1, 0xff})                // descend: band values garbage
	f.Add([]byte{0, 0, 0, 0, 0, 0, 4, 0, 0x1a, 2, 0x0a, 0}) // reconcile: an empty row appended
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0x12, 1, 0}) // commit: a short sum
	f.Add([]byte{0, 0, 6, 0, 0x12, 4, 1, 2, 3, 4})          // probe answer: weights appended
	f.Add([]byte{0, 0, 4, 0, 0x0a, 2, 0x08, 1})             // probe answer: a band beside the weights
	// Built once per process and put back after each input that changed
	// them.
	ours, theirs := newFixture(f, 60, 7, 30), newFixture(f, 60, -1, -1)
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		a, b := ours.replica(t), theirs.replica(t)
		peer := &lyingPeer{Responder: repair.NewResponder(b, repair.ResponderOptions{MaxMessageBytes: 1 << 20}), data: slices.Clone(data)}
		defer peer.Shutdown()
		// Salts from a counter, not crypto/rand: an input then runs the
		// same way every time, so what the fuzzer finds reproduces.
		res, err := repair.Sync(ctx, a, peer, repair.Options{Repair: true, MaxMessageBytes: 1 << 20, MaxPasses: 2, Rand: &counterReader{}})
		if err != nil && !sentinel(err) {
			t.Fatalf("error %v wraps no sentinel", err)
		}
		if err == nil && len(data) == 0 && len(res.OnlyThere)+len(res.Different) != 2 {
			t.Fatalf("honest peer: %d keys, want 2", len(res.OnlyThere)+len(res.Different))
		}
		peer.Shutdown()
		ours.done(t)
		theirs.done(t)
	})
}

// counterReader reads 0, 1, 2, … (mod 256).
type counterReader struct{ n byte }

func (r *counterReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.n
		r.n++
	}
	return len(p), nil
}
