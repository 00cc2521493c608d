package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"time"
)

// Server timeouts. They are a backstop for clients that send no deadline
// or stall on purpose; a grove Client's own CallTimeout (30 s by default)
// ends its calls long before them.
const (
	// serverReadHeaderTimeout bounds the request headers, which are small:
	// a client that dribbles them is stalling (slowloris).
	serverReadHeaderTimeout = 10 * time.Second
	// serverReadTimeout bounds reading one request. At 5 minutes a 64 MiB
	// message still arrives over a link as slow as ~1.8 Mbit/s.
	serverReadTimeout = 5 * time.Minute
	// serverWriteTimeout bounds one call from its headers to the end of its
	// response, so it covers the read, the handler's work and the write:
	// twice the read budget.
	serverWriteTimeout = 10 * time.Minute
	// serverIdleTimeout closes connections no call has used for a while;
	// clients reconnect on demand.
	serverIdleTimeout = 2 * time.Minute
	// serverMaxHeaderBytes: gRPC headers are a few hundred bytes.
	serverMaxHeaderBytes = 64 << 10
	// serverWriteByteTimeout closes an HTTP/2 connection whose client has
	// stopped reading, which the per-call timeouts would only notice late.
	serverWriteByteTimeout = 30 * time.Second
)

// NewServer returns an *http.Server for h with timeouts fit for grove's
// traffic. Under HTTP/2, Go applies ReadTimeout and WriteTimeout to each
// call (stream), not to the connection, so long-lived connections carrying
// many calls are fine.
//
// With tlsConfig nil the server speaks HTTP/1.1 and HTTP/2 without TLS
// (h2c with prior knowledge, which is what a Client sends to http:// URLs);
// serve it with srv.Serve(ln) or srv.ListenAndServe(). Otherwise it speaks
// HTTP/2 and HTTP/1.1 over TLS with that configuration (see ServerTLS);
// serve it with srv.ServeTLS(ln, "", "") or srv.ListenAndServeTLS("", "").
// HTTP/1.1 stays on for health checks and the Connect protocol; gRPC calls
// use HTTP/2.
func NewServer(h http.Handler, tlsConfig *tls.Config) *http.Server {
	var protos http.Protocols
	protos.SetHTTP1(true)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: serverReadHeaderTimeout,
		ReadTimeout:       serverReadTimeout,
		WriteTimeout:      serverWriteTimeout,
		IdleTimeout:       serverIdleTimeout,
		MaxHeaderBytes:    serverMaxHeaderBytes,
		Protocols:         &protos,
		HTTP2: &http.HTTP2Config{
			WriteByteTimeout: serverWriteByteTimeout,
		},
	}
	if tlsConfig == nil {
		protos.SetUnencryptedHTTP2(true)
		return srv
	}
	protos.SetHTTP2(true)
	cfg := tlsConfig.Clone()
	if len(cfg.NextProtos) == 0 {
		// ServeTLS adds these itself, but a caller who wraps the listener
		// with tls.NewListener and calls Serve would get HTTP/1.1 only.
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	srv.TLSConfig = cfg
	return srv
}

// ServeUntil serves srv (from NewServer) on ln — over TLS when srv has a TLS
// configuration — until ctx is done, then shuts it down, giving calls in
// flight up to grace to finish. It returns nil after a shutdown asked for by
// ctx, or the error that stopped the server.
func ServeUntil(ctx context.Context, srv *http.Server, ln net.Listener, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
