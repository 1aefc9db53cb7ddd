package authrefresh

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func jwtWith(payload string) string {
	return "eyJhbGciOiJFZERTQSJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
}

func TestDecodeClaims(t *testing.T) {
	c, err := DecodeClaims(jwtWith(`{"exp":1800000002,"iat":1800000000.5}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.ExpiresAt.Unix() != 1800000002 || c.IssuedAt.UnixMilli() != 1800000000500 {
		t.Fatalf("claims %+v", c)
	}
	for _, bad := range []string{"", "abc", "a.b", "a.b.c.d", jwtWith(`[1]`), jwtWith(`{"exp":"soon"}`), jwtWith(`{"exp":-1}`), "a.!!!.c", strings.Repeat("a", maxJWTLength+1)} {
		if _, err := DecodeClaims(bad); err == nil {
			t.Errorf("DecodeClaims(%.20q) accepted garbage", bad)
		} else if len(bad) > 8 && strings.Contains(err.Error(), bad) {
			t.Errorf("error quotes the token: %v", err)
		}
	}
}

func TestTokenFromResponseExpirySources(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	if tok := TokenFromResponse("opaque", "r", "", time.Minute, now); !tok.Expiry.Equal(now.Add(time.Minute)) || !tok.IssuedAt.Equal(now) {
		t.Fatalf("expires_in: %v", tok)
	}
	jwt := jwtWith(`{"exp":1800000100,"iat":1799999990}`)
	if tok := TokenFromResponse(jwt, "", "", 0, now); tok.Expiry.Unix() != 1800000100 || !tok.IssuedAt.Equal(now) {
		t.Fatalf("jwt: %v %v", tok.Expiry, tok.IssuedAt)
	}
	// Clock skew without expires_in: a token that looks issued in the future
	// (issuer ahead) or already expired (issuer behind) lives exp−iat from now.
	for _, skew := range []time.Duration{-5 * time.Minute, 5 * time.Minute} {
		issuer := now.Add(skew)
		jwt := jwtWith(fmt.Sprintf(`{"iat":%d,"exp":%d}`, issuer.Unix(), issuer.Add(2*time.Minute).Unix()))
		if tok := TokenFromResponse(jwt, "", "", 0, now); !tok.Expiry.Equal(now.Add(2*time.Minute-time.Second)) || !tok.IssuedAt.Equal(now) {
			t.Errorf("issuer clock %v: expiry %v, issued %v", skew, tok.Expiry.Sub(now), tok.IssuedAt.Sub(now))
		}
	}
	if tok := TokenFromResponse(jwtWith(`{"exp":1700000000}`), "", "", 0, now); !tok.Expiry.IsZero() {
		t.Errorf("a token dead on arrival with no iat got expiry %v; want unknown (refresh on refusal)", tok.Expiry)
	}
	if tok := TokenFromResponse("opaque", "", "", 0, now); !tok.Expiry.IsZero() || !tok.IssuedAt.Equal(now) {
		t.Fatalf("unknown: %v", tok)
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

func TestFileStoreCorruptFileIsClearErrorAndLoginRepairs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tok.json")
	fs := NewFileStore(path)
	if err := fs.Save(context.Background(), &Token{AccessToken: "a", RefreshToken: "r"}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if err := os.WriteFile(path, data[:len(data)/2], 0o600); err != nil { // truncated
		t.Fatal(err)
	}
	_, err := fs.Load(context.Background())
	var fe *FileStoreError
	if !errors.As(err, &fe) || fe.Op != "parse" || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v, want a parse error naming the path", err)
	}
	s := NewSession(fs, RefreshFunc(func(context.Context, *Token) (*Token, error) { return nil, errors.New("unused") }), Options{})
	if _, err := s.Token(context.Background()); err == nil {
		t.Fatal("a corrupt store gave a token")
	}
	if err := s.Login(context.Background(), &Token{AccessToken: "new"}); err != nil {
		t.Fatal(err)
	}
	if tok, err := fs.Load(context.Background()); err != nil || tok.AccessToken != "new" {
		t.Fatalf("after Login: %v %v", tok, err)
	}
}

func TestFileStoreRefusesReadableByOthers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tok.json")
	fs := NewFileStore(path)
	if err := fs.Save(context.Background(), &Token{AccessToken: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Load(context.Background()); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("got %v, want a permissions error", err)
	}
}

func TestFileStoreLockExcludesAndHonoursContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tok.json")
	a, b := NewFileStore(path), NewFileStore(path)
	unlock, err := a.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := b.Lock(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Lock while held: %v", err)
	}
	unlock()
	unlock2, err := b.Lock(context.Background())
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	unlock2()
}

func TestFileStoreCompareAndSwap(t *testing.T) {
	fs := NewFileStore(filepath.Join(t.TempDir(), "tok.json"))
	ctx := context.Background()
	_ = fs.Save(ctx, &Token{AccessToken: "newer"})
	if ok, err := fs.CompareAndSwap(ctx, &Token{AccessToken: "older"}, &Token{AccessToken: "stale-save"}); ok || err != nil {
		t.Fatalf("stale swap: %v %v", ok, err)
	}
	if tok, _ := fs.Load(ctx); tok.AccessToken != "newer" {
		t.Fatalf("stale save overwrote the newer token: %s", tok.AccessToken)
	}
}

func TestParseTokenResponse(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tok, err := parseTokenResponse([]byte(`{"accessToken":"a","refreshToken":"r","expires_in":"60"}`), "application/json", TokenFields{}, now)
	if err != nil || tok.AccessToken != "a" || tok.RefreshToken != "r" || tok.Expiry.Sub(now) != time.Minute {
		t.Fatalf("%v %v", tok, err)
	}
	tok, err = parseTokenResponse([]byte(`access_token=a&token_type=bearer&expires_in=5`), "application/x-www-form-urlencoded", TokenFields{}, now)
	if err != nil || tok.AccessToken != "a" || tok.AuthorizationHeader() != "Bearer a" {
		t.Fatalf("form: %v %v", tok, err)
	}
	tok, err = parseTokenResponse([]byte(`{"jwt":"a","rt":"r"}`), "", TokenFields{AccessToken: "jwt", RefreshToken: "rt"}, now)
	if err != nil || tok.AccessToken != "a" || tok.RefreshToken != "r" {
		t.Fatalf("custom fields: %v %v", tok, err)
	}
	for _, bad := range []string{``, `null`, `[]`, `{}`, `{"access_token":1}`, `{"access_token":"a","expires_in":-5}`, `{"access_token":"a","expires_in":{}}`} {
		if _, err := parseTokenResponse([]byte(bad), "application/json", TokenFields{}, now); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestClassifyRefusal(t *testing.T) {
	cases := []struct {
		status int
		body   string
		kind   RefreshKind
		code   string
	}{
		{400, `{"error":"invalid_grant","error_description":"used"}`, RefreshRejected, "invalid_grant"},
		{401, `{"error":"invalid_grant"}`, RefreshRejected, "invalid_grant"},
		{401, `not json`, RefreshRejected, ""},
		{503, `{"error":"temporarily_unavailable"}`, RefreshTransient, "temporarily_unavailable"},
		{429, ``, RefreshTransient, ""},
		{500, `<html>`, RefreshTransient, ""},
		{400, `{"error":"temporarily_unavailable"}`, RefreshTransient, "temporarily_unavailable"},
	}
	for _, c := range cases {
		resp := &http.Response{StatusCode: c.status, Header: http.Header{"Retry-After": {"7"}}}
		err := classifyRefusal(resp, []byte(c.body))
		var re *RefreshError
		if !errors.As(err, &re) || re.Kind != c.kind || re.Code != c.code || re.RetryAfter != 7*time.Second {
			t.Errorf("%d %s: got %+v", c.status, c.body, re)
		}
	}
}

func TestParseErrorBodyShapes(t *testing.T) {
	cases := []struct{ body, msg, code, detail string }{
		{`{"error":"invalid product","details":{"price":"must be positive"}}`, "invalid product", "", "price"},
		{`{"error":"invalid_token","error_description":"expired"}`, "expired", "invalid_token", ""},
		{`{"message":"nope"}`, "nope", "", ""},
		{`{"type":"about:blank","title":"Bad","detail":"worse"}`, "worse", "", ""},
		{`{"error":{"message":"nested"}}`, "nested", "", ""},
		{"plain\ntext", "plain text", "", ""},
		{``, "", "", ""},
	}
	for _, c := range cases {
		msg, code, details := parseErrorBody([]byte(c.body))
		if msg != c.msg || code != c.code || (c.detail != "" && details[c.detail] == nil) {
			t.Errorf("%s: got %q %q %v", c.body, msg, code, details)
		}
	}
	if d, c := bearerChallenge(`Bearer realm="x", error="invalid_token", error_description="the access token is expired"`); d != "the access token is expired" || c != "invalid_token" {
		t.Errorf("challenge: %q %q", d, c)
	}
}

func TestOriginMatching(t *testing.T) {
	u := func(s string) *http.Request { r, _ := http.NewRequest("GET", s, nil); return r }
	tr := &Transport{Origins: []string{"https://api.example.com", "http://127.0.0.1:8080/"}}
	for s, want := range map[string]bool{
		"https://api.example.com/x":     true,
		"https://API.example.com:443/x": true,
		"http://api.example.com/x":      false,
		"https://api.example.com.evil/": false,
		"https://evil.com/api.example":  false,
		"http://127.0.0.1:8080/a":       true,
		"http://127.0.0.1:8081/a":       false,
	} {
		if got := tr.mayAuthenticate(u(s)); got != want {
			t.Errorf("%s: %v, want %v", s, got, want)
		}
	}
}
