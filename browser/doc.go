// Package browser holds the tests that drive a real Chromium (Debian's
// chromium, headless) through chromedp against the backend-for-frontend:
//   - the products app logs in through the reference server and calls its
//     API with no token in the page; a page of another origin cannot reach
//     the API through it;
//   - with panva's oidc-provider (../interop/oidc-provider), two BFF
//     replicas on one Redis behind a balancer: login, one refresh for 50
//     parallel calls, a restart, back-channel and RP-initiated logout, a
//     refresh token revoked at the provider;
//   - beside oauth2-proxy (built from the oauth2-proxy module here, at the
//     version it pins), against the same provider: failed calls and
//     refresh-token reuse at expiry, and a benchmark of requests/s and
//     latency through each, the sidecar's beside them.
//
// It is a module of its own, so that the library gains no dependency on
// chromedp.
package browser
