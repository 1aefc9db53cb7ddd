// Package sidecar is the authrefresh proxy as a library: an http.Handler
// that forwards every request to one upstream with a Session's token —
// refreshed ahead, refreshed and replayed once after a refusal — so that a
// program that knows nothing of tokens (curl, a legacy app, another
// language) calls the API authenticated. The authrefresh command's proxy is
// this handler behind its flags.
//
// It answers only its owner: a Guard refuses a Host that is not the
// listener's (DNS rebinding), a request a browser sends for a web page
// unless its origin is allowed, and, with a Secret, any request without
// "Proxy-Authorization: Bearer <secret>". Limits bound the requests in
// flight and how long a body may take. Its hop to the upstream never mixes
// two exchanges: a connection with anything unread is closed, not reused.
// Under /.authrefresh/ it answers itself: health and Prometheus metrics.
package sidecar
