package fuzz

import (
	"context"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/engine/rowstore"
	"github.com/antientropy/grove/engine/token"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"
)

// nodeRanges are the four quarters of the Murmur3 ring: the ranges of the
// node responder the node-session target feeds.
func nodeRanges() []token.Range {
	full := token.Murmur3{}.Range()
	return []token.Range{full.Leaf(0, 2), full.Leaf(1, 2), full.Leaf(2, 2), full.Leaf(3, 2)}
}

// nodeReplicas builds a replica per quarter from the fixture's rows.
func nodeReplicas(t *testing.T, n int) []repair.Replica {
	t.Helper()
	ctx := context.Background()
	var out []repair.Replica
	for _, r := range nodeRanges() {
		st := rowstore.New(token.Murmur3{})
		var in []engine.Row
		for _, row := range replicaRows(n, -1, -1) {
			if r.Contains(token.Murmur3{}.Token(row.Key)) {
				in = append(in, row)
			}
		}
		if _, err := st.Apply(ctx, in, nil); err != nil {
			t.Fatal(err)
		}
		tree, err := rowstore.BuildTree(ctx, st, engine.Options{Range: r, Depth: 4, Budget: arena.NewBudget(1 << 20), NoHugePages: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tree.Close() })
		out = append(out, rowstore.NewReplica(st, tree))
	}
	return out
}

// FuzzNodeResponderRequests feeds a node responder Ranges and Batch
// requests decoded from the fuzzer's bytes (one byte picks the call, two
// give the length of the encoded request that follows). It must never
// panic, must fail only with the protocol's sentinels, and must answer a
// batch with one answer per call.
func FuzzNodeResponderRequests(f *testing.F) {
	add := func(msgs ...proto.Message) {
		var b []byte
		for _, m := range msgs {
			enc, _ := proto.Marshal(m)
			kind := byte(0)
			if _, ok := m.(*grovev1.BatchRequest); ok {
				kind = 1
			}
			b = append(b, kind, byte(len(enc)), byte(len(enc)>>8))
			b = append(b, enc...)
		}
		f.Add(b)
	}
	hash := repair.RangesHash(token.Murmur3{}, nodeRanges())
	ranges := &grovev1.RangesRequest{Protocol: repair.ProtocolVersion, Format: engine.FormatVersion, Partitioner: uint32(token.Murmur3{}.ID()),
		Count: 4, RangesHash: hash[:], Shared: []byte{0x0f}, Salt: fuzzSalt, Fingerprints: make([]byte, 16)}
	hello := &grovev1.HelloRequest{Params: &grovev1.Params{Protocol: repair.ProtocolVersion, Format: engine.FormatVersion,
		Partitioner: uint32(token.Murmur3{}.ID()), RangeLo: nodeRanges()[1].Lo, RangeHi: nodeRanges()[1].Hi, Depth: 4},
		Sum: make([]byte, 32), Salt: fuzzSalt, Levels: 2}
	add(ranges)
	add(ranges, &grovev1.BatchRequest{Calls: []*grovev1.RangeCall{{Range: 1, Call: &grovev1.RangeCall_Hello{Hello: hello}}}})
	add(&grovev1.BatchRequest{Calls: []*grovev1.RangeCall{
		{Range: 1, Call: &grovev1.RangeCall_Hello{Hello: hello}},
		{Range: 1, Call: &grovev1.RangeCall_Descend{Descend: &grovev1.DescendRequest{Differ: []byte{1}, Levels: 1}}},
		{Range: 9, Call: &grovev1.RangeCall_Close{Close: &grovev1.CloseRequest{}}},
	}})
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		resp, err := repair.NewNodeResponder(nodeReplicas(t, 60), repair.ResponderOptions{MaxMessageBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Shutdown()
		for len(data) >= 3 {
			kind, n := data[0], min(int(data[1])|int(data[2])<<8, len(data)-3)
			msg := data[3 : 3+n]
			data = data[3+n:]
			if kind%2 == 0 {
				req := &grovev1.RangesRequest{}
				if proto.Unmarshal(msg, req) != nil {
					continue
				}
				if _, err := resp.Ranges(ctx, req); err != nil && !sentinel(err) {
					t.Fatalf("Ranges: error %v wraps no sentinel", err)
				}
				continue
			}
			req := &grovev1.BatchRequest{}
			if proto.Unmarshal(msg, req) != nil {
				continue
			}
			out, err := resp.Batch(ctx, req)
			switch {
			case err != nil && !sentinel(err):
				t.Fatalf("Batch: error %v wraps no sentinel", err)
			case err == nil && len(out.GetAnswers()) != len(req.GetCalls()):
				t.Fatalf("Batch of %d calls: %d answers", len(req.GetCalls()), len(out.GetAnswers()))
			}
		}
	})
}
