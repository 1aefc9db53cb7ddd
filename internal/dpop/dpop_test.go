package dpop

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestNonce(t *testing.T) {
	for v, want := range map[string]string{
		"eyJ7S_zG.9Q-x":                 "eyJ7S_zG.9Q-x",
		"":                              "",
		`a"b`:                           "",
		`a\b`:                           "",
		"a b":                           "",
		"a\x1b[2Jb":                     "",
		"é":                             "",
		strings.Repeat("n", maxNonce+1): "",
	} {
		if got := Nonce(http.Header{"Dpop-Nonce": {v}}); got != want {
			t.Errorf("Nonce(%q) = %q; want %q", v, got, want)
		}
	}
}

func TestChallenged(t *testing.T) {
	for v, want := range map[string]bool{
		`DPoP error="use_dpop_nonce", error_description="x"`: true,
		`Bearer realm="a", DPoP error="use_dpop_nonce"`:      true,
		`dpop algs="ES256", error="use_dpop_nonce"`:          true,
		`Bearer error="use_dpop_nonce"`:                      false,
		`DPoP error="invalid_token"`:                         false,
		`DPoPish error="use_dpop_nonce"`:                     false,
	} {
		if got := Challenged(http.Header{"Www-Authenticate": {v}}); got != want {
			t.Errorf("Challenged(%q) = %v", v, got)
		}
	}
}

// Nonces are kept per origin, a default port and case aside, and a new one
// is reported once.
func TestNonces(t *testing.T) {
	var n Nonces
	a, _ := url.Parse("https://AS.example:443/token?x")
	b, _ := url.Parse("https://as.example/other")
	c, _ := url.Parse("https://api.example/")
	h := http.Header{"Dpop-Nonce": {"n1"}}
	if !n.Learn(a, h) || n.Learn(b, h) || n.Get(b) != "n1" || n.Get(c) != "" {
		t.Fatalf("same origin: %q, other: %q", n.Get(b), n.Get(c))
	}
	if n.Learn(c, http.Header{}) || n.Get(c) != "" {
		t.Fatal("an answer without a nonce taught one")
	}
}

// Whatever a server sends, a nonce kept is one a proof may carry, and
// nothing panics.
func FuzzNonce(f *testing.F) {
	f.Add("eyJ7S_zG.9Q-x", `DPoP error="use_dpop_nonce"`)
	f.Add("", "Bearer, DPoP")
	f.Fuzz(func(t *testing.T, nonce, challenge string) {
		h := http.Header{"Dpop-Nonce": {nonce}, "Www-Authenticate": {challenge}}
		v := Nonce(h)
		if v != "" && (v != nonce || strings.ContainsAny(v, "\"\\ \t\r\n") || len(v) > maxNonce) {
			t.Fatalf("kept %q", v)
		}
		Challenged(h)
		ProofRefused(h)
	})
}
