package rpc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	grovev1 "github.com/antientropy/grove/proto/grove/v1"
)

// TestMutualTLS: with a CA file, the server lets in only clients holding a
// certificate from that CA; the others complete no handshake and never
// reach the peer.
func TestMutualTLS(t *testing.T) {
	p := newPKI(t)
	serverTLS, err := ServerTLS(p.serverCert, p.serverKey, p.caA)
	if err != nil {
		t.Fatal(err)
	}
	if serverTLS.ClientAuth != tls.RequireAndVerifyClientCert || serverTLS.MinVersion != tls.VersionTLS13 {
		t.Fatalf("ClientAuth %v MinVersion %x", serverTLS.ClientAuth, serverTLS.MinVersion)
	}
	for _, tc := range []struct {
		name          string
		cert, key, ca string
		ok            bool
		// force sends the client certificate even when it is not from a CA
		// the server asks for, which Go's client would not do on its own:
		// it proves the server verifies, not just asks.
		force bool
	}{
		{"certificate from the server's CA", p.clientACert, p.clientAKey, p.caA, true, false},
		{"no certificate", "", "", p.caA, false, false},
		{"certificate from another CA", p.clientBCert, p.clientBKey, p.caA, false, false},
		{"certificate from another CA, sent anyway", p.clientBCert, p.clientBKey, p.caA, false, true},
		{"client does not trust the server", p.clientACert, p.clientAKey, p.caB, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer := &fakePeer{}
			url, rec := servePeer(t, peer, HandlerOptions{}, serverTLS)
			clientTLS, err := ClientTLS(tc.cert, tc.key, tc.ca)
			if err != nil {
				t.Fatal(err)
			}
			if tc.force {
				cert := clientTLS.Certificates[0]
				clientTLS.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
					return &cert, nil
				}
			}
			c := newClient(t, url, ClientOptions{TLS: clientTLS})
			_, err = c.Hello(context.Background(), &grovev1.HelloRequest{})
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if peer.calls.Load() != 1 {
					t.Errorf("peer saw %d calls, want 1", peer.calls.Load())
				}
				return
			}
			if !errors.Is(err, ErrTransport) || !strings.Contains(err.Error(), url) {
				t.Fatalf("got %v, want ErrTransport naming %s", err, url)
			}
			if n, reqs := peer.calls.Load(), rec.http2.Load()+rec.other.Load(); n != 0 || reqs != 0 {
				t.Errorf("rejected client reached the server: %d HTTP requests, %d peer calls", reqs, n)
			}
		})
	}
}

// TestServerTLSWithoutCA: without a CA file the server asks for no client
// certificate.
func TestServerTLSWithoutCA(t *testing.T) {
	p := newPKI(t)
	serverTLS, err := ServerTLS(p.serverCert, p.serverKey, "")
	if err != nil {
		t.Fatal(err)
	}
	if serverTLS.ClientAuth != tls.NoClientCert || serverTLS.ClientCAs != nil {
		t.Fatalf("ClientAuth %v with ClientCAs %v, want none", serverTLS.ClientAuth, serverTLS.ClientCAs)
	}
	url, _ := servePeer(t, &fakePeer{}, HandlerOptions{}, serverTLS)
	clientTLS, err := ClientTLS("", "", p.caA)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, url, ClientOptions{TLS: clientTLS})
	if _, err := c.Hello(context.Background(), &grovev1.HelloRequest{}); err != nil {
		t.Fatal(err)
	}
}

// TestTLSFileErrors: each way a certificate, key or CA file can be wrong is
// an ErrConfig that names the file (or the missing setting).
func TestTLSFileErrors(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	notPEM := writeFile(t, dir, "not.pem", []byte("hello, world\n"))
	badCert := writeFile(t, dir, "bad-cert.pem", []byte("-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n"))
	keyOnly, err := os.ReadFile(p.clientAKey)
	if err != nil {
		t.Fatal(err)
	}
	keyAsCert := writeFile(t, dir, "key-as-cert.pem", keyOnly)

	type loader func(cert, key, ca string) (*tls.Config, error)
	for _, tc := range []struct {
		name          string
		load          loader
		cert, key, ca string
		mention, what string
	}{
		{"server without certificate", ServerTLS, "", p.serverKey, "", "certificate", "needs both"},
		{"server without key", ServerTLS, p.serverCert, "", "", "key", "needs both"},
		{"client certificate without key", ClientTLS, p.clientACert, "", p.caA, "key", "needs both"},
		{"client key without certificate", ClientTLS, "", p.clientAKey, p.caA, "certificate", "needs both"},
		{"certificate unreadable", ServerTLS, missing, p.serverKey, "", missing, "no such file"},
		{"key unreadable", ServerTLS, p.serverCert, missing, "", missing, "no such file"},
		{"CA unreadable", ServerTLS, p.serverCert, p.serverKey, missing, missing, "no such file"},
		{"certificate not PEM", ClientTLS, notPEM, p.clientAKey, "", notPEM, "no PEM certificates"},
		{"certificate file holds a key", ClientTLS, keyAsCert, p.clientAKey, "", keyAsCert, "no PEM certificates"},
		{"certificate does not parse", ServerTLS, badCert, p.serverKey, "", badCert, "malformed certificate"},
		{"key not PEM", ServerTLS, p.serverCert, notPEM, "", notPEM, "no PEM private key"},
		{"key file holds a certificate", ServerTLS, p.serverCert, p.serverCert, "", p.serverCert, "no PEM private key"},
		{"key does not match", ServerTLS, p.serverCert, p.clientAKey, "", p.clientAKey, "does not match"},
		{"CA not PEM", ClientTLS, "", "", notPEM, notPEM, "no PEM certificates"},
		{"CA does not parse", ServerTLS, p.serverCert, p.serverKey, badCert, badCert, "malformed certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.load(tc.cert, tc.key, tc.ca)
			if !errors.Is(err, ErrConfig) || cfg != nil {
				t.Fatalf("got %v, %v; want ErrConfig", cfg, err)
			}
			for _, want := range []string{tc.mention, tc.what} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

// TestClientTLSWithoutFiles: no files at all is a valid client
// configuration (system roots, no client certificate), still TLS 1.3.
func TestClientTLSWithoutFiles(t *testing.T) {
	cfg, err := ClientTLS("", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RootCAs != nil || len(cfg.Certificates) != 0 || cfg.MinVersion != tls.VersionTLS13 {
		t.Fatalf("got %+v", cfg)
	}
}

// TestMissingClientCertificateSaysSo: a client without a certificate, at a
// server that requires one, is told that, whichever way the refusal reaches
// it (the TLS alert, a broken pipe, a reset). Several rounds, since which
// way it reaches the client is a race.
func TestMissingClientCertificateSaysSo(t *testing.T) {
	p := newPKI(t)
	serverTLS, err := ServerTLS(p.serverCert, p.serverKey, p.caA)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		url, _ := servePeer(t, &fakePeer{}, HandlerOptions{}, serverTLS)
		clientTLS, err := ClientTLS("", "", p.caA)
		if err != nil {
			t.Fatal(err)
		}
		c := newClient(t, url, ClientOptions{TLS: clientTLS})
		_, err = c.Hello(context.Background(), &grovev1.HelloRequest{})
		if !errors.Is(err, ErrTransport) || !strings.Contains(err.Error(), "requires a client certificate") {
			t.Fatalf("round %d: got %v, want ErrTransport saying a client certificate is required", i, err)
		}
	}
	// A server that asks for none: the client says nothing of certificates.
	url, _ := servePeer(t, &fakePeer{}, HandlerOptions{}, nil)
	c := newClient(t, url, ClientOptions{})
	if _, err := c.Hello(context.Background(), &grovev1.HelloRequest{}); err != nil {
		t.Fatal(err)
	}
}

// TestHTTPSWithoutTLSUsesSystemRoots: an https peer without ClientOptions.TLS
// is dialled with TLS and verified against the system's roots, so a
// certificate from a private CA is refused as unknown, not as a
// configuration error.
func TestHTTPSWithoutTLSUsesSystemRoots(t *testing.T) {
	p := newPKI(t)
	serverTLS, err := ServerTLS(p.serverCert, p.serverKey, "")
	if err != nil {
		t.Fatal(err)
	}
	url, rec := servePeer(t, &fakePeer{}, HandlerOptions{}, serverTLS)
	c, err := NewClient(url, ClientOptions{})
	if err != nil {
		t.Fatalf("NewClient(%s) without TLS options: %v", url, err)
	}
	_, err = c.Hello(context.Background(), &grovev1.HelloRequest{})
	var unknown x509.UnknownAuthorityError
	if !errors.Is(err, ErrTransport) || !errors.As(err, &unknown) {
		t.Fatalf("got %v, want ErrTransport from an unknown authority", err)
	}
	if n := rec.http2.Load() + rec.other.Load(); n != 0 {
		t.Fatalf("%d requests reached a server the client does not trust", n)
	}
}
