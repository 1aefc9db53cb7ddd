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
// classified (400/401/403 rejected, the rest transient).
//
// client, if not nil, is the HTTP client x/oauth2 uses (oauth2.HTTPClient);
// it must not use the refreshing Transport.
func OAuth2ConfigRefresher(cfg *oauth2.Config, client *http.Client) Refresher {
	return RefreshFunc(func(ctx context.Context, tok *Token) (*Token, error) {
		if tok.RefreshToken == "" {
			return nil, Rejected(errors.New("no refresh token"))
		}
		c, err := httpClientOrDefault(client)
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
// (a client-credentials source, a workload identity source…). The source
// owns its own refresh token, if any; the Session only caches and shares
// what it returns. Errors are classified like OAuth2ConfigRefresher's.
func OAuth2TokenSourceRefresher(src oauth2.TokenSource) Refresher {
	return RefreshFunc(func(context.Context, *Token) (*Token, error) {
		return fromOAuth2(src.Token())
	})
}

func fromOAuth2(t *oauth2.Token, err error) (*Token, error) {
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			kind := RefreshTransient
			switch re.Response.StatusCode {
			case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
				kind = RefreshRejected
			}
			return nil, &RefreshError{Kind: kind, StatusCode: re.Response.StatusCode, Code: re.ErrorCode, Description: re.ErrorDescription}
		}
		return nil, &RefreshError{Kind: RefreshTransient, Err: describeURLError(err)}
	}
	if t == nil || t.AccessToken == "" {
		return nil, Transient(errors.New("token source returned no access token"))
	}
	tok := &Token{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: t.TokenType, Expiry: t.Expiry}
	if !t.Expiry.IsZero() && t.ExpiresIn > 0 {
		tok.IssuedAt = t.Expiry.Add(-time.Duration(t.ExpiresIn) * time.Second)
	}
	return tok, nil
}

// TokenSource returns the Session as an oauth2.TokenSource, so SDKs built on
// golang.org/x/oauth2 can use a Session's shared, refreshed-ahead token. ctx
// bounds each wait for a refresh.
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
	return &oauth2.Token{AccessToken: tok.AccessToken, TokenType: tok.scheme(), RefreshToken: "", Expiry: tok.Expiry}, nil
}
