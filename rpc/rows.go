package rpc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"connectrpc.com/connect"

	"github.com/antientropy/grove/engine"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"
	"github.com/antientropy/grove/proto/grove/v1/grovev1connect"
)

// This file is RowService: a node's rows written and read over the network,
// as a database's coordinator would — what lets a test drive a cluster of
// nodes through their write paths. It shares a node's port with the repair
// service.

// RowStore is a node's rows as NewRowHandler serves them.
type RowStore interface {
	// Apply writes rows as one atomic batch, after which each key holds
	// whichever version wins by engine.Supersedes, and returns how many
	// rows it wrote: a store that reads before it writes counts only those
	// that won over the stored version, a store that writes blind (as
	// grovepebble's node does, leaving versions to its merge operator)
	// counts every key.
	Apply(ctx context.Context, rows []engine.Row) (int, error)
	// Get returns the stored version of key, tombstone included, and
	// whether there is one.
	Get(ctx context.Context, key []byte) (engine.Row, bool, error)
}

// ErrRefused means a node refused a row it cannot store: a key over
// engine.MaxKeyBytes, or a token in none of its ranges. A RowStore wraps it
// into the errors of rows it refuses, so that the client learns the row,
// not the node, was at fault; nothing of the call was written.
var ErrRefused = errors.New("rpc: row refused")

// refusedCode names ErrRefused in the ErrorHeader metadata.
const refusedCode = "row-refused"

// NewRowHandler serves store as grove's RowService. Mount it on the same mux
// as NewHandler's repair service.
func NewRowHandler(store RowStore, opts HandlerOptions) (path string, h http.Handler) {
	limit, timeout := opts.limits()
	return grovev1connect.NewRowServiceHandler(
		&rowService{store: store},
		connect.WithReadMaxBytes(limit),
		connect.WithSendMaxBytes(limit),
		connect.WithInterceptors(deadline(timeout)),
	)
}

// limits returns the options' message limit and call timeout, defaults
// filled in.
func (o HandlerOptions) limits() (int, time.Duration) {
	limit, timeout := o.MaxMessageBytes, o.CallTimeout
	if limit <= 0 {
		limit = DefaultMaxMessageBytes
	}
	if timeout <= 0 {
		timeout = DefaultHandlerCallTimeout
	}
	return limit, timeout
}

// deadline bounds every call of a handler by timeout, on top of the
// client's own deadline.
func deadline(timeout time.Duration) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			res, err := next(ctx, req)
			if err != nil {
				return nil, rowError(err)
			}
			return res, nil
		}
	}
}

// rowError is toConnectError, with ErrRefused as InvalidArgument under its
// own code.
func rowError(err error) error {
	if !errors.Is(err, ErrRefused) {
		return toConnectError(err)
	}
	out := connect.NewError(connect.CodeInvalidArgument, err)
	out.Meta().Set(ErrorHeader, refusedCode)
	return out
}

type rowService struct {
	store RowStore
}

var _ grovev1connect.RowServiceHandler = (*rowService)(nil)

// rowFrom checks and converts a row from the wire; i numbers it in errors.
func rowFrom(key, value []byte, ts int64, deleted bool, i int) (engine.Row, error) {
	if len(key) > engine.MaxKeyBytes {
		return engine.Row{}, fmt.Errorf("%w: row %d: key of %d bytes, over the limit of %d", ErrRefused, i, len(key), engine.MaxKeyBytes)
	}
	return engine.Row{Key: key, Value: value, TS: ts, Deleted: deleted}, nil
}

// write writes one row, reporting whether it won.
func (s *rowService) write(ctx context.Context, key, value []byte, ts int64, deleted bool) (bool, error) {
	row, err := rowFrom(key, value, ts, deleted, 1)
	if err != nil {
		return false, err
	}
	n, err := s.store.Apply(ctx, []engine.Row{row})
	return n == 1, err
}

// Put implements grovev1connect.RowServiceHandler.
func (s *rowService) Put(ctx context.Context, req *connect.Request[grovev1.PutRequest]) (*connect.Response[grovev1.PutResponse], error) {
	m := req.Msg
	ok, err := s.write(ctx, m.GetKey(), m.GetValue(), m.GetTs(), false)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&grovev1.PutResponse{Written: ok}), nil
}

// Delete implements grovev1connect.RowServiceHandler.
func (s *rowService) Delete(ctx context.Context, req *connect.Request[grovev1.DeleteRequest]) (*connect.Response[grovev1.DeleteResponse], error) {
	m := req.Msg
	ok, err := s.write(ctx, m.GetKey(), nil, m.GetTs(), true)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&grovev1.DeleteResponse{Written: ok}), nil
}

// Apply implements grovev1connect.RowServiceHandler.
func (s *rowService) Apply(ctx context.Context, req *connect.Request[grovev1.ApplyRequest]) (*connect.Response[grovev1.ApplyResponse], error) {
	rows := make([]engine.Row, len(req.Msg.GetRows()))
	for i, m := range req.Msg.GetRows() {
		r, err := rowFrom(m.GetKey(), m.GetValue(), m.GetTs(), m.GetDeleted(), i+1)
		if err != nil {
			return nil, err
		}
		rows[i] = r
	}
	n, err := s.store.Apply(ctx, rows)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&grovev1.ApplyResponse{Written: uint32(n)}), nil
}

// Get implements grovev1connect.RowServiceHandler.
func (s *rowService) Get(ctx context.Context, req *connect.Request[grovev1.GetRequest]) (*connect.Response[grovev1.GetResponse], error) {
	if len(req.Msg.GetKey()) > engine.MaxKeyBytes {
		return nil, fmt.Errorf("%w: key of %d bytes, over the limit of %d", ErrRefused, len(req.Msg.GetKey()), engine.MaxKeyBytes)
	}
	r, found, err := s.store.Get(ctx, req.Msg.GetKey())
	if err != nil {
		return nil, err
	}
	out := &grovev1.GetResponse{Found: found}
	if found {
		out.Row = &grovev1.Row{Key: r.Key, Value: r.Value, Ts: r.TS, Deleted: r.Deleted}
	}
	return connect.NewResponse(out), nil
}

// RowClient writes and reads a node's rows through its RowService. It is
// safe for concurrent use.
type RowClient struct {
	c   *Client
	rpc grovev1connect.RowServiceClient
}

// NewRowClient returns a RowClient for the node at baseURL, with the
// options and checks of NewClient.
func NewRowClient(baseURL string, opts ClientOptions) (*RowClient, error) {
	c, copts, err := newServiceClient(baseURL, opts)
	if err != nil {
		return nil, err
	}
	return &RowClient{c: c, rpc: grovev1connect.NewRowServiceClient(c.http, c.peer, copts...)}, nil
}

// newServiceClient returns a Client for baseURL, whose connections, counts
// and error mapping a client of another of grove's services shares, and
// the connect options that service's client takes.
func newServiceClient(baseURL string, opts ClientOptions) (*Client, []connect.ClientOption, error) {
	c, err := NewClient(baseURL, opts)
	if err != nil {
		return nil, nil, err
	}
	limit := opts.MaxMessageBytes
	if limit == 0 {
		limit = DefaultMaxMessageBytes
	}
	return c, []connect.ClientOption{connect.WithGRPC(), connect.WithReadMaxBytes(limit), connect.WithSendMaxBytes(limit)}, nil
}

// rowCall is call, with the node's ErrRefused restored.
func rowCall[Req, Res any](ctx context.Context, rc *RowClient, req *Req, fn func(context.Context, *connect.Request[Req]) (*connect.Response[Res], error)) (*Res, error) {
	res, err := call(ctx, rc.c, req, fn)
	var ce *connect.Error
	if err != nil && errors.As(err, &ce) && connect.IsWireError(ce) && ce.Meta().Get(ErrorHeader) == refusedCode {
		return nil, &remoteError{sentinel: ErrRefused, peer: rc.c.peer, detail: describe(ErrRefused, ce, false), cause: ce}
	}
	return res, err
}

// Put writes a live row; it reports false when the store skipped it
// because the stored version won (a store that writes blind never does:
// see RowStore).
func (rc *RowClient) Put(ctx context.Context, key, value []byte, ts int64) (bool, error) {
	res, err := rowCall(ctx, rc, &grovev1.PutRequest{Key: key, Value: value, Ts: ts}, rc.rpc.Put)
	return res.GetWritten(), err
}

// Delete writes a tombstone; it reports false as Put does.
func (rc *RowClient) Delete(ctx context.Context, key []byte, ts int64) (bool, error) {
	res, err := rowCall(ctx, rc, &grovev1.DeleteRequest{Key: key, Ts: ts}, rc.rpc.Delete)
	return res.GetWritten(), err
}

// Apply writes rows as one atomic batch and returns how many the store
// wrote (RowStore.Apply).
func (rc *RowClient) Apply(ctx context.Context, rows []engine.Row) (int, error) {
	req := &grovev1.ApplyRequest{Rows: make([]*grovev1.Row, len(rows))}
	for i, r := range rows {
		req.Rows[i] = &grovev1.Row{Key: r.Key, Value: r.Value, Ts: r.TS, Deleted: r.Deleted}
	}
	res, err := rowCall(ctx, rc, req, rc.rpc.Apply)
	return int(res.GetWritten()), err
}

// Get reads the stored version of key and whether there is one.
func (rc *RowClient) Get(ctx context.Context, key []byte) (engine.Row, bool, error) {
	res, err := rowCall(ctx, rc, &grovev1.GetRequest{Key: key}, rc.rpc.Get)
	if err != nil || !res.GetFound() {
		return engine.Row{}, false, err
	}
	r := res.GetRow()
	return engine.Row{Key: r.GetKey(), Value: r.GetValue(), TS: r.GetTs(), Deleted: r.GetDeleted()}, true, nil
}

// Stats returns the client's traffic counters.
func (rc *RowClient) Stats() Stats { return rc.c.Stats() }

// CloseIdle closes the client's idle connections.
func (rc *RowClient) CloseIdle() { rc.c.CloseIdle() }
