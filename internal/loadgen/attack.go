package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// statuses counts answers by status ("error" for none).
type statuses struct {
	mu sync.Mutex
	By map[string]int `json:"statuses"`
}

func (s *statuses) add(status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.By == nil {
		s.By = map[string]int{}
	}
	s.By[status]++
}

// upload sends n concurrent POSTs of a size-byte JSON body (a product padded
// with spaces), streamed without GetBody as a client's upload is, all
// released at once.
func upload(target string, n, size int, stdout io.Writer) error {
	if _, err := loopback(target); err != nil {
		return err
	}
	product := `{"name":"upload","price":1}`
	if size < len(product) {
		return fmt.Errorf("-size must be at least %d", len(product))
	}
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: n, MaxIdleConnsPerHost: n}, Timeout: 2 * time.Minute}
	defer client.CloseIdleConnections()
	var st statuses
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			body := io.MultiReader(strings.NewReader(strings.Repeat(" ", size-len(product))), strings.NewReader(product))
			req, err := http.NewRequest(http.MethodPost, target, io.NopCloser(body))
			if err != nil {
				st.add("error")
				return
			}
			req.ContentLength = int64(size)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				st.add("error")
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			st.add(fmt.Sprint(resp.StatusCode))
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	return json.NewEncoder(stdout).Encode(map[string]any{"statuses": st.By, "seconds": time.Since(began).Seconds()})
}

// slow opens n connections that each announce a 1-MB body and send it a byte
// every interval, for hold, then reports how each ended.
func slow(target string, n int, hold, interval time.Duration, stdout io.Writer) error {
	u, err := loopback(target)
	if err != nil {
		return err
	}
	var st statuses
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
			if err != nil {
				st.add("error")
				return
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(hold + 10*time.Second))
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n", u.RequestURI(), u.Host)
			answered := make(chan string, 1)
			go func() {
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					answered <- "closed"
					return
				}
				resp.Body.Close()
				answered <- fmt.Sprint(resp.StatusCode)
			}()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			end := time.After(hold)
			for {
				select {
				case status := <-answered:
					st.add(status)
					return
				case <-end:
					st.add("held")
					return
				case <-tick.C:
					if _, err := conn.Write([]byte(" ")); err != nil {
						st.add("closed")
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	return json.NewEncoder(stdout).Encode(map[string]any{"statuses": st.By})
}
