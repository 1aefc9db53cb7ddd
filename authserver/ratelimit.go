package authserver

import (
	"sync"
	"time"
)

// loginLimiter counts failed logins per user and per client IP in one-minute
// windows; past the limit, logins are refused with 429 until the window ends.
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

// blocked returns how long a login for user from ip must wait, 0 if it may go.
func (l *loginLimiter) blocked(user, ip string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	wait := l.check("u:"+user, l.perUser, now)
	return max(wait, l.check("ip:"+ip, l.perIP, now))
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

func (l *loginLimiter) fail(user, ip string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.windows) > 100_000 { // bounded memory under a spray of names
		for k, w := range l.windows {
			if now.Sub(w.start) >= limitWindow {
				delete(l.windows, k)
			}
		}
	}
	for _, key := range []string{"u:" + user, "ip:" + ip} {
		w, ok := l.windows[key]
		if !ok || now.Sub(w.start) >= limitWindow {
			w = &window{start: now}
			l.windows[key] = w
		}
		w.failures++
	}
}
