package authrefresh

import (
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a Session's counters.
type Stats struct {
	Refreshes          uint64        // successful calls to the Refresher
	Adopted            uint64        // tokens taken from the store instead of refreshing (first load, or saved by another Session)
	TransientFailures  uint64        // refreshes that failed transiently
	Rejections         uint64        // refreshes whose refresh token was rejected (session ended)
	BackoffRefusals    uint64        // calls refused fast because a backoff was running
	StoreErrors        uint64        // failed store reads/writes during refreshes
	Refusals           uint64        // refusals of the current token reported to Refresh (a Transport replays each such request once)
	StaleRefusals      uint64        // refusals of an already replaced token (replayed, no refresh)
	Waits              uint64        // calls that had to wait for a refresh
	WaitTime           time.Duration // total time those calls waited
	MaxWait            time.Duration // longest single wait
	LockWaits          uint64        // refreshes that took the store's cross-process lock
	LockWaitTime       time.Duration // total time spent acquiring that lock
	RefreshAheadStarts uint64        // background refreshes started by refresh-ahead
	Resumed            uint64        // ended sessions resumed with a new login found in the store
	UnknownExpiry      uint64        // tokens taken in whose lifetime is unknown (no expires_in, not a JWT): renewed only when refused
	Evictions          uint64        // keyed.Manager.Stats only: keys evicted (idle, or over MaxLive)
}

// Stats returns a snapshot of the Session's counters.
func (s *Session) Stats() Stats { return s.stats.snapshot() }

// counters are the atomics behind Stats.
type counters struct {
	refreshes, adopted, transientFailures, rejections, backoffRefusals atomic.Uint64
	storeErrors, refusals, staleRefusals, waits, lockWaits             atomic.Uint64
	refreshAheadStarts, resumed, unknownExpiry                         atomic.Uint64
	waitNanos, maxWaitNanos, lockWaitNanos                             atomic.Int64
}

func (c *counters) noteWait(d time.Duration) {
	c.waits.Add(1)
	c.waitNanos.Add(int64(d))
	for {
		m := c.maxWaitNanos.Load()
		if int64(d) <= m || c.maxWaitNanos.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

func (c *counters) noteLockWait(d time.Duration) {
	c.lockWaits.Add(1)
	c.lockWaitNanos.Add(int64(d))
}

func (c *counters) snapshot() Stats {
	return Stats{
		Refreshes:          c.refreshes.Load(),
		Adopted:            c.adopted.Load(),
		TransientFailures:  c.transientFailures.Load(),
		Rejections:         c.rejections.Load(),
		BackoffRefusals:    c.backoffRefusals.Load(),
		StoreErrors:        c.storeErrors.Load(),
		Refusals:           c.refusals.Load(),
		StaleRefusals:      c.staleRefusals.Load(),
		Waits:              c.waits.Load(),
		WaitTime:           time.Duration(c.waitNanos.Load()),
		MaxWait:            time.Duration(c.maxWaitNanos.Load()),
		LockWaits:          c.lockWaits.Load(),
		LockWaitTime:       time.Duration(c.lockWaitNanos.Load()),
		RefreshAheadStarts: c.refreshAheadStarts.Load(),
		Resumed:            c.resumed.Load(),
		UnknownExpiry:      c.unknownExpiry.Load(),
	}
}

// noteLifetime counts, and logs once in a while, a token whose lifetime is
// unknown: nothing refreshes it ahead, so the first request after its end
// costs a refusal and a replay.
func (s *Session) noteLifetime(tok *Token) {
	if tok.Expiry.IsZero() && s.stats.unknownExpiry.Add(1) == 1 {
		s.opts.Logger.Info("authrefresh: the auth server says nothing of the token's lifetime (no expires_in, and not a JWT): it is renewed only when the API refuses it")
	}
}
