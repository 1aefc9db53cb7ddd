// Package authrefresh calls OAuth2/JWT-protected HTTP APIs with a bearer
// token that is always fresh: attached to every request, refreshed before it
// expires, refreshed and replayed once when the server refuses it, shared by
// every concurrent request through one refresh — across processes too — and
// ended with a typed ErrSessionExpired when the refresh token is dead.
//
// Start with a Session, which owns one credential:
//
//	session := authrefresh.NewSession(store, refresher, authrefresh.Options{})
//	tok, err := jsonauth.Login(ctx, nil, loginURL, user, password)
//	err = session.Login(ctx, tok)
//
// The Store keeps the token where it outlives the process (MemoryStore,
// filestore.Store, or the redisstore package for many hosts); a Store that is also
// a Locker makes every process sharing it refresh once between them. The
// Refresher renews the token: jsonauth.Refresher for a JSON refresh endpoint,
// oauth.Config for RFC 6749's refresh_token grant, oauth.ConfigRefresher
// for a golang.org/x/oauth2 Config, or a RefreshFunc of your own.
//
// Then send requests through one of:
//
//   - Client, a JSON API client with a base URL, default headers and a
//     timeout, whose non-2xx answers are *APIError;
//   - Transport, an http.RoundTripper for any *http.Client;
//   - Session.TokenSource, for SDKs built on golang.org/x/oauth2
//     (with Session.ReportRefusals underneath when you can).
//
// Failures are classified in one place: every failed refresh is a
// *RefreshError whose Kind says whether the session is over (RefreshRejected:
// errors.Is(err, ErrSessionExpired) for every caller afterwards) or the
// failure may pass (RefreshTransient, retried after a backoff), or the
// server refused the client's configuration rather than the token
// (RefreshMisconfigured: the token is kept, attempts go on after a backoff),
// or the stored record cannot be read (RefreshStoreUnreadable:
// errors.Is(err, ErrStoreCorrupt); nothing is refreshed or overwritten), or
// the caller stopped waiting (RefreshCancelled). The Session reads one
// clock, Options.Clock, and dates every token it takes in by it.
//
// Beyond one session: keyed.Manager holds one per user (keyed.KeepAlive keeps idle
// users' tokens alive, keyed.RefreshLimit caps the refreshes toward a provider);
// oauth.ClientCredentials gets machine-to-machine tokens with no Login; oauth.Discover
// reads a provider's metadata; oauth.BrowserLogin (authorization code with PKCE
// and a loopback redirect) and oauth.DeviceLogin (RFC 8628) log a user in and
// return the token for Login; a seal.Keyring seals stored tokens.
//
// The authserver package is a reference auth server for tests and demos;
// the authrefresh command (cmd/authrefresh) logs in, calls APIs, and runs a
// sidecar proxy that gives any program the same behaviour.
package authrefresh
