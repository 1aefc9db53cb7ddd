// Package naive is the hand-written interceptor of the seed articles (000, 001,
// 004), ported faithfully to Go so authrefresh can be measured against it: it
// attaches the token, and every request refused with 401 refreshes on its own
// and retries once. No single flight, no stale-token check, no refresh-ahead;
// a failed refresh logs the user out.
package naive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// ErrLoggedOut is returned once a refresh has failed: the seed's logout().
var ErrLoggedOut = errors.New("naive: logged out after a failed refresh")

// Interceptor is an http.RoundTripper with the seeds' request and response
// interceptors.
type Interceptor struct {
	// RefreshURL is the seed-style JSON refresh endpoint.
	RefreshURL string
	// Base sends requests; nil means http.DefaultTransport.
	Base http.RoundTripper
	// RetryStatus is the refusal status; 0 means 401 (seed 004 uses 403).
	RetryStatus int

	mu            sync.Mutex // guards the two tokens, like the Redux store
	access        string
	refresh       string
	loggedOut     bool
	Refreshes     atomic.Int64 // refresh calls made
	RefreshErrors atomic.Int64
}

// SetTokens stores a login's tokens.
func (n *Interceptor) SetTokens(access, refresh string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.access, n.refresh, n.loggedOut = access, refresh, false
}

func (n *Interceptor) base() http.RoundTripper {
	if n.Base != nil {
		return n.Base
	}
	return http.DefaultTransport
}

// RoundTrip implements http.RoundTripper.
func (n *Interceptor) RoundTrip(req *http.Request) (*http.Response, error) {
	n.mu.Lock()
	access, out := n.access, n.loggedOut
	n.mu.Unlock()
	if out {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, ErrLoggedOut
	}
	first := req.Clone(req.Context())
	first.Header.Set("Authorization", "Bearer "+access)
	resp, err := n.base().RoundTrip(first)
	status := n.RetryStatus
	if status == 0 {
		status = http.StatusUnauthorized
	}
	if err != nil || resp.StatusCode != status {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// originalRequest._retry = true; await refresh_token(); retry.
	newAccess, err := n.doRefresh(req.Context())
	if err != nil {
		return nil, err
	}
	retry := req.Clone(req.Context())
	if req.GetBody != nil {
		if retry.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	retry.Header.Set("Authorization", "Bearer "+newAccess)
	return n.base().RoundTrip(retry)
}

func (n *Interceptor) doRefresh(ctx context.Context) (string, error) {
	n.mu.Lock()
	rt := n.refresh
	n.mu.Unlock()
	n.Refreshes.Add(1)
	body, _ := json.Marshal(map[string]string{"refresh_token": rt})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.RefreshURL, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.base().RoundTrip(req)
	if err != nil {
		return "", n.logout(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", n.logout(fmt.Errorf("refresh answered %d", resp.StatusCode))
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return "", n.logout(err)
	}
	n.mu.Lock()
	n.access = out.AccessToken
	if out.RefreshToken != "" {
		n.refresh = out.RefreshToken
	}
	n.mu.Unlock()
	return out.AccessToken, nil
}

func (n *Interceptor) logout(cause error) error {
	n.RefreshErrors.Add(1)
	n.mu.Lock()
	n.loggedOut = true
	n.mu.Unlock()
	return fmt.Errorf("%w: %v", ErrLoggedOut, cause)
}

// Queued is the interceptor of seeds 002/003: an isRefreshing flag and a
// subscriber queue, so concurrent 401s share one refresh — but with no
// stale-token check: a 401 that arrives after the refresh finished starts
// another one.
type Queued struct {
	Interceptor
	qmu         sync.Mutex
	refreshing  bool
	subscribers []chan error
}

// RoundTrip implements http.RoundTripper.
func (q *Queued) RoundTrip(req *http.Request) (*http.Response, error) {
	q.mu.Lock()
	access := q.access
	q.mu.Unlock()
	first := req.Clone(req.Context())
	first.Header.Set("Authorization", "Bearer "+access)
	resp, err := q.base().RoundTrip(first)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	done := make(chan error, 1)
	q.qmu.Lock()
	q.subscribers = append(q.subscribers, done)
	start := !q.refreshing
	q.refreshing = true
	q.qmu.Unlock()
	if start {
		_, err := q.doRefresh(req.Context())
		q.qmu.Lock()
		subs := q.subscribers
		q.subscribers, q.refreshing = nil, false
		q.qmu.Unlock()
		for _, s := range subs { // onTokenRefreshed(): every subscriber retries
			s <- err
		}
	}
	if err := <-done; err != nil {
		return nil, err
	}
	q.mu.Lock()
	access = q.access
	q.mu.Unlock()
	retry := req.Clone(req.Context())
	if req.GetBody != nil {
		if retry.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	retry.Header.Set("Authorization", "Bearer "+access)
	return q.base().RoundTrip(retry)
}
