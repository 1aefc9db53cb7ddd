package jsonauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
)

// An API that spells everything its own way: the refresh token's field in
// the request (RequestField), the answer's fields (Fields), an API key
// (Header); the answer's lifetime comes back undated (ExpiresIn) for the
// Session to date.
func TestRefresherOwnSpellings(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in map[string]string
		_ = json.NewDecoder(r.Body).Decode(&in)
		if in["renewal"] != "r1" || r.Header.Get("X-Api-Key") != "k" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"jwt":"a2","next":"r2","ttl":90}`))
	}))
	defer api.Close()
	r := &Refresher{URL: api.URL, RequestField: "renewal", Header: http.Header{"X-Api-Key": {"k"}},
		Fields: Fields{AccessToken: "jwt", RefreshToken: "next", ExpiresIn: "ttl"}}
	tok, err := r.Refresh(context.Background(), &authrefresh.Token{AccessToken: "a1", RefreshToken: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "a2" || tok.RefreshToken != "r2" || tok.ExpiresIn != 90*time.Second || !tok.Expiry.IsZero() {
		t.Fatalf("got %+v", *tok)
	}
}

// A refused refresh or login is a *RefreshError of kind RefreshRejected
// naming what failed; a token without a refresh token is rejected without
// a request; a Refresher without LogoutURL revokes nothing.
func TestRefusals(t *testing.T) {
	var requests int
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"message":"bad credentials"}`))
	}))
	defer api.Close()
	ctx := context.Background()
	_, err := Login(ctx, nil, api.URL, "demo", "wrong")
	var re *authrefresh.RefreshError
	if !errors.As(err, &re) || re.Kind != authrefresh.RefreshRejected || re.Op != "login" || re.Description != "bad credentials" {
		t.Fatalf("login: %v", err)
	}
	_, err = (&Refresher{URL: api.URL}).Refresh(ctx, &authrefresh.Token{AccessToken: "a", RefreshToken: "r"})
	if !errors.As(err, &re) || re.Kind != authrefresh.RefreshRejected || re.Op != "refresh" {
		t.Fatalf("refresh: %v", err)
	}
	before := requests
	if _, err := (&Refresher{URL: api.URL}).Refresh(ctx, &authrefresh.Token{AccessToken: "a"}); !errors.Is(err, authrefresh.ErrRefreshRejected) {
		t.Fatalf("no refresh token: %v", err)
	}
	if err := (&Refresher{URL: api.URL}).Revoke(ctx, &authrefresh.Token{AccessToken: "a", RefreshToken: "r"}); err != nil {
		t.Fatalf("revoke without LogoutURL: %v", err)
	}
	if requests != before {
		t.Fatalf("%d requests sent for nothing", requests-before)
	}
}
