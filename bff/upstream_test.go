package bff_test

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/authrefresh/authrefresh/bff"
	"github.com/authrefresh/authrefresh/internal/authtest"
)

// hostileAPI answers every request on 127.0.0.1 with answer(the request's
// X-Seq), in one write; the answers it is given carry a stray second answer
// after their own. It returns its URL.
func hostileAPI(t *testing.T, answer func(seq string) string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					if _, err := io.WriteString(c, answer(req.Header.Get("X-Seq"))); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// An API that sends more than its answer (a body on a 204 or 304, bytes
// beyond Content-Length: a whole second answer) never gets one user's
// answer to another: two users, four callers each, every answer is the
// caller's own or an error. net/http's Transport, which the BFF used to
// send through, hands a stray answer to the next request on that
// connection now and then (TestUpstreamNeverMixesAnswers in
// internal/upstream counts it).
func TestAPINeverMixesAnswers(t *testing.T) {
	log.SetOutput(io.Discard) // net/http's "Unsolicited response" lines
	defer log.SetOutput(os.Stderr)
	stray := func(seq string) string {
		return "HTTP/1.1 200 OK\r\nX-Seq: " + seq + "\r\nContent-Length: 7\r\n\r\nnot you"
	}
	for name, answer := range map[string]func(string) string{
		"body on a 204": func(s string) string { return "HTTP/1.1 204 No Content\r\nX-Seq: " + s + "\r\n\r\n" + stray(s) },
		"body on a 304": func(s string) string { return "HTTP/1.1 304 Not Modified\r\nX-Seq: " + s + "\r\n\r\n" + stray(s) },
		"more bytes than Content-Length": func(s string) string {
			return "HTTP/1.1 200 OK\r\nX-Seq: " + s + "\r\nContent-Length: 2\r\n\r\nok" + stray(s)
		},
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, memoryStores())
			w.cfg.APIs = []bff.API{{Prefix: "/api/", Upstream: hostileAPI(t, answer) + "/"}}
			base, _ := w.replica(t)
			var mixed, failed atomic.Int64
			var wg sync.WaitGroup
			for user := range 2 {
				c := browser(t)
				w.login(t, c, "/")
				u, _ := url.Parse(w.bffURL)
				id := c.Jar.Cookies(u)[0].Value
				for caller := range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range 100 {
							seq := strconv.Itoa(user*10000 + caller*1000 + i)
							req, _ := http.NewRequest(http.MethodGet, base+"/api/x", nil)
							req.Header.Set("X-CSRF", "1")
							req.Header.Set("Cookie", "bff="+id)
							req.Header.Set("X-Seq", seq)
							resp, err := http.DefaultClient.Do(req)
							if err != nil {
								failed.Add(1)
								continue
							}
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							if got := resp.Header.Get("X-Seq"); got != "" && got != seq {
								mixed.Add(1)
							} else if got == "" {
								failed.Add(1)
							}
						}
					}()
				}
			}
			wg.Wait()
			t.Logf("%d of 800 answers went to another request, %d failed", mixed.Load(), failed.Load())
			if mixed.Load() != 0 {
				t.Fatal(fmt.Sprint(mixed.Load(), " answers went to another request"))
			}
		})
	}
}

// An upgrade (a WebSocket) through an API route carries the session's
// token and neither the browser's cookie nor the CSRF header, as every
// other API request.
func TestAPIUpgrade(t *testing.T) {
	api := authtest.StartEchoUpgrade(t)
	w := newWorld(t, memoryStores())
	w.cfg.APIs = []bff.API{{Prefix: "/ws/", Upstream: api.URL + "/"}}
	replica, _ := w.replicaOf(t, w.bffURL)
	req := w.apiRequest(t, "/ws/echo")
	authtest.Upgrade(t, strings.TrimPrefix(replica, "http://"), strings.TrimPrefix(w.bffURL, "http://"), "/ws/echo",
		"Cookie: "+req.Header.Get("Cookie")+"\r\nX-CSRF: 1\r\n")
	if h := api.Header(); !strings.HasPrefix(h.Get("Authorization"), "Bearer ") || h.Get("Cookie") != "" || h.Get("X-Csrf") != "" {
		t.Fatalf("the API got %v", h)
	}
}
