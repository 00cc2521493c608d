package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/antientropy/grove/internal/atomicfile"
	"github.com/antientropy/grove/internal/cli"
)

// Certificate lifetimes: 10 and 5 years, as CockroachDB's cert commands
// default them, so a node certificate is renewed under the same CA.
const (
	caDays   = 3650
	nodeDays = 1825
	// maxCertDays is far past any sensible lifetime and well inside what
	// time.Duration and x509's dates hold.
	maxCertDays = 36500
	// certBackdate lets a certificate be used at once by a machine whose
	// clock is a little behind the one that made it.
	certBackdate = time.Hour
)

const certUsage = "cert ca --dir DIR | cert node --dir DIR --name NAME --host H[,H...] [--days N] [--overwrite]"

// hostsFlag collects --host, which may be repeated and may hold several
// comma-separated hosts.
type hostsFlag []string

func (h *hostsFlag) String() string { return strings.Join(*h, ",") }

func (h *hostsFlag) Set(s string) error {
	*h = append(*h, strings.Split(s, ",")...)
	return nil
}

// nodeName is what may stand in a file name and a certificate's subject
// without surprises: no path separators, no leading dot.
var nodeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func runCert(args []string, e *env) (int, error) {
	if len(args) == 0 {
		return 0, fmt.Errorf("want a subcommand, ca or node (usage: grove %s)", certUsage)
	}
	flags := cli.NewFlagSet("cert")
	dir := flags.String("dir", "", "directory `DIR` of ca.crt, ca.key and the node certificates (required)")
	name := flags.String("name", "", "node: the node's `NAME`; its files are DIR/NAME.crt and DIR/NAME.key")
	var hosts hostsFlag
	flags.Var(&hosts, "host", "node: DNS names and IP addresses (`H[,H...]`) the node is reached at, comma-separated or repeated")
	days := flags.Int("days", 0, "`N` days the certificate is valid (default 3650 for ca, 1825 for node, never past the CA)")
	overwrite := flags.Bool("overwrite", false, "replace existing files")
	pos, err := cli.Parse(flags, args, 1)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, err
		}
		return 0, fmt.Errorf("%w (usage: grove %s)", err, certUsage)
	}
	if pos[0] != "ca" && pos[0] != "node" {
		return 0, fmt.Errorf("unknown subcommand %q: want ca or node", pos[0])
	}
	set := map[string]bool{}
	flags.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *dir == "" {
		return 0, errors.New("--dir is required: the directory that holds (or will hold) ca.crt and ca.key")
	}
	if set["days"] && (*days <= 0 || *days > maxCertDays) {
		return 0, fmt.Errorf("--days %d: want a number of days from 1 to %d", *days, maxCertDays)
	}
	if pos[0] == "node" {
		return exitOK, certNode(e, *dir, *name, hosts, *days, set["days"], *overwrite)
	}
	if set["name"] || set["host"] {
		return 0, errors.New("--name and --host are for cert node; cert ca makes the CA only")
	}
	if !set["days"] {
		*days = caDays
	}
	return exitOK, certCA(e, *dir, *days, *overwrite)
}

func certCA(e *env, dir string, days int, overwrite bool) error {
	crtPath, keyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if !overwrite {
		for _, p := range []string{keyPath, crtPath} {
			if err := refuseExisting(p, "a CA exists there; --overwrite replaces it, and every node certificate it signed stops being trusted"); err != nil {
				return err
			}
		}
	}
	// The directory holds the CA key: private unless the user made it
	// already.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	key, keyPEM, err := newKey()
	if err != nil {
		return err
	}
	now := certNow()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "grove CA", Organization: []string{"grove"}},
		NotBefore:             now.Add(-certBackdate),
		NotAfter:              now.Add(time.Duration(days) * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		// The CA signs node certificates only, never another CA.
		MaxPathLen:     0,
		MaxPathLenZero: true,
		KeyUsage:       x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	cert, crtPEM, err := signCert(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return err
	}
	if err := writePair(keyPath, keyPEM, crtPath, crtPEM, overwrite); err != nil {
		return err
	}
	w := e.stdout
	fmt.Fprintf(w, "wrote %s (the CA key: it signs node certificates; copy it to no node)\n", keyPath)
	fmt.Fprintf(w, "wrote %s\n", crtPath)
	fmt.Fprintf(w, "  subject  %s\n", cert.Subject)
	fmt.Fprintf(w, "  expires  %s (%d days)\n", cert.NotAfter.UTC().Format(time.RFC3339), daysLeft(now, cert.NotAfter))
	fmt.Fprintf(w, "next: grove cert node --dir %s --name NAME --host HOST[,HOST...]\n", dir)
	return nil
}

func certNode(e *env, dir, name string, hosts []string, days int, daysSet, overwrite bool) error {
	if name == "" {
		return errors.New("--name is required: the node's files are DIR/NAME.crt and DIR/NAME.key")
	}
	if !nodeName.MatchString(name) {
		return fmt.Errorf("--name %q: want 1 to 64 letters, digits, '.', '_' or '-', not starting with '.', '_' or '-'", name)
	}
	if strings.EqualFold(name, "ca") {
		return fmt.Errorf("--name %q: that is the CA's file name; choose another", name)
	}
	if len(hosts) == 0 {
		return errors.New("--host is required: the DNS names and IP addresses peers reach the node at")
	}
	ips, dnsNames, err := parseHosts(hosts)
	if err != nil {
		return err
	}
	crtPath, keyPath := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if !overwrite {
		for _, p := range []string{keyPath, crtPath} {
			if err := refuseExisting(p, "--overwrite replaces the node's certificate and key"); err != nil {
				return err
			}
		}
	}
	caCert, caKey, err := loadCA(dir)
	if err != nil {
		return err
	}
	now := certNow()
	if !now.Before(caCert.NotAfter) {
		return fmt.Errorf("the CA %s expired on %s: make a new one (grove cert ca --dir %s --overwrite) and new node certificates",
			filepath.Join(dir, "ca.crt"), caCert.NotAfter.UTC().Format(time.RFC3339), dir)
	}
	notAfter := now.Add(time.Duration(nodeDays) * 24 * time.Hour)
	if daysSet {
		notAfter = now.Add(time.Duration(days) * 24 * time.Hour)
		// A certificate that outlives its CA would fail verification from
		// the day the CA expires, which is easy to miss: refuse it now.
		if notAfter.After(caCert.NotAfter) {
			// The hour's margin keeps the number offered good for the
			// next command the user types.
			return fmt.Errorf("--days %d: the certificate would outlive its CA, which expires on %s; give --days %d or fewer",
				days, caCert.NotAfter.UTC().Format(time.RFC3339), daysLeft(now, caCert.NotAfter.Add(-time.Hour)))
		}
	} else if notAfter.After(caCert.NotAfter) {
		notAfter = caCert.NotAfter
	}
	key, keyPEM, err := newKey()
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: name, Organization: []string{"grove"}},
		NotBefore:   now.Add(-certBackdate),
		NotAfter:    notAfter,
		DNSNames:    dnsNames,
		IPAddresses: ips,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		// Both, so that one certificate serves `grove serve` (server) and
		// `grove sync` (client) on the same node.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	cert, crtPEM, err := signCert(tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return err
	}
	if err := writePair(keyPath, keyPEM, crtPath, crtPEM, overwrite); err != nil {
		return err
	}
	sans := append([]string(nil), cert.DNSNames...)
	for _, ip := range cert.IPAddresses {
		sans = append(sans, ip.String())
	}
	caPath := filepath.Join(dir, "ca.crt")
	w := e.stdout
	fmt.Fprintf(w, "wrote %s\n", keyPath)
	fmt.Fprintf(w, "wrote %s\n", crtPath)
	fmt.Fprintf(w, "  subject  %s\n", cert.Subject)
	fmt.Fprintf(w, "  issuer   %s\n", cert.Issuer)
	fmt.Fprintf(w, "  hosts    %s\n", strings.Join(sans, ", "))
	fmt.Fprintf(w, "  usage    TLS server and client\n")
	fmt.Fprintf(w, "  expires  %s (%d days)\n", cert.NotAfter.UTC().Format(time.RFC3339), daysLeft(now, cert.NotAfter))
	fmt.Fprintf(w, "on the node: copy %s, %s and %s; then serve or sync with --tls-cert %s --tls-key %s --tls-ca %s\n",
		caPath, crtPath, keyPath, filepath.Base(crtPath), filepath.Base(keyPath), filepath.Base(caPath))
	return nil
}

// parseHosts sorts hosts into IP addresses and DNS names, rejecting what
// would make a certificate no peer can verify: ports, URLs, malformed
// addresses.
func parseHosts(hosts []string) ([]net.IP, []string, error) {
	var ips []net.IP
	var names []string
	seen := map[string]bool{}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			return nil, nil, errors.New("--host: an empty host (check the commas)")
		}
		// URLs write IPv6 addresses in brackets; users copy them from there.
		bare := strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		if ip := net.ParseIP(bare); ip != nil {
			// A common mistake: the address serve listens on for every
			// interface, which no peer dials.
			if ip.IsUnspecified() {
				return nil, nil, fmt.Errorf("--host %q: listens on every interface but names none; give the addresses peers dial", h)
			}
			if !seen[ip.String()] {
				seen[ip.String()] = true
				ips = append(ips, ip)
			}
			continue
		}
		if err := checkDNSName(h); err != nil {
			return nil, nil, fmt.Errorf("--host %q: %v", h, err)
		}
		n := strings.ToLower(h)
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	return ips, names, nil
}

var dnsLabel = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)

// checkDNSName accepts a host name as TLS verification will match it
// (RFC 1123 labels, an optional leading "*." wildcard) and says what is
// wrong with anything else.
func checkDNSName(h string) error {
	if strings.Contains(h, "://") {
		return errors.New("a URL; give the host name or IP address only")
	}
	if host, port, err := net.SplitHostPort(h); err == nil {
		return fmt.Errorf("has a port; give %q without :%s (the certificate is good on every port)", host, port)
	}
	if strings.Contains(h, "%") {
		return errors.New("an IP address with a zone cannot be in a certificate")
	}
	if len(h) > 253 {
		return errors.New("longer than 253 characters")
	}
	labels := strings.Split(h, ".")
	for i, l := range labels {
		if i == 0 && l == "*" && len(labels) > 2 {
			continue
		}
		if !dnsLabel.MatchString(l) {
			return fmt.Errorf("not an IP address, nor a DNS name (label %q: want 1 to 63 letters, digits or '-', not at either end)", l)
		}
	}
	// A name whose last label is all digits is a mistyped IP address
	// (RFC 3696: no top-level domain is all-numeric).
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return errors.New("not a valid IP address")
	}
	return nil
}

// refuseExisting returns an error if path exists. Checking first, before any
// key is made, keeps a refused command from writing anything; writeNew
// checks again, without a race.
func refuseExisting(path, hint string) error {
	_, err := os.Lstat(path)
	if err == nil {
		return fmt.Errorf("%s already exists (%s)", path, hint)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// newKey makes an ECDSA P-256 key: Go's TLS 1.3 and every other TLS stack
// (OpenSSL, BoringSSL, browsers, curl) accept it, where Ed25519
// certificates are refused by many clients other than Go's.
func newKey() (crypto.Signer, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// signCert leaves the serial number to CreateCertificate, which draws a
// random one as RFC 5280 asks.
func signCert(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, []byte, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// loadCA reads DIR/ca.crt and DIR/ca.key and checks that they belong
// together and can sign.
func loadCA(dir string) (*x509.Certificate, crypto.Signer, error) {
	crtPath, keyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	crtPEM, err := os.ReadFile(crtPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("no CA: %s does not exist (make one with grove cert ca --dir %s)", crtPath, dir)
	}
	if err != nil {
		return nil, nil, err
	}
	var cert *x509.Certificate
	for rest := crtPEM; cert == nil; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, nil, fmt.Errorf("CA certificate %s holds no PEM certificate", crtPath)
		}
		if b.Type == "CERTIFICATE" {
			if cert, err = x509.ParseCertificate(b.Bytes); err != nil {
				return nil, nil, fmt.Errorf("CA certificate %s: %v", crtPath, err)
			}
		}
	}
	if !cert.IsCA || !cert.BasicConstraintsValid || (cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0) {
		return nil, nil, fmt.Errorf("%s is not a CA certificate (it may not sign certificates)", crtPath)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("no CA key: %s does not exist (sign node certificates where the CA key is)", keyPath)
	}
	if err != nil {
		return nil, nil, err
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("CA key %s: %v", keyPath, err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("CA key %s does not match the CA certificate %s", keyPath, crtPath)
	}
	return cert, key, nil
}

// parseKey reads the first private key in data, in any of the PEM forms
// OpenSSL writes, so that a CA made elsewhere can sign too.
func parseKey(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return nil, errors.New("no PEM private key")
		}
		var key any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		s, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("a %T cannot sign", key)
		}
		return s, nil
	}
}

// writePair writes a key and then its certificate, so that a certificate
// on disk always has its key. If the certificate cannot be written, a key
// this call created is removed again, and a later run is not refused.
func writePair(keyPath string, keyPEM []byte, crtPath string, crtPEM []byte, overwrite bool) error {
	if err := writeNew(keyPath, keyPEM, 0o600, overwrite); err != nil {
		return err
	}
	if err := writeNew(crtPath, crtPEM, 0o644, overwrite); err != nil {
		if !overwrite {
			os.Remove(keyPath)
		}
		return err
	}
	return nil
}

// writeNew writes data to path atomically (internal/atomicfile), with
// exactly perm — not perm less the umask: a key must be 0600 whatever the
// umask. Without overwrite an existing path is refused, not replaced.
func writeNew(path string, data []byte, perm os.FileMode, overwrite bool) error {
	f, err := atomicfile.Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if overwrite {
		return f.Commit()
	}
	if err := f.CommitNew(); errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists (--overwrite replaces it)", path)
	} else if err != nil {
		return err
	}
	return nil
}

// certNow is the time in a certificate's precision, whole seconds, so that
// the days printed are the days asked for.
func certNow() time.Time { return time.Now().Truncate(time.Second) }

// daysLeft counts whole days from now to t.
func daysLeft(now, t time.Time) int {
	return int(t.Sub(now) / (24 * time.Hour))
}
