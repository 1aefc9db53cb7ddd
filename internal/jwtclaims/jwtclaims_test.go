package jwtclaims

import (
	"encoding/base64"
	"strings"
	"testing"
)

func jwtWith(payload string) string {
	return "eyJhbGciOiJFZERTQSJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
}

func TestDecode(t *testing.T) {
	c, err := Decode(jwtWith(`{"exp":1800000002,"iat":1800000000.5}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.ExpiresAt.Unix() != 1800000002 || c.IssuedAt.UnixMilli() != 1800000000500 {
		t.Fatalf("claims %+v", c)
	}
	for _, bad := range []string{"", "abc", "a.b", "a.b.c.d", jwtWith(`[1]`), jwtWith(`{"exp":"soon"}`), jwtWith(`{"exp":-1}`), "a.!!!.c", strings.Repeat("a", maxJWTLength+1)} {
		if _, err := Decode(bad); err == nil {
			t.Errorf("Decode(%.20q) accepted garbage", bad)
		} else if len(bad) > 8 && strings.Contains(err.Error(), bad) {
			t.Errorf("error quotes the token: %v", err)
		}
	}
}
