// Package bff is a backend-for-frontend: it lets a single-page app call
// APIs as its logged-in user without the browser ever holding a token.
// The tokens stay on the server; the browser holds an HttpOnly session
// cookie; the BFF attaches the user's access token — refreshed ahead, one
// refresh per user, a refused request replayed once — to the app's API
// calls. This is the architecture the IETF's guidance for browser-based
// apps recommends over tokens in JavaScript.
//
// Mounted at the app's origin, a BFF answers:
//
//	GET  /bff/login?returnUrl=/path  starts a login (code + PKCE, state, nonce)
//	GET  /bff/callback               the provider's redirect: a new session
//	GET  /bff/user                   the ID token's claims, the session's end, the logout URL; never a token
//	GET  /bff/logout?sid=…           (that logout URL) revokes, ends the session, on to the provider's logout
//	POST /bff/logout                 the same for fetch: answers the provider's logout URL
//	POST /bff/backchannel-logout     OpenID Back-Channel Logout: the provider ends sessions
//	/api/...                         each configured API, with the user's token
//
// Every request to /bff/user, POST /bff/logout and the APIs must carry the CSRF
// header (X-CSRF, any value), which a page of another site cannot set
// without a preflight the BFF never grants, and pass net/http's
// CrossOriginProtection and a Sec-Fetch-Site check, whatever its method;
// a logout navigation must carry its session's sid, which only a page
// that read /bff/user knows.
// The browser's Cookie header never reaches an API, and an API's
// Set-Cookie never reaches the browser. A call without a session, or whose
// session ended, is answered 401 with a JSON body, never a redirect, so the
// app can show its login button.
package bff
