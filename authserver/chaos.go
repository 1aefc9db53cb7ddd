package authserver

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Chaos makes the server misbehave at random, so that clients can be tested
// against an unreliable auth server and network. Rates are probabilities per
// request between 0 and 1; the zero value is a well-behaved server.
//
// The token endpoints are /auth/refresh, /auth/refresh-token and /oauth/token;
// the API is /api/v1/*.
type Chaos struct {
	// Seed makes the faults reproducible; 0 picks a random seed.
	Seed uint64 `json:"seed,omitempty"`
	// RefreshLatencyMax delays each token-endpoint request by a uniformly
	// random duration up to this.
	RefreshLatencyMax time.Duration `json:"refresh_latency_max_ns,omitempty"`
	// RefreshFailRate answers 503 temporarily_unavailable without processing.
	RefreshFailRate float64 `json:"refresh_fail_rate,omitempty"`
	// RefreshDropRate closes the connection before the request is processed.
	RefreshDropRate float64 `json:"refresh_drop_rate,omitempty"`
	// RefreshLostRate processes the request (a refresh token is rotated) and
	// then closes the connection instead of answering: the client never sees
	// its new tokens. Only a grace period (Config.GracePeriod) lets a client
	// recover from this without a reuse detection.
	RefreshLostRate float64 `json:"refresh_lost_rate,omitempty"`
	// APICutRate processes an API request and closes the connection halfway
	// through the answer (a POST has created its product).
	APICutRate float64 `json:"api_cut_rate,omitempty"`
	// RevokeRate revokes every access token issued so far (RevokeAccessTokens)
	// before verifying an API request.
	RevokeRate float64 `json:"revoke_rate,omitempty"`
}

// FaultCounts counts the faults the server injected, by kind.
type FaultCounts struct {
	RefreshDelayed  uint64 `json:"refresh_delayed"`
	Refresh503      uint64 `json:"refresh_503"`
	RefreshDropped  uint64 `json:"refresh_dropped"`
	RefreshLost     uint64 `json:"refresh_lost"`
	APICut          uint64 `json:"api_cut"`
	AccessRevoked   uint64 `json:"access_revoked"`
	FailNextRefresh uint64 `json:"fail_next_refresh"` // 503s from FailNextRefreshes
}

// Total is the number of injected faults of every kind.
func (f FaultCounts) Total() uint64 {
	return f.RefreshDelayed + f.Refresh503 + f.RefreshDropped + f.RefreshLost + f.APICut + f.AccessRevoked + f.FailNextRefresh
}

// chaos holds the current settings and its random source.
type chaos struct {
	settings atomic.Pointer[Chaos]
	mu       sync.Mutex
	rng      *rand.Rand
	counts   struct{ delayed, failed, dropped, lost, cut, revoked atomic.Uint64 }
}

// SetChaos replaces the random faults; Chaos{} turns them off.
func (s *Server) SetChaos(c Chaos) {
	seed := c.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	s.chaos.mu.Lock()
	s.chaos.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	s.chaos.mu.Unlock()
	s.chaos.settings.Store(&c)
}

// roll reports whether an event of probability p happens.
func (c *chaos) roll(p float64) bool {
	if p <= 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rng.Float64() < p
}

// fraction draws a uniform number in [0, 1) for latencies.
func (c *chaos) fraction() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rng.Float64()
}

// chaosTokenEndpoint wraps a token endpoint with latency, 503s, drops and
// lost answers.
func (s *Server) chaosTokenEndpoint(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := s.chaos.settings.Load()
		if c == nil {
			next.ServeHTTP(w, r)
			return
		}
		if c.RefreshLatencyMax > 0 {
			s.chaos.counts.delayed.Add(1)
			if !sleep(r.Context(), time.Duration(s.chaos.fraction()*float64(c.RefreshLatencyMax))) {
				return
			}
		}
		switch {
		case s.chaos.roll(c.RefreshFailRate):
			s.chaos.counts.failed.Add(1)
			w.Header().Set("Retry-After", "0")
			writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "injected failure")
		case s.chaos.roll(c.RefreshDropRate):
			s.chaos.counts.dropped.Add(1)
			panic(http.ErrAbortHandler) // the server closes the connection; nothing was processed
		case s.chaos.roll(c.RefreshLostRate):
			next.ServeHTTP(&bufferedResponse{header: http.Header{}}, r)
			s.chaos.counts.lost.Add(1)
			panic(http.ErrAbortHandler)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// chaosAPI wraps the protected API with random revocations and cut answers.
func (s *Server) chaosAPI(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := s.chaos.settings.Load()
		if c == nil {
			next.ServeHTTP(w, r)
			return
		}
		if s.chaos.roll(c.RevokeRate) {
			s.chaos.counts.revoked.Add(1)
			s.RevokeAccessTokens()
		}
		if !s.chaos.roll(c.APICutRate) {
			next.ServeHTTP(w, r)
			return
		}
		buf := &bufferedResponse{header: http.Header{}}
		next.ServeHTTP(buf, r)
		for k, v := range buf.header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(buf.body.Len()))
		w.WriteHeader(buf.statusOr200())
		_, _ = w.Write(buf.body.Bytes()[:buf.body.Len()/2])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		s.chaos.counts.cut.Add(1)
		panic(http.ErrAbortHandler)
	})
}

// bufferedResponse holds an answer that chaos withholds or truncates.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}
func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}
func (b *bufferedResponse) statusOr200() int {
	if b.status == 0 {
		return http.StatusOK
	}
	return b.status
}

// Faults returns how many faults of each kind the server has injected.
func (s *Server) Faults() FaultCounts {
	c := &s.chaos.counts
	return FaultCounts{
		RefreshDelayed: c.delayed.Load(), Refresh503: c.failed.Load(), RefreshDropped: c.dropped.Load(),
		RefreshLost: c.lost.Load(), APICut: c.cut.Load(), AccessRevoked: c.revoked.Load(),
		FailNextRefresh: s.counters.injectedFailures.Load(),
	}
}
