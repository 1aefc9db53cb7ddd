package authrefresh_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
)

// fakeProver signs "proof-N" proofs and records what each was for.
type fakeProver struct {
	authrefresh.RefreshFunc
	mu     sync.Mutex
	proofs []string // "method target nonce token"
	fail   error
}

func (p *fakeProver) Proof(tok *authrefresh.Token, method, target, nonce string, _ time.Time) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return "", p.fail
	}
	p.proofs = append(p.proofs, method+" "+target+" "+nonce+" "+tok.AccessToken)
	return fmt.Sprintf("proof-%d", len(p.proofs)), nil
}

// dpopSession is a Session holding a DPoP-bound token "access-1"; its
// refresher (and Prover) hands out "access-2", "access-3"...
func dpopSession(t *testing.T) (*authrefresh.Session, *fakeProver) {
	t.Helper()
	p := &fakeProver{}
	n := 1
	p.RefreshFunc = func(context.Context, *authrefresh.Token) (*authrefresh.Token, error) {
		n++
		return &authrefresh.Token{AccessToken: fmt.Sprintf("access-%d", n), RefreshToken: "r", TokenType: "DPoP", ExpiresIn: time.Hour}, nil
	}
	s := authrefresh.NewSession(nil, p, authrefresh.Options{})
	if err := s.Login(context.Background(), &authrefresh.Token{AccessToken: "access-1", RefreshToken: "r", TokenType: "dpop", ExpiresIn: time.Hour}); err != nil {
		t.Fatal(err)
	}
	return s, p
}

// sent is one request as the server saw it.
type sent struct{ auth, proof, body string }

// scriptedBase answers the requests it gets with the given responses in
// turn (the last one repeats) and records them.
func scriptedBase(answers ...func(h http.Header) int) (*[]sent, http.RoundTripper) {
	var got []sent
	var mu sync.Mutex
	return &got, roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		defer mu.Unlock()
		var body []byte
		if r.Body != nil {
			body, _ = io.ReadAll(r.Body)
			r.Body.Close()
		}
		got = append(got, sent{r.Header.Get("Authorization"), r.Header.Get("DPoP"), string(body)})
		h := http.Header{}
		status := answers[min(len(got), len(answers))-1](h)
		return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader("{}")), Request: r}, nil
	})
}

func ok200(http.Header) int { return 200 }

func askNonce(nonce string) func(http.Header) int {
	return func(h http.Header) int {
		h.Set("DPoP-Nonce", nonce)
		h.Set("WWW-Authenticate", `DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"`)
		return 401
	}
}

// A bound token goes out as "DPoP …" with a new proof on every request;
// never as a bearer token.
func TestDPoPTokenGoesWithAProof(t *testing.T) {
	s, p := dpopSession(t)
	got, base := scriptedBase(ok200)
	hc := &http.Client{Transport: &authrefresh.Transport{Session: s, Base: base}}
	for range 2 {
		resp, err := hc.Get("https://api.example/v1/me?x=1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	want := []sent{{"DPoP access-1", "proof-1", ""}, {"DPoP access-1", "proof-2", ""}}
	if fmt.Sprint(*got) != fmt.Sprint(want) {
		t.Fatalf("sent %v; want %v", *got, want)
	}
	if p.proofs[0] != "GET https://api.example/v1/me?x=1  access-1" {
		t.Fatalf("proof for %q", p.proofs[0])
	}
}

// use_dpop_nonce is retried once with the server's nonce and the same
// token, with the body again; it is not a refusal (no refresh), and a
// second ask is answered as it is, never looped on. The nonce is then
// known to the next request.
func TestDPoPNonceRetriedOnce(t *testing.T) {
	s, p := dpopSession(t)
	got, base := scriptedBase(askNonce("n1"), askNonce("n2"), ok200)
	hc := &http.Client{Transport: &authrefresh.Transport{Session: s, Base: base}}
	req, _ := http.NewRequest(http.MethodPost, "https://api.example/v1/data", io.NopCloser(strings.NewReader("payload")))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || len(*got) != 2 || (*got)[1].body != "payload" || (*got)[1].auth != "DPoP access-1" {
		t.Fatalf("status %d after %v", resp.StatusCode, *got)
	}
	if !strings.HasSuffix(p.proofs[1], " n1 access-1") {
		t.Fatalf("the retry's proof: %q", p.proofs[1])
	}
	if st := s.Stats(); st.Refreshes != 0 {
		t.Fatalf("%d refreshes for a nonce", st.Refreshes)
	}
	resp, err = hc.Get("https://api.example/v1/me")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasSuffix(p.proofs[2], " n2 access-1") {
		t.Fatalf("status %d, proof %q: want the last nonce learnt", resp.StatusCode, p.proofs[2])
	}
}

// A nonce ask, then a refusal of the token: refreshed and replayed with
// the new token and its own proof. A streamed body is kept for one replay
// only: spent on the nonce, the refusal cannot replay it.
func TestDPoPNonceThenRefusal(t *testing.T) {
	expired := func(h http.Header) int {
		h.Set("WWW-Authenticate", `DPoP error="invalid_token"`)
		return 401
	}
	s, _ := dpopSession(t)
	got, base := scriptedBase(askNonce("n1"), expired, ok200)
	hc := &http.Client{Transport: &authrefresh.Transport{Session: s, Base: base}}
	resp, err := hc.Get("https://api.example/v1/me")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(*got) != 3 || (*got)[2].auth != "DPoP access-2" || (*got)[2].proof != "proof-3" {
		t.Fatalf("status %d after %v", resp.StatusCode, *got)
	}

	s, _ = dpopSession(t)
	got, base = scriptedBase(askNonce("n1"), expired, ok200)
	hc = &http.Client{Transport: &authrefresh.Transport{Session: s, Base: base}}
	req, _ := http.NewRequest(http.MethodPost, "https://api.example/v1/data", onlyReader{strings.NewReader("stream")})
	_, err = hc.Do(req)
	if !errors.Is(err, authrefresh.ErrBodyNotReplayable) || len(*got) != 2 || (*got)[1].body != "stream" {
		t.Fatalf("got %v after %v", err, *got)
	}
}

// A refused proof is not a refused token: no refresh, the answer as it is.
func TestDPoPRefusedProofIsNotRefreshed(t *testing.T) {
	s, _ := dpopSession(t)
	_, base := scriptedBase(func(h http.Header) int {
		h.Set("WWW-Authenticate", `DPoP error="invalid_dpop_proof"`)
		return 401
	})
	resp, err := (&http.Client{Transport: &authrefresh.Transport{Session: s, Base: base}}).Get("https://api.example/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || s.Stats().Refreshes != 0 {
		t.Fatalf("status %d, %d refreshes", resp.StatusCode, s.Stats().Refreshes)
	}
}

// Without a Prover, or with one that fails, nothing leaves.
func TestDPoPWithoutProof(t *testing.T) {
	s := authrefresh.NewSession(nil, nil, authrefresh.Options{})
	s.Login(context.Background(), &authrefresh.Token{AccessToken: "bound", TokenType: "DPoP", ExpiresIn: time.Hour})
	got, base := scriptedBase(ok200)
	hc := &http.Client{Transport: &authrefresh.Transport{Session: s, Base: base}}
	if _, err := hc.Get("https://api.example/"); !errors.Is(err, authrefresh.ErrNoProver) || len(*got) != 0 {
		t.Fatalf("got %v after %d requests", err, len(*got))
	}
	s2, p := dpopSession(t)
	p.fail = errors.New("the HSM is away")
	got, base = scriptedBase(ok200)
	hc = &http.Client{Transport: &authrefresh.Transport{Session: s2, Base: base}}
	if _, err := hc.Get("https://api.example/"); err == nil || !strings.Contains(err.Error(), "HSM") || len(*got) != 0 {
		t.Fatalf("got %v after %d requests", err, len(*got))
	}
}

// A nonce with characters RFC 9449 does not allow is ignored.
func TestDPoPHostileNonceIgnored(t *testing.T) {
	s, p := dpopSession(t)
	_, base := scriptedBase(func(h http.Header) int {
		h.Set("DPoP-Nonce", "bad\"nonce")
		return 200
	})
	hc := &http.Client{Transport: &authrefresh.Transport{Session: s, Base: base}}
	for range 2 {
		resp, err := hc.Get("https://api.example/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if !strings.HasSuffix(p.proofs[1], "  access-1") {
		t.Fatalf("proof signed with %q", p.proofs[1])
	}
}
