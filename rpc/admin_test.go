package rpc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/antientropy/grove/engine/repair"
)

// fakeAdmin answers Repair with the request it got, or fails.
type fakeAdmin struct{ err error }

func (f fakeAdmin) Repair(_ context.Context, req RepairRequest) ([]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	return fmt.Appendf(nil, `{"peers_parallel": %d, "range_timeout": %q, "attempts": %d}`, req.PeersParallel, req.RangeTimeout, req.Attempts), nil
}

func (f fakeAdmin) Scrub(_ context.Context, req ScrubRequest) ([]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	return fmt.Appendf(nil, `{"rate": %v}`, req.Rate), nil
}

// TestAdminScrub: the scrub's rate reaches the node as sent (a negative
// one as 0), its report comes back whole, and its errors keep their
// sentinel.
func TestAdminScrub(t *testing.T) {
	ac := adminClient(t, fakeAdmin{})
	for _, tc := range []struct {
		rate float64
		want string
	}{{0, `{"rate": 0}`}, {5e6, `{"rate": 5e+06}`}, {-1, `{"rate": 0}`}} {
		got, err := ac.Scrub(context.Background(), ScrubRequest{Rate: tc.rate})
		if err != nil || string(got) != tc.want {
			t.Fatalf("Scrub(%v) = %s, %v; want %s", tc.rate, got, err, tc.want)
		}
	}
	bc := adminClient(t, fakeAdmin{err: fmt.Errorf("a pass is going: %w", repair.ErrBusy)})
	if _, err := bc.Scrub(context.Background(), ScrubRequest{}); !errors.Is(err, repair.ErrBusy) {
		t.Fatalf("a busy node: %v, want repair.ErrBusy", err)
	}
}

// TestAdminRepair: the request's fields reach the node as sent, its report
// comes back whole, and its errors keep their repair sentinel.
func TestAdminRepair(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  RepairRequest
		want string
	}{
		{"defaults", RepairRequest{}, `{"peers_parallel": 0, "range_timeout": "0s", "attempts": 0}`},
		{"set", RepairRequest{PeersParallel: 3, RangeTimeout: 90 * time.Second, Attempts: 5}, `{"peers_parallel": 3, "range_timeout": "1m30s", "attempts": 5}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := adminClient(t, fakeAdmin{}).Repair(context.Background(), tc.req)
			if err != nil || string(got) != tc.want {
				t.Fatalf("Repair = %s, %v; want %s", got, err, tc.want)
			}
		})
	}
	ac := adminClient(t, fakeAdmin{err: fmt.Errorf("a run is going: %w", repair.ErrBusy)})
	if _, err := ac.Repair(context.Background(), RepairRequest{}); !errors.Is(err, repair.ErrBusy) {
		t.Fatalf("a busy node: %v, want repair.ErrBusy", err)
	}
}

// adminClient serves admin's AdminService on loopback for the test and
// returns a client of it.
func adminClient(t *testing.T, admin Admin) *AdminClient {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(NewAdminHandler(admin, 0))
	url, _ := serve(t, mux, nil)
	ac, err := NewAdminClient(url, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ac.CloseIdle)
	return ac
}
