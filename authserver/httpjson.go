package authserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers with the RFC 6749 §5.2 shape, which also serves as the
// common {"error": ...} shape of hand-written APIs.
func writeError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

// requestError is a client mistake in a request body.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

// bodyError turns a body-reading failure into 413 or 400.
func bodyError(err error) *requestError {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &requestError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", tooBig.Limit)}
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return &requestError{http.StatusBadRequest, fmt.Sprintf("malformed JSON at byte %d", syn.Offset)}
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return &requestError{http.StatusBadRequest, fmt.Sprintf("field %q has the wrong type", typ.Field)}
	}
	return &requestError{http.StatusBadRequest, "malformed request body"}
}

// decodeJSON reads one JSON object from the body into v.
func decodeJSON(r *http.Request, v any) *requestError {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if dec.More() {
		return &requestError{http.StatusBadRequest, "malformed JSON: more than one value"}
	}
	return nil
}

// formOrJSON reads string fields from a form or JSON body, whichever the
// Content-Type says (JSON when it says nothing, as axios sends).
func formOrJSON(r *http.Request) (map[string]string, *requestError) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/x-www-form-urlencoded" {
		vals, rerr := readForm(r)
		if rerr != nil {
			return nil, rerr
		}
		out := map[string]string{}
		for k := range vals {
			out[k] = vals.Get(k)
		}
		return out, nil
	}
	var raw map[string]any
	if rerr := decodeJSON(r, &raw); rerr != nil {
		return nil, rerr
	}
	out := map[string]string{}
	for k, v := range raw {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out, nil
}

// readForm parses an application/x-www-form-urlencoded body.
func readForm(r *http.Request) (url.Values, *requestError) {
	if err := r.ParseForm(); err != nil {
		return nil, bodyError(err)
	}
	return r.PostForm, nil
}
