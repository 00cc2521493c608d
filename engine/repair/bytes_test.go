package repair_test

import (
	"context"
	"testing"
	"time"

	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/metrics"
)

// TestBytesCountedOnce runs a repair over the network and reads its message
// bytes from the places that report them: the session's Stats, the
// initiator's metrics and the responder's metrics (the rpc client counts
// only calls and wire bytes, which must exceed the messages).
// Each message is one figure (repair.MessageBytes): a message counted twice
// anywhere, or sized differently by two counters, breaks the equalities.
func TestBytesCountedOnce(t *testing.T) {
	a, b := pair(t)
	mi, mr := metrics.New(), metrics.New()
	url, _ := serve(t, repair.NewResponder(b, repair.ResponderOptions{Metrics: mr}), 0)
	c := client(t, url, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := repair.Sync(ctx, a, c, repair.Options{Repair: true, Metrics: mi})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Converged || res.PeerApplied == 0 || res.Applied == 0 {
		t.Fatalf("converged %v, %d applied there, %d here: want rows moved both ways", res.Converged, res.PeerApplied, res.Applied)
	}
	sent, received, trips := res.BytesSent, res.BytesReceived, int64(res.RoundTrips)
	if sent == 0 || received == 0 {
		t.Fatalf("Stats counted %d bytes sent, %d received", sent, received)
	}
	wire := c.Stats()
	if wire.WireBytesWritten <= sent || wire.WireBytesRead <= received || wire.Calls != trips || wire.Failures != 0 {
		t.Errorf("rpc.Stats %+v; the session counted %d sent, %d received in %d round trips", wire, sent, received, trips)
	}
	if got, want := mi.Values().Initiator, (metrics.Sessions{Started: 1, BytesSent: sent, BytesReceived: received, RoundTrips: trips}); got != want {
		t.Errorf("initiator metrics %+v, want %+v", got, want)
	}
	if got, want := mr.Values().Responder, (metrics.Sessions{Started: 1, BytesSent: received, BytesReceived: sent, RoundTrips: trips}); got != want {
		t.Errorf("responder metrics %+v, want %+v", got, want)
	}
}
