package keyed

import (
	"context"
	"iter"
	"sync"
	"time"

	"github.com/authrefresh/authrefresh"
)

// KeepAlive refreshes, in the background, the tokens of keys that see no
// traffic, before their refresh tokens lapse: many providers revoke a
// refresh token unused for some days, or end a session idle for hours, and
// a user who comes back after a quiet week should find the connection alive.
//
// Each pass goes through Keys and refreshes every key whose token is older
// than MaxAge (by its IssuedAt, on the Session's clock), at most Concurrency at once. A key already
// refreshed by traffic, or by another process sharing its store, is left
// alone: the age is the stored token's, and a refresh under the store's lock
// adopts a newer token rather than refreshing again. Keys a pass loads that
// were not live are evicted again by the next sweep, so a pass over a
// million keys does not keep them in memory.
//
// To cap the refreshes toward one token endpoint — traffic's and the
// passes' together — wrap its Refreshers with one RefreshLimit.
type KeepAlive struct {
	// Manager holds the keys. Required.
	Manager *Manager
	// Keys yields the keys to keep alive (your users with a connection),
	// afresh at each pass. Required.
	Keys func(ctx context.Context) iter.Seq[string]
	// MaxAge is how old a token may get before a pass refreshes it; 0 means
	// 24 hours. Keep it well under the provider's idle limit.
	MaxAge time.Duration
	// Interval is the time between passes (Run); 0 means MaxAge/4.
	Interval time.Duration
	// Concurrency is the refreshes a pass runs at once; 0 means 4.
	Concurrency int
	// OnError is told of each key whose token could not be read or
	// refreshed (an ended session is also told to Manager.OnSessionExpired).
	OnError func(key string, err error)
}

// KeepAliveReport is what one pass did.
type KeepAliveReport struct {
	Keys      int // keys looked at
	Refreshed int // refreshed by this process (a key another process refreshed first is adopted, not counted)
	Failed    int // whose token could not be read or refreshed (see OnError)
}

// Run makes a pass every Interval until ctx ends, and returns ctx's error.
func (k *KeepAlive) Run(ctx context.Context) error {
	interval := k.Interval
	if interval <= 0 {
		interval = k.maxAge() / 4
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		k.Pass(ctx)
		t.Reset(interval)
	}
}

func (k *KeepAlive) maxAge() time.Duration {
	if k.MaxAge > 0 {
		return k.MaxAge
	}
	return 24 * time.Hour
}

// Pass goes through Keys once and refreshes the keys whose tokens are older
// than MaxAge, returning when every refresh it started has ended.
func (k *KeepAlive) Pass(ctx context.Context) KeepAliveReport {
	n := k.Concurrency
	if n <= 0 {
		n = 4
	}
	slots := make(chan struct{}, n)
	var mu sync.Mutex
	var report KeepAliveReport
	var wg sync.WaitGroup
	for key := range k.Keys(ctx) {
		if ctx.Err() != nil {
			break
		}
		report.Keys++
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			refreshed, err := k.keep(ctx, key)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				report.Failed++
				if k.OnError != nil {
					k.OnError(key, err)
				}
			case refreshed:
				report.Refreshed++
			}
		}()
	}
	wg.Wait()
	k.Manager.evict() // the keys this pass loaded, and nobody used since
	return report
}

// keep refreshes key if its token is older than MaxAge.
func (k *KeepAlive) keep(ctx context.Context, key string) (refreshed bool, err error) {
	e, release, err := k.Manager.hold(key)
	if err != nil {
		return false, err
	}
	defer release()
	before := e.session.Stats().Refreshes
	defer func() { refreshed = err == nil && e.session.Stats().Refreshes > before }()
	tok, err := e.session.Token(ctx) // loads it; refreshes it if it is stale anyway
	if err != nil {
		return false, err
	}
	if issued := tok.IssuedAt; !issued.IsZero() && e.session.Options().Clock().Sub(issued) < k.maxAge() {
		return false, nil
	}
	_, err = e.session.Refresh(ctx) // under the store's lock: adopts a newer token if another process refreshed
	return false, err
}

// RefreshLimit caps the refreshes in flight at once through the Refreshers
// it wraps: make one per token endpoint and wrap every key's Refresher for
// that endpoint with it, so that no burst — 100,000 keys whose tokens were
// issued together, a keep-alive pass, a restart — sends the provider more
// than n refreshes at a time. A refresh waiting for a slot honours its
// context (Options.RefreshTimeout).
type RefreshLimit struct {
	slots chan struct{}
}

// NewRefreshLimit returns a RefreshLimit of n refreshes at once (at least 1).
func NewRefreshLimit(n int) *RefreshLimit {
	return &RefreshLimit{slots: make(chan struct{}, max(n, 1))}
}

// InFlight is the number of refreshes holding a slot.
func (l *RefreshLimit) InFlight() int { return len(l.slots) }

// Wrap returns r limited by l. Whatever else r can do, the result can do
// too: a Revoker's Revoke passes through without taking a slot (revoking
// is not refreshing); an Acquirer's Acquire (oauth.ClientCredentials: a token
// request like a refresh) takes a slot.
func (l *RefreshLimit) Wrap(r authrefresh.Refresher) authrefresh.Refresher {
	base := &limited{l, r}
	_, revokes := r.(authrefresh.Revoker)
	_, acquires := r.(authrefresh.Acquirer)
	switch {
	case revokes && acquires:
		return &limitedRevokerAcquirer{limitedRevoker{base}, limitedAcquirer{base}}
	case revokes:
		return &limitedRevoker{base}
	case acquires:
		return &limitedAcquirer{base}
	}
	return base
}

// limited is a Refresher behind a RefreshLimit; the types below add the
// wrapped Refresher's optional capabilities, so that wrapping hides none.
type limited struct {
	limit *RefreshLimit
	r     authrefresh.Refresher
}

// slot waits for a free slot; release gives it back.
func (l *limited) slot(ctx context.Context) (release func(), err error) {
	select {
	case l.limit.slots <- struct{}{}:
		return func() { <-l.limit.slots }, nil
	case <-ctx.Done():
		return nil, authrefresh.Transient(ctx.Err())
	}
}

func (l *limited) Refresh(ctx context.Context, tok *authrefresh.Token) (*authrefresh.Token, error) {
	release, err := l.slot(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return l.r.Refresh(ctx, tok)
}

type limitedRevoker struct{ *limited }

func (l limitedRevoker) Revoke(ctx context.Context, tok *authrefresh.Token) error {
	return l.r.(authrefresh.Revoker).Revoke(ctx, tok)
}

type limitedAcquirer struct{ *limited }

func (l limitedAcquirer) Acquire(ctx context.Context) (*authrefresh.Token, error) {
	release, err := l.slot(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return l.r.(authrefresh.Acquirer).Acquire(ctx)
}

type limitedRevokerAcquirer struct {
	limitedRevoker
	limitedAcquirer
}

// Refresh resolves the two embedded paths to the one Refresh.
func (l *limitedRevokerAcquirer) Refresh(ctx context.Context, tok *authrefresh.Token) (*authrefresh.Token, error) {
	return l.limitedRevoker.Refresh(ctx, tok)
}
