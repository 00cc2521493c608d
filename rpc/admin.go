package rpc

import (
	"context"
	"net/http"
	"time"

	"connectrpc.com/connect"

	grovev1 "github.com/antientropy/grove/proto/grove/v1"
	"github.com/antientropy/grove/proto/grove/v1/grovev1connect"
)

// This file is AdminService: the operator's calls to a running node, such
// as asking it to repair itself or to scrub its rows.

// RepairRequest is what an operator asks of a node's repair run; zero
// fields take the node's defaults.
type RepairRequest struct {
	PeersParallel int
	RangeTimeout  time.Duration
	Attempts      int
	// StreamRate bounds each peer's repair traffic in bytes a second; zero
	// is unlimited.
	StreamRate float64
}

// ScrubRequest is what an operator asks of a node's scrub pass.
type ScrubRequest struct {
	// Rate bounds the pass's reads in bytes a second; zero is unlimited
	// (within the node's own scan rate).
	Rate float64
}

// Admin is a node as AdminService serves it.
type Admin interface {
	// Repair runs a repair of the node's ranges and returns its report,
	// encoded as JSON.
	Repair(ctx context.Context, req RepairRequest) ([]byte, error)
	// Scrub runs one scrub pass over the node's ranges and returns its
	// report, encoded as JSON.
	Scrub(ctx context.Context, req ScrubRequest) ([]byte, error)
}

// DefaultAdminCallTimeout bounds an admin call on the serving side: a
// repair of a whole node takes as long as it takes, within reason.
const DefaultAdminCallTimeout = 24 * time.Hour

// NewAdminHandler serves admin as grove's AdminService, each call bounded
// by timeout (DefaultAdminCallTimeout if zero or less). Mount it beside
// NewHandler's repair service.
func NewAdminHandler(admin Admin, timeout time.Duration) (path string, h http.Handler) {
	if timeout <= 0 {
		timeout = DefaultAdminCallTimeout
	}
	return grovev1connect.NewAdminServiceHandler(&adminService{admin: admin}, connect.WithInterceptors(deadline(timeout)))
}

type adminService struct{ admin Admin }

var _ grovev1connect.AdminServiceHandler = (*adminService)(nil)

// Repair implements grovev1connect.AdminServiceHandler.
func (s *adminService) Repair(ctx context.Context, req *connect.Request[grovev1.AdminRepairRequest]) (*connect.Response[grovev1.AdminRepairResponse], error) {
	m := req.Msg
	report, err := s.admin.Repair(ctx, RepairRequest{
		PeersParallel: int(m.GetPeersParallel()),
		RangeTimeout:  time.Duration(min(m.GetRangeTimeoutMs(), uint64(time.Duration(1<<62)/time.Millisecond))) * time.Millisecond,
		Attempts:      int(m.GetAttempts()),
		StreamRate:    max(0, m.GetStreamRate()),
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&grovev1.AdminRepairResponse{Report: report}), nil
}

// Scrub implements grovev1connect.AdminServiceHandler.
func (s *adminService) Scrub(ctx context.Context, req *connect.Request[grovev1.AdminScrubRequest]) (*connect.Response[grovev1.AdminScrubResponse], error) {
	report, err := s.admin.Scrub(ctx, ScrubRequest{Rate: max(0, req.Msg.GetRate())})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&grovev1.AdminScrubResponse{Report: report}), nil
}

// AdminClient makes a node's operator calls.
type AdminClient struct {
	c   *Client
	rpc grovev1connect.AdminServiceClient
}

// NewAdminClient returns an AdminClient for the node at baseURL, with the
// options and checks of NewClient; opts.CallTimeout bounds a whole repair
// run, so give it one long enough.
func NewAdminClient(baseURL string, opts ClientOptions) (*AdminClient, error) {
	c, copts, err := newServiceClient(baseURL, opts)
	if err != nil {
		return nil, err
	}
	return &AdminClient{c: c, rpc: grovev1connect.NewAdminServiceClient(c.http, c.peer, copts...)}, nil
}

// Repair asks the node to repair itself and returns the run's report, as
// JSON.
func (a *AdminClient) Repair(ctx context.Context, req RepairRequest) ([]byte, error) {
	res, err := call(ctx, a.c, &grovev1.AdminRepairRequest{
		PeersParallel:  uint32(max(0, req.PeersParallel)),
		RangeTimeoutMs: uint64(max(0, req.RangeTimeout.Milliseconds())),
		Attempts:       uint32(max(0, req.Attempts)),
		StreamRate:     max(0, req.StreamRate),
	}, a.rpc.Repair)
	return res.GetReport(), err
}

// Scrub asks the node for one scrub pass and returns its report, as JSON.
func (a *AdminClient) Scrub(ctx context.Context, req ScrubRequest) ([]byte, error) {
	res, err := call(ctx, a.c, &grovev1.AdminScrubRequest{Rate: max(0, req.Rate)}, a.rpc.Scrub)
	return res.GetReport(), err
}

// CloseIdle closes the client's idle connections.
func (a *AdminClient) CloseIdle() { a.c.CloseIdle() }
