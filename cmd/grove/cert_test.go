package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/antientropy/grove/rpc"
)

// certCmd runs `grove cert ARGS...` in-process.
func certCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(append([]string{"cert"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// mustCert runs `grove cert ARGS...` and fails the test unless it succeeds.
func mustCert(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := certCmd(t, args...)
	if code != exitOK || errOut != "" {
		t.Fatalf("grove cert %q: exit %d, stderr %q", args, code, errOut)
	}
	return out
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		t.Fatalf("%s: no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dirFiles maps each file in dir to its bytes.
func dirFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, e := range entries {
		if m[e.Name()], err = os.ReadFile(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// tlsProbe is an HTTPS server on loopback with rpc.ServerTLS's
// configuration; it records which client certificate each request came
// with.
type tlsProbe struct {
	url     string
	calls   atomic.Int64
	clients atomic.Value // string: the last client certificate's CN
}

func startTLSProbe(t *testing.T, certFile, keyFile, caFile string) *tlsProbe {
	t.Helper()
	cfg, err := rpc.ServerTLS(certFile, keyFile, caFile)
	if err != nil {
		t.Fatal(err)
	}
	p := &tlsProbe{}
	srv := rpc.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.calls.Add(1)
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			p.clients.Store(r.TLS.PeerCertificates[0].Subject.CommonName)
		}
		io.WriteString(w, r.Proto)
	}), cfg)
	// Rejected handshakes are what some tests are for; keep them quiet.
	srv.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	p.url = "https://" + ln.Addr().String() + "/"
	return p
}

// tlsGet makes one request to url with cfg, over HTTP/2 when TLS allows it.
func tlsGet(url string, cfg *tls.Config) (*http.Response, []byte, error) {
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// TestCertMutualTLS makes a CA and two node certificates with the command,
// and a node of another CA, then runs real HTTP/2 mutual-TLS handshakes on
// loopback with rpc.ServerTLS/ClientTLS: each node's one certificate works
// as server and as client, and strangers get no request through.
func TestCertMutualTLS(t *testing.T) {
	dir, otherDir := t.TempDir(), t.TempDir()
	out := mustCert(t, "ca", "--dir", dir)
	for _, want := range []string{filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"), "CN=grove CA", "expires", "(3650 days)"} {
		if !strings.Contains(out, want) {
			t.Errorf("cert ca printed %q, without %q", out, want)
		}
	}
	out = mustCert(t, "node", "--dir", dir, "--name", "n1", "--host", "127.0.0.1")
	for _, want := range []string{filepath.Join(dir, "n1.crt"), filepath.Join(dir, "n1.key"), "CN=n1", "hosts    127.0.0.1\n", "expires", "(1825 days)"} {
		if !strings.Contains(out, want) {
			t.Errorf("cert node printed %q, without %q", out, want)
		}
	}
	mustCert(t, "node", "--dir", dir, "--name", "n2", "--host", "localhost,127.0.0.1")
	mustCert(t, "ca", "--dir", otherDir)
	mustCert(t, "node", "--dir", otherDir, "--name", "stranger", "--host", "127.0.0.1")

	// Exactly the files asked for: no temporary file is left behind, and
	// keys are private whatever the umask.
	got := slices.Sorted(maps.Keys(dirFiles(t, dir)))
	if want := []string{"ca.crt", "ca.key", "n1.crt", "n1.key", "n2.crt", "n2.key"}; !slices.Equal(got, want) {
		t.Fatalf("%s holds %q, want %q", dir, got, want)
	}
	for _, name := range got {
		want := os.FileMode(0o644)
		if strings.HasSuffix(name, ".key") {
			want = 0o600
		}
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}

	f := func(d, name string) string { return filepath.Join(d, name) }
	for _, tc := range []struct {
		name           string
		server         string // node whose certificate the server uses, from dir
		cert, key, ca  string // the client's files
		forceClientCrt bool   // send the certificate even if the server's CA list does not name its issuer
		ok             bool
	}{
		{"n2 dials n1", "n1", f(dir, "n2.crt"), f(dir, "n2.key"), f(dir, "ca.crt"), false, true},
		{"n1 dials n2: one certificate serves and dials", "n2", f(dir, "n1.crt"), f(dir, "n1.key"), f(dir, "ca.crt"), false, true},
		{"client certificate from another CA", "n1", f(otherDir, "stranger.crt"), f(otherDir, "stranger.key"), f(dir, "ca.crt"), true, false},
		{"client without a certificate", "n1", "", "", f(dir, "ca.crt"), false, false},
		{"client trusts another CA only", "n1", f(dir, "n2.crt"), f(dir, "n2.key"), f(otherDir, "ca.crt"), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			probe := startTLSProbe(t, f(dir, tc.server+".crt"), f(dir, tc.server+".key"), f(dir, "ca.crt"))
			cfg, err := rpc.ClientTLS(tc.cert, tc.key, tc.ca)
			if err != nil {
				t.Fatal(err)
			}
			if tc.forceClientCrt {
				c := cfg.Certificates[0]
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
			}
			resp, body, err := tlsGet(probe.url, cfg)
			if !tc.ok {
				if err == nil {
					t.Fatalf("request succeeded (%s), want a failed handshake", body)
				}
				if n := probe.calls.Load(); n != 0 {
					t.Fatalf("a rejected client reached the handler %d times", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK || string(body) != "HTTP/2.0" || resp.TLS.Version != tls.VersionTLS13 {
				t.Fatalf("status %d, protocol %q, TLS %x; want 200 over HTTP/2 and TLS 1.3", resp.StatusCode, body, resp.TLS.Version)
			}
			if cn := resp.TLS.PeerCertificates[0].Subject.CommonName; cn != tc.server {
				t.Errorf("server presented %q, want %q", cn, tc.server)
			}
			wantClient := strings.TrimSuffix(filepath.Base(tc.cert), ".crt")
			if cn, _ := probe.clients.Load().(string); cn != wantClient {
				t.Errorf("server saw client certificate %q, want %q", cn, wantClient)
			}
		})
	}
}

// TestCertHosts: a node certificate is good for exactly the hosts given,
// as a server (checked in a real handshake, dialing 127.0.0.1 under each
// name) and as a client.
func TestCertHosts(t *testing.T) {
	dir := t.TempDir()
	mustCert(t, "ca", "--dir", dir)
	out := mustCert(t, "node", "--dir", dir, "--name", "n1", "--host", "127.0.0.1,Node1.Example.com,[::1]", "--host", "localhost")
	if !strings.Contains(out, "hosts    node1.example.com, localhost, 127.0.0.1, ::1\n") {
		t.Errorf("cert node printed %q, without its hosts", out)
	}
	cert := readCert(t, filepath.Join(dir, "n1.crt"))
	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, filepath.Join(dir, "ca.crt")))
	probe := startTLSProbe(t, filepath.Join(dir, "n1.crt"), filepath.Join(dir, "n1.key"), filepath.Join(dir, "ca.crt"))
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"127.0.0.1", true},
		{"127.0.0.2", false},
		{"::1", true},
		{"localhost", true},
		{"node1.example.com", true},
		{"NODE1.example.com", true},
		{"node2.example.com", false},
		{"example.com", false},
	} {
		t.Run(tc.host, func(t *testing.T) {
			for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
				_, err := cert.Verify(x509.VerifyOptions{DNSName: tc.host, Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}})
				if (err == nil) != tc.ok {
					t.Errorf("Verify(%s, usage %v): %v, want ok=%v", tc.host, usage, err, tc.ok)
				}
			}
			cfg, err := rpc.ClientTLS(filepath.Join(dir, "n1.crt"), filepath.Join(dir, "n1.key"), filepath.Join(dir, "ca.crt"))
			if err != nil {
				t.Fatal(err)
			}
			cfg.ServerName = tc.host
			_, _, err = tlsGet(probe.url, cfg)
			if (err == nil) != tc.ok {
				t.Errorf("handshake as %s: %v, want ok=%v", tc.host, err, tc.ok)
			}
			if !tc.ok && err != nil && !strings.Contains(err.Error(), "is valid for") {
				t.Errorf("handshake as %s failed, but not for the name: %v", tc.host, err)
			}
		})
	}
}

// TestCertRefusals: each bad invocation exits 2 with a message naming the
// problem, and changes no file: existing ones stay byte for byte, and no
// new one (not even a temporary file) appears.
func TestCertRefusals(t *testing.T) {
	dir := t.TempDir()
	mustCert(t, "ca", "--dir", dir, "--days", "30")
	mustCert(t, "node", "--dir", dir, "--name", "n1", "--host", "127.0.0.1", "--days", "10")
	// A key left without its certificate must not be replaced silently
	// either.
	if err := os.WriteFile(filepath.Join(dir, "orphan.key"), []byte("not replaced\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noCA := t.TempDir()
	crtOnly := t.TempDir()
	caCrt, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(crtOnly, "ca.crt"), caCrt, 0o644); err != nil {
		t.Fatal(err)
	}
	dirs := []string{dir, noCA, crtOnly}
	before := make([]map[string][]byte, len(dirs))
	for i, d := range dirs {
		before[i] = dirFiles(t, d)
	}

	node := func(extra ...string) []string {
		return append([]string{"node", "--dir", dir, "--name", "n2", "--host", "127.0.0.1"}, extra...)
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string // in the message after "grove: cert: "
	}{
		{"no subcommand", nil, []string{"want a subcommand, ca or node"}},
		{"unknown subcommand", []string{"root"}, []string{`unknown subcommand "root"`}},
		{"no --dir", []string{"ca"}, []string{"--dir is required"}},
		{"CA exists", []string{"ca", "--dir", dir}, []string{filepath.Join(dir, "ca.key") + " already exists", "--overwrite"}},
		{"CA with node flags", []string{"ca", "--dir", noCA, "--host", "127.0.0.1"}, []string{"--name and --host are for cert node"}},
		{"node exists", []string{"node", "--dir", dir, "--name", "n1", "--host", "127.0.0.1"}, []string{filepath.Join(dir, "n1.key") + " already exists", "--overwrite"}},
		{"node key exists", []string{"node", "--dir", dir, "--name", "orphan", "--host", "127.0.0.1"}, []string{filepath.Join(dir, "orphan.key") + " already exists"}},
		{"no CA", []string{"node", "--dir", noCA, "--name", "n2", "--host", "127.0.0.1"}, []string{"no CA", filepath.Join(noCA, "ca.crt"), "grove cert ca"}},
		{"no CA key", []string{"node", "--dir", crtOnly, "--name", "n2", "--host", "127.0.0.1"}, []string{"no CA key", filepath.Join(crtOnly, "ca.key")}},
		{"no --name", []string{"node", "--dir", dir, "--host", "127.0.0.1"}, []string{"--name is required"}},
		{"name with a path", []string{"node", "--dir", dir, "--name", "../n2", "--host", "127.0.0.1"}, []string{`--name "../n2"`}},
		{"name of the CA", []string{"node", "--dir", dir, "--name", "CA", "--host", "127.0.0.1"}, []string{`--name "CA"`, "the CA's file name"}},
		{"no --host", []string{"node", "--dir", dir, "--name", "n2"}, []string{"--host is required"}},
		{"host with a port", node("--host", "10.0.0.1:7420"), []string{`--host "10.0.0.1:7420"`, "port"}},
		{"host is a URL", node("--host", "https://10.0.0.1:7420"), []string{`--host "https://10.0.0.1:7420"`, "URL"}},
		{"host is a bad IP", node("--host", "300.1.1.1"), []string{`--host "300.1.1.1"`, "not a valid IP address"}},
		{"host is 0.0.0.0", node("--host", "0.0.0.0"), []string{`--host "0.0.0.0"`, "names none"}},
		{"host is a bad name", node("--host", "node_1.example.com"), []string{`--host "node_1.example.com"`, `label "node_1"`}},
		{"empty host", node("--host", "127.0.0.1,,localhost"), []string{"--host", "empty host"}},
		{"days 0", node("--days", "0"), []string{"--days 0", "from 1 to"}},
		{"days negative", []string{"ca", "--dir", noCA, "--days", "-1"}, []string{"--days -1", "from 1 to"}},
		{"days not a number", node("--days", "ten"), []string{`invalid value "ten" for flag -days`}},
		{"days past the CA", node("--days", "31"), []string{"--days 31", "outlive its CA", "or fewer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := certCmd(t, tc.args...)
			if code != exitError || out != "" {
				t.Fatalf("exit %d, stdout %q; want 2 and nothing", code, out)
			}
			if !strings.HasPrefix(errOut, "grove: cert: ") {
				t.Fatalf("stderr %q", errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q does not say %q", errOut, w)
				}
			}
			for i, d := range dirs {
				if after := dirFiles(t, d); !maps.EqualFunc(before[i], after, bytes.Equal) {
					t.Fatalf("%s changed: had %q, has %q", d, slices.Sorted(maps.Keys(before[i])), slices.Sorted(maps.Keys(after)))
				}
			}
		})
	}

	// The limit the message offers is close to the CA's 30 days, and works.
	_, _, errOut := certCmd(t, node("--days", "31")...)
	m := regexp.MustCompile(`give --days (\d+) or fewer`).FindStringSubmatch(errOut)
	if m == nil {
		t.Fatalf("no limit offered: %q", errOut)
	}
	if n, _ := strconv.Atoi(m[1]); n < 28 || n > 30 {
		t.Fatalf("offered --days %d for a CA of 30 days", n)
	}
	mustCert(t, node("--days", m[1])...)
}

// TestCertOverwrite: --overwrite replaces a node's pair with a new one
// that works, and a new CA stops trusting certificates of the old one.
func TestCertOverwrite(t *testing.T) {
	dir := t.TempDir()
	mustCert(t, "ca", "--dir", dir)
	mustCert(t, "node", "--dir", dir, "--name", "n1", "--host", "127.0.0.1")
	old := dirFiles(t, dir)
	mustCert(t, "node", "--dir", dir, "--name", "n1", "--host", "127.0.0.1", "--overwrite")
	now := dirFiles(t, dir)
	for _, name := range []string{"n1.crt", "n1.key"} {
		if bytes.Equal(old[name], now[name]) {
			t.Errorf("%s not replaced", name)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "n1.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("replaced key: %v, %v", fi.Mode(), err)
	}
	if _, err := rpc.ServerTLS(filepath.Join(dir, "n1.crt"), filepath.Join(dir, "n1.key"), filepath.Join(dir, "ca.crt")); err != nil {
		t.Fatalf("replaced pair does not load: %v", err)
	}

	mustCert(t, "ca", "--dir", dir, "--overwrite")
	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, filepath.Join(dir, "ca.crt")))
	if _, err := readCert(t, filepath.Join(dir, "n1.crt")).Verify(x509.VerifyOptions{Roots: roots}); err == nil {
		t.Fatal("a node certificate of the replaced CA still verifies")
	}
}
