package rpc

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// ServerTLS loads a server's TLS configuration: its certificate and key
// (both required) and, if caFile is not empty, the CA that client
// certificates must chain to. With a CA the server requires mutual TLS: a
// client without a certificate signed by that CA fails the handshake and
// never reaches a handler. Without one, any client may connect, and
// authentication is left to the network.
//
// The configuration accepts TLS 1.3 only: every Go peer speaks it, and it
// leaves no cipher suite to choose.
func ServerTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("%w: a TLS server needs both a certificate and a key file (got certificate %q, key %q)", ErrConfig, certFile, keyFile)
	}
	cert, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
	}
	if caFile != "" {
		pool, err := loadCAs(caFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// ClientTLS loads a client's TLS configuration: the CA that the server's
// certificate must chain to (if caFile is empty, the system's roots) and,
// for servers that require mutual TLS, the client's certificate and key —
// both or neither. The configuration accepts TLS 1.3 only.
func ClientTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("%w: a client certificate needs both a certificate and a key file (got certificate %q, key %q)", ErrConfig, certFile, keyFile)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS13}
	if certFile != "" {
		cert, err := loadKeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if caFile != "" {
		pool, err := loadCAs(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// loadKeyPair reads the files itself rather than calling
// tls.LoadX509KeyPair, whose errors do not say which file was at fault.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: certificate file: %v", ErrConfig, err)
	}
	if _, err := parseCerts(certFile, certPEM); err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: key file: %v", ErrConfig, err)
	}
	if !hasPrivateKey(keyPEM) {
		return tls.Certificate{}, fmt.Errorf("%w: key file %s holds no PEM private key", ErrConfig, keyFile)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: certificate %s with key %s: %v", ErrConfig, certFile, keyFile, err)
	}
	return cert, nil
}

// loadCAs reads a CA bundle. Unlike x509.CertPool.AppendCertsFromPEM, which
// skips what it cannot parse, a bad certificate in the bundle is an error:
// a CA silently missing would show up much later as handshakes failing.
func loadCAs(caFile string) (*x509.CertPool, error) {
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%w: CA file: %v", ErrConfig, err)
	}
	certs, err := parseCerts(caFile, data)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// parseCerts parses every CERTIFICATE block in data; file names the source
// in errors.
func parseCerts(file string, data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: PEM block %d: %v", ErrConfig, file, n, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: %s holds no PEM certificates", ErrConfig, file)
	}
	return certs, nil
}

// hasPrivateKey reports whether data holds a PEM block that can be a
// private key, so that a certificate passed as the key file gets an error
// that says so.
func hasPrivateKey(data []byte) bool {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return false
		}
		switch block.Type {
		case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY":
			return true
		}
	}
}
