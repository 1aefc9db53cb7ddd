package authrefresh

import (
	"context"
	"errors"
	"net/http"
	"time"

	"golang.org/x/oauth2"
)

// OAuth2ConfigRefresher adapts a golang.org/x/oauth2 Config (Google, GitHub
// and every other provider it knows) into a Refresher: each refresh is one
// refresh_token grant through cfg, and its *oauth2.RetrieveError is
// classified by the same table as every other refresher's.
//
// client, if not nil, is the HTTP client x/oauth2 uses (oauth2.HTTPClient);
// it must not use the refreshing Transport, and its redirects are refused.
func OAuth2ConfigRefresher(cfg *oauth2.Config, client *http.Client) Refresher {
	return RefreshFunc(func(ctx context.Context, tok *Token) (*Token, error) {
		if tok.RefreshToken == "" {
			return nil, Rejected(errors.New("no refresh token"))
		}
		c, err := tokenEndpointClient(client)
		if err != nil {
			return nil, Transient(err)
		}
		ctx = context.WithValue(WithoutAuth(ctx), oauth2.HTTPClient, c)
		// An expired copy makes the TokenSource refresh at once.
		src := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Unix(1, 0)})
		return fromOAuth2(src.Token())
	})
}

// OAuth2TokenSourceRefresher adapts any oauth2.TokenSource into a Refresher
// (a workload identity source, a source of another library…). The source
// owns its own refresh token, if any; the Session only caches and shares
// what it returns. Errors are classified like OAuth2ConfigRefresher's.
//
// The source decides when it fetches: a caching source (most are) hands back
// the token it holds until its own idea of the expiry, even after the server
// refused it. For the client_credentials grant use ClientCredentials, which
// needs no Login and replaces a refused token.
func OAuth2TokenSourceRefresher(src oauth2.TokenSource) Refresher {
	return RefreshFunc(func(context.Context, *Token) (*Token, error) {
		return fromOAuth2(src.Token())
	})
}

// fromOAuth2 turns what x/oauth2 returned into an undated Token or a
// classified *RefreshError.
func fromOAuth2(t *oauth2.Token, err error) (*Token, error) {
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			if re.Response.StatusCode/100 == 3 {
				return nil, redirectError("refresh", re.Response)
			}
			e := refusalError("refresh", re.Response.StatusCode, re.Response.Header, re.Body)
			e.Code, e.Description = firstNonEmpty(re.ErrorCode, e.Code), firstNonEmpty(re.ErrorDescription, e.Description)
			e.Kind = kindOf(e.StatusCode, e.Code)
			return nil, e
		}
		return nil, Transient(describeURLError(err))
	}
	if t == nil || t.AccessToken == "" {
		return nil, Transient(errors.New("token source returned no access token"))
	}
	return TokenFromOAuth2(t), nil
}

// TokenFromOAuth2 converts a token of golang.org/x/oauth2 (from its
// authorization-code or device flow, say) for Session.Login. When t says how
// long it lives (ExpiresIn), the Session counts that from when it takes the
// token in; else t.Expiry stands. The "id_token" and "scope" of the answer
// x/oauth2 kept are kept too.
func TokenFromOAuth2(t *oauth2.Token) *Token {
	tok := &Token{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: t.TokenType, Expiry: t.Expiry}
	tok.IDToken, _ = t.Extra("id_token").(string)
	tok.Scope, _ = t.Extra("scope").(string)
	if t.ExpiresIn > 0 {
		tok.ExpiresIn = time.Duration(t.ExpiresIn) * time.Second
		tok.Expiry = time.Time{}
	}
	return tok
}

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
// new token.
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
	cur := r.s.current.Load().token()
	if cur == nil || !carries(auth, cur.AccessToken) {
		return resp, nil
	}
	if resp.StatusCode != http.StatusUnauthorized {
		r.s.Accepted(cur)
		return resp, nil
	}
	if _, rerr := r.s.Refresh(req.Context(), cur); rerr != nil {
		r.s.opts.Logger.Debug("authrefresh: refresh after a reported refusal failed", "error", rerr)
	}
	return resp, nil
}
