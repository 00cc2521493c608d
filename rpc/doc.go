// Package rpc carries grove's repair protocol between nodes over HTTP/2,
// as gRPC (served and called with Connect, connectrpc.com/connect).
//
// # Serving
//
// NewHandler wraps any repair.Peer — normally the node's repair.Responder —
// as the grove.v1.RepairService handler. It is an ordinary http.Handler
// with the path to mount it on, so a storage node mounts it on its own
// http.ServeMux beside whatever else it serves:
//
//	path, h := rpc.NewHandler(responder, rpc.HandlerOptions{})
//	mux.Handle(path, h)
//	srv := rpc.NewServer(mux, tlsConfig) // or your own *http.Server
//
// The handler also answers the Connect and gRPC-Web protocols, so curl and
// browsers can reach it; any gRPC client can call it from repair.proto.
//
// # Calling
//
// NewClient returns a *Client, which implements repair.Peer, so an
// Initiator drives a remote node exactly as it drives a local Responder.
// Errors keep their identity across the network: the handler sends
// repair.Code(err) beside the status (metadata "Grove-Error"), and the
// client wraps the matching sentinel, so errors.Is(err, repair.ErrBusy)
// holds on the calling side. Failures of the call itself wrap this
// package's ErrTransport, ErrRemote or ErrTooLarge, or
// context.DeadlineExceeded / context.Canceled; every error names the peer.
//
// # h2c or TLS
//
// An http:// URL means HTTP/2 without TLS (h2c, with prior knowledge: no
// HTTP/1.1 upgrade round trip). Use it only on a network you trust, or
// behind a proxy that terminates TLS. An https:// URL means HTTP/2 over
// TLS 1.3; ServerTLS and ClientTLS load the certificates, and a CA file on
// the server turns on mutual TLS, so only nodes holding a certificate from
// that CA can reach the handler at all.
//
// # Limits and deadlines
//
// Every message, either way, is bounded by MaxMessageBytes (64 MiB by
// default, set on each side; a message over either side's limit fails with
// ErrTooLarge and nothing larger is buffered). Every client call runs
// under the earlier of the caller's deadline and ClientOptions.CallTimeout
// (30 s by default), and that deadline travels to the handler in the gRPC
// header grpc-timeout, so both sides give up together; the handler caps
// calls at HandlerOptions.CallTimeout even when a client sends no deadline.
// A peer that stops answering therefore costs at most one CallTimeout,
// never a hang. NewServer adds per-call read and write timeouts as a last
// line of defence against clients that stall on purpose.
package rpc
