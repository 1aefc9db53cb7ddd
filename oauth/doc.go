// Package oauth is the OAuth 2.0 client side of authrefresh: a Config names
// the client (its token endpoint, id, and secret or signing key) and is the
// Refresher of a Session for RFC 6749's refresh_token grant; the flows that
// log a user in return the token for Session.Login.
//
//   - Config: refresh, revoke (RFC 7009) and the password grant, with the
//     client authenticated by a secret (Basic or form) or by a signed JWT
//     (private_key_jwt, RFC 7523: ClientKey, ParseClientKeyPEM,
//     ParseClientKeyJWK).
//   - Discover: a provider's metadata (RFC 8414, OpenID Connect Discovery),
//     refusing an issuer mismatch and plain-HTTP endpoints of an https
//     issuer.
//   - BrowserLogin: the authorization code grant with PKCE (x/oauth2's
//     verifier) and a loopback redirect (RFC 8252).
//   - DeviceLogin: the device authorization grant (RFC 8628).
//   - ClientCredentials: machine-to-machine tokens (RFC 6749 §4.4), a
//     Refresher that needs no Login.
//   - ConfigRefresher, TokenSourceRefresher and TokenFrom: golang.org/x/oauth2
//     Configs and TokenSources as Refreshers, its tokens as authrefresh's.
//   - DPoPKey: DPoP proofs (RFC 9449) and the key's thumbprint, for tokens
//     bound to a key the client holds. Config and Transport do not yet add
//     them by themselves: a program sends the proof in the "DPoP" header.
//
// Every token endpoint is called without following redirects, its answer
// read up to a bound, and every failure classified by one table into an
// *authrefresh.RefreshError: invalid_grant ends the session, invalid_client
// and its kin are the configuration's fault (the token is kept), the rest
// may pass.
package oauth
