package keyed

import "time"

// SetSweepSchedule makes m hand its timed sweeps to schedule instead of
// time.AfterFunc, so that a test fires them.
func SetSweepSchedule(m *Manager, schedule func(d time.Duration, sweep func())) {
	m.schedule = schedule
}

// MaxLiveOf is the bound m applies to its live keys.
func MaxLiveOf(m *Manager) int64 { return m.maxLive() }
