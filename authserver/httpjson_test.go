package authserver

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Malformed input is a 4xx with a JSON error, never a 500.
func TestMalformedInput(t *testing.T) {
	s, hs, _ := newTestServer(t, Config{MaxBodyBytes: 1 << 10})
	access, _ := login(t, hs.URL)
	huge := strings.Repeat("a", 2<<10)
	cases := []struct {
		method, path, ctype, body string
		status                    int
		errCode                   string
	}{
		{"POST", "/auth/login", "application/json", `{"username":`, 400, "invalid_request"},
		{"POST", "/auth/login", "application/json", `[]`, 400, "invalid_request"},
		{"POST", "/auth/login", "application/json", `{"username":1}`, 400, "invalid_request"},
		{"POST", "/auth/login", "application/json", `{}`, 400, "invalid_request"},
		{"POST", "/auth/login", "application/json", `{"username":"demo","password":"` + huge + `"}`, 413, "request_too_large"},
		{"POST", "/auth/refresh", "application/json", `{"refresh_token":"nope"}`, 401, "invalid_grant"},
		{"POST", "/auth/refresh", "application/json", `nope`, 400, "invalid_request"},
		{"POST", "/auth/refresh", "application/json", `{}`, 400, "invalid_request"},
		{"GET", "/auth/refresh", "", ``, 405, "method_not_allowed"},
		{"POST", "/oauth/token", "application/json", `{"grant_type":"password"}`, 400, "invalid_request"},
		{"POST", "/oauth/token", "application/x-www-form-urlencoded", `grant_type=magic`, 400, "unsupported_grant_type"},
		{"POST", "/oauth/token", "application/x-www-form-urlencoded", ``, 400, "invalid_request"},
		{"POST", "/oauth/token", "application/x-www-form-urlencoded", `grant_type=refresh_token&refresh_token=x`, 400, "invalid_grant"},
		{"POST", "/oauth/token", "application/x-www-form-urlencoded", `grant_type=password&username=a&username=b`, 400, "invalid_request"},
		{"POST", "/oauth/token", "application/x-www-form-urlencoded", `grant_type=%zz`, 400, "invalid_request"},
		{"POST", "/oauth/token", "application/x-www-form-urlencoded", `grant_type=client_credentials&client_id=demo-client&client_secret=bad`, 401, "invalid_client"},
		{"POST", "/oauth/revoke", "application/x-www-form-urlencoded", `token=unknown`, 200, ""},
		{"POST", "/oauth/revoke", "application/x-www-form-urlencoded", ``, 400, "invalid_request"},
		{"GET", "/nope", "", ``, 404, "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.method+tc.path+tc.body[:min(len(tc.body), 30)], func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, hs.URL+tc.path, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, data)
			}
			if tc.errCode != "" {
				var body map[string]any
				if err := json.Unmarshal(data, &body); err != nil || body["error"] != tc.errCode {
					t.Fatalf("body %s, want error %q", data, tc.errCode)
				}
			}
		})
	}
	// The protected API with a valid token and bad products.
	for body, field := range map[string]string{`{"name":"","price":1}`: "name", `{"name":"x","price":0}`: "price", `{"name":"x","price":"12"}`: "price", `{"name":"x"}`: "price"} {
		req, _ := http.NewRequest("POST", hs.URL+"/api/v1/data", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+access)
		resp, _ := http.DefaultClient.Do(req)
		var out struct {
			Error   string            `json:"error"`
			Details map[string]string `json:"details"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != 400 || out.Error == "" || out.Details[field] == "" {
			t.Fatalf("%s: %d %+v", body, resp.StatusCode, out)
		}
	}
	if s.Counters().Panics != 0 {
		t.Fatal("a handler panicked")
	}
}
