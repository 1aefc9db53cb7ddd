package bff_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh/authserver"
	"github.com/authrefresh/authrefresh/internal/authtest"
	"github.com/golang-jwt/jwt/v5"
)

// postLogout delivers a logout token to a BFF's back-channel endpoint, as
// the provider does.
func postLogout(t *testing.T, base, token string) int {
	t.Helper()
	resp, err := http.PostForm(base+"/bff/backchannel-logout", url.Values{"logout_token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// OpenID Back-Channel Logout: a logout token signed by the provider ends
// every session of its sub (or sid) on every replica — at once on the one
// it reached, within a second on the others — and not a session begun
// after it; a forged, replayed or malformed token is refused and ends
// nothing.
func TestBackchannelLogout(t *testing.T) {
	dir := t.TempDir()
	w := newWorld(t, fileStores(dir, nil))
	// The provider's keys, plus one of the test's, to sign the malformed
	// tokens the provider would never send.
	_, testKey, _ := ed25519.GenerateKey(rand.Reader)
	jwksSrv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(w.cfg.Provider.Issuer + "/.well-known/jwks.json")
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		var set struct{ Keys []map[string]string }
		json.NewDecoder(resp.Body).Decode(&set)
		set.Keys = append(set.Keys, map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": "test", "x": base64.RawURLEncoding.EncodeToString(testKey.Public().(ed25519.PublicKey))})
		json.NewEncoder(rw).Encode(set)
	}))
	defer jwksSrv.Close()
	w.cfg.Provider.JWKSURI = jwksSrv.URL
	w.bffURL, w.app = w.replica(t)
	other, _ := w.replica(t)

	c := browser(t)
	w.login(t, c, "/")
	u, _ := url.Parse(w.bffURL)
	id := c.Jar.Cookies(u)[0].Value
	_, user := w.call(t, c, http.MethodGet, "/bff/user", true, nil)
	sid, _ := user["claims"].(map[string]any)["sid"].(string)
	if sid == "" {
		t.Fatalf("the ID token names no sid: %v", user)
	}
	if status := as(t, other, id, http.MethodGet, "/api/me"); status != 200 {
		t.Fatalf("the other replica before: %d", status)
	}

	now := time.Unix(0, w.now.Load())
	sign := func(claims jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
		tok.Header["kid"] = "test"
		s, _ := tok.SignedString(testKey)
		return s
	}
	base := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": w.cfg.Provider.Issuer, "aud": "bff", "iat": now.Unix(), "jti": authtest.RandomID(),
			"sid": "another-session", "events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}}
	}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	forged := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"iss": w.cfg.Provider.Issuer, "aud": "bff", "iat": now.Unix(), "jti": "f", "sub": authserver.DemoUser,
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}})
	forged.Header["kid"] = "test"
	forgedToken, _ := forged.SignedString(otherKey)
	for name, token := range map[string]string{
		"signed by another key": forgedToken,
		"not a JWT":             "garbage",
		"no event":              sign(func() jwt.MapClaims { c := base(); delete(c, "events"); return c }()),
		"a nonce":               sign(func() jwt.MapClaims { c := base(); c["nonce"] = "n"; return c }()),
		"another audience":      sign(func() jwt.MapClaims { c := base(); c["aud"] = "someone-else"; return c }()),
		"another issuer":        sign(func() jwt.MapClaims { c := base(); c["iss"] = "https://evil.example"; return c }()),
		"an hour old":           sign(func() jwt.MapClaims { c := base(); c["iat"] = now.Add(-time.Hour).Unix(); return c }()),
		"neither sub nor sid":   sign(func() jwt.MapClaims { c := base(); delete(c, "sid"); return c }()),
		"no jti":                sign(func() jwt.MapClaims { c := base(); delete(c, "jti"); return c }()),
	} {
		if status := postLogout(t, w.bffURL, token); status != 400 {
			t.Errorf("%s: %d", name, status)
		}
	}
	if status, _ := w.call(t, c, http.MethodGet, "/api/me", true, nil); status != 200 {
		t.Fatalf("a refused logout token ended the session: %d", status)
	}

	token, err := w.provider.LogoutToken("bff", "", sid)
	if err != nil {
		t.Fatal(err)
	}
	if status := postLogout(t, w.bffURL, token); status != 200 {
		t.Fatalf("the provider's logout token: %d", status)
	}
	if status := postLogout(t, w.bffURL, token); status != 400 {
		t.Fatalf("the same token again: %d", status)
	}
	if status, out := w.call(t, c, http.MethodGet, "/api/me", true, nil); status != 401 {
		t.Fatalf("the replica it reached, at once: %d %v", status, out)
	}
	w.now.Add(int64(2 * time.Second))
	if status := as(t, other, id, http.MethodGet, "/api/me"); status != 401 {
		t.Fatalf("the other replica, a second later: %d", status)
	}
	// A login after the logout is a session of its own.
	w.login(t, c, "/")
	if status, _ := w.call(t, c, http.MethodGet, "/api/me", true, nil); status != 200 {
		t.Fatalf("a new login after the logout: %d", status)
	}
}
