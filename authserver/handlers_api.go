package authserver

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Product is an item of the demo API's /api/v1/data collection.
type Product struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	Price       float64   `json:"price"`
	Description string    `json:"description,omitempty"`
	Owner       string    `json:"owner"`
	CreatedAt   time.Time `json:"created_at"`
}

type productStore struct {
	mu     sync.RWMutex
	items  []Product
	lastID int64 // IDs stay unique after TakeProducts
}

// Products returns a copy of every product created, in order.
func (s *Server) Products() []Product {
	s.products.mu.RLock()
	defer s.products.mu.RUnlock()
	return append([]Product(nil), s.products.items...)
}

// TakeProducts returns every product created since the last call and
// forgets them (IDs keep counting), so that long test runs can check the
// server's records in rounds with flat memory.
func (s *Server) TakeProducts() []Product {
	s.products.mu.Lock()
	defer s.products.mu.Unlock()
	items := s.products.items
	s.products.items = nil
	return items
}

// handleData: GET lists products (newest last; ?limit=, default 20, max
// 1000), POST creates one after validation.
func (s *Server) handleData(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		s.createProduct(w, r)
		return
	}
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1000 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid query", "details": map[string]string{"limit": "must be an integer from 0 to 1000"}})
			return
		}
		limit = n
	}
	s.products.mu.RLock()
	total := len(s.products.items)
	items := append([]Product{}, s.products.items[max(0, total-limit):]...)
	s.products.mu.RUnlock()
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "total": total})
}

func (s *Server) createProduct(w http.ResponseWriter, r *http.Request) {
	var in map[string]json.RawMessage
	if rerr := decodeJSON(r, &in); rerr != nil {
		writeJSON(w, rerr.status, map[string]any{"error": rerr.msg})
		return
	}
	if in == nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "a JSON object is required"})
		return
	}
	details := map[string]string{}
	var p Product
	if raw, ok := in["name"]; !ok || json.Unmarshal(raw, &p.Name) != nil {
		details["name"] = "is required and must be a string"
	} else if p.Name = strings.TrimSpace(p.Name); p.Name == "" {
		details["name"] = "must not be empty"
	} else if utf8.RuneCountInString(p.Name) > 200 {
		details["name"] = "must be at most 200 characters"
	}
	if raw, ok := in["price"]; !ok || json.Unmarshal(raw, &p.Price) != nil {
		details["price"] = "is required and must be a number"
	} else if math.IsNaN(p.Price) || math.IsInf(p.Price, 0) || p.Price <= 0 {
		details["price"] = "must be a positive number"
	}
	if raw, ok := in["description"]; ok && json.Unmarshal(raw, &p.Description) != nil {
		details["description"] = "must be a string"
	}
	if len(details) > 0 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid product", "details": details})
		return
	}
	claims, _ := ClaimsFromContext(r.Context())
	if claims != nil {
		p.Owner = claims.Subject
	}
	p.CreatedAt = s.now().UTC()
	s.products.mu.Lock()
	s.products.lastID++
	p.ID = s.products.lastID
	s.products.items = append(s.products.items, p)
	s.products.mu.Unlock()
	s.counters.productsCreated.Add(1)
	writeJSON(w, http.StatusCreated, p)
}

// handleMe: GET /api/v1/me, who the token says you are.
func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	c, _ := ClaimsFromContext(r.Context())
	out := map[string]any{"sub": c.Subject, "scope": c.Scope, "client_id": c.ClientID}
	if c.ExpiresAt != nil {
		out["exp"] = c.ExpiresAt.Unix()
	}
	writeJSON(w, http.StatusOK, out)
}

// writeJSONCacheable is writeJSON for public, cacheable documents.
func writeJSONCacheable(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_ = json.NewEncoder(w).Encode(v)
}
