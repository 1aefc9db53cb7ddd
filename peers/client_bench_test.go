package peers

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
	"golang.org/x/oauth2"
)

const productJSON = `{"id":42,"name":"Widget","price":9.99,"created_by":"demo"}`

type product struct {
	ID        int     `json:"id"`
	Name      string  `json:"name"`
	Price     float64 `json:"price"`
	CreatedBy string  `json:"created_by"`
}

// jsonBase answers every request at once with a fresh 200 carrying
// productJSON, so a benchmark measures only the client stack in front of it.
type jsonBase struct{}

func (jsonBase) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	return &http.Response{
		StatusCode: http.StatusOK, Request: r, ContentLength: int64(len(productJSON)),
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   io.NopCloser(strings.NewReader(productJSON)),
	}, nil
}

// BenchmarkClientGet is the cost of one authenticated GET that decodes a
// small JSON answer, through each client stack as its users write it, in
// front of a base that does nothing. Run with -benchmem.
//
//	go test -run '^$' -bench ClientGet -benchmem -count 6
func BenchmarkClientGet(b *testing.B) {
	const api = "https://api.example.com/api/v1/"
	access := "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJkZW1vIn0.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
	expiry := time.Now().Add(time.Hour)
	ctx := context.Background()
	b.Run("floor-net-http-fixed-header", func(b *testing.B) {
		getDecode(b, &http.Client{Transport: jsonBase{}}, api+"me", "Bearer "+access)
	})
	b.Run("x-oauth2-NewClient", func(b *testing.B) {
		src := oauth2.ReuseTokenSource(nil, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: access, Expiry: expiry}))
		c := &http.Client{Transport: &oauth2.Transport{Source: src, Base: jsonBase{}}}
		getDecode(b, c, api+"me", "")
	})
	b.Run("resty", func(b *testing.B) {
		p := NewResty(api, api+"refresh", access, "r", jsonBase{})
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var out product
			_, err := p.client.R().SetContext(ctx).SetResult(&out).Get("me")
			checkProduct(b, out, err)
		}
	})
	// The same Transport in an http.Client with Timeout set: net/http then
	// enforces the timeout with a goroutine and a timer per request, because
	// the RoundTripper is not its own *http.Transport. Client.Timeout (a
	// context deadline) avoids that.
	b.Run("authrefresh-Transport-in-http.Client-with-Timeout", func(b *testing.B) {
		s := authrefresh.NewSession(nil, nil, authrefresh.Options{})
		if err := s.Login(ctx, &authrefresh.Token{AccessToken: access, Expiry: expiry}); err != nil {
			b.Fatal(err)
		}
		c := &http.Client{Transport: &authrefresh.Transport{Session: s, Base: jsonBase{}}, Timeout: authrefresh.DefaultClientTimeout}
		getDecode(b, c, api+"me", "")
	})
	b.Run("authrefresh-Client", func(b *testing.B) {
		s := authrefresh.NewSession(nil, nil, authrefresh.Options{})
		if err := s.Login(ctx, &authrefresh.Token{AccessToken: access, Expiry: expiry}); err != nil {
			b.Fatal(err)
		}
		c, err := authrefresh.NewClient(api, s)
		if err != nil {
			b.Fatal(err)
		}
		c.HTTPClient.Transport.(*authrefresh.Transport).Base = jsonBase{}
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var out product
			err := c.Get(ctx, "me", &out)
			checkProduct(b, out, err)
		}
	})
}

// getDecode is the plain net/http way: GET url through c (with authorization
// set by hand, if given) and decode the JSON answer, b.N times.
func getDecode(b *testing.B, c *http.Client, url, authorization string) {
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		req.Header.Set("Accept", "application/json")
		resp, err := c.Do(req)
		var p product
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&p)
			resp.Body.Close()
		}
		checkProduct(b, p, err)
	}
}

func checkProduct(b *testing.B, p product, err error) {
	if err != nil || p.ID != 42 {
		b.Fatalf("%+v %v", p, err)
	}
}
