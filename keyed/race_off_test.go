//go:build !race

package keyed_test

// raceEnabled: the race detector slows tests 5–10×; the largest ones scale
// down under it.
const raceEnabled = false
