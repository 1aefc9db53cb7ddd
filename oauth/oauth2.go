package oauth

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/internal/tokenhttp"
	"golang.org/x/oauth2"
)

// ConfigRefresher adapts a golang.org/x/oauth2 Config (Google, GitHub
// and every other provider it knows) into a Refresher: each refresh is one
// refresh_token grant through cfg, and its *oauth2.RetrieveError is
// classified by the same table as every other refresher's.
//
// client, if not nil, is the HTTP client x/oauth2 uses (oauth2.HTTPClient);
// it must not use the refreshing Transport, and its redirects are refused.
func ConfigRefresher(cfg *oauth2.Config, client *http.Client) authrefresh.Refresher {
	return authrefresh.RefreshFunc(func(ctx context.Context, tok *authrefresh.Token) (*authrefresh.Token, error) {
		if tok.RefreshToken == "" {
			return nil, authrefresh.Rejected(errors.New("no refresh token"))
		}
		c, err := tokenhttp.Client(client)
		if err != nil {
			return nil, authrefresh.Transient(err)
		}
		ctx = context.WithValue(authrefresh.WithoutAuth(ctx), oauth2.HTTPClient, c)
		// An expired copy makes the TokenSource refresh at once.
		src := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Unix(1, 0)})
		return fromOAuth2(src.Token())
	})
}

// TokenSourceRefresher adapts any oauth2.TokenSource into a Refresher
// (a workload identity source, a source of another library…). The source
// owns its own refresh token, if any; the Session only caches and shares
// what it returns. Errors are classified like ConfigRefresher's.
//
// The source decides when it fetches: a caching source (most are) hands back
// the token it holds until its own idea of the expiry, even after the server
// refused it. For the client_credentials grant use ClientCredentials, which
// needs no Login and replaces a refused token.
func TokenSourceRefresher(src oauth2.TokenSource) authrefresh.Refresher {
	return authrefresh.RefreshFunc(func(context.Context, *authrefresh.Token) (*authrefresh.Token, error) {
		return fromOAuth2(src.Token())
	})
}

// fromOAuth2 turns what x/oauth2 returned into an undated Token or a
// classified *RefreshError.
func fromOAuth2(t *oauth2.Token, err error) (*authrefresh.Token, error) {
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			if re.Response.StatusCode/100 == 3 {
				return nil, tokenhttp.RedirectError("refresh", re.Response)
			}
			e := tokenhttp.Refusal("refresh", re.Response.StatusCode, re.Response.Header, re.Body)
			e.Code, e.Description = cmp.Or(re.ErrorCode, e.Code), cmp.Or(re.ErrorDescription, e.Description)
			e.Kind = tokenhttp.Kind(e.StatusCode, e.Code)
			return nil, e
		}
		return nil, authrefresh.Transient(tokenhttp.DescribeURLError(err))
	}
	if t == nil || t.AccessToken == "" {
		return nil, authrefresh.Transient(errors.New("token source returned no access token"))
	}
	return TokenFrom(t), nil
}

// TokenFrom converts a token of golang.org/x/oauth2 (from its
// authorization-code or device flow, say) for Session.Login. When t says how
// long it lives (ExpiresIn), the Session counts that from when it takes the
// token in; else t.Expiry stands. The "id_token" and "scope" of the answer
// x/oauth2 kept are kept too.
func TokenFrom(t *oauth2.Token) *authrefresh.Token {
	tok := &authrefresh.Token{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: t.TokenType, Expiry: t.Expiry}
	tok.IDToken, _ = t.Extra("id_token").(string)
	tok.Scope, _ = t.Extra("scope").(string)
	if t.ExpiresIn > 0 {
		tok.ExpiresIn = time.Duration(t.ExpiresIn) * time.Second
		tok.Expiry = time.Time{}
	}
	return tok
}
