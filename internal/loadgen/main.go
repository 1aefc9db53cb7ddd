// Command loadgen is the load generator of scripts/sidecar-load.sh: keep-alive
// GETs from a fixed number of goroutines for a fixed time, loopback only.
// It prints one JSON line: requests, errors, req/s and latency percentiles.
//
//	authrefresh token | go run ./internal/loadgen -url http://127.0.0.1:8080/api/v1/me -auth-stdin
//
// The token is read from stdin, never from the command line, where other
// users of the machine could read it.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

func main() {
	target := flag.String("url", "", "URL to GET (loopback only)")
	authStdin := flag.Bool("auth-stdin", false, "read an access token from stdin and send it as a Bearer token")
	concurrency := flag.Int("c", 32, "concurrent requests")
	duration := flag.Duration("d", 10*time.Second, "measured duration")
	warmup := flag.Duration("warmup", time.Second, "unmeasured warm-up")
	mode := flag.String("mode", "get", "get: keep-alive GETs; upload: -c concurrent POSTs of -size bytes, once; slow: -c connections sending a body a byte every 5 s for -d")
	size := flag.Int("size", 1<<20, "upload: body size in bytes")
	flag.Parse()
	var err error
	switch *mode {
	case "get":
		err = run(*target, *authStdin, *concurrency, *duration, *warmup, os.Stdin, os.Stdout)
	case "upload":
		err = upload(*target, *concurrency, *size, os.Stdout)
	case "slow":
		err = slow(*target, *concurrency, *duration, 5*time.Second, os.Stdout)
	default:
		err = fmt.Errorf("-mode %q: want get, upload or slow", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

type result struct {
	Requests    int     `json:"requests"`     // measured, after the warm-up
	AllRequests int     `json:"all_requests"` // with the warm-up, for CPU-per-request figures
	Errors      int     `json:"errors"`
	ReqPerSec   float64 `json:"req_per_s"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
}

// loopback parses target, which must be on a loopback address.
func loopback(target string) (*url.URL, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("-url %q is not a URL", target)
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("-url must be a loopback address, not %q", u.Hostname())
	}
	return u, nil
}

func run(target string, authStdin bool, concurrency int, duration, warmup time.Duration, stdin io.Reader, stdout io.Writer) error {
	if _, err := loopback(target); err != nil {
		return err
	}
	auth := ""
	if authStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if strings.TrimSpace(line) == "" {
			return fmt.Errorf("no token on stdin: %v", err)
		}
		auth = "Bearer " + strings.TrimSpace(line)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency, MaxIdleConns: concurrency}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()

	start := time.Now()
	measureFrom, end := start.Add(warmup), start.Add(warmup+duration)
	var mu sync.Mutex
	var res result
	var latencies []time.Duration
	var wg sync.WaitGroup
	for i := 0; i < concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			errs, all := 0, 0
			for {
				began := time.Now()
				if !began.Before(end) {
					break
				}
				ok := get(client, target, auth)
				all++
				if began.After(measureFrom) {
					if ok {
						mine = append(mine, time.Since(began))
					} else {
						errs++
					}
				}
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			res.Errors += errs
			res.AllRequests += all
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(latencies)
	res.Requests = len(latencies)
	res.ReqPerSec = float64(res.Requests) / duration.Seconds()
	if n := len(latencies); n > 0 {
		res.P50ms = float64(latencies[n/2].Microseconds()) / 1000
		res.P99ms = float64(latencies[n*99/100].Microseconds()) / 1000
	}
	return json.NewEncoder(stdout).Encode(res)
}

func get(client *http.Client, target, auth string) bool {
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return false
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
