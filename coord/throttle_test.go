package coord

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/antientropy/grove/engine/repair"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"
)

// bigPeer answers every batch with a row of valueBytes bytes.
type bigPeer struct{ valueBytes int }

func (p bigPeer) Ranges(context.Context, *grovev1.RangesRequest) (*grovev1.RangesResponse, error) {
	return &grovev1.RangesResponse{}, nil
}

func (p bigPeer) Batch(context.Context, *grovev1.BatchRequest) (*grovev1.BatchResponse, error) {
	row := &grovev1.Row{Key: []byte("k"), Value: make([]byte, p.valueBytes)}
	return &grovev1.BatchResponse{Answers: []*grovev1.RangeAnswer{{Answer: &grovev1.RangeAnswer_Reconcile{
		Reconcile: &grovev1.ReconcileResponse{Rows: []*grovev1.Row{row}}}}}}, nil
}

// TestThrottle: a throttled peer's calls take at least the time their bytes
// take at the rate (a lower bound only: the machine may be slower), a
// stopped context ends the wait, and a rate of zero throttles nothing.
func TestThrottle(t *testing.T) {
	ctx := context.Background()
	const rate = 4 << 20 // bytes a second
	peer := Throttle(bigPeer{valueBytes: 1 << 20}, rate)
	start := time.Now()
	var moved int64
	for range 9 {
		req := &grovev1.BatchRequest{}
		resp, err := peer.Batch(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		moved += repair.MessageBytes(req) + repair.MessageBytes(resp)
	}
	// The bucket starts full (1 MiB here, the least it holds); the last
	// call's bytes are paid by the next call, which never comes.
	paid := moved - (1 << 20) - (1 << 20)
	if took, least := time.Since(start), time.Duration(float64(paid)/rate*float64(time.Second)); took < least {
		t.Fatalf("%d bytes in %v at %d B/s; want at least %v", moved, took, rate, least)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := peer.Batch(cctx, &grovev1.BatchRequest{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("a call whose context ended while it waited: %v, want context.Canceled", err)
	}
	if p := (bigPeer{}); Throttle(p, 0) != repair.NodePeer(p) {
		t.Fatal("a rate of zero wrapped the peer")
	}
}
