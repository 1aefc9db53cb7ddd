package authserver

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"
)

// faults are the test-double's injected misbehaviours.
type faults struct {
	refreshLatency atomic.Int64 // nanoseconds
	apiLatency     atomic.Int64
	failRefreshes  atomic.Int64 // the next N refreshes answer 503
	expiredStatus  atomic.Int32
}

// beforeRefresh applies refresh latency and injected failures.
func (f *faults) beforeRefresh(ctx context.Context, c *counterSet) *grantError {
	if d := time.Duration(f.refreshLatency.Load()); d > 0 {
		if !sleep(ctx, d) {
			return &grantError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable", description: "request cancelled"}
		}
	}
	for {
		n := f.failRefreshes.Load()
		if n <= 0 {
			return nil
		}
		if f.failRefreshes.CompareAndSwap(n, n-1) {
			c.injectedFailures.Add(1)
			return &grantError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable", description: "injected failure"}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// SetRefreshLatency delays every refresh (both /auth/refresh and the
// refresh_token grant) by d.
func (s *Server) SetRefreshLatency(d time.Duration) { s.faults.refreshLatency.Store(int64(d)) }

// SetAPILatency delays every protected API request by d.
func (s *Server) SetAPILatency(d time.Duration) { s.faults.apiLatency.Store(int64(d)) }

// FailNextRefreshes makes the next n refreshes answer 503 temporarily_unavailable.
func (s *Server) FailNextRefreshes(n int) { s.faults.failRefreshes.Store(int64(n)) }

// SetExpiredStatus sets the status of an expired or invalid access token,
// 401 or 403.
func (s *Server) SetExpiredStatus(status int) {
	if status == 401 || status == 403 {
		s.faults.expiredStatus.Store(int32(status))
	}
}

func (s *Server) apiLatency(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := time.Duration(s.faults.apiLatency.Load()); d > 0 && !sleep(r.Context(), d) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// FaultSettings is the body of POST /_control/faults; absent fields are unchanged.
type FaultSettings struct {
	RefreshLatencyMS *int64 `json:"refresh_latency_ms,omitempty"`
	APILatencyMS     *int64 `json:"api_latency_ms,omitempty"`
	FailRefreshes    *int64 `json:"fail_refreshes,omitempty"`
	ExpiredStatus    *int   `json:"expired_status,omitempty"`
	Chaos            *Chaos `json:"chaos,omitempty"` // replaces the random faults; {} turns them off
}

func (s *Server) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("/_control/counters", allow(http.MethodGet, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Counters())
	}))
	mux.HandleFunc("/_control/device", allow(http.MethodPost, func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			UserCode string `json:"user_code"`
			User     string `json:"user"`
			Deny     bool   `json:"deny"`
		}
		if rerr := decodeJSON(r, &in); rerr != nil {
			writeError(w, rerr.status, "invalid_request", rerr.msg)
			return
		}
		if _, known := s.users[in.User]; !known && !in.Deny {
			writeError(w, http.StatusBadRequest, "invalid_request", "user must be one of the server's users")
			return
		}
		if !s.ApproveDevice(in.UserCode, in.User, in.Deny) {
			writeError(w, http.StatusNotFound, "not_found", "no pending device authorization has this user_code")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("/_control/faults", allow(http.MethodPost, func(w http.ResponseWriter, r *http.Request) {
		var in FaultSettings
		if rerr := decodeJSON(r, &in); rerr != nil {
			writeError(w, rerr.status, "invalid_request", rerr.msg)
			return
		}
		if in.ExpiredStatus != nil && *in.ExpiredStatus != 401 && *in.ExpiredStatus != 403 {
			writeError(w, http.StatusBadRequest, "invalid_request", "expired_status must be 401 or 403")
			return
		}
		if in.RefreshLatencyMS != nil {
			s.SetRefreshLatency(time.Duration(*in.RefreshLatencyMS) * time.Millisecond)
		}
		if in.APILatencyMS != nil {
			s.SetAPILatency(time.Duration(*in.APILatencyMS) * time.Millisecond)
		}
		if in.FailRefreshes != nil {
			s.FailNextRefreshes(int(*in.FailRefreshes))
		}
		if in.ExpiredStatus != nil {
			s.SetExpiredStatus(*in.ExpiredStatus)
		}
		if in.Chaos != nil {
			s.SetChaos(*in.Chaos)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("/_control/rotate-dpop-nonce", allow(http.MethodPost, func(w http.ResponseWriter, _ *http.Request) {
		s.RotateDPoPNonce()
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("/_control/revoke-access-tokens", allow(http.MethodPost, func(w http.ResponseWriter, _ *http.Request) {
		s.RevokeAccessTokens()
		w.WriteHeader(http.StatusNoContent)
	}))
}
