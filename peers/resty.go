package peers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/go-resty/resty/v2"
)

// Resty is resty v2 with token refresh as its tracker describes it
// (go-resty/resty#1007, #416): OnBeforeRequest attaches the current token, a
// retry condition retries a 401 once, and a retry hook refreshes the token
// first. resty itself has no refresh support, no single flight and no
// stale-token check. The charitable choice here: refreshes are serialised by
// a mutex and each presents the newest refresh token, so concurrent 401s do
// not trip reuse detection (without the mutex, resty behaves like seed 000).
type Resty struct {
	client     *resty.Client
	plain      *resty.Client // for the refresh call: no hooks, no retry
	refreshURL string

	mu                 sync.Mutex // serialises refreshes and guards the tokens
	access, refreshTok string
}

// NewResty returns the resty peer for an API at baseURL whose JSON refresh
// endpoint is refreshURL, logged in with access and refresh, sending through
// base.
func NewResty(baseURL, refreshURL, access, refresh string, base http.RoundTripper) *Resty {
	p := &Resty{refreshURL: refreshURL, access: access, refreshTok: refresh}
	p.plain = resty.New().SetTransport(base)
	p.client = resty.New().
		SetTransport(base).
		SetBaseURL(baseURL).
		OnBeforeRequest(func(_ *resty.Client, r *resty.Request) error {
			r.SetAuthToken(p.token())
			return nil
		}).
		SetRetryCount(1).
		AddRetryCondition(func(r *resty.Response, err error) bool {
			return err == nil && r.StatusCode() == http.StatusUnauthorized
		}).
		AddRetryHook(func(r *resty.Response, err error) {
			if err == nil && r.StatusCode() == http.StatusUnauthorized {
				_ = p.refresh(r.Request.Context())
			}
		})
	return p
}

func (p *Resty) token() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.access
}

// refresh exchanges the refresh token for a new pair, one at a time.
func (p *Resty) refresh(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var pair struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	resp, err := p.plain.R().
		SetContext(ctx).
		SetBody(map[string]string{"refresh_token": p.refreshTok}).
		Post(p.refreshURL)
	if err != nil {
		return err
	}
	if resp.StatusCode() != http.StatusOK {
		return fmt.Errorf("refresh: status %d", resp.StatusCode())
	}
	if err := json.Unmarshal(resp.Body(), &pair); err != nil || pair.AccessToken == "" {
		return errors.New("refresh: malformed answer")
	}
	p.access, p.refreshTok = pair.AccessToken, pair.RefreshToken
	return nil
}

// Get sends GET path; a status other than 200 is an error.
func (p *Resty) Get(ctx context.Context, path string) error {
	resp, err := p.client.R().SetContext(ctx).Get(path)
	if err != nil {
		return err
	}
	if resp.StatusCode() != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode())
	}
	return nil
}
