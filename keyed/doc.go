// Package keyed holds one authrefresh Session per key — per user, per
// tenant, per upstream account — for a process that calls APIs on behalf of
// many: a Manager makes each key's Session on first use, evicts idle ones
// (their tokens stay in their stores) and is itself an http.RoundTripper
// that authenticates each request as the key its context names (WithKey).
//
// KeepAlive refreshes the tokens of keys nobody used lately, so that their
// refresh tokens do not expire; RefreshLimit caps the refreshes in flight
// toward one token endpoint, whatever burst the keys make.
package keyed
