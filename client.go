package authrefresh

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultClientTimeout bounds a whole Client call, refresh and replay included.
const DefaultClientTimeout = 30 * time.Second

// DefaultMaxResponseBytes bounds the body a Client decodes.
const DefaultMaxResponseBytes = 32 << 20

// Client is the "axios instance" of the seeds: a base URL, default headers,
// a timeout, and JSON verbs, on top of a Transport that keeps the token fresh.
//
//	c, _ := authrefresh.NewClient("https://api.example.com/api/v1/", session)
//	err := c.Post(ctx, "data", product, &created)
//
// A non-2xx answer is an *APIError; a dead session is ErrSessionExpired.
// Fields may be changed after NewClient and before first use.
type Client struct {
	// BaseURL is what paths are resolved against. As with axios, a path is
	// appended to the base URL's path ("data" and "/data" both give
	// .../api/v1/data); an absolute URL ("https://…") is used as is, and gets
	// the token only if it has the base URL's origin.
	BaseURL *url.URL
	// Header is sent with every request (Accept: application/json by default).
	Header http.Header
	// HTTPClient sends the requests. NewClient sets one whose Transport is an
	// authrefresh Transport limited to the base URL's origin, with
	// DefaultClientTimeout.
	HTTPClient *http.Client
	// MaxResponseBytes bounds a response body the Client reads; 0 means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64
}

// NewClient returns a Client for the API at baseURL whose requests carry
// session's token. Only baseURL's origin receives the token.
func NewClient(baseURL string, session *Session) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("authrefresh: base URL %q is not an absolute http(s) URL", baseURL)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	if session == nil {
		return nil, errors.New("authrefresh: NewClient needs a Session")
	}
	t := &Transport{Session: session, Origins: []string{u.Scheme + "://" + u.Host}}
	return &Client{
		BaseURL:    u,
		Header:     http.Header{"Accept": {"application/json"}},
		HTTPClient: &http.Client{Transport: t, Timeout: DefaultClientTimeout},
	}, nil
}

// Get sends GET path and decodes the JSON answer into out (nil: discard it).
func (c *Client) Get(ctx context.Context, path string, out any) error {
	return c.JSON(ctx, http.MethodGet, path, nil, out)
}

// Post sends in as JSON to path and decodes the answer into out.
func (c *Client) Post(ctx context.Context, path string, in, out any) error {
	return c.JSON(ctx, http.MethodPost, path, in, out)
}

// Put sends in as JSON to path with PUT and decodes the answer into out.
func (c *Client) Put(ctx context.Context, path string, in, out any) error {
	return c.JSON(ctx, http.MethodPut, path, in, out)
}

// Patch sends in as JSON to path with PATCH and decodes the answer into out.
func (c *Client) Patch(ctx context.Context, path string, in, out any) error {
	return c.JSON(ctx, http.MethodPatch, path, in, out)
}

// Delete sends DELETE path and decodes the answer into out.
func (c *Client) Delete(ctx context.Context, path string, out any) error {
	return c.JSON(ctx, http.MethodDelete, path, nil, out)
}

// JSON sends a request and decodes a 2xx answer into out.
//
// in may be nil (no body), a []byte or json.RawMessage (sent as is), an
// io.Reader (streamed), or any value (encoded as JSON). out may be nil
// (answer discarded), a *[]byte (raw answer), or a pointer to decode into.
func (c *Client) JSON(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	switch v := in.(type) {
	case nil:
	case []byte:
		body = bytes.NewReader(v)
	case json.RawMessage:
		body = bytes.NewReader(v)
	case io.Reader:
		body = v
	default:
		data, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("authrefresh: encoding the %s body: %w", method, err)
		}
		body = bytes.NewReader(data)
	}
	req, err := c.NewRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		apiErr := NewAPIError(req, resp, data)
		apiErr.Err = err
		return apiErr
	}
	limit := c.MaxResponseBytes
	if limit <= 0 {
		limit = DefaultMaxResponseBytes
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("authrefresh: %s %s: reading the answer: %w", method, req.URL.Path, err)
	}
	if int64(len(data)) > limit {
		return fmt.Errorf("authrefresh: %s %s: answer larger than %d bytes", method, req.URL.Path, limit)
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*o = data
		return nil
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil // 204 No Content and friends
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("authrefresh: %s %s: decoding the answer: %w", method, req.URL.Path, err)
	}
	return nil
}

// NewRequest builds a request for path (resolved as BaseURL documents) with
// the Client's default headers.
func (c *Client) NewRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	u, err := c.resolve(path)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("authrefresh: %s %s: %w", method, path, err)
	}
	for k, v := range c.Header {
		req.Header[k] = append([]string(nil), v...)
	}
	return req, nil
}

// Do sends a request through the Client's HTTP client and returns the answer
// whatever its status; the caller closes its body.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	return c.HTTPClient.Do(req)
}

func (c *Client) resolve(path string) (string, error) {
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		return path, nil
	}
	ref, err := url.Parse(strings.TrimLeft(path, "/"))
	if err != nil {
		return "", fmt.Errorf("authrefresh: invalid path %q", path)
	}
	if ref.Scheme != "" || ref.Host != "" {
		return "", fmt.Errorf("authrefresh: invalid path %q", path)
	}
	return c.BaseURL.ResolveReference(ref).String(), nil
}
