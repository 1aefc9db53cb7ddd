package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// proxyTLS is the sidecar's TLS configuration: its own certificate and key
// (the key file 0600), and, with caFile, mutual TLS: a client must present a
// certificate signed by that CA, or the handshake fails before a request is
// read. Mutual TLS is one of the two authorities --allow-remote accepts.
func proxyTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, usageError{"--tls-cert-file and --tls-key-file go together (and --client-ca-file needs both: mutual TLS is served over TLS)"}
	}
	if _, err := readSecret("--tls-key-file", keyFile, 1, "it is a PEM private key"); err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, usageError{fmt.Sprintf("--tls-cert-file/--tls-key-file: %v", err)}
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, usageError{fmt.Sprintf("--client-ca-file: %v", err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageError{fmt.Sprintf("--client-ca-file %s holds no PEM certificate", caFile)}
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
