package authserver

import (
	"sync"
	"time"
)

// loginLimiter counts failed logins (and logins being checked) per user and
// per client IP in one-minute windows; past the limit, logins are refused
// with 429 until the window ends.
type loginLimiter struct {
	mu             sync.Mutex
	perUser, perIP int
	windows        map[string]*window
}

type window struct {
	start    time.Time
	failures int
}

const limitWindow = time.Minute

func newLoginLimiter(perUser, perIP int) *loginLimiter {
	return &loginLimiter{perUser: perUser, perIP: perIP, windows: map[string]*window{}}
}

// reserve takes one attempt of user's and ip's allowance before the password
// is checked, so that concurrent guesses are limited like sequential ones
// (checking first and counting after would let every guess in flight
// through). It returns how long to wait if the allowance is used up (no
// attempt taken), else the function that settles the attempt: a success
// gives it back, a failure keeps it counted.
func (l *loginLimiter) reserve(user, ip string, now time.Time) (wait time.Duration, settle func(ok bool)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	keys := [2]string{"u:" + user, "ip:" + ip}
	limits := [2]int{l.perUser, l.perIP}
	for i, key := range keys {
		wait = max(wait, l.check(key, limits[i], now))
	}
	if wait > 0 {
		return wait, nil
	}
	if len(l.windows) > 100_000 { // bounded memory under a spray of names
		for k, w := range l.windows {
			if now.Sub(w.start) >= limitWindow {
				delete(l.windows, k)
			}
		}
	}
	var taken [2]*window
	for i, key := range keys {
		w, ok := l.windows[key]
		if !ok || now.Sub(w.start) >= limitWindow {
			w = &window{start: now}
			l.windows[key] = w
		}
		w.failures++
		taken[i] = w
	}
	return 0, func(ok bool) {
		if !ok {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, w := range taken {
			w.failures = max(w.failures-1, 0)
		}
	}
}

func (l *loginLimiter) check(key string, limit int, now time.Time) time.Duration {
	w, ok := l.windows[key]
	if limit < 0 || !ok || now.Sub(w.start) >= limitWindow {
		return 0
	}
	if w.failures >= limit {
		return w.start.Add(limitWindow).Sub(now)
	}
	return 0
}
