package repair_test

// Faults over the real transport: sessions between replicas through the
// Connect/gRPC client and handler, with peers that die, hang, lie or send too
// much. Each must end with a clear error within its deadline, leave both
// replicas exactly as they were, and let a retry succeed.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/antientropy/grove/arena"
	"github.com/antientropy/grove/engine"
	"github.com/antientropy/grove/engine/repair"
	"github.com/antientropy/grove/engine/rowstore"
	"github.com/antientropy/grove/engine/token"
	grovev1 "github.com/antientropy/grove/proto/grove/v1"
	"github.com/antientropy/grove/rpc"
)

type rows []engine.Row

func (r *rows) NextRow(row *engine.Row) error {
	if len(*r) == 0 {
		return io.EOF
	}
	*row = (*r)[0]
	*r = (*r)[1:]
	return nil
}

func replica(t *testing.T, rs []engine.Row) *rowstore.Replica {
	t.Helper()
	ctx := context.Background()
	src := rows(slices.Clone(rs))
	st, err := rowstore.Load(ctx, token.Murmur3{}, &src)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := rowstore.BuildTree(ctx, st, engine.Options{Depth: 12, Budget: arena.NewBudget(1 << 30)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tree.Close() })
	return rowstore.NewReplica(st, tree)
}

// pair returns two replicas differing in a few rows of every kind.
func pair(t *testing.T) (a, b *rowstore.Replica) {
	rnd := rand.New(rand.NewPCG(11, 12))
	base := make([]engine.Row, 4000)
	for i := range base {
		base[i] = engine.Row{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", rnd.Uint32()), TS: 1000 + int64(i)}
	}
	other := slices.Clone(base)
	other[10].Value, other[10].TS = []byte("newer"), 99999
	other[20].Deleted, other[20].TS = true, 99999
	other = slices.Delete(other, 30, 31)
	other = append(other, engine.Row{Key: []byte("only-b"), Value: []byte("x"), TS: 5})
	return replica(t, base), replica(t, other)
}

// snapshotRows returns a replica's rows, to check nothing changed.
func snapshotRows(t *testing.T, r *rowstore.Replica) []engine.Digest {
	t.Helper()
	var out []engine.Digest
	r.Store().All(context.Background(), func(row *engine.Row) error {
		out = append(out, engine.RowDigest(row))
		return nil
	})
	return out
}

// serve serves peer over loopback and returns its URL and the server.
func serve(t *testing.T, peer repair.Peer, limit int) (string, *http.Server) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(rpc.NewHandler(peer, rpc.HandlerOptions{MaxMessageBytes: limit}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(mux, nil)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), srv
}

func client(t *testing.T, url string, limit int) *rpc.Client {
	t.Helper()
	c, err := rpc.NewClient(url, rpc.ClientOptions{CallTimeout: 2 * time.Second, MaxMessageBytes: limit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdle)
	return c
}

// hook is a Peer that runs a function before passing each call on.
type hook struct {
	repair.Peer
	before func(method string) error
	after  func(method string, resp any)
}

func (h *hook) do(m string) error {
	if h.before != nil {
		return h.before(m)
	}
	return nil
}

func (h *hook) done(m string, resp any) {
	if h.after != nil {
		h.after(m, resp)
	}
}

func (h *hook) Hello(ctx context.Context, r *grovev1.HelloRequest) (*grovev1.HelloResponse, error) {
	if err := h.do("Hello"); err != nil {
		return nil, err
	}
	resp, err := h.Peer.Hello(ctx, r)
	if err == nil {
		h.done("Hello", resp)
	}
	return resp, err
}

func (h *hook) Descend(ctx context.Context, r *grovev1.DescendRequest) (*grovev1.DescendResponse, error) {
	if err := h.do("Descend"); err != nil {
		return nil, err
	}
	resp, err := h.Peer.Descend(ctx, r)
	if err == nil {
		h.done("Descend", resp)
	}
	return resp, err
}

func (h *hook) Reconcile(ctx context.Context, r *grovev1.ReconcileRequest) (*grovev1.ReconcileResponse, error) {
	if err := h.do("Reconcile"); err != nil {
		return nil, err
	}
	resp, err := h.Peer.Reconcile(ctx, r)
	if err == nil {
		h.done("Reconcile", resp)
	}
	return resp, err
}

func (h *hook) Commit(ctx context.Context, r *grovev1.CommitRequest) (*grovev1.CommitResponse, error) {
	if err := h.do("Commit"); err != nil {
		return nil, err
	}
	return h.Peer.Commit(ctx, r)
}

// syncOK checks a session converges and finds the four planted keys.
func syncOK(t *testing.T, a *rowstore.Replica, peer repair.Peer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := repair.Sync(ctx, a, peer, repair.Options{Repair: true})
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if n := len(res.OnlyHere) + len(res.OnlyThere) + len(res.Different); n != 4 || !res.Converged {
		t.Fatalf("retry: %d keys, converged %v", n, res.Converged)
	}
}

// TestPeerKilledMidSession kills the responder's server — every connection
// dropped — while the initiator waits for the Reconcile answer.
func TestPeerKilledMidSession(t *testing.T) {
	for _, at := range []string{"Descend", "Reconcile", "Commit"} {
		t.Run(at, func(t *testing.T) {
			a, b := pair(t)
			beforeA, beforeB := snapshotRows(t, a), snapshotRows(t, b)
			resp := repair.NewResponder(b, repair.ResponderOptions{})
			var srv *http.Server
			killed := make(chan struct{})
			h := &hook{Peer: resp, before: func(m string) error {
				if m == at {
					go srv.Close()
					<-killed
					return errors.New("unreachable")
				}
				return nil
			}}
			url, s := serve(t, h, 0)
			srv = s
			srv.RegisterOnShutdown(func() {})
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := repair.Sync(ctx, a, client(t, url, 0), repair.Options{Repair: true})
			close(killed)
			if err == nil {
				t.Fatal("a session whose peer died succeeded")
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %v to notice the peer died", d)
			}
			t.Logf("error after %v: %v", time.Since(start).Round(time.Millisecond), err)
			if !slices.Equal(snapshotRows(t, a), beforeA) || !slices.Equal(snapshotRows(t, b), beforeB) {
				t.Fatal("a replica changed although the session failed before its commit")
			}
			// The peer comes back with the same replica: a retry converges.
			url2, _ := serve(t, resp, 0)
			syncOK(t, a, client(t, url2, 0))
		})
	}
}

// TestPeerNeverAnswers points the initiator at a socket that accepts and
// reads but never writes.
func TestPeerNeverAnswers(t *testing.T) {
	a, _ := pair(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = repair.Sync(ctx, a, client(t, "http://"+ln.Addr().String(), 0), repair.Options{Repair: true})
	if err == nil {
		t.Fatal("a silent peer gave no error")
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("took %v with an 800 ms deadline", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v does not say the deadline passed", err)
	}
}

// liar is a responder that corrupts one field of one kind of answer.
func liar(resp *repair.Responder, method string, corrupt func(any)) *hook {
	return &hook{Peer: resp, after: func(m string, r any) {
		if m == method {
			corrupt(r)
		}
	}}
}

// TestPeerLies serves answers that break the protocol in each field the
// initiator checks: every one must end the session with ErrBadMessage,
// apply nothing, and leave a retry against an honest peer to succeed.
func TestPeerLies(t *testing.T) {
	cases := []struct {
		name    string
		method  string
		corrupt func(any)
	}{
		{"band too short", "Hello", func(r any) { b := r.(*grovev1.HelloResponse).Band; b.Values = b.Values[:len(b.Values)-1] }},
		{"band level beyond depth", "Hello", func(r any) { r.(*grovev1.HelloResponse).Band.Level = 40 }},
		{"band missing", "Descend", func(r any) { d := r.(*grovev1.DescendResponse); d.Band, d.Weights = nil, nil }},
		{"weights short", "Descend", func(r any) {
			if d := r.(*grovev1.DescendResponse); len(d.Weights) > 0 {
				d.Weights = d.Weights[1:]
			} else {
				d.Band = nil
			}
		}},
		{"weights beside a band", "Descend", func(r any) {
			d := r.(*grovev1.DescendResponse)
			d.Weights = append(d.Weights, 1, 2, 3, 4)
			if d.Band == nil {
				d.Band = &grovev1.Band{}
			}
		}},
		{"sum short", "Hello", func(r any) { h := r.(*grovev1.HelloResponse); h.Sum = h.Sum[:31] }},
		{"no leaves handled", "Reconcile", func(r any) { r.(*grovev1.ReconcileResponse).Done = 0 }},
		{"more leaves handled than asked", "Reconcile", func(r any) { r.(*grovev1.ReconcileResponse).Done = 1 << 30 }},
		{"missing bitmap padded", "Reconcile", func(r any) {
			m := r.(*grovev1.ReconcileResponse)
			m.Missing = append(m.Missing, 0xff)
		}},
		{"row outside the differing leaves", "Reconcile", func(r any) {
			m := r.(*grovev1.ReconcileResponse)
			m.Rows = append(m.Rows, &grovev1.Row{Key: []byte("not-in-a-differing-leaf-42"), Value: []byte("evil"), Ts: 1 << 60})
		}},
		{"row with a digest", "Reconcile", func(r any) {
			m := r.(*grovev1.ReconcileResponse)
			m.Rows[0].Digest = make([]byte, 32)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := pair(t)
			beforeA, beforeB := snapshotRows(t, a), snapshotRows(t, b)
			resp := repair.NewResponder(b, repair.ResponderOptions{})
			url, _ := serve(t, liar(resp, tc.method, tc.corrupt), 0)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := repair.Sync(ctx, a, client(t, url, 0), repair.Options{Repair: true})
			if !errors.Is(err, repair.ErrBadMessage) {
				t.Fatalf("got %v, want ErrBadMessage", err)
			}
			if !slices.Equal(snapshotRows(t, a), beforeA) || !slices.Equal(snapshotRows(t, b), beforeB) {
				t.Fatal("a replica changed after a lying answer")
			}
			waitSessions(t, resp, 0)
			syncOK(t, a, resp)
		})
	}
}

// waitSessions waits for the responder's sessions to drop to n: the
// initiator's Close after a failure is best effort and asynchronous to it.
func waitSessions(t *testing.T, r *repair.Responder, n int) {
	t.Helper()
	for range 200 {
		if r.Sessions() == n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d sessions open, want %d", r.Sessions(), n)
}

// TestPeerOversized has the responder answer with more than the initiator
// accepts: the transport refuses the answer and the session ends.
func TestPeerOversized(t *testing.T) {
	a, b := pair(t)
	beforeA := snapshotRows(t, a)
	resp := repair.NewResponder(b, repair.ResponderOptions{})
	fat := liar(resp, "Reconcile", func(r any) {
		m := r.(*grovev1.ReconcileResponse)
		m.Rows[0].Value = make([]byte, 2<<20)
	})
	url, _ := serve(t, fat, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := repair.Sync(ctx, a, client(t, url, 1<<20), repair.Options{Repair: true, MaxMessageBytes: 1 << 20})
	if err == nil {
		t.Fatal("an oversized answer was accepted")
	}
	t.Log(err)
	if !slices.Equal(snapshotRows(t, a), beforeA) {
		t.Fatal("the initiator changed after an oversized answer")
	}
	syncOK(t, a, resp)
}

// TestGarbagePeer answers every call with bytes that are not the protocol.
func TestGarbagePeer(t *testing.T) {
	a, _ := pair(t)
	var calls atomic.Int32
	srv := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/grpc")
		w.Write([]byte("\x00\x00\x00\x00\x10this is not protobuf at all"))
	}), Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = repair.Sync(ctx, a, client(t, "http://"+ln.Addr().String(), 0), repair.Options{Repair: true})
	if err == nil || calls.Load() == 0 {
		t.Fatalf("garbage answers: err %v after %d calls", err, calls.Load())
	}
	t.Log(err)
}

// TestIncompatibleOverTheWire checks the sentinel crosses the transport.
func TestIncompatibleOverTheWire(t *testing.T) {
	a, _ := pair(t)
	tree, err := engine.New(engine.Options{Depth: 4, Range: token.Range{Lo: 0, Hi: 1 << 40}, Budget: arena.NewBudget(1 << 20)})
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	tree.Hash(context.Background())
	other := rowstore.NewReplica(rowstore.New(token.Murmur3{}), tree)
	url, _ := serve(t, repair.NewResponder(other, repair.ResponderOptions{}), 0)
	_, err = repair.Sync(context.Background(), a, client(t, url, 0), repair.Options{})
	if !errors.Is(err, repair.ErrIncompatible) {
		t.Fatalf("got %v, want ErrIncompatible", err)
	}
}
