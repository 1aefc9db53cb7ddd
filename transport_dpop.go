package authrefresh

import (
	"io"
	"net/http"

	"github.com/authrefresh/authrefresh/internal/dpop"
)

// roundTripDPoP sends req with a token bound to a key (RFC 9449): as
// "Authorization: DPoP …" with a proof of its own on every attempt, never
// as a bearer token. An answer that asks for the server's new nonce
// (WWW-Authenticate: DPoP error="use_dpop_nonce") is retried once with it:
// that is not a refusal of the token, so it neither refreshes nor counts.
// A refusal of the token is then handled as for a bearer token: refreshed
// and replayed once.
func (t *Transport) roundTripDPoP(req *http.Request, tok *Token, opt skip) (*http.Response, error) {
	if t.Session.prover == nil {
		closeBody(req)
		return nil, ErrNoProver
	}
	if opt&skipRefresh != 0 {
		return t.send(req, req.Body, tok)
	}
	body := newReplayer(req, t.replayLimit(), t.ReplayBudget)
	resp, err := t.send(req, body.first, tok)
	if err == nil && resp.StatusCode >= 400 && dpop.Challenged(resp.Header) {
		status := resp.StatusCode
		discard(resp)
		again, terr := body.take()
		if terr != nil {
			return nil, &NotReplayedError{StatusCode: status, Err: terr}
		}
		resp, err = t.send(req, again, tok)
		if body.guard != nil {
			// A streamed body is kept for one replay, spent now.
			body = replayer{reason: "its streamed body was already sent again with the server's new DPoP nonce"}
		}
	}
	if err != nil || !t.refused(resp) || dpop.ProofRefused(resp.Header) || dpop.Challenged(resp.Header) {
		// A refused proof is not a refused token: a new token would not
		// make the proof right, so the answer goes back as it is; so does
		// a second ask for a nonce.
		if err == nil && !t.refused(resp) {
			t.Session.Accepted(tok)
		}
		body.release()
		return resp, err
	}
	return t.replay(req, resp, tok, body)
}

// replay refreshes a refused token and sends the request once more with
// the new one.
func (t *Transport) replay(req *http.Request, resp *http.Response, tok *Token, body replayer) (*http.Response, error) {
	status := resp.StatusCode
	discard(resp)
	fresh, err := t.Session.Refused(req.Context(), tok)
	if err != nil {
		body.release()
		if re, ok := err.(*NotReplayedError); ok {
			re.StatusCode = status
		}
		return nil, err
	}
	again, err := body.take()
	if err != nil {
		return nil, &NotReplayedError{StatusCode: status, Err: err}
	}
	resp, err = t.send(req, again, fresh)
	if err == nil && !t.refused(resp) {
		t.Session.Accepted(fresh)
	}
	return resp, err
}

// send sends req with body and tok: a bearer token in its header, or a
// DPoP-bound one with a new proof, the nonce its origin last gave, and the
// nonce of the answer learnt for the next proof.
func (t *Transport) send(req *http.Request, body io.ReadCloser, tok *Token) (*http.Response, error) {
	if !tok.dpop() {
		return t.base().RoundTrip(withAuthorization(req, body, t.header(tok)))
	}
	if t.Session.prover == nil {
		if body != nil {
			body.Close()
		}
		return nil, ErrNoProver
	}
	proof, err := t.Session.prover.Proof(tok, req.Method, req.URL.String(), t.Session.nonces.Get(req.URL), t.Session.now())
	if err != nil {
		if body != nil {
			body.Close()
		}
		return nil, err
	}
	r := withAuthorization(req, body, []string{"DPoP " + tok.AccessToken})
	r.Header[dpop.Header] = []string{proof}
	resp, err := t.base().RoundTrip(r)
	if err == nil {
		t.Session.nonces.Learn(req.URL, resp.Header)
	}
	return resp, err
}
