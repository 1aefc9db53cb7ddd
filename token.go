package authrefresh

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/authrefresh/authrefresh/internal/jwtclaims"
)

// Token is one credential: an access token, the refresh token that renews it,
// and what is known about its lifetime.
//
// A Token held by a Session is shared by every request; treat it as read-only.
// String, GoString and LogValue print it redacted, so a Token can be passed to
// fmt or log/slog without leaking it. JSON marshalling is not redacted: it is how
// stores persist the token.
type Token struct {
	// AccessToken is sent as "Authorization: <TokenType> <AccessToken>".
	AccessToken string `json:"access_token"`
	// RefreshToken renews the access token. Empty if the server issued none.
	RefreshToken string `json:"refresh_token,omitempty"`
	// TokenType is the authorization scheme; empty means "Bearer".
	TokenType string `json:"token_type,omitempty"`
	// Expiry is when the access token stops working. Zero means unknown: such a
	// token is never refreshed ahead, only after the server refuses it.
	Expiry time.Time `json:"expiry,omitempty"`
	// IssuedAt is the start of the token's lifetime, used to refresh ahead at a
	// fraction of that lifetime. Zero means "when it was received".
	IssuedAt time.Time `json:"issued_at,omitempty"`
	// ExpiresIn is the lifetime the server announced ("expires_in"), counted
	// from when the token was received. A Refresher or login call returns
	// it, with Expiry zero, rather than dating the token itself: the Session
	// dates every token it takes in (refreshed, logged in, read from the
	// store) by its own clock, Options.Clock, setting IssuedAt and Expiry
	// and clearing ExpiresIn. A non-zero Expiry takes precedence. Not stored.
	ExpiresIn time.Duration `json:"-"`
	// Generation orders the tokens of a store: each refresh saves its
	// predecessor's generation + 1, and Login one more than any it replaces.
	// A Session never refreshes with, nor adopts, a token of an older
	// generation than one it has seen, so a store rolled back (a Redis
	// failover that lost the last write, a restore from a snapshot) cannot
	// make it present a refresh token that was already rotated away. Zero
	// means unknown (a token saved before generations existed).
	Generation uint64 `json:"generation,omitempty"`
	// Scope is the scope the server granted ("scope" in its answer), if it
	// said; space-separated.
	Scope string `json:"scope,omitempty"`
	// IDToken is the OpenID Connect ID token of a login ("id_token"), if
	// any: who logged in. A refresh answer without one keeps the login's.
	IDToken string `json:"id_token,omitempty"`
	// RefreshExpiry is when the refresh token stops working, if the server
	// said ("refresh_expires_in", as Keycloak does); zero means unknown.
	// A Session still refreshes until the server refuses: it is for display.
	RefreshExpiry time.Time `json:"refresh_expiry,omitempty"`
	// RefreshExpiresIn is RefreshExpiry as the server announced it,
	// counted from when the token was received; the Session dates it like
	// ExpiresIn. Not stored.
	RefreshExpiresIn time.Duration `json:"-"`
	// Extra holds the other fields of the token response (a provider's
	// own, like "user_id"), as the server sent them. Read-only.
	Extra map[string]json.RawMessage `json:"extra,omitempty"`
	// DPoPKey is the private key, a JWK, that the token is bound to with
	// DPoP (RFC 9449) when the key was made to be kept with the token
	// (oauth.Config.DPoP with a key in memory): stored with the token, so
	// that every process sharing the store proves possession with the same
	// key, and a fleet's refresh of a bound refresh token is never made
	// with another. A refresh keeps it; a new login brings its own. It is
	// as secret as the refresh token: sealed with the record when the store
	// has a keyring, never printed.
	DPoPKey json.RawMessage `json:"dpop_key,omitempty"`
}

// dpop reports whether t is bound to a key with DPoP: sent as
// "Authorization: DPoP …" with a proof, never as a bearer token.
func (t *Token) dpop() bool {
	return len(t.TokenType) == 4 && strings.EqualFold(t.TokenType, "DPoP")
}

// generation is t's Generation; 0 for nil.
func (t *Token) generation() uint64 {
	if t == nil {
		return 0
	}
	return t.Generation
}

// olderThan reports whether t is known to be of an older generation than u.
func (t *Token) olderThan(u *Token) bool {
	return t != nil && u != nil && t.Generation > 0 && u.Generation > 0 && t.Generation < u.Generation
}

// dated returns a copy of t whose lifetime is worked out on the Session's
// clock (now): the one place where a token's IssuedAt and Expiry are decided.
//
//   - A known Expiry stands.
//   - Else ExpiresIn, what the server said, counts from now: both ends then
//     come from this machine's clock, which makes refresh-ahead immune to skew.
//   - Else the access token's JWT "exp" (the issuer's clock). A token just
//     received (fresh) cannot already be expired nor issued in the future, so
//     when it looks like either, the clocks disagree: its JWT lifetime
//     (exp − iat) is counted from now. Without that, a client whose clock
//     runs ahead of the issuer's by more than a lifetime would see every new
//     token as expired and refresh on every request.
//   - Else the expiry stays unknown: refreshed when the server refuses it.
//
// A missing or impossible IssuedAt (after Expiry, or in the future) is the
// JWT's "iat" for a stored token when that is plausible, else now: the part
// of the lifetime this machine saw.
func (t *Token) dated(now time.Time, fresh bool) *Token {
	d := *t
	if d.RefreshExpiresIn > 0 && d.RefreshExpiry.IsZero() {
		d.RefreshExpiry = now.Add(d.RefreshExpiresIn)
	}
	d.RefreshExpiresIn = 0
	if d.ExpiresIn > 0 && d.Expiry.IsZero() {
		d.IssuedAt, d.Expiry, d.ExpiresIn = now, now.Add(d.ExpiresIn), 0
		return &d
	}
	d.ExpiresIn = 0
	c, _ := jwtclaims.Decode(d.AccessToken) // zero claims for an opaque token
	if d.Expiry.IsZero() && !c.ExpiresAt.IsZero() {
		switch life := c.ExpiresAt.Sub(c.IssuedAt); {
		case !fresh || (c.ExpiresAt.After(now) && !c.IssuedAt.After(now)):
			d.Expiry = c.ExpiresAt
		case !c.IssuedAt.IsZero() && life > 0:
			// Whole-second claims: "iat" may be up to a second before the
			// real issue time, so the lifetime left is up to a second shorter.
			d.IssuedAt, d.Expiry = now, now.Add(life-min(time.Second, life/2))
		default:
			// Dead on arrival by our clock, lifetime unknown: rely on refusals.
		}
	}
	if d.IssuedAt.IsZero() || d.IssuedAt.After(now) || (!d.Expiry.IsZero() && !d.IssuedAt.Before(d.Expiry)) {
		d.IssuedAt = now
		if iat := c.IssuedAt; !fresh && !iat.IsZero() && !iat.After(now) && (d.Expiry.IsZero() || iat.Before(d.Expiry)) {
			d.IssuedAt = iat
		}
	}
	if !d.Expiry.IsZero() && d.IssuedAt.After(d.Expiry) {
		d.IssuedAt = d.Expiry // already expired when read: a lifetime of zero, never a negative one
	}
	return &d
}

// staleAt is when the token is treated as expired: a little before Expiry (a
// twentieth of its lifetime, at most 5 s), so that a request sent just
// before the expiry does not arrive just after it. Zero if Expiry is unknown.
func (t *Token) staleAt() time.Time {
	if t.Expiry.IsZero() {
		return time.Time{}
	}
	margin := min(t.Expiry.Sub(t.IssuedAt)/20, 5*time.Second)
	return t.Expiry.Add(-max(margin, 0))
}

// scheme is the Authorization scheme, "Bearer" unless the server said otherwise.
// RFC 6750 servers answer "bearer" in lower case; the scheme is case-insensitive
// but some APIs are not, so the canonical spelling is sent.
func (t *Token) scheme() string {
	if t.TokenType == "" || strings.EqualFold(t.TokenType, "bearer") {
		return "Bearer"
	}
	return t.TokenType
}

// AuthorizationHeader returns the value of the Authorization header for t.
func (t *Token) AuthorizationHeader() string {
	return t.scheme() + " " + t.AccessToken
}

// Expired reports whether the access token's known expiry is at or before now.
// A token with an unknown expiry never reports expired.
func (t *Token) Expired(now time.Time) bool {
	return !t.Expiry.IsZero() && !now.Before(t.Expiry)
}

// redacted shows enough to tell tokens apart in a log (length and last four
// characters of a long token) and never enough to use one.
func redacted(s string) string {
	switch {
	case s == "":
		return `""`
	case len(s) < 24:
		return "[REDACTED]"
	default:
		return fmt.Sprintf("[REDACTED len=%d …%s]", len(s), s[len(s)-4:])
	}
}

// String returns a redacted description of the token.
func (t *Token) String() string {
	if t == nil {
		return "<nil token>"
	}
	var b strings.Builder
	b.WriteString("Token{access=")
	b.WriteString(redacted(t.AccessToken))
	if t.RefreshToken != "" {
		b.WriteString(" refresh=[REDACTED]")
	}
	if t.IDToken != "" {
		b.WriteString(" id_token=[REDACTED]")
	}
	if len(t.DPoPKey) > 0 {
		b.WriteString(" dpop_key=[REDACTED]")
	}
	if !t.Expiry.IsZero() {
		b.WriteString(" expiry=")
		b.WriteString(t.Expiry.UTC().Format(time.RFC3339))
	}
	b.WriteString("}")
	return b.String()
}

// GoString keeps %#v redacted too.
func (t *Token) GoString() string { return t.String() }

// Format makes every fmt verb, %v and %+v of a Token value included, print
// the redacted form.
func (t Token) Format(f fmt.State, _ rune) { fmt.Fprint(f, t.String()) }

// LogValue implements slog.LogValuer: a token logs as a group of harmless facts.
func (t *Token) LogValue() slog.Value {
	if t == nil {
		return slog.StringValue("<nil token>")
	}
	attrs := []slog.Attr{slog.String("access", redacted(t.AccessToken)), slog.Bool("refreshable", t.RefreshToken != "")}
	if t.dpop() {
		attrs = append(attrs, slog.Bool("dpop", true))
	}
	if !t.Expiry.IsZero() {
		attrs = append(attrs, slog.Time("expiry", t.Expiry))
	}
	return slog.GroupValue(attrs...)
}

// SameCredential reports whether t and u are the same credential: the
// same access token (two nil tokens are). It is what a Swapper's
// CompareAndSwap compares.
func (t *Token) SameCredential(u *Token) bool {
	if t == nil || u == nil {
		return t == u
	}
	return t.AccessToken == u.AccessToken
}

// clone is a copy of t; nil for nil.
func (t *Token) clone() *Token {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}
