package sidecar

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// opsPrefix is the sidecar's own path: what is under it is answered by the
// proxy, behind the same guard as everything else (only its owner), and
// never forwarded upstream.
const opsPrefix = "/.authrefresh/"

// proxyMetrics counts the proxy's answers by status class (1xx … 5xx).
type proxyMetrics struct {
	answers [6]atomic.Uint64
}

func (m *proxyMetrics) count(status int) {
	if class := status / 100; class >= 1 && class <= 5 {
		m.answers[class].Add(1)
	}
}

// serveOps answers the operator paths:
//
//	/.authrefresh/health   200 when a usable token can be had (refreshed if need be), else 503 and why
//	/.authrefresh/metrics  Prometheus text format: answers, refreshes, refusals, store errors, replay budget
//
// Neither ever shows a token.
func serveOps(w http.ResponseWriter, r *http.Request, cfg Config, m *proxyMetrics) {
	w.Header().Set("Cache-Control", "no-store")
	switch strings.TrimPrefix(r.URL.Path, opsPrefix) {
	case "health":
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		tok, err := cfg.Session.Token(ctx)
		if err != nil {
			_, code, _ := proxyStatus(err, cfg.LoginHint)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "{\"status\":\"unavailable\",\"reason\":%q}\n", code)
			return
		}
		expiresIn := "null"
		if !tok.Expiry.IsZero() {
			expiresIn = fmt.Sprint(int64(time.Until(tok.Expiry).Seconds()))
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "{\"status\":\"ok\",\"token_expires_in\":%s}\n", expiresIn)
	case "metrics":
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		writeMetrics(w, cfg, m)
	default:
		writeProxyError(w, http.StatusNotFound, "not_found", "the proxy answers "+opsPrefix+"health and "+opsPrefix+"metrics; nothing under "+opsPrefix+" is forwarded")
	}
}

// writeMetrics writes the Prometheus text exposition format (a handful of
// counters and gauges: written here rather than through a client library,
// which would be the module's largest dependency for twelve lines).
func writeMetrics(w http.ResponseWriter, cfg Config, m *proxyMetrics) {
	metric := func(name, kind, help string, samples ...string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
		for _, s := range samples {
			fmt.Fprintf(w, "%s%s\n", name, s)
		}
	}
	var classes []string
	for class := 1; class <= 5; class++ {
		classes = append(classes, fmt.Sprintf("{class=\"%dxx\"} %d", class, m.answers[class].Load()))
	}
	metric("authrefresh_proxy_answers_total", "counter", "Answers the proxy gave, by status class.", classes...)
	st := cfg.Session.Stats()
	metric("authrefresh_refreshes_total", "counter", "Tokens this process obtained from the auth server.", fmt.Sprintf(" %d", st.Refreshes))
	metric("authrefresh_adopted_total", "counter", "Tokens taken from the store, renewed by another process.", fmt.Sprintf(" %d", st.Adopted))
	metric("authrefresh_refresh_failures_total", "counter", "Failed refreshes, by kind.",
		fmt.Sprintf("{kind=\"transient\"} %d", st.TransientFailures), fmt.Sprintf("{kind=\"rejected\"} %d", st.Rejections))
	metric("authrefresh_refusals_total", "counter", "Tokens the upstream refused; each such request is replayed once.", fmt.Sprintf(" %d", st.Refusals))
	metric("authrefresh_store_errors_total", "counter", "Failed reads and writes of the token store.", fmt.Sprintf(" %d", st.StoreErrors))
	metric("authrefresh_refresh_waits_total", "counter", "Requests that waited for a refresh.", fmt.Sprintf(" %d", st.Waits))
	if b := cfg.ReplayBudget; b != nil {
		metric("authrefresh_replay_budget_bytes", "gauge", "Bytes all replay copies may hold at once (--replay-budget).", fmt.Sprintf(" %d", b.Limit()))
		metric("authrefresh_replay_budget_in_use_bytes", "gauge", "Bytes replay copies hold now.", fmt.Sprintf(" %d", b.InUse()))
	}
}
