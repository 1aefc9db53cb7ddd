package authserver

import (
	"net/http"
	"strings"
)

// cors lets the configured browser origins call the server (a browser app
// served from another port), answering preflights itself.
func (s *Server) cors(next http.Handler) http.Handler {
	allowed := map[string]bool{}
	any := false
	for _, o := range s.cfg.AllowedOrigins {
		if o == "*" {
			any = true
		}
		allowed[strings.TrimRight(strings.ToLower(o), "/")] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || len(allowed) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		if !any && !allowed[strings.ToLower(origin)] {
			if r.Method == http.MethodOptions {
				writeError(w, http.StatusForbidden, "origin_not_allowed", "this origin may not call the server")
				return
			}
			next.ServeHTTP(w, r) // no CORS headers: the browser blocks the answer
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Expose-Headers", "WWW-Authenticate, Retry-After")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
