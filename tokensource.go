package authrefresh

import (
	"context"
	"fmt"
	"net/http"

	"golang.org/x/oauth2"
)

// OAuth2 converts t to a token of golang.org/x/oauth2, with the refresh token
// left out: whoever holds the result cannot rotate the Session's credential
// behind its back.
func (t *Token) OAuth2() *oauth2.Token {
	return &oauth2.Token{AccessToken: t.AccessToken, TokenType: t.scheme(), Expiry: t.Expiry}
}

// TokenSource returns the Session as an oauth2.TokenSource, so SDKs built on
// golang.org/x/oauth2 share the Session's refreshed-ahead token and its one
// refresh. ctx bounds each wait for a refresh.
//
// A TokenSource cannot see the server's answers, so a token the server
// refuses before its expiry (revoked, rotated by another client) is handed
// out again until it expires: the SDK gets refusals meanwhile. When the SDK
// accepts an *http.Client, give it one whose Transport is a Transport for
// this Session instead (refresh and replay included). When it takes only a
// TokenSource but lets you choose its base http.RoundTripper, wrap that with
// ReportRefusals: a refused request still fails, and the next one carries a
// new token. A DPoP-bound token is not handed out (an error wrapping
// ErrNoProver): x/oauth2 sends no proofs.
func (s *Session) TokenSource(ctx context.Context) oauth2.TokenSource {
	return sessionTokenSource{ctx: ctx, s: s}
}

type sessionTokenSource struct {
	ctx context.Context
	s   *Session
}

func (ts sessionTokenSource) Token() (*oauth2.Token, error) {
	tok, err := ts.s.Token(ts.ctx)
	if err != nil {
		return nil, err
	}
	if tok.dpop() {
		// x/oauth2's Transport would send it without the proof it needs.
		return nil, fmt.Errorf("authrefresh: the Session's token is DPoP-bound, and what reads an oauth2.TokenSource sends no proofs; send its requests through a Transport for the Session: %w", ErrNoProver)
	}
	return tok.OAuth2(), nil
}

// ReportRefusals returns a RoundTripper that sends requests through base (nil:
// http.DefaultTransport) untouched, and reports to the Session every refusal
// (401) of the Session's current token, which renews it: the next request of
// an SDK that authenticates with Session.TokenSource then carries the new
// token. It neither adds a token nor replays anything; put it under the
// SDK's own oauth2.Transport.
func (s *Session) ReportRefusals(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return refusalReporter{s: s, base: base}
}

// carries reports whether the Authorization value auth is "<scheme> access",
// without building that string for every request.
func carries(auth, access string) bool {
	n := len(auth) - len(access)
	return n > 1 && auth[n-1] == ' ' && auth[n:] == access
}

type refusalReporter struct {
	s    *Session
	base http.RoundTripper
}

func (r refusalReporter) RoundTrip(req *http.Request) (*http.Response, error) {
	auth := req.Header.Get("Authorization")
	resp, err := r.base.RoundTrip(req)
	if err != nil || auth == "" {
		return resp, err
	}
	cur := r.s.held()
	if cur == nil || !carries(auth, cur.AccessToken) {
		return resp, nil
	}
	if resp.StatusCode != http.StatusUnauthorized {
		r.s.Accepted(cur)
		return resp, nil
	}
	if _, rerr := r.s.Refused(req.Context(), cur); rerr != nil {
		r.s.Options().Logger.Debug("authrefresh: refresh after a reported refusal failed", "error", rerr)
	}
	return resp, nil
}
