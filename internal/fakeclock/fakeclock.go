// Package fakeclock is the test clock shared by the reference server and the
// Sessions under test, so tests cross token expiries without sleeping.
package fakeclock

import (
	"sync"
	"time"
)

// Clock is a manually advanced time source, safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a Clock at a fixed, whole-second instant.
func New() *Clock { return &Clock{now: time.Unix(1_800_000_000, 0)} }

// Now returns the clock's time; pass the method value as a Clock option.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
