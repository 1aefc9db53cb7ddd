package authserver

import (
	"net/http"
	"sync/atomic"
)

// Counters is a snapshot of what the server has seen, readable in Go
// (Server.Counters) and, with EnableControlAPI, at GET /_control/counters.
type Counters struct {
	Logins           uint64            `json:"logins"`
	LoginFailures    uint64            `json:"login_failures"`
	LoginsThrottled  uint64            `json:"logins_throttled"`
	Refreshes        uint64            `json:"refreshes"`         // successful refreshes (rotations)
	RefreshFailures  uint64            `json:"refresh_failures"`  // invalid_grant answers
	InjectedFailures uint64            `json:"injected_failures"` // 503s from FailNextRefreshes
	ReuseDetections  uint64            `json:"reuse_detections"`  // families revoked for reuse
	GraceReplays     uint64            `json:"grace_replays"`
	Revocations      uint64            `json:"revocations"`
	ProductsCreated  uint64            `json:"products_created"`
	ClientTokens     uint64            `json:"client_tokens"`       // client_credentials grants answered
	Authorizations   uint64            `json:"authorizations"`      // codes issued by /oauth/authorize
	DevicePolls      uint64            `json:"device_polls"`        // device_code grant requests
	DeviceSlowDowns  uint64            `json:"device_slow_downs"`   // polls answered slow_down
	DPoPProofs       uint64            `json:"dpop_proofs"`         // proofs accepted, token endpoint and API
	DPoPReplays      uint64            `json:"dpop_replays"`        // proofs refused for a jti seen before
	DPoPNonceAsks    uint64            `json:"dpop_nonce_asks"`     // answers use_dpop_nonce
	DPoPBadProofs    uint64            `json:"dpop_bad_proofs"`     // answers invalid_dpop_proof
	DPoPKeyMismatch  uint64            `json:"dpop_key_mismatches"` // bound refresh tokens presented with another key
	Unauthorized     map[string]uint64 `json:"unauthorized"`        // refused API requests by cause
	Requests         map[string]uint64 `json:"requests"`            // by endpoint
	Panics           uint64            `json:"panics"`
	Faults           FaultCounts       `json:"faults"` // injected by FailNextRefreshes and SetChaos
}

// Unauthorized401s sums the refused API requests of every cause.
func (c Counters) Unauthorized401s() uint64 {
	var n uint64
	for _, v := range c.Unauthorized {
		n += v
	}
	return n
}

var refusalCauses = []string{"missing", "malformed", "expired", "signature", "algorithm", "issuer", "audience", "not_yet_valid", "missing_claim", "revoked", "invalid", "dpop_bound", "dpop_proof", "dpop_nonce"}

// counterSet is lock-free: the maps are built once and only their values change.
type counterSet struct {
	logins, loginFailures, loginsThrottled, refreshes, refreshFailures atomic.Uint64
	injectedFailures, reuseDetections, graceReplays, revocations       atomic.Uint64
	productsCreated, panics                                            atomic.Uint64
	clientTokens, authorizations, devicePolls, deviceSlowDowns         atomic.Uint64
	dpopNonceAsks, dpopBadProofs, dpopKeyMismatches                    atomic.Uint64
	refusals                                                           map[string]*atomic.Uint64
	requests                                                           map[string]*atomic.Uint64
}

func newCounterSet() *counterSet {
	c := &counterSet{refusals: map[string]*atomic.Uint64{}, requests: map[string]*atomic.Uint64{}}
	for _, cause := range refusalCauses {
		c.refusals[cause] = new(atomic.Uint64)
	}
	return c
}

func (c *counterSet) unauthorized(cause string) {
	n, ok := c.refusals[cause]
	if !ok {
		n = c.refusals["invalid"]
	}
	n.Add(1)
}

// count wraps an endpoint's handler with its request counter; called while
// routes are built, before any request.
func (c *counterSet) count(path string, h http.Handler) http.Handler {
	n := new(atomic.Uint64)
	c.requests[path] = n
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h.ServeHTTP(w, r)
	})
}

// Counters returns a snapshot of the counters.
func (s *Server) Counters() Counters {
	c := s.counters
	faults := s.Faults()
	out := Counters{
		Logins: c.logins.Load(), LoginFailures: c.loginFailures.Load(), LoginsThrottled: c.loginsThrottled.Load(),
		Refreshes: c.refreshes.Load(), RefreshFailures: c.refreshFailures.Load(), InjectedFailures: c.injectedFailures.Load(),
		ReuseDetections: c.reuseDetections.Load(), GraceReplays: c.graceReplays.Load(), Revocations: c.revocations.Load(),
		ProductsCreated: c.productsCreated.Load(), Panics: c.panics.Load(),
		ClientTokens: c.clientTokens.Load(), Authorizations: c.authorizations.Load(), DevicePolls: c.devicePolls.Load(), DeviceSlowDowns: c.deviceSlowDowns.Load(),
		Unauthorized: map[string]uint64{}, Requests: map[string]uint64{}, Faults: faults,
		DPoPProofs: s.dpop.Proofs(), DPoPReplays: s.dpop.Replays(), DPoPNonceAsks: c.dpopNonceAsks.Load(),
		DPoPBadProofs: c.dpopBadProofs.Load(), DPoPKeyMismatch: c.dpopKeyMismatches.Load(),
	}
	for k, v := range c.refusals {
		if n := v.Load(); n > 0 {
			out.Unauthorized[k] = n
		}
	}
	for k, v := range c.requests {
		out.Requests[k] = v.Load()
	}
	return out
}
