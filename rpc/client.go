package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/antientropy/grove/engine/repair"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"
	"github.com/antientropy/grove/proto/grove/v1/grovev1connect"
)

// DefaultCallTimeout bounds each client call when ClientOptions.CallTimeout
// is zero.
const DefaultCallTimeout = 30 * time.Second

// Transport timeouts of the client built by NewClient. They bound the phases
// of a connection that CallTimeout cannot see on its own: a connection that
// dies between calls is found by pings instead of by the next call hanging.
const (
	dialTimeout         = 10 * time.Second
	tlsHandshakeTimeout = 10 * time.Second
	idleConnTimeout     = 90 * time.Second
	pingAfterSilence    = 30 * time.Second
	pingTimeout         = 15 * time.Second
	writeByteTimeout    = 30 * time.Second
)

// ClientOptions tune NewClient. The zero value suits an http:// peer.
type ClientOptions struct {
	// TLS configures https:// peers and must be nil for http:// ones, so a
	// certificate is never configured and then silently not used. See
	// ClientTLS. An https peer without it is verified against the system's
	// roots, as curl does, and sent no client certificate.
	TLS *tls.Config
	// MaxMessageBytes is the largest request the client sends and the
	// largest response it reads. Zero means DefaultMaxMessageBytes.
	MaxMessageBytes int
	// CallTimeout bounds every call: it runs until the earlier of the
	// caller's deadline and now+CallTimeout. The deadline travels to the
	// peer too, which stops working on the call when it passes. Zero means
	// DefaultCallTimeout.
	CallTimeout time.Duration
	// HTTPClient, if set, replaces the HTTP client NewClient would build
	// (tests, proxies, custom dialers). It must speak HTTP/2 to the peer.
	// TLS must then be nil, and Stats reports no wire bytes.
	HTTPClient *http.Client
}

// Stats counts a Client's traffic since NewClient: calls, and bytes on the
// wire. The protocol's own message bytes are counted once, by the session
// (repair.Stats); the wire bytes less those are the cost of HTTP/2 framing,
// headers, gRPC envelopes and TLS.
type Stats struct {
	// Calls is how many calls were started, Failures how many returned an
	// error.
	Calls, Failures int64
	// WireBytesWritten and WireBytesRead count bytes on the client's TCP
	// connections, handshakes included. Zero with ClientOptions.HTTPClient.
	WireBytesWritten, WireBytesRead int64
}

// Client is a repair.Peer on the far side of a network: each method is one
// unary gRPC call to a handler from NewHandler. It is safe for concurrent
// use; calls share HTTP/2 connections.
type Client struct {
	peer    string
	timeout time.Duration
	rpc     grovev1connect.RepairServiceClient
	node    grovev1connect.NodeServiceClient
	http    *http.Client

	calls, failures atomic.Int64
	wire            *wireCounter
	// certAsked records that a peer asked for a client certificate this
	// client does not have. The peer's refusal then often reaches the
	// client as a broken pipe rather than TLS's "certificate required"
	// alert, so failures say what is missing themselves.
	certAsked atomic.Bool
}

var _ repair.Peer = (*Client)(nil)

// NewClient returns a Client for the peer at baseURL, such as
// "http://10.0.0.7:7420" (HTTP/2 without TLS, with prior knowledge) or
// "https://node7:7420" (HTTP/2 over TLS). A path in
// baseURL is kept as a prefix, for handlers mounted under one. NewClient
// does not connect; the first call does.
func NewClient(baseURL string, opts ClientOptions) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("%w: peer URL %q: %v", ErrConfig, baseURL, err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w: peer URL %q has no host", ErrConfig, baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%w: peer URL %q: only scheme, host and path are allowed", ErrConfig, baseURL)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%w: peer URL %q: scheme must be http or https", ErrConfig, baseURL)
	case opts.HTTPClient != nil && opts.TLS != nil:
		return nil, fmt.Errorf("%w: peer %s: TLS would be ignored beside HTTPClient; configure TLS in the HTTPClient", ErrConfig, baseURL)
	case opts.HTTPClient == nil && u.Scheme == "http" && opts.TLS != nil:
		return nil, fmt.Errorf("%w: peer %s: TLS is set but the URL is http; use https", ErrConfig, baseURL)
	case opts.MaxMessageBytes < 0:
		return nil, fmt.Errorf("%w: peer %s: MaxMessageBytes %d is negative", ErrConfig, baseURL, opts.MaxMessageBytes)
	case opts.CallTimeout < 0:
		return nil, fmt.Errorf("%w: peer %s: CallTimeout %v is negative", ErrConfig, baseURL, opts.CallTimeout)
	}
	limit := opts.MaxMessageBytes
	if limit == 0 {
		limit = DefaultMaxMessageBytes
	}
	timeout := opts.CallTimeout
	if timeout == 0 {
		timeout = DefaultCallTimeout
	}
	base := strings.TrimRight(baseURL, "/")
	c := &Client{peer: base, timeout: timeout, http: opts.HTTPClient}
	if c.http == nil {
		c.wire = new(wireCounter)
		cfg := opts.TLS
		if u.Scheme == "https" {
			cfg = c.watchCertRequests(cfg)
		}
		c.http = &http.Client{Transport: newTransport(u.Scheme == "https", cfg, c.wire)}
	}
	copts := []connect.ClientOption{
		// The gRPC protocol rather than Connect's own: any gRPC client or
		// tool (grpcurl, a Java node) can then talk to a grove handler and
		// a grove client to a gRPC server, and gRPC's grpc-timeout header
		// carries our deadline to the peer.
		connect.WithGRPC(),
		connect.WithReadMaxBytes(limit),
		connect.WithSendMaxBytes(limit),
		// No compression: the protocol's payloads are mostly hashes and
		// fingerprints, which gzip cannot shrink but would spend CPU on,
		// and byte counts stay those of the protocol itself.
		connect.WithAcceptCompression("gzip", nil, nil),
	}
	c.rpc = grovev1connect.NewRepairServiceClient(c.http, base, copts...)
	c.node = grovev1connect.NewNodeServiceClient(c.http, base, copts...)
	return c, nil
}

// watchCertRequests returns cfg (or, if nil, TLS 1.3 against the system's
// roots) set to note when a peer asks for a client certificate that cfg
// does not hold.
func (c *Client) watchCertRequests(cfg *tls.Config) *tls.Config {
	if cfg == nil {
		cfg = &tls.Config{MinVersion: tls.VersionTLS13}
	}
	if len(cfg.Certificates) > 0 || cfg.GetClientCertificate != nil {
		return cfg
	}
	cfg = cfg.Clone()
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		c.certAsked.Store(true)
		return &tls.Certificate{}, nil // none: the handshake goes on without
	}
	return cfg
}

// newTransport builds an HTTP/2-only transport: HTTP/1.1 is never offered,
// so a peer that cannot speak HTTP/2 fails loudly on the first call instead
// of silently running gRPC over a protocol it does not fit.
func newTransport(useTLS bool, cfg *tls.Config, wire *wireCounter) *http.Transport {
	var protos http.Protocols
	if useTLS {
		protos.SetHTTP2(true)
	} else {
		protos.SetUnencryptedHTTP2(true)
	}
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Protocols: &protos,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// Counting below TLS measures what really crosses the network.
			return &countingConn{Conn: conn, w: wire}, nil
		},
		TLSHandshakeTimeout: tlsHandshakeTimeout,
		IdleConnTimeout:     idleConnTimeout,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout:  pingAfterSilence,
			PingTimeout:      pingTimeout,
			WriteByteTimeout: writeByteTimeout,
		},
	}
	if cfg != nil {
		t.TLSClientConfig = cfg.Clone()
	}
	return t
}

// Peer returns the base URL the client calls, as errors name it.
func (c *Client) Peer() string { return c.peer }

// Stats returns the client's traffic counters.
func (c *Client) Stats() Stats {
	s := Stats{
		Calls:    c.calls.Load(),
		Failures: c.failures.Load(),
	}
	if c.wire != nil {
		s.WireBytesWritten = c.wire.written.Load()
		s.WireBytesRead = c.wire.read.Load()
	}
	return s
}

// CloseIdle closes the client's idle connections. Calls in flight finish;
// a later call opens a new connection. It is not the protocol's Close,
// which ends a repair session.
func (c *Client) CloseIdle() {
	c.http.CloseIdleConnections()
}

// call runs one unary call under the client's deadline and accounts for it.
// It is generic so that the six methods share one treatment of deadlines,
// nil requests and errors.
func call[Req, Res any](ctx context.Context, c *Client, req *Req, fn func(context.Context, *connect.Request[Req]) (*connect.Response[Res], error)) (*Res, error) {
	if req == nil {
		// An empty message encodes exactly as a nil one would; sending it
		// keeps connect from touching a nil pointer.
		req = new(Req)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	c.calls.Add(1)
	res, err := fn(ctx, connect.NewRequest(req))
	if err != nil {
		c.failures.Add(1)
		return nil, c.fromConnectError(err, ctx.Err())
	}
	return res.Msg, nil
}

// Hello implements repair.Peer.
func (c *Client) Hello(ctx context.Context, req *grovev1.HelloRequest) (*grovev1.HelloResponse, error) {
	return call(ctx, c, req, c.rpc.Hello)
}

// Descend implements repair.Peer.
func (c *Client) Descend(ctx context.Context, req *grovev1.DescendRequest) (*grovev1.DescendResponse, error) {
	return call(ctx, c, req, c.rpc.Descend)
}

// Reconcile implements repair.Peer.
func (c *Client) Reconcile(ctx context.Context, req *grovev1.ReconcileRequest) (*grovev1.ReconcileResponse, error) {
	return call(ctx, c, req, c.rpc.Reconcile)
}

// Push implements repair.Peer.
func (c *Client) Push(ctx context.Context, req *grovev1.PushRequest) (*grovev1.PushResponse, error) {
	return call(ctx, c, req, c.rpc.Push)
}

// Commit implements repair.Peer.
func (c *Client) Commit(ctx context.Context, req *grovev1.CommitRequest) (*grovev1.CommitResponse, error) {
	return call(ctx, c, req, c.rpc.Commit)
}

// Close implements repair.Peer: it ends the session named in req on the
// peer. It does not close the Client; see CloseIdle.
func (c *Client) Close(ctx context.Context, req *grovev1.CloseRequest) (*grovev1.CloseResponse, error) {
	return call(ctx, c, req, c.rpc.Close)
}

// remoteError is what a failed call returns: it reads as
// "<sentinel>: peer <url>: <detail>" and unwraps both to the sentinel, for
// errors.Is, and to the *connect.Error, for callers that want the status
// code or metadata.
type remoteError struct {
	sentinel error
	peer     string
	detail   string
	cause    error
}

func (e *remoteError) Error() string {
	return fmt.Sprintf("%v: peer %s: %s", e.sentinel, e.peer, e.detail)
}

func (e *remoteError) Unwrap() []error { return []error{e.sentinel, e.cause} }

// fromConnectError picks the sentinel a failed call stands for. Only an
// error the peer itself sent (a wire error) may name a repair sentinel; an
// error connect made up locally is about the transport, or the deadline.
// ctxErr is the call context's error: a transport failure that raced with
// the deadline is reported as the deadline, which is the cause.
func (c *Client) fromConnectError(err, ctxErr error) error {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		sentinel := ctxErr
		if sentinel == nil {
			sentinel = ErrTransport
		}
		return &remoteError{sentinel: sentinel, peer: c.peer, detail: c.explain(sentinel, err.Error()), cause: err}
	}
	wire := connect.IsWireError(err)
	var sentinel error
	if wire {
		sentinel = repair.FromCode(ce.Meta().Get(ErrorHeader))
	}
	if sentinel != nil {
		return &remoteError{sentinel: sentinel, peer: c.peer, detail: describe(sentinel, ce, false), cause: err}
	}
	switch code := ce.Code(); {
	case code == connect.CodeResourceExhausted:
		// ErrBusy and repair.ErrLimit travel with their repair codes, so a
		// bare ResourceExhausted is connect's message size limit: ours, or
		// the peer's.
		sentinel = ErrTooLarge
	case wire && code == connect.CodeDeadlineExceeded:
		sentinel = context.DeadlineExceeded
	case wire && code == connect.CodeCanceled:
		sentinel = context.Canceled
	case wire:
		sentinel = ErrRemote
	case ctxErr != nil:
		sentinel = ctxErr
	case code == connect.CodeDeadlineExceeded:
		// A dial or handshake timeout of the transport's own.
		sentinel = context.DeadlineExceeded
	default:
		// This includes a local CodeCanceled with the context still live:
		// connect reports a connection reset that way.
		sentinel = ErrTransport
	}
	return &remoteError{sentinel: sentinel, peer: c.peer, detail: c.explain(sentinel, describe(sentinel, ce, true)), cause: err}
}

// explain puts the cause first when a transport failure followed a peer's
// request for a client certificate this client does not have.
func (c *Client) explain(sentinel error, detail string) string {
	if sentinel == ErrTransport && c.certAsked.Load() {
		return "the peer requires a client certificate and none is configured (--tls-cert and --tls-key, signed by a CA the peer trusts): " + detail
	}
	return detail
}

// describe is the detail of a failed call: the message, without the
// sentinel's text when the message repeats it (the peer's errors usually
// begin with it), after the status code when the sentinel does not imply
// one.
func describe(sentinel error, ce *connect.Error, withCode bool) string {
	msg := ce.Message()
	if rest, ok := strings.CutPrefix(msg, sentinel.Error()); ok {
		msg = strings.TrimPrefix(rest, ": ")
	}
	switch {
	case msg == "":
		return ce.Code().String()
	case withCode:
		return ce.Code().String() + ": " + msg
	}
	return msg
}

// wireCounter sums the bytes on every connection a transport opens.
type wireCounter struct {
	read, written atomic.Int64
}

// countingConn counts what passes through a connection.
type countingConn struct {
	net.Conn
	w *wireCounter
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.w.read.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.w.written.Add(int64(n))
	return n, err
}
