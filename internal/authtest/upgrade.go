package authtest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// EchoUpgrade is an upstream that takes an upgrade to the protocol "echo"
// (as a WebSocket would be taken) and answers each line sent through it
// with "echo: " and the line. It keeps the header of the last request.
type EchoUpgrade struct {
	*httptest.Server
	header atomic.Value // http.Header
}

// StartEchoUpgrade starts an EchoUpgrade on 127.0.0.1 until the test ends.
func StartEchoUpgrade(tb testing.TB) *EchoUpgrade {
	tb.Helper()
	e := &EchoUpgrade{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.header.Store(r.Header.Clone())
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "no upgrade", http.StatusBadRequest)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo: " + line)
		brw.Flush()
	}))
	tb.Cleanup(e.Close)
	return e
}

// Header is the header of the last request e got.
func (e *EchoUpgrade) Header() http.Header {
	h, _ := e.header.Load().(http.Header)
	return h
}

// Upgrade asks the server at addr (host:port) for GET path upgraded to
// "echo", with Host host and the header lines extra ("Name: value\r\n"
// each), and checks that a line sent through the connection comes back
// echoed. It fails the test otherwise.
func Upgrade(tb testing.TB, addr, host, path, extra string) {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n%sConnection: Upgrade\r\nUpgrade: echo\r\n\r\n", path, host, extra)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		tb.Fatalf("the upgrade: %v %v", resp, err)
	}
	io.WriteString(c, "ping\n")
	if line, _ := br.ReadString('\n'); line != "echo: ping\n" {
		tb.Fatalf("through the upgraded connection: %q", line)
	}
}
