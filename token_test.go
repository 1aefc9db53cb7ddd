package authrefresh

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh/internal/jwtclaims"
)

func jwtWith(payload string) string {
	return "eyJhbGciOiJFZERTQSJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
}

func TestDatedExpirySources(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	if tok := (&Token{AccessToken: "opaque", ExpiresIn: time.Minute}).dated(now, true); !tok.Expiry.Equal(now.Add(time.Minute)) || !tok.IssuedAt.Equal(now) || tok.ExpiresIn != 0 {
		t.Fatalf("expires_in: %v %v", tok, tok.IssuedAt)
	}
	jwt := jwtWith(`{"exp":1800000100,"iat":1799999990}`)
	if tok := (&Token{AccessToken: jwt}).dated(now, true); tok.Expiry.Unix() != 1800000100 || !tok.IssuedAt.Equal(now) {
		t.Fatalf("jwt: %v %v", tok.Expiry, tok.IssuedAt)
	}
	// Clock skew without expires_in: a token that looks issued in the future
	// (issuer ahead) or already expired (issuer behind) lives exp−iat from now.
	for _, skew := range []time.Duration{-5 * time.Minute, 5 * time.Minute} {
		issuer := now.Add(skew)
		jwt := jwtWith(fmt.Sprintf(`{"iat":%d,"exp":%d}`, issuer.Unix(), issuer.Add(2*time.Minute).Unix()))
		if tok := (&Token{AccessToken: jwt}).dated(now, true); !tok.Expiry.Equal(now.Add(2*time.Minute-time.Second)) || !tok.IssuedAt.Equal(now) {
			t.Errorf("issuer clock %v: expiry %v, issued %v", skew, tok.Expiry.Sub(now), tok.IssuedAt.Sub(now))
		}
	}
	if tok := (&Token{AccessToken: jwtWith(`{"exp":1700000000}`)}).dated(now, true); !tok.Expiry.IsZero() {
		t.Errorf("a token dead on arrival with no iat got expiry %v; want unknown (refresh on refusal)", tok.Expiry)
	}
	if tok := (&Token{AccessToken: "opaque"}).dated(now, true); !tok.Expiry.IsZero() || !tok.IssuedAt.Equal(now) {
		t.Fatalf("unknown: %v", tok)
	}
}

// A stored token (not fresh) keeps its expiry; a missing or impossible
// IssuedAt becomes the JWT's iat when plausible, else now, never the zero
// time (whose "lifetime" would overflow the refresh-ahead deadline).
func TestDatedStoredToken(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	hour := now.Add(time.Hour)
	cases := []struct {
		name   string
		tok    Token
		issued time.Time
	}{
		{"opaque, no IssuedAt", Token{AccessToken: "opaque", Expiry: hour}, now},
		{"IssuedAt after Expiry", Token{AccessToken: "opaque", Expiry: hour, IssuedAt: hour.Add(time.Second)}, now},
		{"IssuedAt in the future", Token{AccessToken: "opaque", Expiry: hour.Add(time.Hour), IssuedAt: hour}, now},
		{"JWT iat", Token{AccessToken: jwtWith(`{"iat":1799999000,"exp":1800003600}`), Expiry: hour}, time.Unix(1799999000, 0)},
		{"kept", Token{AccessToken: "opaque", Expiry: hour, IssuedAt: now.Add(-time.Minute)}, now.Add(-time.Minute)},
	}
	for _, c := range cases {
		d := c.tok.dated(now, false)
		if !d.Expiry.Equal(hour) && c.name != "IssuedAt in the future" || !d.IssuedAt.Equal(c.issued) {
			t.Errorf("%s: expiry %v issued %v, want issued %v", c.name, d.Expiry, d.IssuedAt, c.issued)
		}
		if st := d.staleAt(); st.Before(now) || st.After(d.Expiry) {
			t.Errorf("%s: stale at %v", c.name, st)
		}
	}
	// An expired stored JWT stays expired (no skew correction for what was not just received).
	if d := (&Token{AccessToken: jwtWith(`{"iat":1700000000,"exp":1700000060}`)}).dated(now, false); d.Expiry.Unix() != 1700000060 {
		t.Errorf("expired stored JWT: expiry %v", d.Expiry)
	}
}

func TestTokenPrintsRedacted(t *testing.T) {
	tok := &Token{AccessToken: "secret-access-token-0123456789", RefreshToken: "secret-refresh-token"}
	var buf strings.Builder
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "tok", tok)
	for _, s := range []string{fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s", tok, *tok, tok, tok), tok.String(), buf.String()} {
		if strings.Contains(s, "secret") {
			t.Fatalf("token printed in the clear: %s", s)
		}
	}
}

func FuzzDecodeClaims(f *testing.F) {
	f.Add(jwtWith(`{"exp":1800000002,"iat":1800000000}`))
	f.Add("a.b.c")
	f.Add(jwtWith(`{"exp":1e300}`))
	f.Fuzz(func(t *testing.T, s string) {
		c, err := jwtclaims.Decode(s)
		if err != nil && len(s) > 12 && strings.Contains(err.Error(), s) {
			t.Fatal("error quotes its input")
		}
		if err == nil && c.ExpiresAt.Year() > 5200 {
			t.Fatalf("absurd expiry %v", c.ExpiresAt)
		}
		// Dating a token by its claims never gives a lifetime that starts
		// in the future or after its end, stored or fresh.
		now := time.Unix(1_800_000_000, 0)
		for _, fresh := range []bool{false, true} {
			d := (&Token{AccessToken: s}).dated(now, fresh)
			if d.IssuedAt.After(now) || (!d.Expiry.IsZero() && d.IssuedAt.After(d.Expiry)) || d.ExpiresIn != 0 {
				t.Fatalf("fresh=%v: issued %v, expiry %v", fresh, d.IssuedAt, d.Expiry)
			}
			if st := d.staleAt(); !d.Expiry.IsZero() && (st.After(d.Expiry) || st.Before(d.IssuedAt)) {
				t.Fatalf("fresh=%v: stale at %v outside [%v, %v]", fresh, st, d.IssuedAt, d.Expiry)
			}
		}
	})
}
