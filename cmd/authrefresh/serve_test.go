package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// serve prints its banner, answers, and shuts down cleanly when cancelled.
func TestServeStartsAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--access-ttl", "2s"}, nil, pw, io.Discard)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatal("no banner")
	}
	base := strings.TrimPrefix(lines.Text(), "authrefresh reference server on ")
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	resp, err := http.Post(base+"/auth/login", "application/json", strings.NewReader(`{"username":"demo","password":"demo-password"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("serve exit %d", code)
	}
}
