package peers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/authrefresh/authrefresh/internal/scenario"
)

// AxiosDir is the folder of the axios-auth-refresh driver, relative to this
// package.
const AxiosDir = "axios"

// AxiosMode is how axios-auth-refresh is configured.
type AxiosMode string

const (
	// AxiosDefaults keeps every option at its default, as the README's
	// first example does.
	AxiosDefaults AxiosMode = "defaults"
	// AxiosNoDedup sets deduplicateRefresh: false, the workaround for
	// axios-auth-refresh#307: with the default, a 401 that arrives while a
	// refresh is pending is rejected instead of retried.
	AxiosNoDedup AxiosMode = "no-dedup"
)

// AxiosReady says why the axios-auth-refresh peer cannot run here (no node,
// or its packages not installed), or nil.
func AxiosReady() error {
	if _, err := exec.LookPath("node"); err != nil {
		return errors.New("node is not installed (the axios-auth-refresh peer needs Node.js 18 or newer)")
	}
	if _, err := os.Stat(filepath.Join(AxiosDir, "node_modules", "axios-auth-refresh")); err != nil {
		return fmt.Errorf("axios-auth-refresh is not installed: run npm ci --prefix %s", AxiosDir)
	}
	return nil
}

// runDriver runs driver.mjs with the tokens on stdin and decodes its answer.
func runDriver(ctx context.Context, access, refresh string, out any, args ...string) error {
	tokens, err := json.Marshal(map[string]string{"access_token": access, "refresh_token": refresh})
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "node", append([]string{"driver.mjs"}, args...)...)
	cmd.Dir = AxiosDir
	cmd.Stdin = bytes.NewReader(tokens)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("node driver.mjs %s: %v: %s", args[0], err, stderr.String())
	}
	if err := json.Unmarshal(stdout, out); err != nil {
		return fmt.Errorf("node driver.mjs %s: answer is not JSON: %v", args[0], err)
	}
	return nil
}

// RunAxiosAmplification sends n requests at once through axios +
// axios-auth-refresh to the reference server at baseURL, logged in with
// access and refresh, and returns how many failed.
func RunAxiosAmplification(ctx context.Context, mode AxiosMode, baseURL string, n int, access, refresh string) (failed int, err error) {
	var res struct{ OK, Failed int }
	if err := runDriver(ctx, access, refresh, &res, "amplify", baseURL, string(mode), strconv.Itoa(n)); err != nil {
		return 0, err
	}
	if res.OK+res.Failed != n {
		return 0, fmt.Errorf("node driver.mjs amplify: %d ok + %d failed, sent %d", res.OK, res.Failed, n)
	}
	return res.Failed, nil
}

// RunAxiosSteady runs the steady-traffic scenario through axios +
// axios-auth-refresh and judges its samples; the expiry of every token it
// refreshed is noted on sc.
func RunAxiosSteady(ctx context.Context, mode AxiosMode, sc *scenario.Steady) (scenario.TailResult, error) {
	var res struct {
		Samples  [][3]float64 `json:"samples"`
		Expiries []int64      `json:"expiries"`
	}
	err := runDriver(ctx, sc.Login.AccessToken, sc.Login.RefreshToken, &res, "steady", sc.URL, string(mode),
		strconv.Itoa(scenario.SteadyWorkers), strconv.FormatInt(scenario.SteadyDuration.Milliseconds(), 10), strconv.FormatInt(scenario.SteadyPause.Milliseconds(), 10))
	if err != nil {
		return scenario.TailResult{}, err
	}
	for _, e := range res.Expiries {
		sc.NoteExpiry(time.Unix(e, 0))
	}
	samples := make([]scenario.Sample, len(res.Samples))
	for i, s := range res.Samples {
		samples[i] = scenario.Sample{At: time.UnixMicro(int64(s[0] * 1000)), Latency: time.Duration(s[1] * float64(time.Millisecond)), Failed: s[2] != 0}
	}
	return sc.Judge(samples), nil
}
