package authrefresh

import (
	"math/rand/v2"
	"time"
)

// retryState is what a Session remembers about refreshes that failed or did
// not help, and the one rule that spaces out the next ones: MinBackoff,
// doubling with each occurrence in a row, capped at MaxBackoff.
type retryState struct {
	fails int       // consecutive transient failures
	until time.Time // no refresh before this, after a transient failure
	last  error     // the transient failure that set until
	// refused counts refreshes in a row caused by refusals of tokens the
	// server never accepted: see hold.
	refused int
}

// spacing is the doubling rule: min·2ⁿ⁻¹, capped at max.
func spacing(n int, lo, hi time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	if n > 30 {
		return hi
	}
	return min(lo<<(n-1), hi)
}

// failed records a transient failure at now and returns when the next
// attempt may start: the jittered spacing ("equal jitter": never less than
// half, never in lockstep with other clients), or the server's Retry-After
// if that is longer (still capped).
func (r *retryState) failed(err *RefreshError, now time.Time, o *Options) time.Time {
	r.fails++
	r.last = err
	d := spacing(r.fails, o.MinBackoff, o.MaxBackoff)
	if err.local {
		// The store failed, not the auth server: retrying costs the auth
		// server nothing, so a store that heals (a failover done, Redis
		// back) is used again within a second, not after a long backoff.
		d = min(d, max(o.MinBackoff, time.Second))
	}
	d = d/2 + rand.N(d/2+1)
	if err.RetryAfter > d {
		d = min(err.RetryAfter, o.MaxBackoff)
	}
	r.until = now.Add(d)
	return r.until
}

// succeeded forgets the failures.
func (r *retryState) succeeded() { r.fails, r.until, r.last = 0, time.Time{}, nil }

// hold is how soon a token obtained because the server refused its
// predecessor may itself cause a refresh when it is refused before the server
// ever accepted it. Once is bad luck (the new token was revoked at once); in a
// row it means the server refuses fresh tokens, and refreshing on every
// request would only hammer the auth server. An accepted token resets it.
func (r *retryState) hold(o *Options) time.Duration {
	return spacing(r.refused+1, o.MinBackoff, o.MaxBackoff)
}

// refusalRenewed notes a refresh caused by a refusal of from's token: one
// more in a row if that token had itself replaced a refused one and was
// never accepted since, else the first.
func (r *retryState) refusalRenewed(from *state) {
	if from.unproven() {
		r.refused++
	} else {
		r.refused = 0
	}
}
