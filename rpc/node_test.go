package rpc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/antientropy/grove/engine/repair"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"
)

// fakeNodePeer answers Ranges with a differ bitmap that echoes the shared
// one, and Batch with one Close answer per call, or fails with err.
type fakeNodePeer struct{ err error }

func (f *fakeNodePeer) Ranges(_ context.Context, req *grovev1.RangesRequest) (*grovev1.RangesResponse, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &grovev1.RangesResponse{Differ: req.GetShared(), EqualSum: make([]byte, 32)}, nil
}

func (f *fakeNodePeer) Batch(_ context.Context, req *grovev1.BatchRequest) (*grovev1.BatchResponse, error) {
	if f.err != nil {
		return nil, f.err
	}
	resp := &grovev1.BatchResponse{}
	for range req.GetCalls() {
		resp.Answers = append(resp.Answers, &grovev1.RangeAnswer{Answer: &grovev1.RangeAnswer_Close{Close: &grovev1.CloseResponse{}}})
	}
	return resp, nil
}

// TestNodeService: the node session's two calls reach a NodePeer served by
// NewNodeHandler beside NewHandler on one mux, answers arrive whole, and a
// repair sentinel keeps its identity across the wire.
func TestNodeService(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		sentinel error
	}{
		{"answers", nil},
		{"incompatible", repair.ErrIncompatible},
		{"bad message", repair.ErrBadMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.Handle(NewHandler(&fakePeer{}, HandlerOptions{}))
			peer := &fakeNodePeer{}
			if tc.sentinel != nil {
				peer.err = fmt.Errorf("%w: as the test says", tc.sentinel)
			}
			mux.Handle(NewNodeHandler(peer, HandlerOptions{}))
			url, _ := serve(t, mux, nil)
			c := newClient(t, url, ClientOptions{})
			ranges, err := c.Ranges(ctx, &grovev1.RangesRequest{Shared: []byte{0x05}})
			if tc.sentinel != nil {
				if !errors.Is(err, tc.sentinel) {
					t.Fatalf("Ranges: %v, want %v", err, tc.sentinel)
				}
				return
			}
			if err != nil || string(ranges.GetDiffer()) != "\x05" {
				t.Fatalf("Ranges: %v, %v", ranges, err)
			}
			batch, err := c.Batch(ctx, &grovev1.BatchRequest{Calls: make([]*grovev1.RangeCall, 3)})
			if err != nil || len(batch.GetAnswers()) != 3 || batch.GetAnswers()[2].GetClose() == nil {
				t.Fatalf("Batch: %v, %v", batch, err)
			}
			// The per-range service answers on the same port.
			if _, err := c.Hello(ctx, &grovev1.HelloRequest{}); err != nil {
				t.Fatalf("Hello beside the node service: %v", err)
			}
		})
	}
}
