package rpc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	grovev1 "github.com/antientropy/grove/proto/grove/v1"
)

// fakePeer is a repair.Peer whose answers are pure functions of the request
// (so a test can compute the expected answer by calling it in-process) and
// whose failures are chosen by the test.
type fakePeer struct {
	// err, if set, is what every method returns.
	err error
	// block makes every method wait for its context to end, after closing
	// started (if set) once.
	block   bool
	started chan struct{}
	// pad adds that many bytes to Hello's answer, to make it large.
	pad int

	calls    atomic.Int64
	deadline atomic.Int64 // time left on the last call's context, in ns; -1 if none
	once     atomic.Bool
}

// enter does what every method does before answering.
func (f *fakePeer) enter(ctx context.Context) error {
	f.calls.Add(1)
	if d, ok := ctx.Deadline(); ok {
		f.deadline.Store(int64(time.Until(d)))
	} else {
		f.deadline.Store(-1)
	}
	if f.block {
		if f.started != nil && f.once.CompareAndSwap(false, true) {
			close(f.started)
		}
		<-ctx.Done()
		return ctx.Err()
	}
	return f.err
}

func (f *fakePeer) Hello(ctx context.Context, req *grovev1.HelloRequest) (*grovev1.HelloResponse, error) {
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	return &grovev1.HelloResponse{
		Params:  req.GetParams(),
		Sum:     req.GetSum(),
		Session: append([]byte("session-"), req.GetSalt()...),
		Band:    &grovev1.Band{Level: req.GetLevels(), Values: make([]byte, f.pad)},
	}, nil
}

func (f *fakePeer) Descend(ctx context.Context, req *grovev1.DescendRequest) (*grovev1.DescendResponse, error) {
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	return &grovev1.DescendResponse{Band: &grovev1.Band{Level: req.GetLevels(), Values: req.GetDiffer()}}, nil
}

func (f *fakePeer) Reconcile(ctx context.Context, req *grovev1.ReconcileRequest) (*grovev1.ReconcileResponse, error) {
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	return &grovev1.ReconcileResponse{
		Done:    uint32(len(req.GetCounts())),
		Missing: req.GetFingerprints(),
		Rows:    []*grovev1.Row{{Key: req.GetSession(), Value: req.GetDiffer(), Ts: int64(req.GetFirst()), Deleted: req.GetKeysOnly()}},
	}, nil
}

func (f *fakePeer) Push(ctx context.Context, req *grovev1.PushRequest) (*grovev1.PushResponse, error) {
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	return &grovev1.PushResponse{Staged: uint32(len(req.GetRows()))}, nil
}

func (f *fakePeer) Commit(ctx context.Context, req *grovev1.CommitRequest) (*grovev1.CommitResponse, error) {
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	return &grovev1.CommitResponse{Applied: uint32(len(req.GetRows())), Sum: req.GetSession()}, nil
}

func (f *fakePeer) Close(ctx context.Context, req *grovev1.CloseRequest) (*grovev1.CloseResponse, error) {
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	return &grovev1.CloseResponse{}, nil
}

// protoRecorder wraps a handler and counts requests by HTTP major version,
// so tests can prove the calls really ran over HTTP/2.
type protoRecorder struct {
	h            http.Handler
	http2, other atomic.Int64
}

func (p *protoRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 2 {
		p.http2.Add(1)
	} else {
		p.other.Add(1)
	}
	p.h.ServeHTTP(w, r)
}

// serve runs h behind NewServer on a loopback port until the test ends and
// returns its base URL and the server.
func serve(t *testing.T, h http.Handler, tlsConfig *tls.Config) (string, *http.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(h, tlsConfig)
	// Rejected handshakes are expected here; keep them out of the output.
	srv.ErrorLog = log.New(io.Discard, "", 0)
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
		go func() { _ = srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { _ = srv.Serve(ln) }()
	}
	t.Cleanup(func() { _ = srv.Close() })
	return scheme + "://" + ln.Addr().String(), srv
}

// servePeer mounts peer's handler on a mux, as a node would, and serves it.
func servePeer(t *testing.T, peer *fakePeer, opts HandlerOptions, tlsConfig *tls.Config) (string, *protoRecorder) {
	t.Helper()
	path, h := NewHandler(peer, opts)
	mux := http.NewServeMux()
	mux.Handle(path, h)
	rec := &protoRecorder{h: mux}
	url, _ := serve(t, rec, tlsConfig)
	return url, rec
}

func newClient(t *testing.T, url string, opts ClientOptions) *Client {
	t.Helper()
	c, err := NewClient(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdle)
	return c
}

// pki is a throwaway public key infrastructure written to a temporary
// directory: two CAs, a server certificate for 127.0.0.1 from CA A, and a
// client certificate from each CA. Nothing of it outlives the test.
type pki struct {
	caA, caB                string // CA certificate files
	serverCert, serverKey   string
	clientACert, clientAKey string
	clientBCert, clientBKey string
	dir                     string
}

type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	p := &pki{dir: dir}
	a := newCA(t, dir, "grove test CA A", &p.caA)
	b := newCA(t, dir, "grove test CA B", &p.caB)
	p.serverCert, p.serverKey = newLeaf(t, dir, "server", a, true)
	p.clientACert, p.clientAKey = newLeaf(t, dir, "client-a", a, false)
	p.clientBCert, p.clientBKey = newLeaf(t, dir, "client-b", b, false)
	return p
}

func template(t *testing.T, cn string) *x509.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
}

func newCA(t *testing.T, dir, cn string, file *string) issuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := template(t, cn)
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	*file = writePEM(t, dir, cn+".crt", "CERTIFICATE", der)
	return issuer{cert: cert, key: key}
}

func newLeaf(t *testing.T, dir, cn string, ca issuer, server bool) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := template(t, cn)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, cn+".crt", "CERTIFICATE", der), writePEM(t, dir, cn+".key", "PRIVATE KEY", keyDER)
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	return writeFile(t, dir, name, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// within runs fn and fails the test if it takes longer than limit, so a
// hang shows up as a failure naming the call instead of a test timeout.
func within(t *testing.T, limit time.Duration, fn func() error) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return time.Since(start), err
	case <-time.After(limit):
		t.Fatalf("call still running after %v", limit)
		return 0, nil
	}
}

// isAny reports whether err matches one of targets.
func isAny(err error, targets ...error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
