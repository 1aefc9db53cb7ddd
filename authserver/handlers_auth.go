package authserver

import (
	"net/http"
	"strconv"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// handleLogin: POST /auth/login {"username", "password"}.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if rerr := decodeJSON(r, &in); rerr != nil {
		writeError(w, rerr.status, "invalid_request", rerr.msg)
		return
	}
	if in.Username == "" || in.Password == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "username and password are required")
		return
	}
	answer, gerr := s.passwordGrant(r, in.Username, in.Password, "", "", "")
	if gerr != nil {
		if gerr.code == "invalid_grant" {
			gerr.status = http.StatusUnauthorized // the JSON flow: bad credentials are 401
		}
		gerr.write(w)
		return
	}
	writeJSON(w, http.StatusOK, withCamelCase(answer))
}

// jsonRefreshToken reads the refresh token under any of its common names.
func jsonRefreshToken(fields map[string]string) string {
	for _, k := range []string{"refresh_token", "refreshToken", "token"} {
		if v := fields[k]; v != "" {
			return v
		}
	}
	return ""
}

// handleRefresh: POST /auth/refresh {"refresh_token"}. A dead refresh token
// is 401 here (the usual contract: a refused refresh means the user must log in again).
func (s *Server) handleRefresh(w http.ResponseWriter, r *http.Request) {
	fields, rerr := formOrJSON(r)
	if rerr != nil {
		writeError(w, rerr.status, "invalid_request", rerr.msg)
		return
	}
	answer, gerr := s.refreshGrant(r.Context(), jsonRefreshToken(fields), "", "", "", false)
	if gerr != nil {
		if gerr.code == "invalid_grant" {
			gerr.status = http.StatusUnauthorized
		}
		gerr.write(w)
		return
	}
	writeJSON(w, http.StatusOK, withCamelCase(answer))
}

// handleLogout: POST /auth/logout {"refresh_token"} revokes the family.
// Unknown tokens are fine: logging out twice is not an error.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	fields, rerr := formOrJSON(r)
	if rerr != nil {
		writeError(w, rerr.status, "invalid_request", rerr.msg)
		return
	}
	token := jsonRefreshToken(fields)
	if token == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "refresh_token is required")
		return
	}
	s.RevokeRefreshToken(token)
	writeJSON(w, http.StatusOK, map[string]bool{"revoked": true})
}
