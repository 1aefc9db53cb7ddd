// Package dpop keeps what both ends of a DPoP client (RFC 9449) learn from
// servers: the nonces each origin hands out in its DPoP-Nonce header, and
// whether an answer asks for a retry with a new one. The token endpoint
// (oauth.Config) and the resource requests (authrefresh.Transport) each
// keep their own Nonces.
package dpop

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// Header is the request header that carries a proof ("DPoP"), in the
// canonical form net/http keeps header names in.
const Header = "Dpop"

// maxNonce bounds a nonce we keep and sign: a server that sends more is
// not one to trust with memory.
const maxNonce = 1024

// Nonce is the nonce of an answer's DPoP-Nonce header, if it holds a
// valid one (RFC 9449 §8.1: one or more NQCHAR, printable ASCII without
// '"' and '\'); "" otherwise.
func Nonce(h http.Header) string {
	v := h.Get("DPoP-Nonce")
	if v == "" || len(v) > maxNonce {
		return ""
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return ""
		}
	}
	return v
}

// Challenged reports whether a resource server's answer asks for a proof
// with its nonce: a WWW-Authenticate challenge of scheme DPoP with
// error="use_dpop_nonce" (RFC 9449 §9).
func Challenged(h http.Header) bool {
	for _, v := range h.Values("Www-Authenticate") {
		if strings.Contains(v, "use_dpop_nonce") && hasScheme(v, "dpop") {
			return true
		}
	}
	return false
}

// ProofRefused reports whether an answer says the proof, not the token,
// was wrong (error="invalid_dpop_proof"): refreshing the token would not
// help.
func ProofRefused(h http.Header) bool {
	for _, v := range h.Values("Www-Authenticate") {
		if strings.Contains(v, "invalid_dpop_proof") {
			return true
		}
	}
	return false
}

// hasScheme reports whether a WWW-Authenticate value names scheme (lower
// case) as a challenge: at its start or after a comma.
func hasScheme(v, scheme string) bool {
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		if len(part) >= len(scheme) && strings.EqualFold(part[:len(scheme)], scheme) &&
			(len(part) == len(scheme) || part[len(scheme)] == ' ') {
			return true
		}
	}
	return false
}

// Nonces remembers the last nonce each origin handed out. The zero value
// is ready; it is safe for concurrent use. It holds at most one nonce per
// origin a client talks to.
type Nonces struct {
	m sync.Map // origin → nonce
}

// Get is the nonce to sign into a proof for u; "" if none is known.
func (n *Nonces) Get(u *url.URL) string {
	if v, ok := n.m.Load(Origin(u)); ok {
		return v.(string)
	}
	return ""
}

// Learn keeps the nonce an answer from u carries, if any, and reports
// whether it is one the next proof to u did not already have.
func (n *Nonces) Learn(u *url.URL, h http.Header) bool {
	v := Nonce(h)
	if v == "" {
		return false
	}
	old, loaded := n.m.Swap(Origin(u), v)
	return !loaded || old.(string) != v
}

// Origin is u's origin as nonces are kept: scheme and host in lower case,
// without a default port.
func Origin(u *url.URL) string {
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	switch {
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		host = host[:len(host)-4]
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		host = host[:len(host)-3]
	}
	return scheme + "://" + host
}
