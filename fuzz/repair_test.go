package fuzz

import (
	"context"
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

// smallReplica builds a replica of n rows; skip drops one of them and tweak
// changes another, so two replicas built with different arguments differ.
func smallReplica(t *testing.T, n, skip, tweak int) *repair.StoreReplica {
	ctx := context.Background()
	var rows rowSlice
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
	st, err := rowstore.Load(ctx, token.Murmur3{}, &rows)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := repair.BuildTree(ctx, st, engine.Options{Depth: 6, Budget: arena.NewBudget(1 << 24)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tree.Close() })
	return repair.NewStoreReplica(st, tree)
}

// treeMatchesStore checks the replica's live tree is exactly a tree rebuilt
// from its rows: whatever messages arrived, tree and rows never part.
func treeMatchesStore(t *testing.T, r *repair.StoreReplica) {
	t.Helper()
	ctx := context.Background()
	fresh, err := repair.BuildTree(ctx, r.Store(), engine.Options{Depth: r.Tree().Depth(), Budget: arena.NewBudget(1 << 24)})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	a, err1 := r.Tree().Root()
	b, err2 := fresh.Root()
	if err1 != nil || err2 != nil || a != b {
		t.Fatalf("live tree %x (%v) differs from a rebuild %x (%v)", a[:4], err1, b[:4], err2)
	}
}

// sentinel reports whether err wraps one of the protocol's sentinels.
func sentinel(err error) bool {
	return repair.Code(err) != "" || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

var fuzzSalt = make([]byte, repair.SaltBytes)

// FuzzResponderRequests opens a real session on a responder and then feeds
// it requests decoded from the fuzzer's bytes: one byte picks the call, two
// give the length of the encoded request that follows. The responder must
// never panic, must fail only with the protocol's sentinels, and its replica's
// tree must always equal a rebuild from its rows.
func FuzzResponderRequests(f *testing.F) {
	add := func(msgs ...proto.Message) {
		var b []byte
		for _, m := range msgs {
			enc, _ := proto.Marshal(m)
			kind := map[string]byte{"DescendRequest": 0, "ReconcileRequest": 1, "PushRequest": 2, "CommitRequest": 3, "CloseRequest": 4}[string(m.ProtoReflect().Descriptor().Name())]
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
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		a, b := smallReplica(t, 60, 7, 30), smallReplica(t, 60, -1, -1)
		resp := repair.NewResponder(b, repair.ResponderOptions{MaxMessageBytes: 1 << 20})
		defer resp.Shutdown()
		sum, _ := a.Sum(ctx)
		hello, err := resp.Hello(ctx, &grovev1.HelloRequest{
			Params: &grovev1.Params{Protocol: repair.ProtocolVersion, Format: engine.FormatVersion, Partitioner: uint32(token.Murmur3{}.ID()),
				RangeLo: token.Murmur3{}.Range().Lo, RangeHi: token.Murmur3{}.Range().Hi, Depth: 6},
			Sum: sum[:], Salt: fuzzSalt, Levels: 1,
		})
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
			switch kind % 5 {
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
			}
			if err != nil && !sentinel(err) {
				t.Fatalf("call %d: error %v wraps no sentinel", kind%5, err)
			}
		}
		treeMatchesStore(t, b)
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
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		a, b := smallReplica(t, 60, 7, 30), smallReplica(t, 60, -1, -1)
		peer := &lyingPeer{Responder: repair.NewResponder(b, repair.ResponderOptions{MaxMessageBytes: 1 << 20}), data: slices.Clone(data)}
		defer peer.Shutdown()
		res, err := repair.Sync(ctx, a, peer, repair.Options{Repair: true, MaxMessageBytes: 1 << 20, MaxPasses: 2})
		if err != nil && !sentinel(err) {
			t.Fatalf("error %v wraps no sentinel", err)
		}
		if err == nil && len(data) == 0 && len(res.OnlyThere)+len(res.Different) != 2 {
			t.Fatalf("honest peer: %d keys, want 2", len(res.OnlyThere)+len(res.Different))
		}
		treeMatchesStore(t, a)
		treeMatchesStore(t, b)
	})
}
