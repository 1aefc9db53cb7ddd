package oauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/internal/dpop"
	"github.com/authrefresh/authrefresh/internal/tokenhttp"
)

// maxTokenKeys bounds how many keys of stored tokens stay parsed (one per
// session that carries its own key); past it, the memory starts over.
const maxTokenKeys = 4096

// serverNonces are the DPoP nonces the token and revocation endpoints
// handed out, by origin: a server's nonce is the same for every client and
// key of the process.
var serverNonces dpop.Nonces

// tokenKeys are the keys tokens carry (Token.DPoPKey), parsed once: a key
// parsed anew for every proof would cost more than the proof.
var tokenKeys = struct {
	sync.Mutex
	m map[string]*DPoPKey // the JWK → the key
}{m: map[string]*DPoPKey{}}

// keyFor is the DPoP key for requests about tok: the key tok carries (it is
// bound to that one), else Config.DPoP; nil when there is none.
func (c *Config) keyFor(tok *authrefresh.Token) (*DPoPKey, error) {
	if tok == nil || len(tok.DPoPKey) == 0 {
		return c.DPoP, nil
	}
	tokenKeys.Lock()
	defer tokenKeys.Unlock()
	if k, ok := tokenKeys.m[string(tok.DPoPKey)]; ok {
		return k, nil
	}
	ck, err := parseJWK(tok.DPoPKey, false)
	if err != nil {
		return nil, fmt.Errorf("authrefresh: the token's DPoP key: %s", strings.TrimPrefix(err.Error(), "authrefresh: "))
	}
	k := &DPoPKey{Signer: ck.Signer, Algorithm: ck.Algorithm}
	if len(tokenKeys.m) >= maxTokenKeys {
		clear(tokenKeys.m)
	}
	tokenKeys.m[string(tok.DPoPKey)] = k
	return k, nil
}

// Proof implements authrefresh.Prover: a proof for a request carrying tok,
// signed by the key tok is bound to (the one it carries, else DPoP).
func (c *Config) Proof(tok *authrefresh.Token, method, target, nonce string, now time.Time) (string, error) {
	key, err := c.keyFor(tok)
	if err != nil {
		return "", err
	}
	if key == nil {
		return "", errors.New("authrefresh: the token is bound to a DPoP key, and neither it nor the oauth.Config (DPoP) holds one")
	}
	access := ""
	if tok != nil {
		access = tok.AccessToken
	}
	return key.Proof(method, target, access, nonce, now)
}

// post sends form to endpoint (op names it in errors) with the client's
// authentication and, when key is set, a DPoP proof. An answer that asks
// for the server's nonce (use_dpop_nonce) is sent once more, with the
// nonce, a new proof and a new client assertion (the first one's "jti" was
// spent): not a failure, and never more than once.
func (c *Config) post(ctx context.Context, op, endpoint string, form url.Values, key *DPoPKey) ([]byte, *http.Response, error) {
	// Every request sent, a resend after a lost connection included, is
	// built anew: a proof's or an assertion's jti is refused the second
	// time the server sees it.
	build := func() (*http.Request, error) {
		req, err := c.request(ctx, endpoint, form)
		if err != nil {
			return nil, tokenhttp.WithOp(err, op)
		}
		if key != nil {
			proof, err := key.Proof(http.MethodPost, endpoint, "", serverNonces.Get(req.URL), time.Now())
			if err != nil {
				return nil, &authrefresh.RefreshError{Kind: authrefresh.RefreshMisconfigured, Op: op, Err: err}
			}
			req.Header.Set(dpop.Header, proof)
		}
		return req, nil
	}
	for attempt := 0; ; attempt++ {
		data, resp, err := tokenhttp.SendBuilt(ctx, op, c.HTTPClient, build)
		if err != nil {
			return nil, nil, err
		}
		if key == nil {
			return data, resp, nil
		}
		fresh := serverNonces.Learn(resp.Request.URL, resp.Header)
		if attempt == 0 && fresh && resp.StatusCode == http.StatusBadRequest && errorCode(data) == "use_dpop_nonce" {
			continue
		}
		return data, resp, nil
	}
}

// token posts a grant and reads the token it answers. A token bound to
// key keeps the key with it when the key can be written out, so that
// every process sharing the token's store can use it.
func (c *Config) token(ctx context.Context, op, endpoint string, form url.Values, key *DPoPKey) (*authrefresh.Token, error) {
	data, resp, err := c.post(ctx, op, endpoint, form, key)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, c.refusal(op, resp, data, key)
	}
	tok, err := tokenhttp.ParseResponse(data, resp.Header.Get("Content-Type"), tokenhttp.Fields{})
	if err != nil {
		return nil, &authrefresh.RefreshError{Kind: authrefresh.RefreshTransient, Op: op, StatusCode: resp.StatusCode, Err: fmt.Errorf("%s: %w", endpoint, err)}
	}
	if strings.EqualFold(tok.TokenType, "DPoP") {
		if key == nil {
			return nil, &authrefresh.RefreshError{Kind: authrefresh.RefreshMisconfigured, Op: op, StatusCode: resp.StatusCode,
				Err: errors.New("the server issued a DPoP-bound token to a request without a proof")}
		}
		tok.DPoPKey = key.privateJWK()
	}
	return tok, nil
}

// refusal is the error of a non-2xx answer, with what to set when the
// server wants DPoP proofs the client does not send.
func (c *Config) refusal(op string, resp *http.Response, data []byte, key *DPoPKey) error {
	e := tokenhttp.Refusal(op, resp.StatusCode, resp.Header, data)
	if e.Code == "invalid_dpop_proof" || e.Code == "use_dpop_nonce" {
		if key == nil {
			e.Kind, e.Err = authrefresh.RefreshMisconfigured, errors.New("the server requires DPoP proofs: set the oauth.Config's DPoP key")
		} else if e.Code == "invalid_dpop_proof" {
			e.Kind = authrefresh.RefreshMisconfigured // a proof the server will not take is the client's to fix
		}
	}
	return e
}

// errorCode is the "error" of a token endpoint's JSON answer.
func errorCode(data []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(data, &e)
	return e.Error
}

// privateJWK is the key as a private JWK with its algorithm, for a token to
// carry; nil for a key that cannot be written out (a KMS or HSM Signer):
// every process must then set the same DPoPKey on its Config.
func (k *DPoPKey) privateJWK() json.RawMessage {
	head, err := k.header()
	if err != nil {
		return nil
	}
	pub, err := publicJWK(k.Signer.Public())
	if err != nil {
		return nil
	}
	enc := base64.RawURLEncoding
	var d string
	switch p := k.Signer.(type) {
	case *ecdsa.PrivateKey:
		b := make([]byte, (p.Curve.Params().BitSize+7)/8)
		p.D.FillBytes(b)
		d = `"d":"` + enc.EncodeToString(b) + `"`
	case *rsa.PrivateKey:
		if len(p.Primes) != 2 {
			return nil
		}
		d = `"d":"` + enc.EncodeToString(p.D.Bytes()) + `","p":"` + enc.EncodeToString(p.Primes[0].Bytes()) + `","q":"` + enc.EncodeToString(p.Primes[1].Bytes()) + `"`
	case ed25519.PrivateKey:
		d = `"d":"` + enc.EncodeToString(p.Seed()) + `"`
	default:
		return nil
	}
	return json.RawMessage(`{"alg":"` + head.alg + `",` + d + "," + string(pub[1:]))
}
