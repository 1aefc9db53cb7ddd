// Package jsonauth speaks the hand-written JSON protocol many APIs use
// instead of OAuth: POST {"username", "password"} to a login endpoint, POST
// the refresh token to a refresh endpoint, both answered with a JSON token
// ({"accessToken", "refreshToken", "expiresIn"} or the OAuth spellings);
// POST the refresh token to a logout endpoint. It is the protocol of the
// axios interceptors this library replaces, and of the reference server's
// /auth endpoints.
//
// Login logs in; Refresher is a Session's Refresher (and Revoker, when it
// has a LogoutURL); Fields renames the answer's fields for an API that
// spells them its own way.
package jsonauth
