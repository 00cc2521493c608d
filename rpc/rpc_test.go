package rpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/antientropy/grove/engine/repair"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"
)

// calls lists one request per protocol method, with a way to send it to any
// repair.Peer, so a test can run the same call in-process and over the
// network and compare.
var calls = []struct {
	name string
	req  proto.Message
	do   func(context.Context, repair.Peer, proto.Message) (proto.Message, error)
}{
	{"Hello", &grovev1.HelloRequest{
		Params: &grovev1.Params{Protocol: 1, Format: 1, Partitioner: 1, RangeLo: -1 << 63, RangeHi: 1<<63 - 1, Depth: 20},
		Sum:    bytes.Repeat([]byte{0xab}, 32), Salt: bytes.Repeat([]byte{7}, 32), Levels: 4,
	}, func(ctx context.Context, p repair.Peer, m proto.Message) (proto.Message, error) {
		return p.Hello(ctx, m.(*grovev1.HelloRequest))
	}},
	{"Descend", &grovev1.DescendRequest{Session: []byte("s"), Differ: []byte{0x81, 0x02}, Levels: 3},
		func(ctx context.Context, p repair.Peer, m proto.Message) (proto.Message, error) {
			return p.Descend(ctx, m.(*grovev1.DescendRequest))
		}},
	{"Reconcile", &grovev1.ReconcileRequest{Session: []byte("s"), Differ: []byte{1}, First: 9, Counts: []uint32{2, 0, 1}, Fingerprints: []byte("abcdefghijkl"), KeysOnly: true},
		func(ctx context.Context, p repair.Peer, m proto.Message) (proto.Message, error) {
			return p.Reconcile(ctx, m.(*grovev1.ReconcileRequest))
		}},
	{"Push", &grovev1.PushRequest{Session: []byte("s"), Rows: []*grovev1.Row{{Key: []byte("k1"), Value: []byte("v1"), Ts: 5}, {Key: []byte("k2"), Deleted: true}}},
		func(ctx context.Context, p repair.Peer, m proto.Message) (proto.Message, error) {
			return p.Push(ctx, m.(*grovev1.PushRequest))
		}},
	{"Commit", &grovev1.CommitRequest{Session: []byte("s"), Rows: []*grovev1.Row{{Key: []byte("k3"), Value: []byte("v3"), Ts: -1}}},
		func(ctx context.Context, p repair.Peer, m proto.Message) (proto.Message, error) {
			return p.Commit(ctx, m.(*grovev1.CommitRequest))
		}},
	{"Close", &grovev1.CloseRequest{Session: []byte("s")},
		func(ctx context.Context, p repair.Peer, m proto.Message) (proto.Message, error) {
			return p.Close(ctx, m.(*grovev1.CloseRequest))
		}},
}

// TestRoundTrip sends every method over h2c and over TLS and checks that
// the answer is the one the peer gives in-process, that the server saw
// HTTP/2, and that Stats adds up.
func TestRoundTrip(t *testing.T) {
	p := newPKI(t)
	serverTLS, err := ServerTLS(p.serverCert, p.serverKey, p.caA)
	if err != nil {
		t.Fatal(err)
	}
	clientTLS, err := ClientTLS(p.clientACert, p.clientAKey, p.caA)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		serverTLS *tls.Config
		clientTLS *tls.Config
		scheme    string
	}{
		{"h2c", nil, nil, "http://"},
		{"tls", serverTLS, clientTLS, "https://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer := &fakePeer{}
			url, rec := servePeer(t, peer, HandlerOptions{}, tc.serverTLS)
			if !strings.HasPrefix(url, tc.scheme) {
				t.Fatalf("server URL %s, want scheme %s", url, tc.scheme)
			}
			c := newClient(t, url, ClientOptions{TLS: tc.clientTLS})
			ctx := context.Background()
			var sent, received int64
			for _, call := range calls {
				want, err := call.do(ctx, &fakePeer{}, call.req)
				if err != nil {
					t.Fatal(err)
				}
				got, err := call.do(ctx, c, call.req)
				if err != nil {
					t.Fatalf("%s: %v", call.name, err)
				}
				if !proto.Equal(got, want) {
					t.Errorf("%s: got %v, want %v", call.name, got, want)
				}
				sent += int64(proto.Size(call.req))
				received += int64(proto.Size(want))
			}
			if n := peer.calls.Load(); n != int64(len(calls)) {
				t.Errorf("peer saw %d calls, want %d", n, len(calls))
			}
			if h2, other := rec.http2.Load(), rec.other.Load(); h2 != int64(len(calls)) || other != 0 {
				t.Errorf("server saw %d HTTP/2 and %d other requests, want %d and 0", h2, other, len(calls))
			}
			s := c.Stats()
			if s.Calls != int64(len(calls)) || s.Failures != 0 {
				t.Errorf("Stats calls %d failures %d, want %d and 0", s.Calls, s.Failures, len(calls))
			}
			// Framing, headers and (for TLS) handshakes cost something on
			// top of the messages; zero here would mean the counter is
			// not wired into the transport.
			if s.WireBytesWritten <= sent || s.WireBytesRead <= received {
				t.Errorf("Stats wire bytes %d written %d read, want more than the messages (%d, %d)", s.WireBytesWritten, s.WireBytesRead, sent, received)
			}
		})
	}
}

// TestNilRequest: a nil request is sent as an empty message, not a panic.
func TestNilRequest(t *testing.T) {
	url, _ := servePeer(t, &fakePeer{}, HandlerOptions{}, nil)
	c := newClient(t, url, ClientOptions{})
	if _, err := c.Close(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}

// nilPeer answers with neither a message nor an error.
type nilPeer struct{ *fakePeer }

func (nilPeer) Hello(context.Context, *grovev1.HelloRequest) (*grovev1.HelloResponse, error) {
	return nil, nil
}

// TestNilResponse: a peer that returns (nil, nil) yields an error on the
// client, not an empty answer that looks real.
func TestNilResponse(t *testing.T) {
	path, h := NewHandler(nilPeer{&fakePeer{}}, HandlerOptions{})
	mux := http.NewServeMux()
	mux.Handle(path, h)
	url, _ := serve(t, mux, nil)
	c := newClient(t, url, ClientOptions{})
	_, err := c.Hello(context.Background(), &grovev1.HelloRequest{})
	if !errors.Is(err, ErrRemote) {
		t.Fatalf("got %v, want ErrRemote", err)
	}
}

// TestErrors: every repair sentinel, and context errors, survive the trip
// with errors.Is and a fitting status code; anything else is ErrRemote.
func TestErrors(t *testing.T) {
	sentinels := []error{
		repair.ErrIncompatible, repair.ErrBadMessage, repair.ErrUnknownSession,
		repair.ErrChanged, repair.ErrBusy, repair.ErrLimit, repair.ErrNotConverged,
		context.DeadlineExceeded, context.Canceled, ErrRemote, ErrTransport, ErrTooLarge,
	}
	for _, tc := range []struct {
		name string
		err  error
		want error
		code connect.Code
	}{
		{"incompatible", repair.ErrIncompatible, repair.ErrIncompatible, connect.CodeFailedPrecondition},
		{"bad message", repair.ErrBadMessage, repair.ErrBadMessage, connect.CodeInvalidArgument},
		{"unknown session", repair.ErrUnknownSession, repair.ErrUnknownSession, connect.CodeNotFound},
		{"changed", repair.ErrChanged, repair.ErrChanged, connect.CodeAborted},
		{"busy", repair.ErrBusy, repair.ErrBusy, connect.CodeResourceExhausted},
		{"limit", repair.ErrLimit, repair.ErrLimit, connect.CodeResourceExhausted},
		{"not converged", repair.ErrNotConverged, repair.ErrNotConverged, connect.CodeAborted},
		{"deadline", context.DeadlineExceeded, context.DeadlineExceeded, connect.CodeDeadlineExceeded},
		{"canceled", context.Canceled, context.Canceled, connect.CodeCanceled},
		{"other", errors.New("disk on fire"), ErrRemote, connect.CodeInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The peer wraps the sentinel as real code does, with detail.
			peerErr := fmt.Errorf("%w: field levels: 99 > 16", tc.err)
			url, _ := servePeer(t, &fakePeer{err: peerErr}, HandlerOptions{}, nil)
			c := newClient(t, url, ClientOptions{})
			_, err := c.Descend(context.Background(), &grovev1.DescendRequest{})
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range sentinels {
				if got, want := errors.Is(err, s), s == tc.want; got != want {
					t.Errorf("errors.Is(%v, %v) = %v, want %v", err, s, got, want)
				}
			}
			if got := connect.CodeOf(err); got != tc.code {
				t.Errorf("status code %v, want %v", got, tc.code)
			}
			msg := err.Error()
			if !strings.Contains(msg, url) || !strings.Contains(msg, "field levels: 99 > 16") {
				t.Errorf("error %q should name the peer %s and keep the detail", msg, url)
			}
			if strings.Count(msg, tc.want.Error()) != 1 {
				t.Errorf("error %q should state %q exactly once", msg, tc.want)
			}
		})
	}
}

// TestUnknownErrorCode: a code this build does not know (a newer peer's
// sentinel) is reported as ErrRemote with the peer's text, not dropped.
func TestUnknownErrorCode(t *testing.T) {
	url, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Grpc-Status", "9")
		w.Header().Set("Grpc-Message", "repair: something new")
		w.Header().Set(ErrorHeader, "something_new")
	}), nil)
	c := newClient(t, url, ClientOptions{})
	_, err := c.Hello(context.Background(), &grovev1.HelloRequest{})
	if !errors.Is(err, ErrRemote) || !strings.Contains(err.Error(), "something new") {
		t.Fatalf("got %v, want ErrRemote with the peer's message", err)
	}
}

// TestMessageLimits: a message over MaxMessageBytes fails promptly with
// ErrTooLarge, whichever side's limit it breaks; one under the limits
// passes.
func TestMessageLimits(t *testing.T) {
	const limit = 64 << 10
	big := &grovev1.PushRequest{Rows: []*grovev1.Row{{Key: []byte("k"), Value: make([]byte, 2*limit)}}}
	small := &grovev1.PushRequest{Rows: []*grovev1.Row{{Key: []byte("k"), Value: make([]byte, limit/2)}}}
	for _, tc := range []struct {
		name       string
		handler    HandlerOptions
		client     ClientOptions
		req        *grovev1.PushRequest // sent with Push when set
		pad        int                  // else Hello answers with this padding
		want       error
		peerCalled bool
	}{
		{"request over server limit", HandlerOptions{MaxMessageBytes: limit}, ClientOptions{}, big, 0, ErrTooLarge, false},
		{"response over server limit", HandlerOptions{MaxMessageBytes: limit}, ClientOptions{}, nil, 2 * limit, ErrTooLarge, true},
		{"request over client limit", HandlerOptions{}, ClientOptions{MaxMessageBytes: limit}, big, 0, ErrTooLarge, false},
		{"response over client limit", HandlerOptions{}, ClientOptions{MaxMessageBytes: limit}, nil, 2 * limit, ErrTooLarge, true},
		{"request under both limits", HandlerOptions{MaxMessageBytes: limit}, ClientOptions{MaxMessageBytes: limit}, small, 0, nil, true},
		{"response under both limits", HandlerOptions{MaxMessageBytes: limit}, ClientOptions{MaxMessageBytes: limit}, nil, limit / 2, nil, true},
		{"8 MiB under the defaults", HandlerOptions{}, ClientOptions{}, nil, 8 << 20, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer := &fakePeer{pad: tc.pad}
			url, _ := servePeer(t, peer, tc.handler, nil)
			tc.client.CallTimeout = 10 * time.Second
			c := newClient(t, url, tc.client)
			_, err := within(t, 15*time.Second, func() error {
				var err error
				if tc.req != nil {
					_, err = c.Push(context.Background(), tc.req)
				} else {
					_, err = c.Hello(context.Background(), &grovev1.HelloRequest{})
				}
				return err
			})
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if called := peer.calls.Load() > 0; called != tc.peerCalled {
				t.Errorf("peer called: %v, want %v", called, tc.peerCalled)
			}
		})
	}
}

// silentPeer accepts TCP connections, reads and discards whatever comes,
// and never answers: a hung process.
func silentPeer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(io.Discard, conn)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// TestSilentPeer: against a peer that never answers, a call ends at the
// earlier of CallTimeout and the caller's deadline, with an error that says
// so — over h2c (stuck waiting for the answer) and TLS (stuck in the
// handshake).
func TestSilentPeer(t *testing.T) {
	p := newPKI(t)
	clientTLS, err := ClientTLS("", "", p.caA)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		scheme      string
		tls         *tls.Config
		callTimeout time.Duration
		ctxTimeout  time.Duration
	}{
		{"h2c CallTimeout", "http://", nil, 300 * time.Millisecond, 0},
		{"h2c caller deadline", "http://", nil, time.Hour, 300 * time.Millisecond},
		{"tls CallTimeout", "https://", clientTLS, 300 * time.Millisecond, 0},
		{"tls caller deadline", "https://", clientTLS, time.Hour, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.scheme + silentPeer(t)
			c := newClient(t, url, ClientOptions{TLS: tc.tls, CallTimeout: tc.callTimeout})
			ctx := context.Background()
			if tc.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctxTimeout)
				defer cancel()
			}
			took, err := within(t, 5*time.Second, func() error {
				_, err := c.Hello(ctx, &grovev1.HelloRequest{})
				return err
			})
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v, want context.DeadlineExceeded", err)
			}
			if !strings.Contains(err.Error(), url) {
				t.Errorf("error %q does not name the peer", err)
			}
			if took < 250*time.Millisecond {
				t.Errorf("call ended after %v, before its deadline", took)
			}
		})
	}
}

// TestCallerCancel: cancelling the caller's context ends the call with
// context.Canceled, and the peer stops working on it.
func TestCallerCancel(t *testing.T) {
	peer := &fakePeer{block: true, started: make(chan struct{})}
	url, _ := servePeer(t, peer, HandlerOptions{}, nil)
	c := newClient(t, url, ClientOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-peer.started
		cancel()
	}()
	_, err := within(t, 5*time.Second, func() error {
		_, err := c.Hello(ctx, &grovev1.HelloRequest{})
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// TestDeadlinePropagates: the handler runs under the earlier of the
// client's deadline (sent as grpc-timeout) and its own CallTimeout.
func TestDeadlinePropagates(t *testing.T) {
	for _, tc := range []struct {
		name          string
		clientTimeout time.Duration
		serverTimeout time.Duration
		max           time.Duration
	}{
		{"client's deadline", 2 * time.Second, time.Hour, 2 * time.Second},
		{"handler's deadline", time.Hour, time.Second, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer := &fakePeer{}
			url, _ := servePeer(t, peer, HandlerOptions{CallTimeout: tc.serverTimeout}, nil)
			c := newClient(t, url, ClientOptions{CallTimeout: tc.clientTimeout})
			if _, err := c.Close(context.Background(), &grovev1.CloseRequest{}); err != nil {
				t.Fatal(err)
			}
			left := time.Duration(peer.deadline.Load())
			if left <= 0 || left > tc.max {
				t.Errorf("handler had %v left, want within (0, %v]", left, tc.max)
			}
		})
	}
}

// frame is one gRPC length-prefixed message.
func frame(flags byte, payload []byte) []byte {
	b := make([]byte, 5, 5+len(payload))
	b[0] = flags
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	return append(b, payload...)
}

// grpcReply answers every request with body as a gRPC response with
// status 200; trailers, if set, follow it.
func grpcReply(body []byte, trailers map[string]string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/grpc")
		for k := range trailers {
			w.Header().Add("Trailer", k)
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
		for k, v := range trailers {
			w.Header().Set(k, v)
		}
	})
}

// TestGarbagePeer: answers that are not well-formed gRPC responses give an
// error naming the peer — never a panic, a hang, or a fake success.
func TestGarbagePeer(t *testing.T) {
	ok := map[string]string{"Grpc-Status": "0"}
	valid, err := proto.Marshal(&grovev1.HelloResponse{Sum: []byte("sum")})
	if err != nil {
		t.Fatal(err)
	}
	type garbage struct {
		name string
		h    http.Handler
		want []error
	}
	cases := []garbage{
		{"empty body, no status", grpcReply(nil, nil), []error{ErrTransport}},
		{"undecodable protobuf", grpcReply(frame(0, []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), ok), []error{ErrTransport}},
		{"wrong wire type", grpcReply(frame(0, []byte{0x0d, 1, 2}), ok), []error{ErrTransport}},
		{"truncated frame", grpcReply(frame(0, valid)[:7], ok), []error{ErrTransport}},
		{"length claims 4 GiB", grpcReply([]byte{0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3}, ok), []error{ErrTooLarge}},
		{"compressed flag without encoding", grpcReply(frame(1, valid), ok), []error{ErrTransport}},
		{"two messages for a unary call", grpcReply(append(frame(0, valid), frame(0, valid)...), ok), []error{ErrTransport}},
		{"valid message, no status", grpcReply(frame(0, valid), nil), []error{ErrTransport}},
		{"bad status", grpcReply(frame(0, valid), map[string]string{"Grpc-Status": "banana"}), []error{ErrTransport}},
		{"not gRPC", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "<html>proxy error</html>", http.StatusBadGateway)
		}), []error{ErrTransport}},
		{"wrong content type", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write(frame(0, valid))
		}), []error{ErrTransport}},
		{"handler panics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			panic(http.ErrAbortHandler)
		}), []error{ErrTransport}},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 32 {
		noise := make([]byte, rng.IntN(300))
		for j := range noise {
			noise[j] = byte(rng.Uint32())
		}
		if i%2 == 0 {
			cases = append(cases, garbage{fmt.Sprintf("random %d bytes #%d", len(noise), i), grpcReply(noise, ok), []error{ErrTransport, ErrTooLarge}})
			continue
		}
		// A well-formed envelope around random bytes reaches the protobuf
		// decoder. Random bytes are sometimes valid protobuf (unknown
		// fields), so success is allowed; a panic or a hang is not.
		cases = append(cases, garbage{fmt.Sprintf("random %d-byte message #%d", len(noise), i), grpcReply(frame(0, noise), ok), nil})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url, _ := serve(t, tc.h, nil)
			c := newClient(t, url, ClientOptions{CallTimeout: 5 * time.Second, MaxMessageBytes: 1 << 20})
			_, err := within(t, 10*time.Second, func() error {
				_, err := c.Hello(context.Background(), &grovev1.HelloRequest{})
				return err
			})
			if tc.want == nil && err == nil {
				return
			}
			if tc.want != nil && !isAny(err, tc.want...) || tc.want == nil && !errors.Is(err, ErrTransport) {
				t.Fatalf("got %v, want one of %v", err, tc.want)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), url) {
				t.Errorf("error %q does not name the peer", err)
			}
		})
	}
}

// TestPeerDies: a peer that goes away mid-call or is not there at all
// fails the call promptly with ErrTransport.
func TestPeerDies(t *testing.T) {
	t.Run("killed mid-call", func(t *testing.T) {
		peer := &fakePeer{block: true, started: make(chan struct{})}
		path, h := NewHandler(peer, HandlerOptions{})
		mux := http.NewServeMux()
		mux.Handle(path, h)
		url, srv := serve(t, mux, nil)
		c := newClient(t, url, ClientOptions{CallTimeout: time.Minute})
		go func() {
			<-peer.started
			_ = srv.Close()
		}()
		took, err := within(t, 5*time.Second, func() error {
			_, err := c.Hello(context.Background(), &grovev1.HelloRequest{})
			return err
		})
		if !errors.Is(err, ErrTransport) || !strings.Contains(err.Error(), url) {
			t.Fatalf("got %v, want ErrTransport naming %s", err, url)
		}
		if took > 2*time.Second {
			t.Errorf("took %v to notice", took)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + ln.Addr().String()
		_ = ln.Close()
		c := newClient(t, url, ClientOptions{})
		_, err = within(t, 5*time.Second, func() error {
			_, err := c.Hello(context.Background(), &grovev1.HelloRequest{})
			return err
		})
		if !errors.Is(err, ErrTransport) || !strings.Contains(err.Error(), url) {
			t.Fatalf("got %v, want ErrTransport naming %s", err, url)
		}
		if s := c.Stats(); s.Calls != 1 || s.Failures != 1 {
			t.Errorf("Stats %+v, want one failed call", s)
		}
	})
}

// TestNewClientConfig: unusable options are refused up front with
// ErrConfig, so a misconfiguration never becomes plaintext traffic or a
// call that cannot work.
func TestNewClientConfig(t *testing.T) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13}
	for _, tc := range []struct {
		name string
		url  string
		opts ClientOptions
		ok   bool
	}{
		{"http", "http://127.0.0.1:7420", ClientOptions{}, true},
		{"https", "https://node7:7420/prefix/", ClientOptions{TLS: cfg}, true},
		{"https via HTTPClient", "https://node7:7420", ClientOptions{HTTPClient: http.DefaultClient}, true},
		{"http with TLS", "http://node7:7420", ClientOptions{TLS: cfg}, false},
		{"TLS beside HTTPClient", "https://node7:7420", ClientOptions{TLS: cfg, HTTPClient: http.DefaultClient}, false},
		{"no scheme", "node7:7420", ClientOptions{}, false},
		{"other scheme", "ftp://node7", ClientOptions{}, false},
		{"no host", "http:///x", ClientOptions{}, false},
		{"query", "http://node7?x=1", ClientOptions{}, false},
		{"unparsable", "http://[::1", ClientOptions{}, false},
		{"negative limit", "http://node7", ClientOptions{MaxMessageBytes: -1}, false},
		{"negative timeout", "http://node7", ClientOptions{CallTimeout: -time.Second}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewClient(tc.url, tc.opts)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				c.CloseIdle()
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("got %v, want ErrConfig", err)
			}
		})
	}
}

// TestNewServer: the server has the timeouts and protocols the doc
// promises, and leaves the caller's TLS configuration alone.
func TestNewServer(t *testing.T) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13}
	for _, tc := range []struct {
		name            string
		tls             *tls.Config
		h2, h2c, hasTLS bool
	}{
		{"plain", nil, false, true, false},
		{"tls", cfg, true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := NewServer(http.NotFoundHandler(), tc.tls)
			if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout < time.Minute || srv.WriteTimeout < srv.ReadTimeout || srv.IdleTimeout <= 0 {
				t.Errorf("timeouts: header %v read %v write %v idle %v", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout)
			}
			if srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > http.DefaultMaxHeaderBytes {
				t.Errorf("MaxHeaderBytes %d", srv.MaxHeaderBytes)
			}
			p := srv.Protocols
			if p == nil || !p.HTTP1() || p.HTTP2() != tc.h2 || p.UnencryptedHTTP2() != tc.h2c {
				t.Errorf("protocols %v", p)
			}
			if (srv.TLSConfig != nil) != tc.hasTLS {
				t.Fatalf("TLSConfig %v", srv.TLSConfig)
			}
			if tc.hasTLS {
				if srv.TLSConfig == cfg || len(cfg.NextProtos) != 0 {
					t.Error("caller's TLS configuration was used or changed instead of cloned")
				}
				if srv.TLSConfig.NextProtos[0] != "h2" {
					t.Errorf("NextProtos %v", srv.TLSConfig.NextProtos)
				}
			}
		})
	}
}

// TestConcurrentCalls: one Client serves many goroutines at once over
// shared connections (run with -race).
func TestConcurrentCalls(t *testing.T) {
	peer := &fakePeer{}
	url, _ := servePeer(t, peer, HandlerOptions{}, nil)
	c := newClient(t, url, ClientOptions{})
	const workers = 16
	var wg sync.WaitGroup
	errs := make(chan error, workers*len(calls))
	for range workers {
		wg.Go(func() {
			for _, call := range calls {
				if _, err := call.do(context.Background(), c, call.req); err != nil {
					errs <- fmt.Errorf("%s: %w", call.name, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if want := int64(workers * len(calls)); peer.calls.Load() != want || c.Stats().Calls != want {
		t.Errorf("peer saw %d calls, client counted %d, want %d", peer.calls.Load(), c.Stats().Calls, want)
	}
}
