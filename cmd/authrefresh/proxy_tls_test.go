package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate and key in PEM for a server at 127.0.0.1, or
// for a client.
func (ca *testCA) issue(t *testing.T, name string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage, tmpl.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// With mutual TLS a remote sidecar needs no shared secret: a client with a
// certificate from the configured CA is served; one without a certificate,
// or with one another CA signed, is refused in the handshake, before any
// request is read.
func TestProxyMutualTLS(t *testing.T) {
	_, base := startServer(t)
	t.Setenv("AUTHREFRESH_CONFIG_DIR", t.TempDir())
	if code, _, errOut := cli(t, "demo-password\n", "login", "--url", base, "--username", "demo", "--password-stdin"); code != exitOK {
		t.Fatalf("login: %d %s", code, errOut)
	}
	dir := t.TempDir()
	clients, other := newTestCA(t, "clients"), newTestCA(t, "someone else")
	serverCA := newTestCA(t, "servers")
	srvCert, srvKey := serverCA.issue(t, "proxy", true)
	certFile, keyFile := writeFile(t, dir, "proxy.crt", srvCert), writeFile(t, dir, "proxy.key", srvKey)
	caFile := writeFile(t, dir, "clients.crt", clients.pem)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, w := io.Pipe()
	done := make(chan int, 1)
	var errOut syncBuffer
	go func() {
		done <- run(ctx, []string{"proxy", "--listen", "127.0.0.1:0", "--allow-remote", "--tls-cert-file", certFile, "--tls-key-file", keyFile, "--client-ca-file", caFile, "--quiet"}, nil, w, &errOut)
		w.Close()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("proxy did not start: %v (exit %d) %s", err, <-done, errOut.String())
	}
	go io.Copy(io.Discard, out)
	addr := strings.Fields(strings.TrimPrefix(line, "authrefresh proxy on "))[0]
	if !strings.HasPrefix(addr, "https://") {
		t.Fatalf("announced %q", line)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(serverCA.pem)
	get := func(cert *tls.Certificate) (int, error) {
		cfg := &tls.Config{RootCAs: roots}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
		defer hc.CloseIdleConnections()
		resp, err := hc.Get(addr + "/api/v1/me")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	pair := func(ca *testCA) *tls.Certificate {
		c, k := ca.issue(t, "client", false)
		kp, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return &kp
	}
	if status, err := get(pair(clients)); err != nil || status != 200 {
		t.Fatalf("a client with the CA's certificate: %d %v", status, err)
	}
	if status, err := get(nil); err == nil {
		t.Fatalf("a client without a certificate was answered %d", status)
	}
	if status, err := get(pair(other)); err == nil {
		t.Fatalf("a client with another CA's certificate was answered %d", status)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}

	// Misconfigurations are refused at start, saying what to fix.
	readable := filepath.Join(dir, "readable.key")
	_ = os.WriteFile(readable, srvKey, 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--allow-remote", "--client-ca-file", caFile}, "--tls-cert-file and --tls-key-file go together"},
		{[]string{"--allow-remote", "--tls-cert-file", certFile, "--tls-key-file", keyFile}, "--allow-remote needs --client-secret-file or mutual TLS"},
		{[]string{"--tls-cert-file", certFile, "--tls-key-file", readable}, "chmod 600"},
		{[]string{"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--client-ca-file", keyFile}, "holds no PEM certificate"},
		{[]string{"--tls-cert-file", caFile, "--tls-key-file", keyFile}, "--tls-cert-file/--tls-key-file"},
	} {
		code, _, errOut := cli(t, "", append([]string{"proxy", "--listen", "127.0.0.1:0", "--upstream", base}, c.args...)...)
		if code != exitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, %s; want %q", c.args, code, errOut, c.want)
		}
	}
}
