package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// groveBinary builds the command once per test run: serve runs in a child
// process, so that it can be killed like a real peer.
func groveBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "grove-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "grove")
		// cgo-free, as docs/DEPLOY.md builds it: a cgo binary can fail in
		// the Go runtime under an address-space limit (TestUnderAddressLimit).
		build := exec.Command("go", "build", "-o", binPath, ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			binErr = err
			t.Logf("%s", out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// startServe starts `grove serve` in a child process and returns the URL
// it prints and the process.
func startServe(t *testing.T, args ...string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(groveBinary(t), append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Wait()
		t.Fatalf("serve printed no address: %v; stderr %s", err, stderr.String())
	}
	i := strings.Index(line, "http")
	if i < 0 {
		t.Fatalf("serve printed %q", line)
	}
	return strings.TrimSpace(line[i:]), cmd
}

type syncOut struct {
	Identical     bool                `json:"identical"`
	OnlyHere      []map[string]string `json:"only_here"`
	OnlyThere     []map[string]string `json:"only_there"`
	Different     []map[string]string `json:"different"`
	BytesSent     int64               `json:"bytes_sent"`
	BytesReceived int64               `json:"bytes_received"`
	RoundTrips    int                 `json:"round_trips"`
	Repaired      *struct {
		Converged bool `json:"converged"`
	} `json:"repaired"`
}

func syncJSONOf(t *testing.T, out string) syncOut {
	t.Helper()
	var s syncOut
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return s
}

// rowSet reads a rows file into a sorted list of its lines' meaning.
func rowSet(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%s: %v in %q", path, err, line)
		}
		canon, _ := json.Marshal(m) // sorted keys
		out = append(out, string(canon))
	}
	slices.Sort(out)
	return out
}

// TestServeSync runs the two commands against each other: keys, repair of
// both sides, exit statuses, and a peer killed with SIGKILL.
func TestServeSync(t *testing.T) {
	dir := t.TempDir()
	a, b, onlyA, onlyB, diff := makeReplicas(3000)
	ra, rb := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	writeRows(t, ra, a)
	writeRows(t, rb, b)
	bOut := filepath.Join(dir, "b.out")
	url, server := startServe(t, "--rows", rb, "--repair-out", bOut)

	code, out, errOut := grove(t, "sync", "--rows", ra, "--peer", url, "--json")
	if code != 1 {
		t.Fatalf("sync: exit %d: %s", code, errOut)
	}
	got := syncJSONOf(t, out)
	if got.Identical || !slices.Equal(keyNames(t, got.OnlyHere), sorted(onlyA)) || !slices.Equal(keyNames(t, got.OnlyThere), sorted(onlyB)) || !slices.Equal(keyNames(t, got.Different), sorted(diff)) {
		t.Fatalf("got %s\nwant only A %v, only B %v, different %v", out, onlyA, onlyB, diff)
	}
	if got.BytesSent == 0 || got.BytesReceived == 0 || got.RoundTrips < 2 {
		t.Fatalf("cost not reported: %s", out)
	}
	if _, err := os.Stat(bOut); !os.IsNotExist(err) {
		t.Fatalf("the peer wrote its rows without a repair: %v", err)
	}

	aOut := filepath.Join(dir, "a.out")
	code, out, errOut = grove(t, "sync", "--rows", ra, "--peer", url, "--json", "--repair-out", aOut)
	if code != 1 {
		t.Fatalf("repair: exit %d: %s", code, errOut)
	}
	if got := syncJSONOf(t, out); got.Repaired == nil || !got.Repaired.Converged {
		t.Fatalf("repair did not converge: %s", out)
	}
	if ra, rb := rowSet(t, aOut), rowSet(t, bOut); !slices.Equal(ra, rb) {
		t.Fatalf("after the repair the two sides' rows differ: %d and %d rows", len(ra), len(rb))
	}
	code, out, errOut = grove(t, "sync", "--rows", aOut, "--peer", url, "--json")
	if code != 0 || !syncJSONOf(t, out).Identical || syncJSONOf(t, out).RoundTrips != 1 {
		t.Fatalf("after the repair: exit %d, %s %s", code, out, errOut)
	}

	// The server's metrics: Prometheus text and expvar JSON.
	for path, want := range map[string][]string{
		"/metrics":    {`grove_sessions_total{role="responder"} 3`, `grove_budget_bytes_in_use{budget="trees"}`, `grove_trees_open 1`, "go_goroutines"},
		"/debug/vars": {`"grove": {`, `"trees_open":1`, `"responder":{"started":3`},
	} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, w := range want {
			if !strings.Contains(string(body), w) {
				t.Fatalf("%s lacks %q:\n%.2000s", path, w, body)
			}
		}
	}

	// A peer killed outright: the session ends with status 2, in time.
	server.Process.Kill()
	server.Wait()
	start := time.Now()
	code, _, errOut = grove(t, "sync", "--rows", ra, "--peer", url, "--timeout", "3s")
	if code != 2 || !strings.HasPrefix(errOut, "grove: sync: ") || time.Since(start) > 10*time.Second {
		t.Fatalf("dead peer: exit %d after %v: %q", code, time.Since(start), errOut)
	}

	// Bad input: named, status 2, and nothing written.
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte("{\"key\":\"a\",\"ts\":1}\n{\"key\":\"b\"}\n"), 0o644)
	for _, args := range [][]string{
		{"sync", "--rows", bad, "--peer", url, "--repair-out", filepath.Join(dir, "never")},
		{"sync", "--rows", ra},
		{"sync", "--rows", ra, "--peer", url, "--timeout", "-1s"},
		{"serve", "--rows", bad},
		{"serve", "--rows", ra, "--tls-cert", filepath.Join(dir, "missing.pem"), "--tls-key", filepath.Join(dir, "missing.key")},
	} {
		code, _, errOut := grove(t, args...)
		if code != 2 || !strings.HasPrefix(errOut, "grove: "+args[0]+": ") {
			t.Fatalf("%v: exit %d, %q", args, code, errOut)
		}
		if args[1] == bad && !strings.Contains(errOut, "line 2") {
			t.Fatalf("%v: %q does not name the line", args, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "never")); !os.IsNotExist(err) {
		t.Fatal("a failed sync wrote --repair-out")
	}
}

// TestServeSyncMutualTLS serves with a CA: a client with a certificate it
// signed syncs; one with no certificate, or one from another CA, gets
// nothing.
func TestServeSyncMutualTLS(t *testing.T) {
	dir := t.TempDir()
	a, b, _, _, _ := makeReplicas(500)
	ra, rb := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	writeRows(t, ra, a)
	writeRows(t, rb, b)
	ca := newCA(t, "grove test CA")
	other := newCA(t, "another CA")
	caFile := ca.write(t, dir, "ca")
	srvCert, srvKey := ca.issue(t, dir, "server", true)
	cliCert, cliKey := ca.issue(t, dir, "client", false)
	badCert, badKey := other.issue(t, dir, "stranger", false)

	url, _ := startServe(t, "--rows", rb, "--tls-cert", srvCert, "--tls-key", srvKey, "--tls-ca", caFile)
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("TLS serve printed %s", url)
	}
	code, _, errOut := grove(t, "sync", "--rows", ra, "--peer", url, "--tls-cert", cliCert, "--tls-key", cliKey, "--tls-ca", caFile)
	if code != 1 {
		t.Fatalf("client with a signed certificate: exit %d: %s", code, errOut)
	}
	for name, args := range map[string][]string{
		"no certificate":             {"--tls-ca", caFile},
		"certificate of an other CA": {"--tls-cert", badCert, "--tls-key", badKey, "--tls-ca", caFile},
	} {
		code, _, errOut := grove(t, append([]string{"sync", "--rows", ra, "--peer", url, "--timeout", "5s"}, args...)...)
		// Under TLS 1.3 the server checks the client's certificate after
		// the client has sent its first request: the client sees the
		// connection refused or reset, whichever comes first. rpc's tests
		// check that no handler ever runs for such a client.
		if code != 2 || !strings.HasPrefix(errOut, "grove: sync: ") {
			t.Fatalf("%s: exit %d: %q", name, code, errOut)
		}
	}
}

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, der: der}
}

func (c *testCA) write(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name+".pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// issue writes a certificate signed by c and its key, for a server on
// 127.0.0.1 or a client.
func (c *testCA) issue(t *testing.T, dir, name string, server bool) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

// TestGlobals checks the global options are taken from anywhere on the
// command line and the rest left in order.
func TestGlobals(t *testing.T) {
	cases := []struct {
		in   []string
		rest []string
		g    globals
		bad  bool
	}{
		{[]string{"build", "--in", "x"}, []string{"build", "--in", "x"}, globals{}, false},
		{[]string{"--quiet", "build", "--cpuprofile", "c.prof", "--in", "x"}, []string{"build", "--in", "x"}, globals{cpuProfile: "c.prof", quiet: true}, false},
		{[]string{"sync", "--memprofile=m.prof", "-quiet"}, []string{"sync"}, globals{memProfile: "m.prof", quiet: true}, false},
		{[]string{"token", "--", "--quiet"}, []string{"token", "--", "--quiet"}, globals{}, false},
		{[]string{"build", "--cpuprofile"}, nil, globals{}, true},
		{[]string{"build", "--quiet=yes"}, nil, globals{}, true},
	}
	for _, tc := range cases {
		rest, g, err := takeGlobals(tc.in)
		if (err != nil) != tc.bad {
			t.Fatalf("%q: error %v", tc.in, err)
		}
		if !tc.bad && (!slices.Equal(rest, tc.rest) || g != tc.g) {
			t.Fatalf("%q: got %q %+v, want %q %+v", tc.in, rest, g, tc.rest, tc.g)
		}
	}
}

// TestProfiles checks --cpuprofile and --memprofile write pprof files (gzip
// framed protocol buffers), and a profile that cannot be written is an
// error with status 2.
func TestProfiles(t *testing.T) {
	dir := t.TempDir()
	a, _, _, _, _ := makeReplicas(2000)
	rows := filepath.Join(dir, "a.jsonl")
	writeRows(t, rows, a)
	cpu, mem := filepath.Join(dir, "cpu.prof"), filepath.Join(dir, "mem.prof")
	code, _, errOut := grove(t, "build", "--in", rows, "--out", filepath.Join(dir, "a.tree"), "--cpuprofile", cpu, "--memprofile", mem, "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, p := range []string{cpu, mem} {
		b, err := os.ReadFile(p)
		if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
			t.Fatalf("%s: %v, %d bytes", p, err, len(b))
		}
	}
	code, _, errOut = grove(t, "token", "k", "--memprofile", filepath.Join(dir, "no", "such", "dir", "m.prof"))
	if code != 2 || !strings.Contains(errOut, "--memprofile") {
		t.Fatalf("unwritable profile: exit %d, %q", code, errOut)
	}
}
